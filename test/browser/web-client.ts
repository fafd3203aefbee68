/**
 * A browser stand-in for the HTTP tests of the web UI: fetch with a cookie jar (cookies as the
 * server set them, sent back on every request), redirects not followed, form posts encoded as
 * `application/x-www-form-urlencoded`, and helpers to read a page's CSRF token and text.
 */

/** One answer. */
export interface WebAnswer {
  status: number
  headers: Headers
  text: string
}

/** A cookie-keeping client of one Pier. */
export class WebClient {
  /** name → value, as set by the server. */
  readonly jar = new Map<string, string>()

  /** @param base the Pier's URL, ending in `/` */
  constructor(readonly base: string) {}

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const eq = (pair ?? '').indexOf('=')
      if (eq < 0) continue
      const name = (pair ?? '').slice(0, eq).trim()
      const value = (pair ?? '').slice(eq + 1).trim()
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') this.jar.delete(name)
      else this.jar.set(name, value)
    }
  }

  /** GET `path` (below the base, or an absolute URL) as a browser would (Accept: text/html). */
  async get(path: string, headers: Record<string, string> = {}): Promise<WebAnswer> {
    const res = await fetch(new URL(path.replace(/^\//, ''), this.base), {
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8', ...(this.jar.size > 0 ? { cookie: this.cookieHeader() } : {}), ...headers },
      redirect: 'manual',
    })
    this.keep(res)
    return { status: res.status, headers: res.headers, text: await res.text() }
  }

  /** POSTs a form to `path`. */
  async post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<WebAnswer> {
    const res = await fetch(new URL(path.replace(/^\//, ''), this.base), {
      method: 'POST',
      headers: {
        accept: 'text/html',
        'content-type': 'application/x-www-form-urlencoded',
        ...(this.jar.size > 0 ? { cookie: this.cookieHeader() } : {}),
        ...headers,
      },
      body: new URLSearchParams(form).toString(),
      redirect: 'manual',
    })
    this.keep(res)
    return { status: res.status, headers: res.headers, text: await res.text() }
  }

  /** Signs in through the sign-in form. @returns the answer of the form post */
  async signIn(user: string, password: string, session?: string): Promise<WebAnswer> {
    const page = await this.get(session ? `/-/web/login?session=${session}` : '/-/web/login')
    return this.post('/-/web/login', { csrf: csrfOf(page.text), username: user, password, ...(session ? { session } : {}) })
  }
}

/** The CSRF token in a page's forms. @throws Error when the page has none */
export function csrfOf(page: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(page)
  if (!m?.[1]) throw new Error(`no CSRF token in the page:\n${page.slice(0, 2000)}`)
  return m[1]
}

/** The text of `<main>`, tags removed and whitespace collapsed (for "does the page say X"). */
export function mainText(page: string): string {
  const main = /<main[^>]*>([\s\S]*)<\/main>/.exec(page)?.[1] ?? page
  return main
    .replace(/<[^>]+>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ')
    .trim()
}
