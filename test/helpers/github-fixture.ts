/**
 * A small stand-in for GitHub's REST API on loopback, for `auth.type: github`: it answers
 * `GET /user` (GitHub REST docs, "Users" › "Get the authenticated user") and
 * `GET /repos/{owner}/{repo}` ("Repositories" › "Get a repository", with `permissions`) from a
 * table of tokens → logins → repository permissions, records every request, and misbehaves on
 * demand: 401 for a revoked token, 404 for a repository the token may not see, a rate limit
 * (403 or 429 with `x-ratelimit-remaining: 0`, `x-ratelimit-reset` and `retry-after`, as GitHub's
 * "Rate limits for the REST API" describes), and answers that never come (for timeouts).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A permission GitHub grants on a repository; each includes those after it (admin ⊃ maintain ⊃ push ⊃ triage ⊃ pull). */
export type RepoPermission = 'admin' | 'maintain' | 'push' | 'triage' | 'pull'

/** One GitHub account a token belongs to. */
export interface GithubAccount {
  login: string
  /** `owner/repo` → the account's permission on it; repositories not listed answer 404. */
  repos?: Record<string, RepoPermission>
}

/** One request the fixture saw. */
export interface GithubRequest {
  method: string
  /** Path and query, e.g. `/repos/acme/widget`. */
  path: string
  /** The bearer token sent, if any. */
  token: string | undefined
  headers: IncomingHttpHeaders
  /** Status answered; 0 while an answer is withheld (`slow`). */
  status: number
}

/** A running fixture. */
export interface GithubFixture {
  /** The API's base URL, `http://127.0.0.1:<port>` (for `auth.github.host`). */
  url: string
  /** Every request, in arrival order. */
  readonly requests: GithubRequest[]
  /** How many requests carried `token`. */
  callsWith(token: string): number
  /** From now on `token` answers 401 `Bad credentials`, as a revoked token does. */
  revoke(token: string): void
  /**
   * While set, every request is refused as rate-limited: `status` (default 403) with
   * `x-ratelimit-remaining: 0`, `x-ratelimit-reset` = now + `retryAfter` and, unless
   * `retryAfterHeader` is false, `retry-after: <retryAfter>` (seconds).
   */
  rateLimit: { retryAfter: number; status?: 403 | 429; retryAfterHeader?: boolean } | undefined
  /** Tokens whose requests are never answered (the connection stays open until the client gives up or `close`). */
  readonly slow: Set<string>
  /**
   * The OAuth app (`auth.github.client_id` / `client_secret`) and the token its authorize page
   * approves (the person "signing in"); undefined: the OAuth endpoints answer 404.
   */
  oauth: { clientId: string; clientSecret: string; approve: string } | undefined
  close(): Promise<void>
}

/** Reads a request body as text. */
function bodyOf(req: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (s += c))
    req.on('end', () => resolve(s))
    req.on('error', reject)
  })
}

const RANK: RepoPermission[] = ['pull', 'triage', 'push', 'maintain', 'admin']

/** GitHub's `permissions` object for a permission (each implies the lower ones). */
function permissionsOf(p: RepoPermission): Record<RepoPermission, boolean> {
  const n = RANK.indexOf(p)
  return { admin: n >= 4, maintain: n >= 3, push: n >= 2, triage: n >= 1, pull: n >= 0 }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/**
 * Starts the fixture on a random loopback port.
 * @param accounts token → account
 */
export async function startGithubFixture(accounts: Record<string, GithubAccount>): Promise<GithubFixture> {
  const requests: GithubRequest[] = []
  const revoked = new Set<string>()
  const slow = new Set<string>()
  const fixture = { rateLimit: undefined as GithubFixture['rateLimit'], oauth: undefined as GithubFixture['oauth'] }
  /** Codes handed out by the authorize page → the token they exchange for (each once). */
  const codes = new Map<string, string>()
  let nextId = 1
  const ids = new Map<string, number>()

  const server = createServer((req, res) => {
    const auth = req.headers.authorization
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined
    const rec: GithubRequest = { method: req.method ?? '', path: req.url ?? '', token, headers: req.headers, status: 0 }
    requests.push(rec)
    res.on('finish', () => (rec.status = res.statusCode))
    const url = new URL(req.url ?? '/', 'http://fixture')
    const oauth = fixture.oauth
    if (url.pathname === '/login/oauth/authorize' && req.method === 'GET') {
      req.resume()
      const redirect = url.searchParams.get('redirect_uri')
      if (!oauth || url.searchParams.get('client_id') !== oauth.clientId || !redirect) return send(res, 404, { message: 'Not Found' })
      const code = `code-${nextId++}-${Math.random().toString(36).slice(2)}`
      codes.set(code, oauth.approve)
      const back = new URL(redirect)
      back.searchParams.set('code', code)
      back.searchParams.set('state', url.searchParams.get('state') ?? '')
      res.writeHead(302, { location: back.href, 'content-length': 0 }).end()
      return
    }
    if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') {
      void bodyOf(req).then((text) => {
        let b: Record<string, unknown> = {}
        try {
          b = JSON.parse(text) as Record<string, unknown>
        } catch {
          b = Object.fromEntries(new URLSearchParams(text))
        }
        const token = typeof b.code === 'string' ? codes.get(b.code) : undefined
        if (typeof b.code === 'string') codes.delete(b.code)
        // GitHub answers 200 with an `error` field for a bad code or client secret.
        if (!oauth || b.client_id !== oauth.clientId || b.client_secret !== oauth.clientSecret) return send(res, 200, { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' })
        if (!token) return send(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' })
        send(res, 200, { access_token: token, token_type: 'bearer', scope: 'repo' })
      })
      return
    }
    req.resume()
    if (token !== undefined && slow.has(token)) return
    const limit = fixture.rateLimit
    const reset = Math.floor(Date.now() / 1000) + (limit?.retryAfter ?? 3600)
    if (limit) {
      send(res, limit.status ?? 403, { message: 'API rate limit exceeded for user ID 1.' }, {
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-used': '5000',
        'x-ratelimit-reset': String(reset),
        ...(limit.retryAfterHeader === false ? {} : { 'retry-after': String(limit.retryAfter) }),
      })
      return
    }
    const rl = { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': String(reset) }
    const account = token === undefined ? undefined : accounts[token]
    if (req.method !== 'GET') return send(res, 404, { message: 'Not Found' }, rl)
    if (!account || revoked.has(token as string)) return send(res, 401, { message: 'Bad credentials' }, rl)
    const id = ids.get(account.login) ?? nextId++
    ids.set(account.login, id)
    const path = (req.url ?? '').split('?')[0] ?? ''
    if (path === '/user') return send(res, 200, { login: account.login, id, type: 'User' }, rl)
    const m = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path)
    if (m) {
      const full = `${decodeURIComponent(m[1] ?? '')}/${decodeURIComponent(m[2] ?? '')}`.toLowerCase()
      const entry = Object.entries(account.repos ?? {}).find(([r]) => r.toLowerCase() === full)
      if (!entry) return send(res, 404, { message: 'Not Found' }, rl)
      const [owner, name] = entry[0].split('/') as [string, string]
      return send(res, 200, { id: 1000 + id, name, full_name: entry[0], owner: { login: owner }, private: true, permissions: permissionsOf(entry[1]) }, rl)
    }
    send(res, 404, { message: 'Not Found' }, rl)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    callsWith: (t) => requests.filter((r) => r.token === t).length,
    revoke: (t) => void revoked.add(t),
    get rateLimit() {
      return fixture.rateLimit
    },
    set rateLimit(v) {
      fixture.rateLimit = v
    },
    get oauth() {
      return fixture.oauth
    },
    set oauth(v) {
      fixture.oauth = v
    },
    slow,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
