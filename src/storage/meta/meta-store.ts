/**
 * The metadata store: everything Pier keeps besides tarballs, in one database. It implements what
 * each consumer declares it needs: the registry's `PackageStore` (registry/stores.ts), the
 * accounts' `UserStore` and GitHub's cached answers, `GithubCacheStore` (auth/user-store.ts), the
 * web logins' `WebLoginStore` (auth/web-login.ts), and
 * the uplink cache's durable half (`UplinkCacheStore`, uplink/uplink-cache.ts). Rows map to the
 * domain's types as they are (`VersionRow` is a `StoredVersion`, `PackageRow` a `StoredPackage`).
 */
import type { GithubCacheStore, UserStore } from '../../auth/user-store.js'
import type { WebLoginStore } from '../../auth/web-login.js'
import type { OrgStore } from '../../registry/orgs.js'
import type { PackageStore } from '../../registry/stores.js'
import type { UplinkCacheStore } from '../../uplink/uplink-cache.js'
import type { VerifyStore } from '../../ops/verify.js'

/** The metadata store. */
export interface MetaStore extends PackageStore, UserStore, UplinkCacheStore, OrgStore, GithubCacheStore, VerifyStore, WebLoginStore {
  /** Applies pending migrations (idempotent; on PostgreSQL one node at a time). */
  migrate(): Promise<void>
  close(): Promise<void>
}
