/**
 * Blob keys: every tarball is stored under a content address, so a `put` of the same bytes is
 * idempotent and a blob never changes once written (docs/architecture.md, "Storage layout").
 */
import type { ExpectedDigest } from './integrity.js'

/** The folder (key prefix) below which every tarball key lives; `pier gc` lists only this. */
export const TARBALL_PREFIX = 'tarballs/'

/** The content-addressed key of a tarball whose sha512 digest is `sha512Hex` (`tarballs/sha512/ab/<hex>.tgz`). */
export function tarballKey(sha512Hex: string): string {
  return `tarballs/sha512/${sha512Hex.slice(0, 2)}/${sha512Hex}.tgz`
}

/**
 * The blob key of a tarball cached from an uplink: content-addressed by the digest its manifest
 * promises (the first accepted one), so it is the same key a local publish of those bytes uses
 * when the algorithm is sha512.
 */
export function cachedTarballKey(e: ExpectedDigest): string {
  const hex = Buffer.from(e.digests[0] ?? '', 'base64').toString('hex')
  return e.algorithm === 'sha512' ? tarballKey(hex) : `tarballs/${e.algorithm}/${hex.slice(0, 2)}/${hex}.tgz`
}
