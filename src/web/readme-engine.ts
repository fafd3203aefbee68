/**
 * READMEs as HTML: rendered by markdown-it (CommonMark, with GitHub's tables and strikethrough,
 * markdown-it-task-lists for `- [x]` items, markdown-it-anchor for heading anchors, fenced code
 * highlighted on the server by highlight.js), then sanitised by sanitize-html with an allowlist
 * (docs/web.md, "READMEs"):
 * - no script, style, iframe, object, embed, form, SVG or MathML (dropped with their content), no
 *   `style` or event-handler attributes, no `class` but highlight.js's and the task lists';
 * - links only `http:`, `https:`, `mailto:` or in-page anchors; images only `https:`;
 * - relative links and images resolved against the package's repository when it is on GitHub or
 *   GitLab (`blob/HEAD/…` for links, the raw file for images), else dropped (a link keeps its text);
 * - ids and in-page anchors prefixed `readme-` so README markup cannot clobber the page's own ids.
 * The pages' Content-Security-Policy (`default-src 'self'; img-src 'self' https:`) is the second line.
 *
 * Loaded on first use (markdown.ts `readmeRenderer`), not at start-up: these modules take about a
 * quarter of Pier's module loading (0.2–0.25 s of about 1 s on the bench machine, 2026-12-01).
 */
import hljs from 'highlight.js'
import MarkdownIt from 'markdown-it'
import anchor from 'markdown-it-anchor'
import taskLists from 'markdown-it-task-lists'
import sanitizeHtml from 'sanitize-html'
import { repositoryBase, type RepositoryBase } from './repository.js'

/** Heading slugs as GitHub makes them (lowercase, spaces to `-`, punctuation dropped), prefixed. */
function slugify(s: string): string {
  return (
    'readme-' +
    s
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-')
  )
}

const md = new MarkdownIt({
  html: true,
  linkify: true,
  typographer: false,
  highlight(code, lang) {
    const language = lang.trim().split(/\s+/)[0]?.toLowerCase()
    if (language && hljs.getLanguage(language)) {
      try {
        return hljs.highlight(code, { language, ignoreIllegals: true }).value
      } catch {
        // Fall through to plain, escaped text.
      }
    }
    return ''
  },
})
  .use(taskLists, { label: true })
  .use(anchor, { slugify, tabIndex: false })

/** Tags dropped with everything inside them. */
const DROP_WITH_CONTENT = ['script', 'style', 'textarea', 'option', 'noscript', 'svg', 'math', 'template', 'iframe', 'object', 'embed', 'frameset', 'noembed', 'noframes', 'xmp', 'title', 'select', 'form', 'button']

const ALLOWED_TAGS = [
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'br', 'hr', 'blockquote', 'pre', 'code', 'kbd', 'samp', 'var', 'sub', 'sup',
  'b', 'i', 'strong', 'em', 'del', 's', 'ins', 'mark', 'small', 'abbr', 'q', 'cite', 'dfn', 'span', 'div',
  'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'a', 'img', 'picture', 'source',
  'table', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'caption', 'colgroup', 'col',
  'details', 'summary', 'figure', 'figcaption', 'input', 'label',
]

/** Whether a (resolved) URL is a plain https one. */
const isHttps = (u: string): boolean => /^https:\/\/[^\s]+$/i.test(u)

/**
 * Resolves a link or image target against the repository.
 * @returns the URL to keep, or undefined to drop the attribute
 */
function resolveUrl(raw: string, kind: 'href' | 'src', base: RepositoryBase | undefined): string | undefined {
  const url = raw.trim()
  if (url === '') return undefined
  if (kind === 'href' && url.startsWith('#')) return url.length > 1 ? `#${slugify(decodeSafe(url.slice(1)))}` : undefined
  // An absolute URL: its scheme decides (sanitize-html's allowedSchemes checks it again).
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith('//')) {
    if (url.startsWith('//')) return undefined
    if (kind === 'src') return isHttps(url) ? url : undefined
    return /^(https?|mailto):/i.test(url) ? url : undefined
  }
  if (!base) return undefined
  const path = url.replace(/^\.\//, '').replace(/^\/+/, '')
  if (path.split(/[/?#]/).includes('..')) return undefined
  return (kind === 'src' ? base.raw : base.blob) + path
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** sanitize-html's options for a README whose relative links resolve against `base`. */
function sanitizeOptions(base: RepositoryBase | undefined): sanitizeHtml.IOptions {
  return {
    allowedTags: ALLOWED_TAGS,
    nonTextTags: DROP_WITH_CONTENT,
    disallowedTagsMode: 'discard',
    allowedAttributes: {
      a: ['href', 'title', 'rel'],
      img: ['src', 'alt', 'title', 'width', 'height', 'loading'],
      source: ['srcset', 'media', 'type'],
      h1: ['id'], h2: ['id'], h3: ['id'], h4: ['id'], h5: ['id'], h6: ['id'],
      code: ['class'],
      span: ['class'],
      ul: ['class'],
      li: ['class'],
      input: ['type', 'checked', 'disabled', 'class'],
      td: ['align', 'colspan', 'rowspan'],
      th: ['align', 'colspan', 'rowspan', 'scope'],
      ol: ['start', 'type'],
      details: ['open'],
      abbr: ['title'],
    },
    allowedClasses: {
      code: [/^language-[\w-]+$/, 'hljs'],
      span: [/^hljs-[\w-]+$/, /^language-[\w-]+$/],
      ul: ['contains-task-list'],
      li: ['task-list-item'],
      input: ['task-list-item-checkbox'],
    },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['https'], source: ['https'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite', 'srcset'],
    allowProtocolRelative: false,
    allowedIframeHostnames: [],
    // A comment could hide markup from a reader of the source; none is kept.
    allowVulnerableTags: false,
    parseStyleAttributes: false,
    transformTags: {
      a: (tagName, attribs) => {
        const href = attribs.href === undefined ? undefined : resolveUrl(attribs.href, 'href', base)
        const out: Record<string, string> = {}
        if (attribs.title !== undefined) out.title = attribs.title
        if (href !== undefined) {
          out.href = href
          if (!href.startsWith('#')) out.rel = 'nofollow noopener noreferrer'
        }
        return { tagName, attribs: out }
      },
      img: (tagName, attribs) => {
        const src = attribs.src === undefined ? undefined : resolveUrl(attribs.src, 'src', base)
        const out: Record<string, string> = { alt: attribs.alt ?? '', loading: 'lazy' }
        for (const k of ['title', 'width', 'height']) if (attribs[k] !== undefined && /^[\w .%-]*$/.test(attribs[k] ?? '')) out[k] = attribs[k] as string
        if (src !== undefined) out.src = src
        return { tagName, attribs: out }
      },
      source: (tagName, attribs) => {
        // srcset lists: keep only when every candidate is https.
        const set = (attribs.srcset ?? '').split(',').map((c) => c.trim()).filter(Boolean)
        const ok = set.length > 0 && set.every((c) => isHttps(c.split(/\s+/)[0] ?? ''))
        const out: Record<string, string> = {}
        if (ok) out.srcset = set.join(', ')
        if (attribs.media) out.media = attribs.media
        if (attribs.type) out.type = attribs.type
        return { tagName, attribs: out }
      },
      input: (tagName, attribs) => {
        // Only the task lists' disabled checkboxes.
        const out: Record<string, string> = { type: 'checkbox', disabled: '', class: 'task-list-item-checkbox' }
        if (attribs.checked !== undefined) out.checked = ''
        return { tagName, attribs: out }
      },
      ...Object.fromEntries(
        ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((h) => [
          h,
          (tagName: string, attribs: sanitizeHtml.Attributes) => ({ tagName, attribs: attribs.id ? { id: attribs.id.startsWith('readme-') ? attribs.id : slugify(attribs.id) } : {} }),
        ]),
      ),
    },
    exclusiveFilter: (frame) => (frame.tag === 'img' && !frame.attribs.src) || (frame.tag === 'input' && frame.attribs.type !== 'checkbox'),
  }
}

/**
 * A README as sanitised HTML.
 * @param markdown the README's text (the packument's `readme`, at most 64 KB)
 * @param repository the manifest's `repository` field, for relative links and images
 * @returns HTML safe to put in a page (no script, no handlers, allowed schemes only)
 */
export function renderReadme(markdown: string, repository: unknown): string {
  const rendered = md.render(markdown)
  return sanitizeHtml(rendered, sanitizeOptions(repositoryBase(repository)))
}
