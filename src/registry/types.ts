/**
 * The documents of the npm registry protocol (REGISTRY-API.md §2): packument, manifest, dist.
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

/** The full packument (REGISTRY-API.md §2.1). */
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
}
