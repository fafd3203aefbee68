/**
 * What the registry needs from its stores, declared here so the domain depends on no backend:
 * `storage/meta` implements `PackageStore` (SQLite, PostgreSQL) and `storage/blobs` implements
 * `BlobStore` (disk, S3); `app.ts` hands them in. See docs/architecture.md, "Layers".
 *
 * One write is one `PackageStore.transaction`; implementations serialise writes per package
 * (SQLite: one writer; PostgreSQL: the package row's lock). Inside a transaction only its `tx` may
 * be used: on SQLite the transaction holds the one connection, so a query through the store itself
 * would wait for it forever.
 */
import type { Readable } from 'node:stream'
import type { AuditEntry } from './audit-log.js'
import type { PackageMfa, PackageVisibility } from './orgs.js'
import type { Person, StoredPackage, StoredPackument, StoredVersion } from './types.js'

/** One hit of `PackageStore.search`: a package and its `latest` version. */
export interface SearchHit {
  name: string
  latest: StoredVersion
  maintainers: Person[]
  /** ISO 8601: the package's last change. */
  modified: string
}

/** One row of the change feed (CouchDB `_changes`, docs/protocol.md §6). */
export interface PackageChange {
  seq: number
  name: string
  rev: string
  deleted: boolean
}

/** Operations available inside a package write transaction (write-path.ts runs them). */
export interface PackageTx {
  /** Reads (and on PostgreSQL locks, until the transaction ends) the package row. */
  getPackage(name: string): Promise<StoredPackage | undefined>
  /**
   * `getPackage` and `getMaintainers` in one query (one round trip on PostgreSQL): the package
   * row, locked like `getPackage` locks it, and its maintainers' user names, sorted.
   */
  lockPackage(name: string): Promise<{ pkg: StoredPackage; maintainers: string[] } | undefined>
  /**
   * Creates the package row (rev 0) unless it exists.
   * @returns true when this call created it; false when a concurrent transaction created the
   *   same name first (its row is then locked like `getPackage` locks it, and the caller must
   *   treat the package as existing: check maintainers, look for the version)
   */
  insertPackage(name: string, now: string): Promise<boolean>
  getVersion(name: string, version: string): Promise<StoredVersion | undefined>
  listVersions(name: string): Promise<StoredVersion[]>
  /** Inserts a version row; throws the driver's unique-constraint error if it exists. */
  insertVersion(row: StoredVersion): Promise<void>
  /**
   * Inserts a version row unless one of that name and version exists (`ON CONFLICT DO
   * NOTHING`). @returns true when inserted; false when the row exists (it is left as it was)
   */
  insertVersionIfAbsent(row: StoredVersion): Promise<boolean>
  /** Replaces every column of an existing version row (allow_previous_version). */
  replaceVersion(row: StoredVersion): Promise<void>
  updateManifest(name: string, version: string, manifest: string): Promise<void>
  markUnpublished(name: string, versions: string[], now: string): Promise<void>
  getDistTags(name: string): Promise<Record<string, string>>
  setDistTag(name: string, tag: string, version: string): Promise<void>
  deleteDistTag(name: string, tag: string): Promise<void>
  /** Maintainer user names, sorted. */
  getMaintainers(name: string): Promise<string[]>
  setMaintainers(name: string, users: string[]): Promise<void>
  /** User names that starred the package, sorted. */
  getStars(name: string): Promise<string[]>
  setStar(name: string, user: string, starred: boolean): Promise<void>
  /** Whether a user account exists (read inside the transaction: SQLite has one connection). */
  userExists(name: string): Promise<boolean>
  /**
   * Bumps the package's revision and `modified`; the transaction appends its change-feed row and
   * refreshes its search row when it commits (and on PostgreSQL notifies the other nodes). On
   * PostgreSQL, when this transaction has locked the row (`getPackage`, `lockPackage`), the row
   * itself is written at commit too, in the same statement as the change-feed row; until then
   * this transaction's `getPackage` and `lockPackage` show it bumped.
   * @returns the new `_rev` (`<seq>-<hex>`).
   */
  bumpRev(name: string, now: string, deleted?: boolean): Promise<string>
  /** Appends an audit-log entry in this transaction (it commits or rolls back with the write). */
  appendAudit(entry: AuditEntry): Promise<void>
  /** The package's status and mfa setting (orgs.ts), `public`/`none` when never set. */
  getPackageAccess(name: string): Promise<{ visibility: PackageVisibility; mfa: PackageMfa }>
  /** Sets them; at commit every node reloads its access directory (orgs.ts `ACCESS_CHANGED`). */
  setPackageAccess(name: string, visibility: PackageVisibility, mfa: PackageMfa): Promise<void>
}

/** `PackageStore.packageStamp`: `rev` as `_rev` (`<rev_seq>-<rev_hash>`), maintainers as in `StoredPackument`. */
export interface PackageStamp {
  rev: string
  maintainers: Person[]
}

/** The package half of the metadata store. */
export interface PackageStore {
  /**
   * A cheap query (`select 1`) proving the database answers, for `GET /-/health` (which bounds
   * it with its own timeout).
   * @throws the driver's error when the database cannot be reached
   */
  ping(): Promise<void>
  /**
   * Everything stored about `name` in one snapshot; `undefined` when never published.
   * @param opts.readmes `all` (the default): every version's readme; `latest`: only the readme
   *   the packument shows, that of the version `latest` names, the others read as null and the
   *   state marked `readmes: 'latest'` (for the cached states: a readme per version can be a
   *   third of a big package's state). When `latest` names no live version, all are read.
   */
  readPackage(name: string, opts?: { readmes?: 'all' | 'latest' }): Promise<StoredPackument | undefined>
  getVersion(name: string, version: string): Promise<StoredVersion | undefined>
  /**
   * What a cached state of `name` depends on, in one query: its `_rev` (every write bumps it)
   * and its maintainers as `readPackage` gives them (name and e-mail, sorted by name: an e-mail
   * changes without a write of the package). `undefined` when never published. A cached state
   * whose stamp is unchanged is the one `readPackage` would read (the render cache's
   * revalidation on a shared store).
   */
  packageStamp(name: string): Promise<PackageStamp | undefined>
  /** Runs `fn` in one transaction: all of its writes commit, or none (a throw rolls back). */
  transaction<T>(fn: (tx: PackageTx) => Promise<T>): Promise<T>
  /** Names of the packages `user` starred, sorted. */
  starredBy(user: string): Promise<string[]>
  /**
   * Text search over name, description and keywords of each package's `latest` manifest: every
   * word must occur (case-insensitive). Hits that `visible` refuses are left out before paging,
   * so `total` and the pages count only what the caller may see (the read gate's filter).
   * @param size hits per page; @param from hits to skip
   */
  search(words: string[], page: { size: number; from: number; visible: (name: string) => boolean }): Promise<{ total: number; hits: SearchHit[] }>
  /**
   * Packages with a live `latest`, most recently changed first (the web UI's home page): `visible`
   * filters before counting and paging, as in `search`.
   * @param limit hits returned; `total` counts every visible package
   */
  recentPackages(limit: number, visible: (name: string) => boolean): Promise<{ total: number; hits: SearchHit[] }>
  /**
   * Names of the packages whose `latest` manifest lists `name` in `dependencies`,
   * `peerDependencies` or `optionalDependencies`, sorted (the web UI's dependents). Unfiltered:
   * the registry passes them through the read gate.
   */
  dependentsOf(name: string): Promise<string[]>
  /** The change feed after `since`, at most `limit` rows, in commit order. */
  changesSince(since: number, limit: number): Promise<PackageChange[]>
  /** The change feed's last `seq` (0 when empty): CouchDB's `update_seq`. */
  lastChangeSeq(): Promise<number>
  /**
   * Calls `onChange(name)` soon after any node commits a write of package `name` (PostgreSQL:
   * LISTEN). Best effort: while the listening connection is down, changes are missed (the
   * staleness bound still holds); `onLost` is called when it goes down and again when it is back,
   * so the caller can drop everything it cached. SQLite reads the change sequence every second
   * instead (another process on the same file: `pier import` beside `pier start`).
   * @returns a function that stops listening
   */
  watchChanges?(onChange: (name: string) => void, onLost: () => void): Promise<() => Promise<void>>
  /** Whether any package of `scope` (`@corp`) exists locally, unpublished ones included. */
  scopeHasPackages(scope: string): Promise<boolean>
  /**
   * Every blob key the metadata refers to, for `pier gc`: the `tarball_key` of every version row
   * (unpublished versions included), then the keys of the uplink cache's tarballs, derived from
   * each cached packument's text by `cachedTarballKeys` (blob-references.ts). Keys may repeat.
   * Read page by page (each page its own query, no long transaction), so rows written while it
   * runs may or may not be seen; `pier gc` only deletes blobs older than its grace period, whose
   * references, if any, committed long before.
   * @throws the driver's error
   */
  referencedBlobKeys(): AsyncIterable<string>
}

/** A stored blob, opened for reading. */
export interface BlobHandle {
  body: Readable
  /** Bytes. */
  size: number
}

/** What a listing (`BlobStore.list`) or `BlobStore.stat` tells about one stored blob. */
export interface BlobInfo {
  /** The blob's key (the store's own prefix, if any, removed): what `get` and `delete` take. */
  key: string
  /**
   * When the blob was last written. A `put` of bytes already stored refreshes it (FsBlobStore
   * touches the file, S3 rewrites the object), so it is never older than the latest `put` of the
   * key: `pier gc` relies on this to spare blobs that a publish in progress is about to reference.
   */
  modified: Date
  /** Bytes. */
  size: number
}

/**
 * Tarball storage: local disk (FsBlobStore) or an S3-compatible object store (S3BlobStore). Keys
 * are content addresses (blob-keys.ts), so a `put` of the same bytes is idempotent and a blob never
 * changes once written.
 */
export interface BlobStore {
  /**
   * Stores `body` under `key` durably (the bytes are on stable storage when the promise resolves),
   * so the metadata commit that references it may follow. Overwrites nothing visible until complete.
   */
  put(key: string, body: Uint8Array): Promise<void>
  /** Opens a blob; `undefined` when missing. */
  get(key: string): Promise<BlobHandle | undefined>
  /** Reads a whole blob into memory; `undefined` when missing. */
  read(key: string): Promise<Buffer | undefined>
  /** Removes a blob; a missing key is not an error (like `rm -f`). */
  delete(key: string): Promise<void>
  /**
   * Every stored blob whose key starts with `prefix` (e.g. `tarballs/`), in no particular order,
   * read lazily page by page (S3) or folder by folder (disk). Writes in progress are not listed
   * (FsBlobStore's temp files; S3 shows an object only once its PUT completed). A blob put or
   * deleted while the listing runs may or may not appear.
   * @throws Error when `prefix` would leave the store (`..`), or the backend fails
   */
  list(prefix: string): AsyncIterable<BlobInfo>
  /** The blob's size and modification time; `undefined` when missing. */
  stat(key: string): Promise<BlobInfo | undefined>
  /**
   * Checks cheaply that the backend answers (disk: the folder exists and is writable; S3: the
   * bucket is reachable with these credentials, HeadBucket). Used by `GET /-/health`, which
   * bounds it with its own timeout and aborts `signal` when that expires.
   * @throws Error describing the failure
   */
  ping(signal?: AbortSignal): Promise<void>
  /**
   * A URL from which anyone may GET the blob for the next `expiresSeconds` seconds, for stores
   * that can serve clients directly (S3's presigned URLs); absent when the store cannot.
   */
  signedUrl?(key: string, expiresSeconds: number): Promise<string>
  /** Releases connections and handles (called once, when Pier stops). */
  close?(): Promise<void>
}
