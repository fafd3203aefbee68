/**
 * The metadata store interface: what the registry needs from a database, in npm's nouns.
 * One write is one `transaction`; implementations serialise writes per package
 * (SQLite: one writer; PostgreSQL: row lock).
 */
import type { PackageRow, TokenRow, UserRow, VersionRow } from './schema.js'
import type { Person } from '../../registry/types.js'
import type { UplinkCacheStore } from '../../uplink/uplink-cache.js'

/** Everything stored about one package, as read in one snapshot. */
export interface PackageState {
  pkg: PackageRow
  /** All versions, unpublished ones included, in publish order. */
  versions: VersionRow[]
  distTags: Record<string, string>
  /** Maintainers with their e-mail (from the users table when known). */
  maintainers: Person[]
  /** Names of the users who starred the package. */
  stars: string[]
}

/** One hit of `search`. */
export interface SearchHit {
  name: string
  latest: VersionRow
  maintainers: Person[]
  modified: string
}

/** Operations available inside a write transaction. */
export interface MetaTx {
  /** Reads (and on PostgreSQL locks, until the transaction ends) the package row. */
  getPackage(name: string): Promise<PackageRow | undefined>
  /**
   * Creates the package row (rev 0) unless it exists.
   * @returns true when this call created it; false when a concurrent transaction created the
   *   same name first (its row is then locked like `getPackage` locks it, and the caller must
   *   treat the package as existing: check maintainers, look for the version)
   */
  insertPackage(name: string, now: string): Promise<boolean>
  getVersion(name: string, version: string): Promise<VersionRow | undefined>
  listVersions(name: string): Promise<VersionRow[]>
  /** Inserts a version row; throws the driver's unique-constraint error if it exists. */
  insertVersion(row: VersionRow): Promise<void>
  /** Replaces every column of an existing version row (allow_previous_version). */
  replaceVersion(row: VersionRow): Promise<void>
  updateManifest(name: string, version: string, manifest: string): Promise<void>
  markUnpublished(name: string, versions: string[], now: string): Promise<void>
  getDistTags(name: string): Promise<Record<string, string>>
  setDistTag(name: string, tag: string, version: string): Promise<void>
  deleteDistTag(name: string, tag: string): Promise<void>
  getMaintainers(name: string): Promise<string[]>
  setMaintainers(name: string, users: string[]): Promise<void>
  setStar(name: string, user: string, starred: boolean): Promise<void>
  /** Whether a user account exists (read inside the transaction: SQLite has one connection). */
  userExists(name: string): Promise<boolean>
  /**
   * Bumps the package's revision and `modified`, appends a change row.
   * @returns the new `_rev` (`<seq>-<hex>`).
   */
  bumpRev(name: string, now: string, deleted?: boolean): Promise<string>
}

/** The metadata store (also the durable half of the uplink cache). */
export interface MetaStore extends UplinkCacheStore {
  /** Applies pending migrations. */
  migrate(): Promise<void>
  close(): Promise<void>
  /**
   * A cheap query (`select 1`) proving the database answers, for `GET /-/health` (which bounds
   * it with its own timeout).
   * @throws the driver's error when the database cannot be reached
   */
  ping(): Promise<void>
  readPackage(name: string): Promise<PackageState | undefined>
  getVersion(name: string, version: string): Promise<VersionRow | undefined>
  transaction<T>(fn: (tx: MetaTx) => Promise<T>): Promise<T>

  getUser(name: string): Promise<UserRow | undefined>
  countUsers(): Promise<number>
  /**
   * Inserts a user unless one of that name exists (two nodes may sign the same name up at once)
   * or, with `maxUsers` ≥ 0, unless there are already that many users (checked and written in one
   * transaction, serialised across nodes, so concurrent sign-ups cannot pass the limit).
   * @returns `inserted`, or `taken` / `full` with nothing written
   */
  insertUser(row: UserRow, maxUsers?: number): Promise<'inserted' | 'taken' | 'full'>
  updateUser(name: string, fields: Partial<Pick<UserRow, 'email' | 'password_hash' | 'updated'>>): Promise<void>

  getToken(key: string): Promise<TokenRow | undefined>
  insertToken(row: TokenRow): Promise<void>
  listTokens(user: string): Promise<TokenRow[]>
  deleteToken(key: string): Promise<number>

  /** Names of the packages `user` starred. */
  starredBy(user: string): Promise<string[]>
  /** Text search over name, description and keywords of each package's `latest` manifest. */
  search(words: string[], size: number, from: number): Promise<{ total: number; hits: SearchHit[] }>
  /** The change feed after `since`, at most `limit` rows. */
  changesSince(since: number, limit: number): Promise<{ seq: number; name: string; rev: string; deleted: boolean }[]>
  /**
   * Calls `onChange(name)` soon after any node commits a write of package `name` (PostgreSQL:
   * LISTEN on `CHANGES_CHANNEL`). Best effort: while the listening connection is down, changes
   * are missed (the staleness bound still holds); `onLost` is called when it goes down and again
   * when it is back, so the caller can drop everything it cached. Absent on stores that only one process uses (SQLite).
   * @returns a function that stops listening
   */
  watchChanges?(onChange: (name: string) => void, onLost: () => void): Promise<() => Promise<void>>
  /** Whether any package of `scope` (`@corp`) exists locally, unpublished ones included. */
  scopeHasPackages(scope: string): Promise<boolean>
  /**
   * Every blob key the metadata refers to, for `pier gc`: the `tarball_key` of every version row
   * (unpublished versions included), then the keys of the uplink cache's tarballs, derived from
   * each cached packument's text by `cachedTarballKeys` (registry/blob-references.ts). Keys may
   * repeat. Read page by page (each page its own query, no long transaction), so rows written
   * while it runs may or may not be seen; `pier gc` only deletes blobs older than its grace period,
   * whose references, if any, committed long before.
   * @throws the driver's error
   */
  referencedBlobKeys(): AsyncIterable<string>
}
