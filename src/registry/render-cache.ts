/**
 * Caches of the GET hot path: the stored state of each local package (or "absent"), and the
 * rendered, pre-compressed bytes of each packument variant keyed by (name, _rev, variant). Old
 * variants are never invalidated: a new `_rev` makes them unreachable and the LRU drops them.
 *
 * Both are lru-cache `fetch()` caches: concurrent misses of one key share one load. Invalidation is
 * race-free: `invalidate` deletes the key, which aborts a load in flight; with `ignoreFetchAbort`
 * the requests already waiting on that load still get its answer, but it is not cached, so the
 * next request reads the store again (lru-cache's `#backgroundFetch`: a result is only stored
 * while its promise is still the key's value).
 */
import { LRUCache } from 'lru-cache'
import type { RenderedBody } from './render.js'
import type { StoredPackument } from './types.js'

/** A cached state: the package, or `null` when it is known not to be local. */
interface StateSlot {
  state: StoredPackument | null
}

/** Size limits, bytes, and the staleness bound. */
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

type Loader<T> = () => Promise<T | undefined>

/** The per-process packument cache. */
export class RenderCache {
  private readonly states: LRUCache<string, StateSlot, Loader<StoredPackument>>
  private readonly bodies: LRUCache<string, RenderedBody, Loader<RenderedBody>>

  constructor(opts: RenderCacheOptions) {
    this.states = new LRUCache<string, StateSlot, Loader<StoredPackument>>({
      maxSize: opts.maxStateBytes,
      // An absent name costs its key (twice: the cache's map and its list) and the slot: counted so,
      // a flood of unknown names stays within maxStateBytes for real.
      sizeCalculation: (v, name) => (v.state === null ? 160 + 4 * name.length : stateBytes(v.state)),
      ...(opts.stateTtlMs ? { ttl: opts.stateTtlMs, ttlAutopurge: false } : {}),
      ignoreFetchAbort: true,
      fetchMethod: async (_name, _stale, { context }) => ({ state: (await context()) ?? null }),
    })
    this.bodies = new LRUCache<string, RenderedBody, Loader<RenderedBody>>({
      maxSize: opts.maxBodyBytes,
      sizeCalculation: bodyBytes,
      ignoreFetchAbort: true,
      fetchMethod: (_key, _stale, { context }) => context(),
    })
  }

  /** Drops what is cached for `name` (and any load of it in flight); call after every committed write. */
  invalidate(name: string): void {
    this.states.delete(name)
  }

  /** Drops every cached package state (rendered bodies are keyed by `_rev` and stay valid). */
  invalidateAll(): void {
    this.states.clear()
  }

  /** The package state, loaded with `load` on a miss; `undefined` when not local. */
  async state(name: string, load: Loader<StoredPackument>): Promise<StoredPackument | undefined> {
    const slot = await this.states.fetch(name, { context: load })
    return slot?.state ?? undefined
  }

  /**
   * The cached state of `name` without loading: the state, `null` when the name is cached as
   * absent, `undefined` when nothing is cached (or it expired). Synchronous, for the fast path.
   */
  peekState(name: string): StoredPackument | null | undefined {
    return this.states.get(name)?.state
  }

  /** A rendered variant already in the cache, without rendering (the fast path). */
  peekBody(key: string): RenderedBody | undefined {
    return this.bodies.get(key)
  }

  /** A rendered variant by its key; `render` runs once per key (`undefined`: nothing to cache). */
  body(key: string, render: Loader<RenderedBody>): Promise<RenderedBody | undefined> {
    return this.bodies.fetch(key, { context: render })
  }

  /** Entries and bytes held by each cache, against its bound (for `GET /-/health`'s details). */
  sizes(): Record<'packument_states' | 'packument_bodies', CacheSize> {
    return { packument_states: sizeOf(this.states), packument_bodies: sizeOf(this.bodies) }
  }

  /** Re-accounts a body whose brotli form was just added. */
  resize(b: RenderedBody): void {
    if (this.bodies.peek(b.key) === b) this.bodies.set(b.key, b)
  }
}

/** How full one in-memory cache is: entries, and bytes against its bound when it counts bytes. */
export interface CacheSize {
  entries: number
  /** Bytes accounted (lru-cache `calculatedSize`), when the cache is bounded by bytes. */
  bytes?: number
  /** The bound: bytes when `bytes` is given, else entries. */
  max: number
}

/** The size of an lru-cache bounded by `maxSize` (bytes) or `max` (entries). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function sizeOf(c: LRUCache<any, any, any>): CacheSize {
  return c.maxSize ? { entries: c.size, bytes: c.calculatedSize, max: c.maxSize } : { entries: c.size, max: c.max }
}

function bodyBytes(v: RenderedBody): number {
  return (v.identity?.length ?? 0) + v.gzip.length + (v.br?.length ?? 0) + 256
}

function stateBytes(s: StoredPackument): number {
  let n = 512
  for (const v of s.versions) n += v.manifest.length + (v.readme?.length ?? 0) + 256
  return n
}
