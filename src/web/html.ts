/**
 * HTML without a template engine: the `html` tagged template escapes every interpolated value
 * unless it is already `Html` (made by `html` itself, or by `unsafeHtml` for text a sanitiser
 * produced). Escaping follows the HTML Living Standard's serialisation of text and attribute
 * values (`&`, `<`, `>`, `"`, `'`), so a value is safe in text and in quoted attributes alike.
 * Attribute values that are URLs must also pass `safeHref` (a value cannot become `javascript:`).
 */

/** Markup known to be safe: built by `html`, or sanitised (`unsafeHtml`). */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

/** What may be interpolated: text (escaped), numbers, Html, lists of these, or nothing. */
export type HtmlValue = string | number | Html | null | undefined | false | readonly HtmlValue[]

function render(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return ''
  if (v instanceof Html) return v.value
  if (Array.isArray(v)) return (v as readonly HtmlValue[]).map(render).join('')
  return escapeHtml(String(v))
}

/** The tagged template: `html\`<p>${text}</p>\`` escapes `text`. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? ''
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '')
  return new Html(out)
}

/** Marks markup as safe. Only for the output of the sanitiser (readme-engine.ts) and of `html`. */
export function unsafeHtml(s: string): Html {
  return new Html(s)
}

/**
 * A link target for an `href`: http(s) and mailto URLs and paths on this site pass; anything else
 * (`javascript:`, `data:`, `vbscript:`, protocol-relative `//host`) becomes `#`.
 */
export function safeHref(url: string | undefined): string {
  if (!url) return '#'
  const u = url.trim()
  if (/^\/(?!\/)/.test(u)) return u
  try {
    const p = new URL(u)
    return p.protocol === 'https:' || p.protocol === 'http:' || p.protocol === 'mailto:' ? p.href : '#'
  } catch {
    return '#'
  }
}

/** A URL path segment for a package name: the scope's `@` and `/` stay readable (`@scope/name`). */
export function packagePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/').replace(/^%40/, '@')
}
