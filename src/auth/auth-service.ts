/**
 * Local users and tokens: the legacy CouchDB login (`PUT /-/user/org.couchdb.user:NAME`), bearer
 * and Basic authentication of requests, and npm's token API (docs/protocol.md §1).
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { badRequest, forbidden, notFound, unauthenticated, RegistryError } from '../registry/errors.js'
import type { Principal } from '../registry/types.js'
import type { TokenRecord as TokenRow, UserRecord as UserRow, UserStore } from './user-store.js'
import { hashPassword, verifyPassword } from './passwords.js'
import { ipAllowed, newToken, parseCidrs, tokenKey } from './tokens.js'

/** Sign-up rules (`auth.local`). */
export interface AuthOptions {
  /** `npm adduser` may create users. */
  allowSignup: boolean
  /** Most users sign-up may create; -1 for no limit. */
  maxUsers: number
}

/** Options of a new token. */
export interface TokenOptions {
  readonly?: boolean
  /** CIDR ranges the token may be used from; empty or undefined for anywhere. */
  cidrWhitelist?: string[]
  description?: string
}

/** A token as npm's `GET /-/npm/v1/tokens` lists it. */
export interface TokenView {
  token: string
  key: string
  name: string | null
  cidr_whitelist: string[] | null
  readonly: boolean
  created: string
  updated: string
}

export const ANONYMOUS: Principal = Object.freeze({ name: undefined, readonly: false })

const USER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,213}$/

/** Users, passwords and tokens over the metadata store (`UserStore`). */
export class AuthService {
  /** Verified Basic credentials (sha256 of the header value → user), 5 min, so each request does not re-run scrypt. */
  private readonly basicCache = new LRUCache<string, string>({ max: 1000, ttl: 5 * 60_000 })

  constructor(
    private readonly meta: UserStore,
    private readonly opts: AuthOptions,
  ) {}

  /**
   * Resolves the caller from an `Authorization` header.
   * @param ip remote address, checked against a token's CIDR whitelist
   * @returns ANONYMOUS without a header
   * @throws RegistryError UNAUTHENTICATED for unknown tokens or wrong passwords (challenge `Bearer`
   *   or `Basic`), or for a token used outside its CIDR whitelist (challenge `ipaddress`, npm EAUTHIP)
   */
  async authenticate(authorization: string | undefined, ip: string): Promise<Principal> {
    if (!authorization) return ANONYMOUS
    const space = authorization.indexOf(' ')
    const scheme = authorization.slice(0, space).toLowerCase()
    const cred = authorization.slice(space + 1).trim()
    if (scheme === 'bearer') {
      const key = tokenKey(cred)
      const row = await this.meta.getToken(key)
      if (!row) throw unauthenticated('Invalid or revoked token. Run `npm login` again.', 'Bearer')
      if (row.cidr_whitelist) {
        const cidrs = JSON.parse(row.cidr_whitelist) as string[]
        if (cidrs.length > 0 && !ipAllowed(ip, cidrs)) throw unauthenticated(`This token may not be used from ${ip}.`, 'ipaddress')
      }
      const user = await this.meta.getUser(row.user_name)
      if (!user) throw unauthenticated('The user of this token no longer exists.', 'Bearer')
      return { name: user.name, email: user.email, readonly: row.readonly !== 0, tokenKey: key }
    }
    if (scheme === 'basic') {
      const h = createHash('sha256').update(cred).digest('hex')
      const cached = this.basicCache.get(h)
      if (cached) {
        const u = await this.meta.getUser(cached)
        if (u) return { name: u.name, email: u.email, readonly: false }
      }
      const decoded = Buffer.from(cred, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      const name = decoded.slice(0, colon)
      const password = decoded.slice(colon + 1)
      const user = colon > 0 ? await this.meta.getUser(name) : undefined
      if (!user || !(await verifyPassword(password, user.password_hash))) throw unauthenticated('Incorrect username or password.', 'Basic')
      this.basicCache.set(h, user.name)
      return { name: user.name, email: user.email, readonly: false }
    }
    throw unauthenticated(`Unsupported authorization scheme "${scheme}".`)
  }

  /**
   * npm's legacy login/adduser: logs in an existing user, or creates one when sign-up allows.
   * @returns a new bearer token
   * @throws RegistryError BAD_REQUEST (bad name or password), UNAUTHENTICATED (wrong password),
   *   FORBIDDEN (sign-up closed or full)
   */
  async login(name: string, password: string, email: string | undefined): Promise<{ token: string; created: boolean }> {
    if (!USER_NAME.test(name)) throw badRequest(`Invalid user name "${name}".`)
    if (!password) throw badRequest('A password is required.')
    const user = await this.meta.getUser(name)
    if (user) {
      if (!(await verifyPassword(password, user.password_hash))) throw unauthenticated('Incorrect username or password.', 'Basic')
      return { token: (await this.createToken(name, {})).token, created: false }
    }
    if (!this.opts.allowSignup) throw forbidden('Sign-up is disabled on this registry; ask an administrator for an account.')
    if (this.opts.maxUsers >= 0 && (await this.meta.countUsers()) >= this.opts.maxUsers) {
      throw forbidden('This registry has reached its maximum number of users.')
    }
    try {
      await this.addUser(name, password, email ?? '', this.opts.maxUsers)
    } catch (e) {
      // The same name signed up concurrently (here or on another node): log in as that user.
      if (e instanceof RegistryError && e.code === 'CONFLICT') return this.login(name, password, email)
      throw e
    }
    return { token: (await this.createToken(name, {})).token, created: true }
  }

  /**
   * Creates a user (also used by `pier user add`, which passes no limit).
   * @param maxUsers refuse when there are this many users already (-1: no limit)
   * @throws RegistryError BAD_REQUEST (bad name, short password), CONFLICT (exists), FORBIDDEN (full)
   */
  async addUser(name: string, password: string, email: string, maxUsers = -1): Promise<UserRow> {
    if (!USER_NAME.test(name)) throw badRequest(`Invalid user name "${name}".`)
    if (password.length < 1) throw badRequest('A password is required.')
    if (await this.meta.getUser(name)) throw new RegistryError('CONFLICT', `User "${name}" already exists.`)
    const now = new Date().toISOString()
    const row: UserRow = { name, email, password_hash: await hashPassword(password), created: now, updated: now }
    const result = await this.meta.insertUser(row, maxUsers)
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

  /** Checks a user's password (token creation asks for it). @throws UNAUTHENTICATED */
  async checkPassword(name: string, password: string): Promise<void> {
    const u = await this.meta.getUser(name)
    if (!u || !(await verifyPassword(password, u.password_hash))) throw unauthenticated('Incorrect password.', 'Basic')
  }

  /**
   * Issues a token for `user`.
   * @throws RegistryError BAD_REQUEST for an invalid CIDR
   */
  async createToken(user: string, opts: TokenOptions): Promise<{ token: string; view: TokenView }> {
    const cidrs = opts.cidrWhitelist?.filter((c) => c.trim() !== '') ?? []
    try {
      parseCidrs(cidrs)
    } catch (e) {
      throw badRequest((e as Error).message)
    }
    const token = newToken()
    const now = new Date().toISOString()
    const row: TokenRow = {
      key: tokenKey(token),
      token_prefix: token.slice(0, 10),
      user_name: user,
      readonly: opts.readonly ? 1 : 0,
      cidr_whitelist: cidrs.length > 0 ? JSON.stringify(cidrs) : null,
      description: opts.description ?? null,
      created: now,
      updated: now,
    }
    await this.meta.insertToken(row)
    return { token, view: { ...viewOf(row), token } }
  }

  /** The tokens of `user`, redacted. */
  async listTokens(user: string): Promise<TokenView[]> {
    return (await this.meta.listTokens(user)).map(viewOf)
  }

  /**
   * Revokes one of `user`'s tokens by key, unique key prefix, or the token itself (npm sends either).
   * @throws RegistryError NOT_FOUND when nothing matches, BAD_REQUEST when a prefix is ambiguous
   */
  async revokeToken(user: string, keyOrToken: string): Promise<void> {
    const mine = await this.meta.listTokens(user)
    const asToken = tokenKey(keyOrToken)
    let hits = mine.filter((t) => t.key === keyOrToken || t.key === asToken)
    if (hits.length === 0 && keyOrToken.length >= 6) hits = mine.filter((t) => t.key.startsWith(keyOrToken))
    if (hits.length === 0) throw notFound('No such token.')
    if (hits.length > 1) throw badRequest('Token key prefix is ambiguous.')
    await this.meta.deleteToken((hits[0] as TokenRow).key)
  }

  /** `npm logout`: revokes the token itself. Unknown tokens are ignored (already logged out). */
  async logout(token: string): Promise<void> {
    await this.meta.deleteToken(tokenKey(token))
  }
}

function viewOf(row: TokenRow): TokenView {
  return {
    token: `${row.token_prefix}…`,
    key: row.key,
    name: row.description,
    cidr_whitelist: row.cidr_whitelist ? (JSON.parse(row.cidr_whitelist) as string[]) : null,
    readonly: row.readonly !== 0,
    created: row.created,
    updated: row.updated,
  }
}
