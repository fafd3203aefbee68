/**
 * Caches of the GET hot path: the stored state of each package (or "absent"), and the rendered,
 * pre-compressed bytes of each packument variant keyed by (name, _rev, variant). Old variants are
 * never invalidated: a new `_rev` makes them unreachable and the LRU drops them.
 *
 * Invalidation is race-free: a load that started before the latest `invalidate(name)` is not cached.
 */
import { LRUCache } from 'lru-cache'
import type { PackageState } from '../storage/meta/meta-store.js'

/** A packument variant, serialised and compressed once. */
export interface RenderedBody {
  /** Weak ETag (`W/"<rev>-<variant hash>"`). */
  etag: string
  /** HTTP date of `time.modified`. */
  lastModified: string
  contentType: string
  /** Response headers common to every encoding (etag, last-modified, vary, cache-control). */
  headers: Record<string, string>
  /** The uncompressed bytes, kept only for small bodies (`IDENTITY_KEEP_BYTES`); see `identityOf`. */
  identity?: Buffer
  gzip: Buffer
  /** Computed on first request that accepts brotli. */
  br?: Buffer
}

const ABSENT = Symbol('absent')
type StateSlot = PackageState | typeof ABSENT

/** Size limits, bytes. */
export interface RenderCacheOptions {
  maxStateBytes: number
  maxBodyBytes: number
  /**
   * How long a cached package state may be served before it is re-read, ms; 0 = until this
   * process writes the package (one node). With several nodes on one database, other nodes'
   * writes become visible within this bound.
   */
  stateTtlMs?: number
}

/** The per-process packument cache. */
export class RenderCache {
  private clock = 0
  private readonly invalidatedAt = new Map<string, number>()
  /** Clock of the last `invalidateAll`. */
  private allInvalidatedAt = 0
  private readonly states: LRUCache<string, { slot: StateSlot }>
  private readonly bodies: LRUCache<string, RenderedBody>
  private readonly inflightStates = new Map<string, Promise<PackageState | undefined>>()
  private readonly inflightBodies = new Map<string, Promise<RenderedBody | undefined>>()

  constructor(opts: RenderCacheOptions) {
    this.states = new LRUCache({
      maxSize: opts.maxStateBytes,
      sizeCalculation: (v) => (v.slot === ABSENT ? 64 : stateBytes(v.slot)),
      ...(opts.stateTtlMs ? { ttl: opts.stateTtlMs, ttlAutopurge: false } : {}),
    })
    this.bodies = new LRUCache({
      maxSize: opts.maxBodyBytes,
      sizeCalculation: (v) => (v.identity?.length ?? 0) + v.gzip.length + (v.br?.length ?? 0) + 256,
    })
  }

  /** Drops what is cached for `name`; call after every committed write. */
  invalidate(name: string): void {
    this.invalidatedAt.set(name, ++this.clock)
    this.states.delete(name)
  }

  /** Drops every cached package state (rendered bodies are keyed by `_rev` and stay valid). */
  invalidateAll(): void {
    this.allInvalidatedAt = ++this.clock
    this.states.clear()
  }

  /** The package state, loaded with `load` on a miss; concurrent misses share one load. */
  async state(name: string, load: () => Promise<PackageState | undefined>): Promise<PackageState | undefined> {
    const hit = this.states.get(name)
    if (hit) return hit.slot === ABSENT ? undefined : hit.slot
    let p = this.inflightStates.get(name)
    if (!p) {
      const started = this.clock
      p = load().then(
        (s) => {
          this.inflightStates.delete(name)
          if ((this.invalidatedAt.get(name) ?? 0) <= started && this.allInvalidatedAt <= started) this.states.set(name, { slot: s ?? ABSENT })
          return s
        },
        (e: unknown) => {
          this.inflightStates.delete(name)
          throw e
        },
      )
      this.inflightStates.set(name, p)
    }
    return p
  }

  /**
   * The cached state of `name` without loading: the state, `null` when the name is cached as
   * absent, `undefined` when nothing is cached (or it expired). Synchronous, for the fast path
   * (fast-path.ts).
   */
  peekState(name: string): PackageState | null | undefined {
    const hit = this.states.get(name)
    if (!hit) return undefined
    return hit.slot === ABSENT ? null : hit.slot
  }

  /** A rendered variant already in the cache, without rendering (the fast path). */
  peekBody(key: string): RenderedBody | undefined {
    return this.bodies.get(key)
  }

  /** A rendered variant of revision `rev`; `render` runs once per key. */
  async body(key: string, render: () => Promise<RenderedBody | undefined>): Promise<RenderedBody | undefined> {
    const hit = this.bodies.get(key)
    if (hit) return hit
    let p = this.inflightBodies.get(key)
    if (!p) {
      p = render().then(
        (b) => {
          this.inflightBodies.delete(key)
          if (b) this.bodies.set(key, b)
          return b
        },
        (e: unknown) => {
          this.inflightBodies.delete(key)
          throw e
        },
      )
      this.inflightBodies.set(key, p)
    }
    return p
  }

  /** Re-accounts a body whose brotli form was just added. */
  resize(key: string, b: RenderedBody): void {
    this.bodies.set(key, b)
  }
}

function stateBytes(s: PackageState): number {
  let n = 512
  for (const v of s.versions) n += v.manifest.length + (v.readme?.length ?? 0) + 256
  return n
}
