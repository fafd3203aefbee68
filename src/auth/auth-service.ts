/**
 * Local users and tokens: the legacy CouchDB login (`PUT /-/user/org.couchdb.user:NAME`), bearer
 * and Basic authentication of requests, and npm's token API (docs/protocol.md §1), including npm
 * 11's granular tokens (§1.7: named packages, scopes and orgs, a permission, an expiry).
 *
 * - Administrators: users created with `pier user add --admin`, and the names in `auth.admins`.
 * - Password guessing is limited (login-throttle.ts); an unknown user and a wrong password take
 *   the same time (the KDF runs against a dummy hash) and get the same answer.
 * - Every account change (user creation, token create and revoke, login success and failure) is
 *   appended to the audit log in the change's own transaction.
 * - `last_used` of a token is recorded at most once a minute per token, in batches.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { AuditEntry, AuditQuery, AuditRecord } from '../registry/audit-log.js'
import { badRequest, forbidden, notFound, unauthenticated, RegistryError } from '../registry/errors.js'
import type { GrantPermission, Principal, TokenGrant } from '../registry/types.js'
import { DEFAULT_THROTTLE, LoginThrottle, type ThrottleOptions } from './login-throttle.js'
import type { TokenRecord as TokenRow, UserRecord as UserRow, UserStore } from './user-store.js'
import { hashPassword, needsRehash, verifyPassword } from './passwords.js'
import { ipAllowed, newToken, parseCidrs, tokenKey } from './tokens.js'

/** Sign-up rules (`auth.local`), administrators and limits. */
export interface AuthOptions {
  /** `npm adduser` may create users. */
  allowSignup: boolean
  /** Most users sign-up may create; -1 for no limit. */
  maxUsers: number
  /** `auth.admins`: user names that are administrators besides those flagged in the store. */
  admins?: readonly string[]
  /** `auth.rate_limit` (default: 10 failures and 10 sign-ups per 15 minutes). */
  throttle?: ThrottleOptions
  /** How often `last_used` is written, ms (default 60 s). */
  lastUsedFlushMs?: number
  /**
   * Asked about a bearer token Pier did not issue (`auth.type: github`: github.ts), after Pier's
   * own token table. Returns the caller, or undefined for Pier's usual 401.
   * @throws RegistryError as it decides (UNAUTHENTICATED, UNAVAILABLE)
   */
  external?: { authenticate(token: string, ip: string): Promise<Principal | undefined> }
}

/** Options of a new token (`npm token create`, `pier token create`). */
export interface TokenOptions {
  readonly?: boolean
  /** CIDR ranges the token may be used from; empty or undefined for anywhere. */
  cidrWhitelist?: string[]
  description?: string
  /** npm 11's `--name`. */
  name?: string
  /** Days until it stops working (npm 11's `--expires`). */
  expiresDays?: number
  /** Makes it a granular token limited to what it names. */
  grant?: TokenGrant
}

/** Who made an account change, for the audit log. */
export interface Actor {
  name: string | null
  tokenKey?: string | undefined
  ip?: string | undefined
}

/**
 * A token as npm's `GET /-/npm/v1/tokens` lists it (docs/protocol.md §1.7): npm reads `key`,
 * `token`, `created`, `readonly`, `cidr_whitelist`, `name`; the rest is shown by `--json`.
 */
export interface TokenView {
  /** The first characters of the secret and `…` (the whole secret only in the create answer). */
  token: string
  key: string
  name: string | null
  description: string | null
  cidr_whitelist: string[] | null
  readonly: boolean
  created: string
  updated: string
  /** ISO 8601, or null for never. */
  expires: string | null
  /** ISO 8601 of the last use (recorded at most once a minute), or null. */
  last_used: string | null
  /** The owner (administrators list everyone's tokens). */
  user: string
  packages?: readonly string[]
  packages_all?: boolean
  scopes?: readonly string[]
  orgs?: readonly string[]
  packages_and_scopes_permission?: GrantPermission
  orgs_permission?: GrantPermission
}

export const ANONYMOUS: Principal = Object.freeze({ name: undefined, readonly: false })

/** What a user name may be: what npm lets one type, at most 214 characters. */
export const USER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,213}$/
const WRONG_PASSWORD = 'Incorrect username or password.'
const DAY_MS = 24 * 3600_000

/** Users, passwords and tokens over the metadata store (`UserStore`). */
export class AuthService {
  /** Verified Basic credentials (sha256 of the header value → user), 5 min, so each request does not re-run scrypt. */
  private readonly basicCache = new LRUCache<string, string>({ max: 1000, ttl: 5 * 60_000 })
  private readonly admins: ReadonlySet<string>
  private readonly throttle: LoginThrottle
  /** Token key → last use not yet written; at most one write per token per flush period. */
  private readonly pendingUse = new Map<string, string>()
  /** Token key → when its `last_used` was last written, ms (bounded like the token population in use). */
  private readonly writtenUse = new LRUCache<string, number>({ max: 100_000 })
  private readonly flushTimer: NodeJS.Timeout
  /** A hash of no password, verified against when the user does not exist (same time as a real check). */
  private readonly dummyHash: Promise<string>

  constructor(
    private readonly meta: UserStore,
    private readonly opts: AuthOptions,
  ) {
    this.admins = new Set(opts.admins ?? [])
    this.throttle = new LoginThrottle(opts.throttle ?? DEFAULT_THROTTLE)
    this.flushTimer = setInterval(() => void this.flushLastUsed().catch(() => undefined), opts.lastUsedFlushMs ?? 60_000)
    this.flushTimer.unref()
    this.dummyHash = hashPassword('pier dummy password, never a real one')
    this.dummyHash.catch(() => undefined)
  }

  /**
   * Resolves the caller from an `Authorization` header.
   * @param ip remote address: checked against a token's CIDR whitelist, counted by the throttle, recorded in audits
   * @returns an anonymous principal without a header
   * @throws RegistryError UNAUTHENTICATED for unknown, expired or revoked tokens and wrong
   *   passwords (challenge `Bearer` or `Basic`), or for a token used outside its CIDR whitelist
   *   (challenge `ipaddress`, npm EAUTHIP); TOO_MANY_REQUESTS after too many failed passwords;
   *   whatever `external` throws for a token Pier did not issue
   */
  async authenticate(authorization: string | undefined, ip: string): Promise<Principal> {
    if (!authorization) return { name: undefined, readonly: false, ip }
    const space = authorization.indexOf(' ')
    const scheme = authorization.slice(0, space).toLowerCase()
    const cred = authorization.slice(space + 1).trim()
    if (scheme === 'bearer') {
      const key = tokenKey(cred)
      const found = await this.meta.getTokenAndUser(key)
      const row = found?.token
      if (!row) {
        const p = await this.opts.external?.authenticate(cred, ip)
        if (p) return p
        throw unauthenticated('Invalid or revoked token. Run `npm login` again.', 'Bearer')
      }
      if (row.expires !== null && Date.parse(row.expires) <= Date.now()) {
        throw unauthenticated(`This token expired on ${row.expires}. Create a new one with \`npm token create\`.`, 'Bearer')
      }
      if (row.cidr_whitelist) {
        const cidrs = JSON.parse(row.cidr_whitelist) as string[]
        if (cidrs.length > 0 && !ipAllowed(ip, cidrs)) throw unauthenticated(`This token may not be used from ${ip}.`, 'ipaddress')
      }
      const user = found.user
      if (!user) throw unauthenticated('The user of this token no longer exists.', 'Bearer')
      this.used(key)
      const grant = row.grants ? (JSON.parse(row.grants) as TokenGrant) : undefined
      return {
        name: user.name,
        email: user.email,
        readonly: row.readonly !== 0,
        tokenKey: key,
        ip,
        ...(this.isAdmin(user) ? { admin: true } : {}),
        ...(grant ? { grant } : {}),
      }
    }
    if (scheme === 'basic') {
      const h = createHash('sha256').update(cred).digest('hex')
      const cached = this.basicCache.get(h)
      if (cached) {
        const u = await this.meta.getUser(cached)
        if (u) return this.passwordPrincipal(u, ip)
      }
      const decoded = Buffer.from(cred, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      const name = colon > 0 ? decoded.slice(0, colon) : decoded
      const user = await this.verified(name, colon > 0 ? decoded.slice(colon + 1) : undefined, ip, 'basic')
      this.basicCache.set(h, user.name)
      return this.passwordPrincipal(user, ip)
    }
    throw unauthenticated(`Unsupported authorization scheme "${scheme}".`)
  }

  /**
   * npm's legacy login/adduser: logs in an existing user, or creates one when sign-up allows.
   * @param ip the client's address (throttle, audit log)
   * @returns a new bearer token
   * @throws RegistryError BAD_REQUEST (bad name or password), UNAUTHENTICATED (wrong password, or
   *   an unknown user while sign-up is closed: the same answer), FORBIDDEN (sign-up full),
   *   TOO_MANY_REQUESTS (too many failures or sign-ups)
   */
  async login(name: string, password: string, email: string | undefined, ip?: string): Promise<{ token: string; created: boolean }> {
    if (!USER_NAME.test(name)) throw badRequest(`Invalid user name "${name}".`)
    if (!password) throw badRequest('A password is required.')
    const existing = await this.meta.getUser(name)
    if (existing || !this.opts.allowSignup) {
      const user = await this.verified(name, password, ip, 'couchdb')
      const actor = { name: user.name, ip }
      await this.meta.appendAudit(this.audit(actor, 'login', { method: 'couchdb' }))
      return { token: (await this.createToken(name, {}, actor)).token, created: false }
    }
    this.throttle.signup(ip)
    if (this.opts.maxUsers >= 0 && (await this.meta.countUsers()) >= this.opts.maxUsers) {
      throw forbidden('This registry has reached its maximum number of users.')
    }
    try {
      await this.addUser(name, password, email ?? '', { maxUsers: this.opts.maxUsers, actor: { name, ip } })
    } catch (e) {
      // The same name signed up concurrently (here or on another node): log in as that user.
      if (e instanceof RegistryError && e.code === 'CONFLICT') return this.login(name, password, email, ip)
      throw e
    }
    return { token: (await this.createToken(name, {}, { name, ip })).token, created: true }
  }

  /**
   * Creates a user (also used by `pier user add`, which passes no limit).
   * @param o.maxUsers refuse when there are this many users already (-1: no limit)
   * @param o.admin make the user an administrator
   * @param o.actor who creates it, for the audit log (default: the new user)
   * @throws RegistryError BAD_REQUEST (bad name, short password), CONFLICT (exists), FORBIDDEN (full)
   */
  async addUser(name: string, password: string, email: string, o: { maxUsers?: number; admin?: boolean; actor?: Actor } = {}): Promise<UserRow> {
    if (!USER_NAME.test(name)) throw badRequest(`Invalid user name "${name}".`)
    if (password.length < 1) throw badRequest('A password is required.')
    if (await this.meta.getUser(name)) throw new RegistryError('CONFLICT', `User "${name}" already exists.`)
    const now = new Date().toISOString()
    const row: UserRow = { name, email, password_hash: await hashPassword(password), admin: o.admin ? 1 : 0, created: now, updated: now }
    const audit = this.audit(o.actor ?? { name }, 'user-create', { user: name, admin: o.admin === true })
    const result = await this.meta.insertUser(row, o.maxUsers ?? -1, audit)
    if (result === 'taken') throw new RegistryError('CONFLICT', `User "${name}" already exists.`)
    if (result === 'full') throw forbidden('This registry has reached its maximum number of users.')
    return row
  }

  /** Public view of a user (`GET /-/user/org.couchdb.user:NAME`). @throws NOT_FOUND */
  async userDoc(name: string): Promise<{ _id: string; name: string; email: string; type: 'user' }> {
    const u = await this.meta.getUser(name)
    if (!u) throw notFound(`User "${name}" not found.`)
    return { _id: `org.couchdb.user:${u.name}`, name: u.name, email: u.email, type: 'user' }
  }

  /**
   * Checks a user's password (token creation asks for it), throttled like a login.
   * @throws RegistryError UNAUTHENTICATED, TOO_MANY_REQUESTS
   */
  async checkPassword(name: string, password: string, ip?: string): Promise<void> {
    await this.verified(name, password, ip, 'token-create')
  }

  /**
   * Issues a token for `user`.
   * @param actor who asked, for the audit log (default: `user` itself)
   * @throws RegistryError BAD_REQUEST for an invalid CIDR, name or expiry
   */
  async createToken(user: string, opts: TokenOptions, actor: Actor = { name: user }): Promise<{ token: string; view: TokenView }> {
    const cidrs = opts.cidrWhitelist?.filter((c) => c.trim() !== '') ?? []
    try {
      parseCidrs(cidrs)
    } catch (e) {
      throw badRequest((e as Error).message)
    }
    if (opts.expiresDays !== undefined && (!Number.isInteger(opts.expiresDays) || opts.expiresDays < 1 || opts.expiresDays > 3650)) {
      throw badRequest('expires must be a whole number of days between 1 and 3650.')
    }
    if (opts.name !== undefined && opts.name.length > 200) throw badRequest('A token name is at most 200 characters.')
    const token = newToken()
    const now = new Date()
    const iso = now.toISOString()
    const readonly = opts.readonly === true || (opts.grant !== undefined && opts.grant.permission !== 'read-write')
    const row: TokenRow = {
      key: tokenKey(token),
      token_prefix: token.slice(0, 10),
      user_name: user,
      readonly: readonly && opts.grant === undefined ? 1 : 0,
      cidr_whitelist: cidrs.length > 0 ? JSON.stringify(cidrs) : null,
      description: opts.description ?? null,
      name: opts.name ?? null,
      expires: opts.expiresDays === undefined ? null : new Date(now.getTime() + opts.expiresDays * DAY_MS).toISOString(),
      last_used: null,
      grants: opts.grant ? JSON.stringify(opts.grant) : null,
      created: iso,
      updated: iso,
    }
    const details: Record<string, unknown> = { user, key: row.key, name: row.name, readonly, expires: row.expires, cidr_whitelist: cidrs }
    if (opts.grant) details.grant = opts.grant
    await this.meta.insertToken(row, this.audit(actor, 'token-create', details))
    return { token, view: { ...viewOf(row), token } }
  }

  /** The tokens of `user` (or of everyone, for an administrator's `all`), redacted. */
  async listTokens(user: string | { all: true }): Promise<TokenView[]> {
    const rows = typeof user === 'string' ? await this.meta.listTokens(user) : await this.meta.listAllTokens()
    return rows.map(viewOf)
  }

  /**
   * Revokes a token by key, unique key prefix, or the token itself (npm sends either): one of
   * `user`'s, or with `anyUser` (administrators) anyone's.
   * @param actor who asked, for the audit log
   * @throws RegistryError NOT_FOUND when nothing matches, BAD_REQUEST when a prefix is ambiguous
   */
  async revokeToken(user: string, keyOrToken: string, actor: Actor = { name: user }, anyUser = false): Promise<void> {
    const candidates = anyUser ? await this.meta.listAllTokens() : await this.meta.listTokens(user)
    const asToken = tokenKey(keyOrToken)
    let hits = candidates.filter((t) => t.key === keyOrToken || t.key === asToken)
    if (hits.length === 0 && keyOrToken.length >= 6) hits = candidates.filter((t) => t.key.startsWith(keyOrToken))
    if (hits.length === 0) throw notFound('No such token.')
    if (hits.length > 1) throw badRequest('Token key prefix is ambiguous.')
    const hit = hits[0] as TokenRow
    await this.meta.deleteToken(hit.key, this.audit(actor, 'token-revoke', { user: hit.user_name, key: hit.key, name: hit.name }))
  }

  /** `npm logout`: revokes the token itself. Unknown tokens are ignored (already logged out). */
  async logout(token: string, ip?: string): Promise<void> {
    const key = tokenKey(token)
    const row = await this.meta.getToken(key)
    if (!row) return
    await this.meta.deleteToken(key, this.audit({ name: row.user_name, tokenKey: key, ip }, 'token-revoke', { user: row.user_name, key, logout: true }))
  }

  /**
   * A page of the audit log, for administrators only (`GET /-/pier/v1/audit`, `pier audit`).
   * @param caller who asks; undefined for the CLI, which runs with the operator's own rights
   * @throws RegistryError UNAUTHENTICATED (anonymous), FORBIDDEN (not an administrator)
   */
  async readAudit(caller: Principal | undefined, q: AuditQuery): Promise<AuditRecord[]> {
    if (caller !== undefined) requireAdmin(caller)
    return this.meta.listAudit(q)
  }

  /**
   * Every user with their administrator flag, for administrators (the web UI's admin page).
   * @throws RegistryError UNAUTHENTICATED (anonymous), FORBIDDEN (not an administrator)
   */
  async listUsers(caller: Principal): Promise<{ name: string; email: string; admin: boolean; created: string }[]> {
    requireAdmin(caller)
    return (await this.meta.listUsers()).map((u) => ({ name: u.name, email: u.email, admin: this.isAdmin(u), created: u.created }))
  }

  /** Whether `npm adduser` and the web UI's sign-up may create accounts (`auth.local.allow_signup`). */
  get signupAllowed(): boolean {
    return this.opts.allowSignup
  }

  /** Writes the pending `last_used` times (also called at close). */
  async flushLastUsed(): Promise<void> {
    if (this.pendingUse.size === 0) return
    const batch = new Map(this.pendingUse)
    this.pendingUse.clear()
    await this.meta.touchTokens(batch)
  }

  /** Stops the `last_used` timer and writes what is pending. */
  async close(): Promise<void> {
    clearInterval(this.flushTimer)
    await this.flushLastUsed().catch(() => undefined)
  }

  /** Whether `user` is an administrator (flagged in the store or named in `auth.admins`). */
  isAdmin(user: Pick<UserRow, 'name' | 'admin'>): boolean {
    return user.admin === 1 || this.admins.has(user.name)
  }

  private passwordPrincipal(u: UserRow, ip: string): Principal {
    return { name: u.name, email: u.email, readonly: false, ip, ...(this.isAdmin(u) ? { admin: true } : {}) }
  }

  /**
   * The user `name` if `password` is theirs. Throttled; an unknown user costs the same KDF run
   * (against a dummy hash) and gets the same answer as a wrong password. Failures are audited.
   * A hash imported from htpasswd (passwords.ts `needsRehash`) is replaced by a scrypt one here.
   * @throws RegistryError UNAUTHENTICATED (challenge Basic), TOO_MANY_REQUESTS
   */
  private async verified(name: string, password: string | undefined, ip: string | undefined, method: string): Promise<UserRow> {
    this.throttle.check(name, ip)
    const user = name === '' ? undefined : await this.meta.getUser(name)
    const ok = await verifyPassword(password ?? '', user?.password_hash ?? (await this.dummyHash))
    if (user && ok && password !== undefined) {
      // An imported htpasswd hash (or older scrypt costs): replaced by today's KDF now that the password is known.
      if (needsRehash(user.password_hash)) {
        const password_hash = await hashPassword(password)
        await this.meta.updateUser(user.name, { password_hash, updated: new Date().toISOString() })
        return { ...user, password_hash }
      }
      return user
    }
    this.throttle.failed(name, ip)
    // The user tried is named in details, not as the actor: nobody proved to be them.
    await this.meta.appendAudit(this.audit({ name: null, ip }, 'login-failure', { user: name.slice(0, 214), method })).catch(() => undefined)
    throw unauthenticated(WRONG_PASSWORD, 'Basic')
  }

  /** Records a token use, to be written at the next flush unless written within the period. */
  private used(key: string): void {
    const now = Date.now()
    const last = this.writtenUse.get(key)
    if (last !== undefined && now - last < (this.opts.lastUsedFlushMs ?? 60_000)) return
    this.writtenUse.set(key, now)
    this.pendingUse.set(key, new Date(now).toISOString())
  }

  private audit(actor: Actor, action: AuditEntry['action'], details: Record<string, unknown>): AuditEntry {
    return { at: new Date().toISOString(), actor: actor.name, token: actor.tokenKey ?? null, ip: actor.ip ?? null, action, package: null, details }
  }
}

/**
 * Refuses anyone but an administrator.
 * @throws RegistryError UNAUTHENTICATED (anonymous), FORBIDDEN
 */
export function requireAdmin(p: Principal): void {
  if (p.name === undefined) throw unauthenticated('You must be logged in as an administrator. Run `npm login`.')
  if (p.admin !== true) throw forbidden(`User "${p.name}" is not an administrator.`)
  if (p.grant !== undefined) throw forbidden('A granular token cannot be used for administration.')
}

function viewOf(row: TokenRow): TokenView {
  const grant = row.grants ? (JSON.parse(row.grants) as TokenGrant) : undefined
  const view: TokenView = {
    token: `${row.token_prefix}…`,
    key: row.key,
    name: row.name ?? row.description,
    description: row.description,
    cidr_whitelist: row.cidr_whitelist ? (JSON.parse(row.cidr_whitelist) as string[]) : null,
    readonly: row.readonly !== 0 || (grant !== undefined && grant.permission !== 'read-write'),
    created: row.created,
    updated: row.updated,
    expires: row.expires,
    last_used: row.last_used,
    user: row.user_name,
  }
  if (grant) {
    Object.assign(view, {
      packages: grant.packages,
      packages_all: grant.packagesAll,
      scopes: grant.scopes,
      orgs: grant.orgs,
      packages_and_scopes_permission: grant.permission,
      orgs_permission: grant.orgsPermission,
    })
  }
  return view
}
