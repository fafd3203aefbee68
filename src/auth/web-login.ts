/**
 * Web login sessions: what `npm login` and `npm adduser` run by default in npm 11 (docs/protocol.md
 * §1.1 and "Web login" in §9.6).
 *
 * 1. `POST /-/v1/login` → `start()`: a session with two secrets, the login secret (in `loginUrl`,
 *    which the person opens) and the done secret (in `doneUrl`, which only npm holds and polls).
 *    Only their sha256 digests are stored, so a copy of the database cannot poll or complete anyone's
 *    login.
 * 2. The browser opens `loginUrl` → `claim()`: the session is bound to that browser (the digest of
 *    its browser id, a signed HttpOnly cookie, see sessions.ts). Another browser opening the same
 *    link is refused: the link alone does not let anyone else finish the login.
 * 3. The person signs in (a CSRF-protected form, or GitHub's OAuth) → `complete()`: the session
 *    records who signed in. No token exists yet (with `auth.type: github` the person's GitHub token
 *    is the credential, and it is kept sealed, see `complete`).
 * 4. npm polls `doneUrl` → `poll()`: 202 with `Retry-After` (seconds) and a JSON body while pending
 *    (npm parses the body before the status, and a 4xx would send it to the password prompts while
 *    it still waits, §9.6); then 200 with the token, once: the row is deleted by the same statement
 *    that reads it (DELETE … RETURNING), so of two polls (two nodes behind a load balancer) only one
 *    gets it, and only then is Pier's token issued. So no usable token is ever stored.
 *
 * Sessions live in the metadata store (migration 0006), so every node behind a load balancer can
 * serve any step. They expire `web.login_session_ttl` after `start` (default 10 min); expired rows
 * are removed by later starts.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto'

/** One stored web login (table `web_logins`, migration 0006). Timestamps are ISO 8601. */
export interface WebLoginRecord {
  /** sha256 hex of the login secret (the `session` parameter of `loginUrl`). */
  id_hash: string
  /** sha256 hex of the done secret (the `sessionId` parameter of `doneUrl`). */
  done_hash: string
  created: string
  /** The session answers like an unknown one from then on. */
  expires: string
  /** 1 when npm asked for an account to be created (`npm adduser`, body `{"create": true}`). */
  signup: number
  /** sha256 hex of the id of the browser that opened `loginUrl` first; null until then. */
  browser_hash: string | null
  /**
   * `auth.type: github`: the person's GitHub token, sealed with AES-256-GCM under a key derived from
   * the installation's secret (`iv.tag.ciphertext`, base64url); null otherwise.
   */
  token_box: string | null
  /** Who signed in; null while pending. */
  user_name: string | null
}

/** What web logins need from the metadata store (storage/meta implements it). */
export interface WebLoginStore {
  /** Stores a new session. @throws the driver's unique-constraint error on a digest clash (never in practice) */
  insertWebLogin(row: WebLoginRecord): Promise<void>
  /** The session whose login secret has digest `idHash`, any state. */
  getWebLogin(idHash: string): Promise<WebLoginRecord | undefined>
  /**
   * Binds a pending, unexpired session to a browser unless another browser holds it.
   * @returns true when the session is (now, or already) bound to `browserHash`
   */
  claimWebLogin(idHash: string, browserHash: string, now: string): Promise<boolean>
  /**
   * Records who signed in (and a sealed external token) on a pending, unexpired session bound to
   * `browserHash`, in one statement.
   * @returns false when nothing matched (completed already, expired, another browser)
   */
  completeWebLogin(idHash: string, browserHash: string, user: string, tokenBox: string | null, now: string): Promise<boolean>
  /** The session polled by `doneHash`, any state. */
  findWebLoginByDone(doneHash: string): Promise<WebLoginRecord | undefined>
  /**
   * Deletes a completed, unexpired session and returns it, in one statement (DELETE … RETURNING),
   * so of concurrent polls exactly one gets it.
   */
  takeWebLogin(doneHash: string, now: string): Promise<WebLoginRecord | undefined>
  /** Deletes sessions that expired before `now`. @returns how many */
  deleteExpiredWebLogins(now: string): Promise<number>
  /**
   * A secret shared by every node (table `web_secrets`): the stored value of `name`, or `fresh`
   * stored and returned when there is none yet (the first node to start wins; the others read it).
   */
  webSecret(name: string, fresh: string): Promise<string>
}

/** What `start` hands to npm. */
export interface StartedLogin {
  /** Goes into `loginUrl` (`/-/web/login?session=…`). */
  loginSecret: string
  /** Goes into `doneUrl` (`/-/v1/done?sessionId=…`). */
  doneSecret: string
}

/** A session as the login page sees it. */
export interface LoginPageState {
  /** npm asked to create an account (`npm adduser`). */
  signup: boolean
  /** Already completed (the page says so instead of showing the form). */
  done: boolean
}

/** The answer to one poll of `doneUrl`. */
export type PollAnswer =
  | { state: 'pending' }
  | { state: 'done'; user: string; external: string | undefined }
  /** Unknown, expired, or already handed out. */
  | { state: 'gone' }

/** sha256 hex. */
const digest = (s: string): string => createHash('sha256').update(s).digest('hex')

/** 32 random bytes, base64url (43 characters). */
export const randomSecret = (): string => randomBytes(32).toString('base64url')

/** Shape of every secret this module hands out (what `randomSecret` makes). */
const SECRET = /^[A-Za-z0-9_-]{43}$/

/** The AES-256 key of the token boxes (HMAC-SHA-256 of the installation secret with a label). */
function boxKey(secret: string): Buffer {
  return createHmac('sha256', secret).update('pier web login token box').digest()
}

/** Encrypts `token` under `secret` (AES-256-GCM, random 96-bit IV). */
function seal(token: string, secret: string): string {
  const iv = randomBytes(12)
  const c = createCipheriv('aes-256-gcm', boxKey(secret), iv)
  const body = Buffer.concat([c.update(token, 'utf8'), c.final()])
  return [iv, c.getAuthTag(), body].map((b) => b.toString('base64url')).join('.')
}

/** Decrypts what `seal` made. @throws Error when the box was not made with this secret */
function open(box: string, secret: string): string {
  const [iv, tag, body] = box.split('.').map((p) => Buffer.from(p, 'base64url'))
  if (!iv || !tag || !body) throw new Error('malformed token box')
  const d = createDecipheriv('aes-256-gcm', boxKey(secret), iv)
  d.setAuthTag(tag)
  return Buffer.concat([d.update(body), d.final()]).toString('utf8')
}

/** Options of `WebLogins`. */
export interface WebLoginOptions {
  /** How long a session lives after `start`, ms (`web.login_session_ttl`, default 10 min). */
  ttlMs: number
  /** The installation secret the token boxes are sealed with (sessions.ts `WebSecrets`). */
  secret: string
  /** The clock, ms since the epoch (default `Date.now`). */
  now?: () => number
}

/** Web login sessions over the metadata store. */
export class WebLogins {
  private readonly now: () => number

  constructor(
    private readonly store: WebLoginStore,
    private readonly opts: WebLoginOptions,
  ) {
    this.now = opts.now ?? Date.now
  }

  private iso(offsetMs = 0): string {
    return new Date(this.now() + offsetMs).toISOString()
  }

  /**
   * Starts a session (`POST /-/v1/login`), and removes expired ones.
   * @param signup npm's body had `create: true` (`npm adduser`)
   */
  async start(signup: boolean): Promise<StartedLogin> {
    await this.store.deleteExpiredWebLogins(this.iso())
    const loginSecret = randomSecret()
    const doneSecret = randomSecret()
    await this.store.insertWebLogin({
      id_hash: digest(loginSecret),
      done_hash: digest(doneSecret),
      created: this.iso(),
      expires: this.iso(this.opts.ttlMs),
      signup: signup ? 1 : 0,
      browser_hash: null,
      token_box: null,
      user_name: null,
    })
    return { loginSecret, doneSecret }
  }

  /**
   * Opens the login page of `loginSecret` in the browser `browserId`: binds the session to it.
   * @returns the page's state; undefined for an unknown or expired session, or one another
   *   browser opened first (all three are "this link cannot be used")
   */
  async claim(loginSecret: string, browserId: string): Promise<LoginPageState | undefined> {
    if (!SECRET.test(loginSecret)) return undefined
    const id = digest(loginSecret)
    const row = await this.store.getWebLogin(id)
    if (!row || row.expires <= this.iso()) return undefined
    if (row.user_name !== null) return row.browser_hash === digest(browserId) ? { signup: row.signup === 1, done: true } : undefined
    if (!(await this.store.claimWebLogin(id, digest(browserId), this.iso()))) return undefined
    return { signup: row.signup === 1, done: false }
  }

  /**
   * Finishes the session for `user`.
   * @param external `auth.type: github`: the person's GitHub token, handed to npm as its credential
   * @returns false when the session cannot be completed (unknown, expired, done, another browser)
   */
  async complete(loginSecret: string, browserId: string, user: string, external?: string): Promise<boolean> {
    if (!SECRET.test(loginSecret)) return false
    const box = external === undefined ? null : seal(external, this.opts.secret)
    return this.store.completeWebLogin(digest(loginSecret), digest(browserId), user, box, this.iso())
  }

  /**
   * One poll of `doneUrl`: `done` at most once per session (the caller then issues the token).
   * @param doneSecret the `sessionId` parameter
   */
  async poll(doneSecret: string): Promise<PollAnswer> {
    if (!SECRET.test(doneSecret)) return { state: 'gone' }
    const done = digest(doneSecret)
    const row = await this.store.findWebLoginByDone(done)
    if (!row || row.expires <= this.iso()) return { state: 'gone' }
    if (row.user_name === null) return { state: 'pending' }
    const taken = await this.store.takeWebLogin(done, this.iso())
    if (!taken || taken.user_name === null) return { state: 'gone' }
    return { state: 'done', user: taken.user_name, external: taken.token_box === null ? undefined : open(taken.token_box, this.opts.secret) }
  }
}

/**
 * Where GitHub's OAuth pages are for an API base URL (`auth.github.host`): GitHub's REST API →
 * its web host; GitHub Enterprise Server's `https://HOST/api/v3` → `https://HOST`; any other
 * host (a test fixture) serves both at the same base. GitHub docs, "Authorizing OAuth apps".
 */
export function githubOAuthBase(apiHost: string): string {
  const u = new URL(apiHost)
  if (u.hostname === 'api.github.com') return 'https://github.com'
  const path = u.pathname.replace(/\/+$/, '')
  if (path.endsWith('/api/v3')) return `${u.origin}${path.slice(0, -'/api/v3'.length)}`
  return `${u.origin}${path}`
}

/**
 * Exchanges an authorization code for a token (GitHub's web application flow, step 2:
 * `POST <base>/login/oauth/access_token` with the app's id and secret, `Accept: application/json`).
 * @param timeoutMs bound on the call (`auth.github.timeout`)
 * @returns the access token
 * @throws Error when GitHub refuses the code, answers something else, or does not answer in time
 */
export async function exchangeGithubCode(o: { base: string; clientId: string; clientSecret: string; code: string; redirectUri: string; timeoutMs: number }): Promise<string> {
  const res = await fetch(`${o.base}/login/oauth/access_token`, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: o.clientId, client_secret: o.clientSecret, code: o.code, redirect_uri: o.redirectUri }),
    signal: AbortSignal.timeout(o.timeoutMs),
  })
  const body = (await res.json().catch(() => ({}))) as { access_token?: unknown; error?: unknown; error_description?: unknown }
  if (!res.ok || typeof body.access_token !== 'string' || body.access_token === '') {
    throw new Error(`GitHub refused the sign-in: ${typeof body.error_description === 'string' ? body.error_description : typeof body.error === 'string' ? body.error : `HTTP ${res.status}`}`)
  }
  return body.access_token
}
