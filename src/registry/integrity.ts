/**
 * What a tarball's digest must be, from a manifest's `dist`: its Subresource Integrity string
 * (`dist.integrity`, W3C SRI as npm writes it: `sha512-<base64>`), else the legacy `dist.shasum`
 * (sha1, hex). npm checks downloads the same way (pacote: integrity first, then shasum).
 */
import ssri from 'ssri'

/** The digest a tarball must have. */
export interface ExpectedDigest {
  /** `sha512`, `sha384`, `sha256` or `sha1`. */
  algorithm: string
  /** Accepted digests, base64. */
  digests: string[]
}

const ALGORITHMS = ['sha512', 'sha384', 'sha256', 'sha1']

/**
 * The strongest check the manifest allows: its `dist.integrity`, else `dist.shasum` (sha1 hex).
 * @returns `undefined` when the manifest gives neither (the tarball cannot be verified)
 */
export function expectedDigest(integrity: string | undefined, shasum: string | undefined): ExpectedDigest | undefined {
  if (integrity) {
    const parsed = ssri.parse(integrity) as unknown as Record<string, { digest: string }[] | undefined>
    for (const algorithm of ALGORITHMS) {
      const hashes = parsed[algorithm]
      if (hashes && hashes.length > 0) return { algorithm, digests: hashes.map((h) => h.digest) }
    }
  }
  if (shasum && /^[0-9a-f]{40}$/i.test(shasum)) return { algorithm: 'sha1', digests: [Buffer.from(shasum, 'hex').toString('base64')] }
  return undefined
}

/** The SRI string of an expected digest (`<algorithm>-<base64>`, each accepted digest once). */
export function integrityOf(e: ExpectedDigest): string {
  return e.digests.map((d) => `${e.algorithm}-${d}`).join(' ')
}
