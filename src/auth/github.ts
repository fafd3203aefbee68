/**
 * `auth.type: github`, as the original registry described it: the `_authToken` npm sends is a
 * GitHub token, and GitHub decides.
 *
 * - Who: a bearer token Pier did not issue is asked of GitHub, `GET {host}/user` (GitHub REST
 *   docs, "Users" › "Get the authenticated user"); its `login` is the user. 401 there: 401
 *   `Invalid or revoked GitHub token.` (challenge Bearer).
 * - What: `PermissionSource` (registry/permission-source.ts). A package's `repository` names a
 *   GitHub repository; `GET {host}/repos/{owner}/{repo}` ("Repositories" › "Get a repository")
 *   with the caller's token returns its `permissions`: `admin`, `maintain`, `push` → write;
 *   `triage`, `pull` → read; 404 → none. Names that are not local (proxied packages) are read by
 *   any authenticated caller; anonymous callers get nothing. A scoped package's scope must be its
 *   repository's owner.
 * - Caching: each answer is trusted `auth.github.cache.ttl` ms, in memory (bounded LRU) in front
 *   of the metadata store (`GithubCacheStore`, shared by every node). Keys hold the token's sha512
 *   hex, never the token. The token itself is kept only in memory (an LRU keyed by that digest),
 *   so no secret rides on the `Principal`.
 * - Rate limits ("Rate limits for the REST API" › "Exceeding the rate limit"): a 403 or 429 with
 *   `x-ratelimit-remaining: 0` or `retry-after` stops the calls for that token until `retry-after`
 *   seconds, else until `x-ratelimit-reset` (epoch seconds), else one minute; meanwhile, and when
 *   GitHub fails or is slower than `auth.github.timeout`, answers are served from the cache even
 *   expired, and with nothing cached the caller gets 503 with `Retry-After`. Never a guessed
 *   "allowed".
 */
import { LRUCache } from 'lru-cache'
import { Agent, request, type Dispatcher } from 'undici'
import { forbidden, RegistryError, unauthenticated } from '../registry/errors.js'
import type { ExternalRight, PermissionSource } from '../registry/permission-source.js'
import type { Principal } from '../registry/types.js'
import { tokenKey } from './tokens.js'
import type { GithubCacheStore } from './user-store.js'

/** The REST API version Pier speaks (GitHub REST docs, "API Versions"). */
export const GITHUB_API_VERSION = '2022-11-28'
/** Largest answer body read from GitHub, bytes (a repository document is a few KB). */
const MAX_BODY = 1024 * 1024
/** Seconds a client is told to wait when GitHub failed or was slow (not rate-limited). */
const RETRY_AFTER_FAILURE = 5
/** Longest a rate limit is believed, ms (GitHub's windows are one hour). */
const MAX_LIMIT_MS = 3600_000
/** Redirects followed for a renamed or moved repository (301/302/307), on the API's own origin only. */
const MAX_REDIRECTS = 3

/** A GitHub repository, as named by a package's `repository` field. */
export interface GithubRepository {
  owner: string
  repo: string
}

/** Where a GitHub's answers come from and how long they are trusted. */
export interface GithubOptions {
  /**
   * The REST API's base URL (`auth.github.host`): GitHub's, or `https://<host>/api/v3` for GitHub
   * Enterprise Server; a test fixture's.
   */
  host: string
  /**
   * More API base URLs whose web hosts a `repository` URL may name besides `host`'s (app.ts
   * passes GitHub's own, `GITHUB_API_DEFAULT`: npm rewrites the `github:owner/repo` shorthand to
   * a URL on GitHub's web host when it publishes).
   */
  repositoryHosts?: readonly string[]
  /** Bound on each call, ms (headers and body); beyond it GitHub counts as unavailable. */
  timeoutMs: number
  /** How long an answer is trusted, ms (`auth.github.cache.ttl`). */
  ttlMs: number
  /** The shared half of the cache (the metadata store). */
  store: GithubCacheStore
  /**
   * Whether `name` has local versions: a local package whose `repository` names no GitHub
   * repository of this host is readable by no one (administrators aside); other names are
   * proxied ones, read by any authenticated caller.
   */
  isLocal(name: string): Promise<boolean>
  /** Answers kept in memory, at most (default 10,000). */
  memoryEntries?: number
  /** Clock, ms since the epoch (default `Date.now`). */
  now?: () => number
  /** Where rate limits and failures are logged (a pino logger fits). */
  log?: { warn(obj: object, msg: string): void }
}

/** What one call to GitHub returned. */
interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** An answer of the cache: the JSON value and until when it is trusted (ms since the epoch). */
interface Entry {
  value: string
  expires: number
}

/** GitHub cannot answer now: rate-limited until `until` (ms), or failed / too slow. */
class GithubUnavailable extends Error {
  constructor(
    message: string,
    readonly until?: number,
  ) {
    super(message)
  }
}

/** A token's user, as cached: the login, or the token is invalid. */
type UserAnswer = { login: string } | { invalid: true }

/**
 * The web host names whose repository URLs belong to the API at `apiHost`: GitHub's API host
 * without its `api.` prefix (and with `www.`), or a GitHub Enterprise Server's host as it is.
 */
export function githubWebHosts(apiHost: string): ReadonlySet<string> {
  const h = new URL(apiHost).hostname.toLowerCase()
  const web = h.startsWith('api.') ? h.slice(4) : h
  return new Set([web, `www.${web}`])
}

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/
const REPO = /^[A-Za-z0-9._-]{1,100}$/

/** `{ owner, repo }` when both are valid GitHub names (`.git` dropped), else undefined. */
function repoOf(owner: string | undefined, repo: string | undefined): GithubRepository | undefined {
  if (owner === undefined || repo === undefined) return undefined
  const r = repo.endsWith('.git') ? repo.slice(0, -4) : repo
  if (!OWNER.test(owner) || !REPO.test(r) || r === '.' || r === '..') return undefined
  return { owner, repo: r }
}

/**
 * The GitHub repository a package's `repository` field names, in the forms npm accepts
 * (package.json docs, "repository"): `github:owner/repo`, the shorthand `owner/repo`,
 * `git+https://<host>/owner/repo.git` (also `https:`, `http:`, `git:`, `git+ssh://git@<host>/`,
 * `ssh:`), `git@<host>:owner/repo.git`, each with an optional `#ref`; or `{ type, url }` with one
 * of them as `url`. URLs must be on one of `hosts` (see `githubWebHosts`), so a repository of
 * another forge is never asked about on GitHub.
 * @returns undefined for anything else (another forge's shorthand, another host, bad names)
 */
export function parseGithubRepository(repository: unknown, hosts: ReadonlySet<string>): GithubRepository | undefined {
  if (typeof repository === 'object' && repository !== null && !Array.isArray(repository)) {
    return parseGithubRepository((repository as { url?: unknown }).url, hosts)
  }
  if (typeof repository !== 'string') return undefined
  const s = repository.trim().replace(/#.*$/, '')
  const short = /^(?:github:)?([^/:@\s]+)\/([^/:@\s]+)$/.exec(s)
  if (short) return repoOf(short[1], short[2])
  const scp = /^[A-Za-z0-9._-]+@([^:/\s]+):([^/\s]+)\/([^/\s]+?)\/?$/.exec(s)
  if (scp) return hosts.has((scp[1] ?? '').toLowerCase()) ? repoOf(scp[2], scp[3]) : undefined
  if (!/^(?:git\+)?(?:https?|git|ssh):\/\//i.test(s)) return undefined
  let url: URL
  try {
    url = new URL(s.replace(/^git\+/i, ''))
  } catch {
    return undefined
  }
  if (!hosts.has(url.hostname.toLowerCase())) return undefined
  const parts = url.pathname.split('/').filter((p) => p !== '')
  return parts.length === 2 ? repoOf(parts[0], parts[1]) : undefined
}

/**
 * The right GitHub's `permissions` object grants (GitHub REST docs, "Repositories" › "Get a
 * repository", the `permissions` of the response): `admin`, `maintain`, `push` → write;
 * `triage`, `pull` → read; else (or no object) none.
 */
export function rightOfPermissions(permissions: unknown): ExternalRight {
  if (typeof permissions !== 'object' || permissions === null) return 'none'
  const p = permissions as Record<string, unknown>
  if (p.admin === true || p.maintain === true || p.push === true) return 'write'
  if (p.triage === true || p.pull === true) return 'read'
  return 'none'
}

/** One header's value as a string (the first of a repeated one). */
function header(h: Reply['headers'], name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * Until when (ms since the epoch) GitHub asks not to be called again, from its rate-limit
 * headers (GitHub REST docs, "Rate limits for the REST API" › "Exceeding the rate limit"); undefined
 * when the answer is not a rate limit. A 200 whose `x-ratelimit-remaining` is 0 counts too: the
 * next call would be refused.
 */
export function rateLimitedUntil(status: number, headers: Reply['headers'], now: number): number | undefined {
  const remaining = header(headers, 'x-ratelimit-remaining')
  const retryAfter = header(headers, 'retry-after')
  const limited = status === 429 || (status === 403 && (remaining === '0' || retryAfter !== undefined)) || (status < 300 && remaining === '0')
  if (!limited) return undefined
  const seconds = retryAfter === undefined ? NaN : Number(retryAfter)
  if (Number.isFinite(seconds) && seconds >= 0) return now + Math.min(seconds * 1000, MAX_LIMIT_MS)
  const reset = Number(header(headers, 'x-ratelimit-reset'))
  if (remaining === '0' && Number.isFinite(reset)) return Math.min(Math.max(reset * 1000, now + 1000), now + MAX_LIMIT_MS)
  return now + 60_000
}

/** Reads a body up to `MAX_BODY` bytes. @throws GithubUnavailable beyond */
async function readBody(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.length
    if (n > MAX_BODY) {
      body.destroy()
      throw new GithubUnavailable(`GitHub sent more than ${MAX_BODY} bytes`)
    }
    chunks.push(c)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** `JSON.parse`, or undefined for text that is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** What every token Pier issues starts with (tokens.ts `newToken`). */
const PIER_TOKEN_PREFIX = 'pier_'

/** Tokens worth sending: printable ASCII without spaces, at most 1 KB (anything else is invalid at once). */
const TOKEN = /^[\x21-\x7e]{1,1024}$/

/**
 * GitHub as Pier's authority: authenticates GitHub tokens (`authenticate`, AuthService's external
 * hook) and answers the read gate and the write path (`PermissionSource`).
 */
export class GithubAuth implements PermissionSource {
  private readonly base: string
  private readonly hosts: ReadonlySet<string>
  private readonly agent: Agent
  private readonly now: () => number
  /** Answers by cache key, in front of the store. */
  private readonly memory: LRUCache<string, Entry>
  /** Token digest → the token, for the permission calls after `authenticate` (memory only). */
  private readonly tokens = new LRUCache<string, string>({ max: 10_000, ttl: 3600_000 })
  /** Token digest → until when (ms) its calls wait, and why: a rate limit, or a failed or slow call. */
  private readonly limited = new LRUCache<string, { until: number; reason: string }>({ max: 10_000 })
  /** Cache key → the answer being fetched: concurrent misses share one call. */
  private readonly inflight = new Map<string, Promise<string>>()

  constructor(private readonly o: GithubOptions) {
    this.base = o.host.replace(/\/+$/, '')
    this.hosts = new Set([o.host, ...(o.repositoryHosts ?? [])].flatMap((h) => [...githubWebHosts(h)]))
    this.agent = new Agent({ headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs, keepAliveTimeout: 30_000, connections: 32 })
    this.now = o.now ?? Date.now
    this.memory = new LRUCache<string, Entry>({ max: o.memoryEntries ?? 10_000 })
  }

  /**
   * The caller behind a GitHub token (GitHub REST docs, "Users" › "Get the authenticated user"):
   * `{ name: login, readonly: false, ip, tokenKey: sha512 hex of the token }`. Cached `ttlMs`.
   * @param ip the client's address, recorded on the principal
   * @throws RegistryError UNAUTHENTICATED `Invalid or revoked GitHub token.` (challenge Bearer)
   *   when GitHub refuses the token; UNAVAILABLE (503, `retryAfter` seconds) when GitHub is
   *   rate-limiting, failing or slower than `timeoutMs` and no answer is cached
   * @returns undefined for a token of Pier's own form (`pier_…`, tokens.ts), which is never sent
   *   to GitHub: the caller answers it as the revoked Pier token it is
   */
  async authenticate(token: string, ip: string): Promise<Principal | undefined> {
    if (token.startsWith(PIER_TOKEN_PREFIX)) return undefined
    if (!TOKEN.test(token)) throw unauthenticated('Invalid or revoked GitHub token.', 'Bearer')
    const key = tokenKey(token)
    const answer = JSON.parse(await this.cached(`user:${key}`, key, () => this.askUser(token))) as UserAnswer
    if (!('login' in answer)) throw unauthenticated('Invalid or revoked GitHub token.', 'Bearer')
    this.tokens.set(key, token)
    return { name: answer.login, readonly: false, ip, tokenKey: key }
  }

  /**
   * The right of `p` on package `name` (PermissionSource): from the permission of `p`'s GitHub
   * token on the repository `repository` names (`parseGithubRepository`), cached `ttlMs`. A name
   * naming no GitHub repository: `read` for an authenticated caller when it is not local (a
   * proxied package), else `none`. Anonymous callers, and callers that did not authenticate with
   * a GitHub token (Pier's own users), get `none` on a repository.
   * @throws RegistryError UNAUTHENTICATED (GitHub no longer accepts the token), UNAVAILABLE (as
   *   `authenticate`)
   */
  async rightOn(p: Principal, name: string, repository: unknown): Promise<ExternalRight> {
    if (p.name === undefined) return 'none'
    const repo = parseGithubRepository(repository, this.hosts)
    if (!repo) return (await this.o.isLocal(name)) ? 'none' : 'read'
    const token = p.tokenKey === undefined ? undefined : this.tokens.get(p.tokenKey)
    if (token === undefined || p.tokenKey === undefined) return 'none'
    const key = `repo:${p.tokenKey}:${repo.owner.toLowerCase()}/${repo.repo.toLowerCase()}`
    const answer = JSON.parse(await this.cached(key, p.tokenKey, () => this.askRepo(token, p.tokenKey as string, repo))) as { right: ExternalRight }
    return answer.right
  }

  /**
   * A publish's own check (PermissionSource): a scoped package's scope must equal its repository's
   * owner, without regard to case; an unscoped package needs none.
   * @throws RegistryError FORBIDDEN naming the scope and the owner (or saying no GitHub repository is named)
   */
  checkPublish(_p: Principal, name: string, repository: unknown): void {
    if (!name.startsWith('@')) return
    const scope = name.slice(1, name.indexOf('/'))
    const repo = parseGithubRepository(repository, this.hosts)
    if (!repo) throw forbidden(`The package ${name} names no GitHub repository in its "repository" field, so its scope @${scope} cannot be checked.`)
    if (repo.owner.toLowerCase() !== scope.toLowerCase()) {
      throw forbidden(`The scope @${scope} does not match the repository owner "${repo.owner}" (github:${repo.owner}/${repo.repo}).`)
    }
  }

  /** Closes the connections to GitHub (calls in flight fail). */
  async close(): Promise<void> {
    await this.agent.destroy()
  }

  /**
   * The answer under `key`: from memory or the store while trusted; else asked of GitHub (one call
   * for concurrent misses) and stored; when GitHub cannot answer, the last answer, expired or not.
   * @param digest the token's sha512 hex (its rate limit)
   * @throws RegistryError UNAVAILABLE when GitHub cannot answer and nothing is cached
   */
  private cached(key: string, digest: string, ask: () => Promise<string>): Promise<string> {
    const hit = this.memory.get(key)
    if (hit && hit.expires > this.now()) return Promise.resolve(hit.value)
    let p = this.inflight.get(key)
    if (!p) {
      p = this.refresh(key, digest, hit, ask).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return p
  }

  private async refresh(key: string, digest: string, hit: Entry | undefined, ask: () => Promise<string>): Promise<string> {
    const row = await this.o.store.getGithubCache(key)
    const stored: Entry | undefined = row ? { value: row.value, expires: Date.parse(row.expires) } : undefined
    // Another node may have asked already.
    if (stored && stored.expires > this.now()) {
      this.memory.set(key, stored)
      return stored.value
    }
    const last = !hit ? stored : !stored ? hit : stored.expires >= hit.expires ? stored : hit
    try {
      const held = this.limited.get(digest)
      if (held !== undefined && held.until > this.now()) throw new GithubUnavailable(held.reason, held.until)
      const value = await ask()
      const entry = { value, expires: this.now() + this.o.ttlMs }
      this.memory.set(key, entry)
      await this.o.store.putGithubCache(key, value, new Date(entry.expires).toISOString())
      return value
    } catch (e) {
      if (!(e instanceof GithubUnavailable)) throw e
      // Served as it was last known: never more than GitHub last granted.
      if (last) return last.value
      const retryAfter = e.until === undefined ? RETRY_AFTER_FAILURE : Math.max(1, Math.ceil((e.until - this.now()) / 1000))
      const err = new RegistryError('UNAVAILABLE', `GitHub cannot answer now (${e.message}) and no earlier answer is cached; try again in ${retryAfter} s.`)
      err.retryAfter = retryAfter
      throw err
    }
  }

  /** `GET /user` → the cached value (`UserAnswer` as JSON). @throws GithubUnavailable */
  private async askUser(token: string): Promise<string> {
    const r = await this.get('/user', token, tokenKey(token))
    if (r.status === 401 || r.status === 403) return JSON.stringify({ invalid: true })
    const login = r.status === 200 ? (parseJson(r.body) as { login?: unknown } | undefined)?.login : undefined
    if (typeof login !== 'string' || login === '') throw new GithubUnavailable(`GET /user answered ${r.status}`)
    return JSON.stringify({ login })
  }

  /**
   * `GET /repos/{owner}/{repo}` → the cached value (`{ right }` as JSON).
   * @throws RegistryError UNAUTHENTICATED when GitHub no longer accepts the token (its user entry
   *   is marked invalid too); GithubUnavailable
   */
  private async askRepo(token: string, digest: string, repo: GithubRepository): Promise<string> {
    const r = await this.get(`/repos/${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.repo)}`, token, digest)
    if (r.status === 401) {
      const invalid = JSON.stringify({ invalid: true })
      const expires = this.now() + this.o.ttlMs
      this.memory.set(`user:${digest}`, { value: invalid, expires })
      await this.o.store.putGithubCache(`user:${digest}`, invalid, new Date(expires).toISOString())
      throw unauthenticated('Invalid or revoked GitHub token.', 'Bearer')
    }
    // 404: no such repository, or one the token may not see; 403: e.g. an organisation's SSO.
    if (r.status === 404 || r.status === 403) return JSON.stringify({ right: 'none' })
    if (r.status !== 200) throw new GithubUnavailable(`GET /repos/${repo.owner}/${repo.repo} answered ${r.status}`)
    const body = parseJson(r.body) as { permissions?: unknown } | undefined
    if (typeof body !== 'object' || body === null) throw new GithubUnavailable(`GET /repos/${repo.owner}/${repo.repo} answered no JSON object`)
    return JSON.stringify({ right: rightOfPermissions(body.permissions) })
  }

  /**
   * One GET of the REST API with the token (GitHub REST docs, "Getting started" › headers:
   * `Accept: application/vnd.github+json`, `X-GitHub-Api-Version`, a `User-Agent`), following
   * redirects on the API's origin, bounded by `timeoutMs` in all. Rate limits are remembered for
   * the token.
   * @throws GithubUnavailable when rate-limited, on a 5xx, a connection failure or the timeout
   */
  private async get(path: string, token: string, digest: string): Promise<Reply> {
    const signal = AbortSignal.timeout(this.o.timeoutMs)
    let url = this.base + path
    const origin = new URL(this.base).origin
    try {
      for (let hop = 0; ; hop++) {
        const res = await request(url, {
          method: 'GET',
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/vnd.github+json',
            'x-github-api-version': GITHUB_API_VERSION,
            'user-agent': 'pier-registry',
          },
          dispatcher: this.agent,
          signal,
        })
        const location = header(res.headers, 'location')
        if ([301, 302, 307, 308].includes(res.statusCode) && location !== undefined && hop < MAX_REDIRECTS) {
          res.body.destroy()
          const next = new URL(location, url)
          // A token is never sent to another origin.
          if (next.origin !== origin) return { status: 404, headers: res.headers, body: '' }
          url = next.toString()
          continue
        }
        const reply: Reply = { status: res.statusCode, headers: res.headers, body: await readBody(res.body) }
        const until = rateLimitedUntil(reply.status, reply.headers, this.now())
        if (until !== undefined) {
          this.limited.set(digest, { until, reason: `rate-limited (${reply.status})` })
          this.o.log?.warn({ status: reply.status, until: new Date(until).toISOString() }, 'GitHub rate limit: serving cached answers until then')
          if (reply.status >= 400) throw new GithubUnavailable(`rate-limited (${reply.status})`, until)
        }
        if (reply.status >= 500) throw new GithubUnavailable(`GET ${path} answered ${reply.status}`)
        return reply
      }
    } catch (e) {
      if (e instanceof GithubUnavailable && e.until !== undefined) throw e
      // Failing or slow: this token's calls wait a few seconds (cached answers are served meanwhile),
      // so a slow GitHub does not hold every request for the whole timeout.
      const until = this.now() + RETRY_AFTER_FAILURE * 1000
      const slow = signal.aborted
      const reason = e instanceof GithubUnavailable ? e.message : slow ? `no answer within ${this.o.timeoutMs} ms` : `request failed: ${(e as Error).message}`
      this.limited.set(digest, { until, reason })
      this.o.log?.warn({ err: slow || e instanceof GithubUnavailable ? undefined : e, reason }, 'GitHub did not answer: serving cached answers')
      throw new GithubUnavailable(reason, until)
    }
  }
}
