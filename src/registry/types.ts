/**
 * The documents of the npm registry protocol (docs/protocol.md §2): packument, manifest, dist.
 * "packument" is the whole document of a package; "manifest" is one entry of its `versions`.
 */

/** `dist` of a version manifest: where the tarball is and how to check it. */
export interface Dist {
  /** Absolute tarball URL, built from the registry's public base URL at render time. */
  tarball: string
  /** sha1 of the tarball, hex. */
  shasum: string
  /** Subresource-integrity string, `sha512-<base64>`. */
  integrity: string
  fileCount?: number
  /** Bytes of the unpacked tarball. */
  unpackedSize?: number
  [key: string]: unknown
}

/** One version's manifest: the published package.json plus registry fields (`_id`, `_npmUser`, `dist`). */
export interface Manifest {
  name: string
  version: string
  dist: Dist
  deprecated?: string
  [key: string]: unknown
}

/** `{ name, email }` as npm writes maintainers and `_npmUser`. */
export interface Person {
  name: string
  email?: string
}

/** The full packument (docs/protocol.md §2.1). */
export interface Packument {
  _id: string
  _rev: string
  name: string
  'dist-tags': Record<string, string>
  versions: Record<string, Manifest>
  /** `created`, `modified` and one ISO 8601 timestamp per version (kept for unpublished versions). */
  time: Record<string, string>
  maintainers: Person[]
  users?: Record<string, boolean>
  readme?: string
  readmeFilename?: string
  [key: string]: unknown
}

/** The abbreviated ("corgi") packument served for `Accept: application/vnd.npm.install-v1+json`. */
export interface AbbreviatedPackument {
  name: string
  modified: string
  'dist-tags': Record<string, string>
  versions: Record<string, Record<string, unknown>>
}

/** A caller, as resolved from its credentials. */
export interface Principal {
  /** User name; `undefined` for an anonymous caller. */
  name: string | undefined
  email?: string
  /** A read-only token: every write is refused with 403. */
  readonly: boolean
  /** Key (sha512 hex) of the token used, when the caller authenticated with a token. */
  tokenKey?: string
  /** An administrator (`auth.admins`, or `pier user add --admin`): may read and change everything. */
  admin?: boolean
  /** What a granular token limits its user to; absent: the user's own rights (a legacy token, a password). */
  grant?: TokenGrant
  /** The client's address, as recorded in the audit log. */
  ip?: string
}

/** A granular token's permission on what it names (npm 11 `npm token create --…-permission`). */
export type GrantPermission = 'read-only' | 'read-write' | 'no-access'

/**
 * What a granular token may touch (npm 11's `npm token create` body, docs/protocol.md §1.7): the
 * packages it names (`packages`, every package with `packagesAll`, or any package of `scopes`)
 * with `permission`, and the orgs it names with `orgsPermission`. Anything else it cannot read
 * beyond what anonymous callers read, and cannot change at all.
 */
export interface TokenGrant {
  packagesAll: boolean
  packages: readonly string[]
  /** Scopes with their `@`, e.g. `@acme`. */
  scopes: readonly string[]
  permission: GrantPermission
  /** Org names without `@`. */
  orgs: readonly string[]
  orgsPermission: GrantPermission
}

/**
 * Who is asking, for a read: the resolved principal, or a function that resolves it (from the
 * request's credentials) only when a decision needs it. Names readable by all never call it, so a
 * GET of a public package costs no credential check (the read gate, read-gate.ts).
 * @throws RegistryError UNAUTHENTICATED from the function on bad credentials
 */
export type Caller = Principal | (() => Promise<Principal>)

/**
 * The stored head of a package: one row per name ever published, kept after a full unpublish
 * as a tombstone. `_rev` is `<rev_seq>-<rev_hash>`; timestamps are ISO 8601.
 */
export interface StoredPackage {
  name: string
  /** Revision counter, bumped by every write. */
  rev_seq: number
  rev_hash: string
  created: string
  modified: string
}

/**
 * One stored version, published or unpublished (`unpublished` set: 410 afterwards). The metadata
 * store maps its rows to this shape.
 */
export interface StoredVersion {
  name: string
  version: string
  /** Manifest JSON without `dist.tarball` (built per request base URL) and without `readme`. */
  manifest: string
  readme: string | null
  readme_filename: string | null
  /** `sha512-<base64>` of the tarball. */
  integrity: string
  /** sha1 of the tarball, hex. */
  shasum: string
  /** Blob-store key of the tarball (blob-keys.ts). */
  tarball_key: string
  /** Tarball size, bytes. */
  size: number
  /** ISO 8601. */
  published: string
  /** ISO 8601, or null while published. */
  unpublished: string | null
}

/** Everything stored about one local package, read in one consistent snapshot. */
export interface StoredPackument {
  pkg: StoredPackage
  /** All versions, unpublished ones included, in publish order. */
  versions: StoredVersion[]
  distTags: Record<string, string>
  /** Maintainers with their e-mail (from the users table when known), sorted by name. */
  maintainers: Person[]
  /** Names of the users who starred the package, sorted. */
  stars: string[]
  /**
   * `latest`: only the `latest` dist-tag's version carries its readme; every other row's `readme`
   * is null whatever is stored (`PackageStore.readPackage` with `readmes: 'latest'`; read a row
   * whole with `getVersion`). Absent: every row's readme was read.
   */
  readmes?: 'latest'
}
