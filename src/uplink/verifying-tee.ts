/**
 * A pass-through for a tarball coming from an uplink: every byte goes through ssri's integrity
 * stream (the check npm's own cacache and pacote run), a copy is kept, and the last chunk is held
 * back until the whole body matched the manifest's integrity. On a match the copy is committed
 * (to the blob store) before the last chunk goes out, so a client that received the whole tarball
 * can rely on the next request being served locally; on a mismatch (corrupt or truncated body)
 * the stream fails instead: the client never gets a complete bad tarball and nothing is cached.
 * The kept copy is bounded per tarball (`keepUpTo`) and across tees (a shared `KeepBudget`); past
 * either, the copy is dropped and the body is only verified and passed on.
 */
import { Transform, type TransformCallback } from 'node:stream'
import ssri from 'ssri'
import { integrityOf, type ExpectedDigest } from '../registry/integrity.js'

/** Thrown into the stream when the body does not match. */
export class IntegrityError extends Error {
  override name = 'IntegrityError'
}

/**
 * Bytes that several tees may keep at once, together (a count, no memory of its own): each tee
 * takes what it keeps, and gives it back once its copy is committed, dropped or the stream ends.
 */
export class KeepBudget {
  /** Bytes taken now. */
  used = 0

  /** @param max bytes that may be taken at once */
  constructor(readonly max: number) {}

  /** Takes `n` bytes; `false` (and nothing taken) when that would exceed `max`. */
  take(n: number): boolean {
    if (this.used + n > this.max) return false
    this.used += n
    return true
  }

  /** Gives back `n` bytes taken before. */
  release(n: number): void {
    this.used = Math.max(0, this.used - n)
  }
}

/** The tee; see the file comment. */
export class VerifyingTee extends Transform {
  /** ssri's verifier: written to, its (pass-through) output discarded. */
  private readonly check: ReturnType<typeof ssri.integrityStream>
  private verified = false
  private failure: Error | undefined
  private pending: Buffer | undefined
  private chunks: Buffer[] = []
  private kept = 0
  private keep: boolean

  /**
   * @param keepUpTo bytes to keep for `onVerified` (0: keep nothing); a longer body is verified but not kept
   * @param budget shared with other tees: a body is kept only while the budget has room for it
   * @param onVerified called with the whole body (or `undefined` when not kept) after a match; must not throw
   */
  constructor(
    expected: ExpectedDigest,
    private readonly keepUpTo: number,
    private readonly budget: KeepBudget | undefined,
    private readonly onVerified: (body: Buffer | undefined) => Promise<void>,
  ) {
    super()
    this.keep = keepUpTo > 0
    this.check = ssri.integrityStream({ integrity: integrityOf(expected) })
    this.check.on('verified', () => (this.verified = true))
    this.check.on('error', (e: Error) => (this.failure = e))
    this.check.resume()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.check.write(chunk)
    if (this.keep) {
      if (this.kept + chunk.length > this.keepUpTo || (this.budget && !this.budget.take(chunk.length))) {
        this.dropCopy()
      } else {
        this.kept += chunk.length
        this.chunks.push(chunk)
      }
    }
    if (this.pending) this.push(this.pending)
    this.pending = chunk
    cb()
  }

  override _flush(cb: TransformCallback): void {
    // A flowing integrity stream with nothing buffered ends, and reports, synchronously.
    this.check.end()
    if (!this.verified) {
      this.dropCopy()
      cb(new IntegrityError(this.failure?.message ?? 'tarball digest does not match the manifest'))
      return
    }
    const body = this.keep ? Buffer.concat(this.chunks, this.kept) : undefined
    this.chunks = []
    void this.onVerified(body).then(() => {
      // Committed (or not kept): the budget has its bytes back.
      this.dropCopy()
      if (this.pending) this.push(this.pending)
      cb()
    })
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.dropCopy()
    cb(err)
  }

  /** Stops keeping: the copy is dropped and its bytes go back to the budget. */
  private dropCopy(): void {
    this.keep = false
    this.chunks = []
    this.budget?.release(this.kept)
    this.kept = 0
  }
}
