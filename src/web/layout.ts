/**
 * The frame of every page: landmarks (banner, search, navigation, main, contentinfo), a skip link,
 * the search box (a plain GET form; the script adds suggestions as you type), the sign-in state,
 * and the branding (`web.title`, `web.logo`). Accessibility follows WCAG 2.2 AA: every control has
 * a label, focus is always visible, the language is declared, and the layout reflows on a phone
 * (the viewport meta tag, no fixed widths). No inline script or style (the CSP forbids them).
 */
import { html, safeHref, type Html } from './html.js'

/** Who is looking, as the header shows it (never part of a cached body). */
export interface Viewer {
  name: string
  admin: boolean
}

/** What the frame needs besides the page's own content. */
export interface Chrome {
  /** `web.title`. */
  title: string
  /** `web.logo`: an https URL or a path on this server. */
  logo?: string | undefined
  /** Hashed asset paths (assets.ts). */
  css: string
  js: string
  /** Signed-in viewer, if any. */
  viewer?: Viewer | undefined
  /** The CSRF token of this browser (for the sign-out form). */
  csrf?: string | undefined
  /** Text to show in the search box. */
  query?: string | undefined
}

/** The header's navigation for the viewer. */
function nav(c: Chrome): Html {
  if (!c.viewer) return html`<nav class="user" aria-label="Account"><a href="/-/web/login">Sign in</a></nav>`
  const v = c.viewer
  return html`<nav class="user" aria-label="Account">
<a href="/-/web/user/${encodeURIComponent(v.name)}">${v.name}</a>
<a href="/-/web/settings/tokens">Tokens</a>
${v.admin ? html`<a href="/-/web/admin">Admin</a>` : ''}
<form method="post" action="/-/web/logout"><input type="hidden" name="csrf" value="${c.csrf ?? ''}"><button type="submit" class="link">Sign out</button></form>
</nav>`
}

/**
 * A whole page.
 * @param title the page's own title (the site title is appended)
 * @param body the content of `<main>`
 */
export function page(c: Chrome, title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="strict-origin-when-cross-origin">
<title>${title ? `${title} · ${c.title}` : c.title}</title>
<link rel="stylesheet" href="${c.css}">
<script src="${c.js}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<div class="bar">
<a class="brand" href="/-/web/">${c.logo ? html`<img src="${safeHref(c.logo)}" alt="">` : ''}<span>${c.title}</span></a>
<form class="search" role="search" method="get" action="/-/web/search">
<label for="q" class="visually-hidden">Search packages</label>
<input type="search" id="q" name="q" value="${c.query ?? ''}" placeholder="Search packages" autocomplete="off" aria-controls="suggestions">
<button type="submit">Search</button>
<ul id="suggestions" aria-label="Suggestions"></ul>
</form>
<span id="suggest-status" class="visually-hidden" role="status" aria-live="polite"></span>
${nav(c)}
</div>
</header>
<main id="main" tabindex="-1">
${body}
</main>
<footer class="site"><p>${c.title} · a self-hosted npm registry · <a href="/-/web/">Home</a></p></footer>
</body>
</html>
`.value
}
