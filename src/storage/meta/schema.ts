/**
 * Kysely table types of the metadata store. The same tables exist on SQLite and PostgreSQL;
 * timestamps are ISO 8601 strings, JSON documents are text. The tables whose rows the other layers
 * see are declared as those layers' record types (the domain's `StoredPackage` and `StoredVersion`,
 * the accounts' `UserRecord` and `TokenRecord`, the uplink cache's `CachedPackumentRow`), so a row
 * read is already the record its consumer expects and the two cannot drift apart.
 */
import type { Generated, Insertable, Selectable } from 'kysely'
import type { TokenRecord, UserRecord } from '../../auth/user-store.js'
import type { WebLoginRecord } from '../../auth/web-login.js'
import type { AuditEntry } from '../../registry/audit-log.js'
import type { OrgRole, PackageMfa, PackageVisibility, TeamPermission } from '../../registry/orgs.js'
import type { StoredPackage, StoredVersion } from '../../registry/types.js'
import type { CachedPackumentRow as UplinkCachedPackument } from '../../uplink/uplink-cache.js'



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



/** The change sequence (CouchDB `_changes`): one row per write. */
export interface ChangesTable {
  seq: Generated<number>
  name: string
  rev: string
  deleted: number
  created: string
}


/** One row per package name ever published (kept after a full unpublish as a tombstone). */
export type PackagesTable = StoredPackage
/** One row per version ever published; `unpublished` set when it was unpublished (410 afterwards). */
export type VersionsTable = StoredVersion
export type UsersTable = UserRecord
export type TokensTable = TokenRecord
/** Packuments of uplinks (cached data), one row per name and uplink (migration 0002). */
export type UplinkPackumentsTable = UplinkCachedPackument

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
  audit_log: AuditLogTable
  orgs: { name: string; created: string }
  org_members: { org: string; user_name: string; role: OrgRole }
  teams: { org: string; name: string; description: string | null; created: string }
  team_members: { org: string; team: string; user_name: string }
  team_packages: { org: string; team: string; package: string; permission: TeamPermission }
  package_access: { name: string; visibility: PackageVisibility; mfa: PackageMfa }
  github_cache: GithubCacheTable
  /** Web logins in progress (migration 0006, auth/web-login.ts). */
  web_logins: WebLoginRecord
  /** Named secrets shared by the nodes (migration 0006, auth/sessions.ts). */
  web_secrets: { name: string; value: string }
  search_index: SearchIndexTable
}

/** What search matches, per package with a live `latest` (migration 0007, kept by the `_rev` bump). */
export interface SearchIndexTable {
  name: string
  /** Name, description and keywords of the latest manifest, lowercased. */
  text: string
}

/** The audit log (migration 0003): `AuditEntry` with `details` as JSON text. */
export interface AuditLogTable extends Omit<AuditEntry, 'details'> {
  seq: Generated<number>
  details: string
}

/**
 * GitHub's answers (migration 0005, auth/github.ts): `key` is `user:<sha512 of the token>` or
 * `repo:<sha512 of the token>:<owner>/<repo>` (lowercased), `value` the answer as JSON, `expires`
 * ISO 8601 (the row is kept after it: served while GitHub cannot answer).
 */
export interface GithubCacheTable {
  key: string
  value: string
  expires: string
}

export type PackageRow = Selectable<PackagesTable>
export type VersionRow = Selectable<VersionsTable>
export type NewVersionRow = Insertable<VersionsTable>
export type UserRow = Selectable<UsersTable>
export type TokenRow = Selectable<TokensTable>
export type CachedPackumentRow = Selectable<UplinkPackumentsTable>
