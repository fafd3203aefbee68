/**
 * What the account code needs from the metadata store (storage/meta implements it): users and
 * tokens. Declared here so that `auth/` depends on no backend.
 */

/** A user account. Timestamps are ISO 8601. */
export interface UserRecord {
  name: string
  email: string
  /** `scrypt$N$r$p$<salt b64>$<hash b64>` (passwords.ts). */
  password_hash: string
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
  created: string
  updated: string
}

/** Users and tokens. */
export interface UserStore {
  getUser(name: string): Promise<UserRecord | undefined>
  countUsers(): Promise<number>
  /**
   * Inserts a user unless one of that name exists (two nodes may sign the same name up at once)
   * or, with `maxUsers` ≥ 0, unless there are already that many users (checked and written in one
   * transaction, serialised across nodes, so concurrent sign-ups cannot pass the limit).
   * @returns `inserted`, or `taken` / `full` with nothing written
   */
  insertUser(row: UserRecord, maxUsers?: number): Promise<'inserted' | 'taken' | 'full'>
  updateUser(name: string, fields: Partial<Pick<UserRecord, 'email' | 'password_hash' | 'updated'>>): Promise<void>
  getToken(key: string): Promise<TokenRecord | undefined>
  insertToken(row: TokenRecord): Promise<void>
  /** A user's tokens in creation order. */
  listTokens(user: string): Promise<TokenRecord[]>
  /** @returns how many rows were deleted (0 or 1) */
  deleteToken(key: string): Promise<number>
}
