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
 */
import hljs from 'highlight.js'
import MarkdownIt from 'markdown-it'
import anchor from 'markdown-it-anchor'
import taskLists from 'markdown-it-task-lists'
import sanitizeHtml from 'sanitize-html'

/** Where a README's relative links and images point: a repository's web pages and raw files. */
export interface RepositoryBase {
  /** The repository's web page, `https://github.com/owner/repo` (no trailing slash). */
  web: string
  /** Prefix of a file's web page: `<web>/blob/HEAD/` plus the package's folder in the repository. */
  blob: string
  /** Prefix of a file's raw bytes (for images). */
  raw: string
}

/** Hosts whose URL layout `repositoryBase` knows. */
const HOSTS: Record<string, (owner: string, repo: string) => { blob: string; raw: string }> = {
  'github.com': (o, r) => ({ blob: `https://github.com/${o}/${r}/blob/HEAD/`, raw: `https://raw.githubusercontent.com/${o}/${r}/HEAD/` }),
  'gitlab.com': (o, r) => ({ blob: `https://gitlab.com/${o}/${r}/-/blob/HEAD/`, raw: `https://gitlab.com/${o}/${r}/-/raw/HEAD/` }),
}

/**
 * The web address of a manifest's `repository` (npm's forms, package.json docs "repository": a
 * URL string, `github:owner/repo`, `gitlab:owner/repo`, `owner/repo`, or `{ type, url, directory }`).
 * @returns the https web page, or undefined when it cannot be made one
 */
export function repositoryUrl(repository: unknown): string | undefined {
  return repositoryBase(repository)?.web ?? httpsOf(typeof repository === 'object' && repository !== null ? (repository as { url?: unknown }).url : repository)
}

/** An https URL from `git+https://…`, `https://…(.git)`; undefined otherwise. */
function httpsOf(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined
  const s = v.replace(/^git\+/, '').replace(/\.git$/, '')
  try {
    const u = new URL(s)
    return u.protocol === 'https:' ? u.href.replace(/\/$/, '') : undefined
  } catch {
    return undefined
  }
}

/**
 * Where relative README links go, for a repository on GitHub or GitLab.
 * @returns undefined for any other host, or when `repository` names none
 */
export function repositoryBase(repository: unknown): RepositoryBase | undefined {
  let url: unknown = repository
  let dir = ''
  if (typeof repository === 'object' && repository !== null) {
    url = (repository as { url?: unknown }).url
    const d = (repository as { directory?: unknown }).directory
    if (typeof d === 'string' && /^[\w.\-/]+$/.test(d) && !d.split('/').includes('..')) dir = d.replace(/^\/+|\/+$/g, '') + '/'
  }
  if (typeof url !== 'string') return undefined
  let host: string | undefined
  let path: string | undefined
  const short = /^(?:(github|gitlab):)?([\w.-]+)\/([\w.-]+)$/.exec(url)
  if (short) {
    host = `${short[1] ?? 'github'}.com`
    path = `${short[2]}/${short[3]}`
  } else {
    const m = /^(?:git\+)?(?:https?|ssh|git):\/\/(?:[^@/]+@)?([^/:]+)(?::\d+)?\/([\w.-]+\/[\w.-]+?)(?:\.git)?\/?$/.exec(url) ?? /^git@([^:]+):([\w.-]+\/[\w.-]+?)(?:\.git)?$/.exec(url)
    host = m?.[1]?.toLowerCase()
    path = m?.[2]
  }
  const layout = host ? HOSTS[host] : undefined
  if (!layout || !path) return undefined
  const [owner, repo] = path.split('/') as [string, string]
  const { blob, raw } = layout(owner, repo.replace(/\.git$/, ''))
  return { web: `https://${host}/${owner}/${repo.replace(/\.git$/, '')}`, blob: blob + dir, raw: raw + dir }
}

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
