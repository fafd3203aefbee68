/**
 * A pass-through for a tarball coming from an uplink: hashes every byte, keeps a copy, and holds
 * back the last chunk until the whole body matched the manifest's integrity. On a match the copy
 * is committed (to the blob store) before the last chunk goes out, so a client that received the
 * whole tarball can rely on the next request being served locally; on a mismatch (corrupt or
 * truncated body) the stream fails instead: the client never gets a complete bad tarball and
 * nothing is cached.
 */
import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import ssri from 'ssri'

/** The digest a tarball must have. */
export interface ExpectedDigest {
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

/** Thrown into the stream when the body does not match. */
export class IntegrityError extends Error {
  override name = 'IntegrityError'
}

/** The tee; see the file comment. */
export class VerifyingTee extends Transform {
  private readonly hash: Hash
  private pending: Buffer | undefined
  private chunks: Buffer[] = []
  private kept = 0
  private keep: boolean
  private readonly maxKeep: number

  /**
   * @param keepUpTo bytes to keep for `onVerified` (0: keep nothing); a longer body is verified but not kept
   * @param onVerified called with the whole body (or `undefined` when not kept) after a match; must not throw
   */
  constructor(
    private readonly expected: ExpectedDigest,
    keepUpTo: number,
    private readonly onVerified: (body: Buffer | undefined) => Promise<void>,
  ) {
    super()
    this.hash = createHash(expected.algorithm)
    this.keep = keepUpTo > 0
    this.maxKeep = keepUpTo
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk)
    if (this.keep) {
      this.kept += chunk.length
      if (this.kept > this.maxKeep) {
        this.keep = false
        this.chunks = []
      } else {
        this.chunks.push(chunk)
      }
    }
    if (this.pending) this.push(this.pending)
    this.pending = chunk
    cb()
  }

  override _flush(cb: TransformCallback): void {
    const digest = this.hash.digest('base64')
    if (!this.expected.digests.includes(digest)) {
      this.chunks = []
      cb(new IntegrityError(`tarball ${this.expected.algorithm} digest ${digest} does not match the manifest`))
      return
    }
    const body = this.keep ? Buffer.concat(this.chunks) : undefined
    this.chunks = []
    void this.onVerified(body).then(() => {
      if (this.pending) this.push(this.pending)
      cb()
    })
  }
}
