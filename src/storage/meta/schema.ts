/**
 * Kysely table types of the metadata store. The same tables exist on SQLite and (later) PostgreSQL;
 * timestamps are ISO 8601 strings, JSON documents are text.
 */
import type { Generated, Insertable, Selectable } from 'kysely'

/** One row per package name ever published (kept after a full unpublish as a tombstone). */
export interface PackagesTable {
  name: string
  /** Revision counter, bumped by every write; `_rev` is `<rev_seq>-<rev_hash>`. */
  rev_seq: number
  rev_hash: string
  created: string
  modified: string
}

/** One row per version ever published; `unpublished` set when it was unpublished (410 afterwards). */
export interface VersionsTable {
  name: string
  version: string
  /** Manifest JSON without `dist.tarball` (built per request base URL) and without `readme`. */
  manifest: string
  readme: string | null
  readme_filename: string | null
  integrity: string
  shasum: string
  /** Blob-store key of the tarball. */
  tarball_key: string
  /** Tarball size, bytes. */
  size: number
  published: string
  unpublished: string | null
}

export interface DistTagsTable {
  name: string
  tag: string
  version: string
}

export interface MaintainersTable {
  name: string
  user_name: string
}

export interface StarsTable {
  name: string
  user_name: string
}

export interface UsersTable {
  name: string
  email: string
  /** `scrypt$N$r$p$<salt b64>$<hash b64>`. */
  password_hash: string
  created: string
  updated: string
}

export interface TokensTable {
  /** sha512 hex of the token: npm's `key`. The token itself is never stored. */
  key: string
  /** First characters of the token, shown in `npm token list`. */
  token_prefix: string
  user_name: string
  readonly: number
  /** JSON array of CIDR strings, or null for no restriction. */
  cidr_whitelist: string | null
  description: string | null
  created: string
  updated: string
}

/** The change sequence (CouchDB `_changes`): one row per write. */
export interface ChangesTable {
  seq: Generated<number>
  name: string
  rev: string
  deleted: number
  created: string
}

/** Packuments of uplinks (cached data), one row per name and uplink (migration 0002). */
export interface UplinkPackumentsTable {
  name: string
  uplink: string
  /** The uplink's ETag and Last-Modified, sent back when revalidating. */
  etag: string | null
  last_modified: string | null
  /** When the uplink last confirmed this copy (ISO 8601). */
  fetched_at: string
  /** The packument JSON as the uplink sent it. */
  body: string
}

/** The whole database. */
export interface Database {
  packages: PackagesTable
  versions: VersionsTable
  dist_tags: DistTagsTable
  maintainers: MaintainersTable
  stars: StarsTable
  users: UsersTable
  tokens: TokensTable
  changes: ChangesTable
  uplink_packuments: UplinkPackumentsTable
}

export type PackageRow = Selectable<PackagesTable>
export type VersionRow = Selectable<VersionsTable>
export type NewVersionRow = Insertable<VersionsTable>
export type UserRow = Selectable<UsersTable>
export type TokenRow = Selectable<TokensTable>
export type CachedPackumentRow = Selectable<UplinkPackumentsTable>
