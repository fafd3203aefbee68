/**
 * The audit log: one entry per change anyone made (packages, access, accounts, tokens, logins),
 * with who, what, when, from which address and with which token. Entries of package writes are
 * appended in the write's own transaction (write-path.ts), those of account changes in the
 * account change's transaction (auth/), so the log and the data cannot disagree. An entry never
 * holds a secret: a token is named by its key (npm's token id, the sha512 of the secret), a
 * password never appears.
 */

/** What was done. Package writes use their write op's name; the rest name the account change. */
export type AuditAction =
  | 'publish'
  | 'update'
  | 'unpublish'
  | 'remove-tarball'
  | 'dist-tag-add'
  | 'dist-tag-rm'
  | 'access'
  | 'import'
  | 'org'
  | 'team'
  | 'token-create'
  | 'token-revoke'
  | 'login'
  | 'login-failure'
  | 'user-create'

/** One entry, as appended. Times are ISO 8601. */
export interface AuditEntry {
  at: string
  /** The user who acted; null for an anonymous caller (a failed login names the user tried in `details`). */
  actor: string | null
  /** Key (sha512 hex) of the token the actor used; null for a password or no credentials. */
  token: string | null
  /** The client's address. */
  ip: string | null
  action: AuditAction
  /** The package concerned, if any. */
  package: string | null
  /** What changed (versions, tags, maintainers, token name...), JSON; never a secret. */
  details: Record<string, unknown>
}

/** A stored entry: its place in the log (increasing in commit order). */
export interface AuditRecord extends AuditEntry {
  seq: number
}

/** A page of the log: entries after `after` (seq), newest last, optionally filtered. */
export interface AuditQuery {
  /** Only entries at or after this ISO 8601 time. */
  since?: string
  /** Only entries whose actor is this user. */
  user?: string
  /** Only entries about this package. */
  package?: string
  /** Only entries with a seq greater than this (paging). */
  after?: number
  /** At most this many entries (1–1000). */
  limit: number
}

/** Where the log lives (the metadata store implements it). */
export interface AuditStore {
  /** Appends one entry in its own transaction (writes that are not in a package transaction). */
  appendAudit(entry: AuditEntry): Promise<void>
  /** A page of the log, in seq order. */
  listAudit(q: AuditQuery): Promise<AuditRecord[]>
}
