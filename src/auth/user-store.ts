/**
 * What the account code needs from the metadata store (storage/meta implements it): users and
 * tokens. Declared here so that `auth/` depends on no backend.
 */

import type { AuditEntry, AuditStore } from '../registry/audit-log.js'

/** A user account. Timestamps are ISO 8601. */
export interface UserRecord {
  name: string
  email: string
  /** `scrypt$N$r$p$<salt b64>$<hash b64>` (passwords.ts). */
  password_hash: string
  /** 1 for an administrator (`pier user add --admin`; `auth.admins` in config names more). */
  admin: number
  created: string
  updated: string
}

/** A bearer token, stored only as its digest. */
export interface TokenRecord {
  /** sha512 hex of the token: npm's `key` (`npm token list` shows it). The token itself is never stored. */
  key: string
  /** First characters of the token, shown in `npm token list`. */
  token_prefix: string
  user_name: string
  /** 1 for a read-only token (every write refused with 403), else 0. */
  readonly: number
  /** JSON array of CIDR strings, or null for no restriction. */
  cidr_whitelist: string | null
  description: string | null
  /** npm 11's `--name`; null when not given. */
  name: string | null
  /** ISO 8601: the token stops working then; null for never. */
  expires: string | null
  /** ISO 8601: the last request made with it, recorded at most once a minute; null for never used. */
  last_used: string | null
  /** A granular token's `TokenGrant` as JSON; null for a legacy token (its user's own rights). */
  grants: string | null
  created: string
  updated: string
}

/** Users and tokens, and the audit log their changes are recorded in. */
export interface UserStore extends AuditStore {
  getUser(name: string): Promise<UserRecord | undefined>
  /** Every user, by name (the web UI's administration page). */
  listUsers(): Promise<UserRecord[]>
  countUsers(): Promise<number>
  /**
   * Inserts a user unless one of that name exists (two nodes may sign the same name up at once)
   * or, with `maxUsers` ≥ 0, unless there are already that many users (checked and written in one
   * transaction, serialised across nodes, so concurrent sign-ups cannot pass the limit).
   * @returns `inserted`, or `taken` / `full` with nothing written
   */
  insertUser(row: UserRecord, maxUsers?: number, audit?: AuditEntry): Promise<'inserted' | 'taken' | 'full'>
  updateUser(name: string, fields: Partial<Pick<UserRecord, 'email' | 'password_hash' | 'updated' | 'admin'>>): Promise<void>
  getToken(key: string): Promise<TokenRecord | undefined>
  /**
   * `getToken` and the `getUser` of its owner in one query (one round trip on PostgreSQL, made
   * by every request that sends a token). `user` is undefined when the owner no longer exists.
   */
  getTokenAndUser(key: string): Promise<{ token: TokenRecord; user: UserRecord | undefined } | undefined>
  /** Inserts a token, and `audit` in the same transaction. */
  insertToken(row: TokenRecord, audit?: AuditEntry): Promise<void>
  /** A user's tokens in creation order. */
  listTokens(user: string): Promise<TokenRecord[]>
  /** Every user's tokens (administrators list them), by user then creation. */
  listAllTokens(): Promise<TokenRecord[]>
  /**
   * Deletes a token, and appends `audit` in the same transaction when one was deleted.
   * @returns how many rows were deleted (0 or 1)
   */
  deleteToken(key: string, audit?: AuditEntry): Promise<number>
  /** Records when tokens were last used (key → ISO 8601), in one transaction. */
  touchTokens(lastUsed: ReadonlyMap<string, string>): Promise<void>
}

/**
 * GitHub's answers (`auth.type: github`, github.ts), kept in the metadata store so every node
 * shares them (migration 0005). Keys never hold a token, only its sha512 hex; values are JSON.
 */
export interface GithubCacheStore {
  /**
   * The answer stored under `key`, expired or not.
   * @returns `value` as stored and `expires` (ISO 8601), or undefined when none is stored
   */
  getGithubCache(key: string): Promise<{ value: string; expires: string } | undefined>
  /** Stores (or replaces) the answer under `key`, trusted until `expires` (ISO 8601). */
  putGithubCache(key: string, value: string, expires: string): Promise<void>
}
