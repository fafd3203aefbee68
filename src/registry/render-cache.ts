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
  /** Bytes of serialised version manifests (`GET /:name/:version` on the fast path); default 8 MiB. */
  maxManifestBytes?: number
  /**
   * How long a cached package state may be served before it is re-read, ms; 0 = until this
   * process writes the package (one node). With several nodes on one database, other nodes'
   * writes become visible within this bound.
   */
  stateTtlMs?: number
  /** The clock `stateTtlMs` is measured by, ms (default `performance`); tests pass their own. */
  clock?: { now(): number }
}

type Loader<T> = () => Promise<T | undefined>

/**
 * How a package state is (re)loaded: `load` reads it whole; `unchanged`, when given, tells
 * whether an expired cached state (`null`: cached as not local) is still what the store holds,
 * more cheaply than `load` (a `_rev` lookup), so that an expired state is kept rather than read
 * again.
 */
interface StateLoad {
  load: Loader<StoredPackument>
  unchanged?: ((cached: StoredPackument | null) => Promise<boolean>) | undefined
}

/** The per-process packument cache. */
export class RenderCache {
  private readonly states: LRUCache<string, StateSlot, StateLoad>
  private readonly bodies: LRUCache<string, RenderedBody, Loader<RenderedBody>>
  /**
   * Serialised manifests (the JSON the manifest route sends), keyed by (name, `_rev`, version, base
   * URL) like the bodies: a new `_rev` makes old ones unreachable and the LRU drops them.
   */
  private readonly manifests: LRUCache<string, Buffer>
  /**
   * The keys of each package's cached bodies (removed as the LRU drops them), so a write drops
   * its package's old bodies at once: they are keyed by a `_rev` no request asks for any more, and
   * kept they would fill the cache with dead bytes until evicted (the soak bench saw 10 MiB of
   * them in 6 minutes of one publish every 2.5 s, on the way to the 48 MiB bound).
   */
  private readonly bodyKeys = new Map<string, Set<string>>()

  constructor(opts: RenderCacheOptions) {
    this.manifests = new LRUCache<string, Buffer>({ maxSize: opts.maxManifestBytes ?? 8 * 1024 * 1024, sizeCalculation: (b, key) => b.length + 2 * key.length + 128 })
    this.states = new LRUCache<string, StateSlot, StateLoad>({
      maxSize: opts.maxStateBytes,
      // An absent name costs its key (twice: the cache's map and its list) and the slot: counted so,
      // a flood of unknown names stays within maxStateBytes for real.
      sizeCalculation: (v, name) => (v.state === null ? 160 + 4 * name.length : stateBytes(v.state)),
      // An expired state stays in the cache (the fast path's `get` then misses it) so that the
      // next `fetch` can revalidate it instead of reading it whole.
      ...(opts.stateTtlMs ? { ttl: opts.stateTtlMs, ttlAutopurge: false, noDeleteOnStaleGet: true, ...(opts.clock ? { perf: opts.clock, ttlResolution: 0 } : {}) } : {}),
      ignoreFetchAbort: true,
      fetchMethod: async (_name, stale, { context }) => {
        if (stale && context.unchanged && (await context.unchanged(stale.state))) return stale
        return { state: (await context.load()) ?? null }
      },
    })
    this.bodies = new LRUCache<string, RenderedBody, Loader<RenderedBody>>({
      maxSize: opts.maxBodyBytes,
      sizeCalculation: bodyBytes,
      ignoreFetchAbort: true,
      fetchMethod: (_key, _stale, { context }) => context(),
      dispose: (_v, key) => {
        const name = nameOfKey(key)
        const keys = this.bodyKeys.get(name)
        keys?.delete(key)
        if (keys?.size === 0) this.bodyKeys.delete(name)
      },
    })
  }

  /**
   * Drops what is cached for `name` (and any load of it in flight): its state and its rendered
   * bodies; call after every committed write.
   */
  invalidate(name: string): void {
    this.states.delete(name)
    const keys = this.bodyKeys.get(name)
    if (keys) for (const k of [...keys]) this.bodies.delete(k)
  }

  /** Drops every cached package state (rendered bodies are keyed by `_rev` and stay valid). */
  invalidateAll(): void {
    this.states.clear()
  }

  /**
   * The package state, loaded with `load` on a miss; `undefined` when not local. An expired one
   * (`stateTtlMs`) is kept for another period when `unchanged` says the store still holds it,
   * and read again with `load` otherwise.
   */
  async state(name: string, load: Loader<StoredPackument>, unchanged?: StateLoad['unchanged']): Promise<StoredPackument | undefined> {
    const slot = await this.states.fetch(name, { context: { load, unchanged } })
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

  /**
   * A serialised manifest by key (`manifestKey`), made with `render` on a miss; synchronous (the
   * fast path). `render` returning `undefined` caches nothing.
   */
  manifest(key: string, render: () => Buffer | undefined): Buffer | undefined {
    let b = this.manifests.get(key)
    if (b === undefined) {
      b = render()
      if (b !== undefined) this.manifests.set(key, b)
    }
    return b
  }

  /** A rendered variant by its key; `render` runs once per key (`undefined`: nothing to cache). */
  async body(key: string, render: Loader<RenderedBody>): Promise<RenderedBody | undefined> {
    const b = await this.bodies.fetch(key, { context: render })
    if (b !== undefined && this.bodies.peek(key) === b) this.track(key)
    return b
  }

  /** Records that `key` is cached (see `bodyKeys`). */
  private track(key: string): void {
    const name = nameOfKey(key)
    let keys = this.bodyKeys.get(name)
    if (!keys) this.bodyKeys.set(name, (keys = new Set()))
    keys.add(key)
  }

  /** Entries and bytes held by each cache, against its bound (for `GET /-/health`'s details). */
  sizes(): Record<'packument_states' | 'packument_bodies' | 'manifest_bodies', CacheSize> {
    return { packument_states: sizeOf(this.states), packument_bodies: sizeOf(this.bodies), manifest_bodies: sizeOf(this.manifests) }
  }

  /** Re-accounts a body whose brotli form was just added. */
  resize(b: RenderedBody): void {
    if (this.bodies.peek(b.key) !== b) return
    this.bodies.set(b.key, b)
    this.track(b.key)
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

/** The package name a render-cache key starts with (render.ts `renderKey`: name, NUL, …). */
function nameOfKey(key: string): string {
  const i = key.indexOf('\u0000')
  return i === -1 ? key : key.slice(0, i)
}

/** Render-cache key of one version's serialised manifest (`RenderCache.manifest`). */
export function manifestKey(name: string, rev: string, version: string, baseUrl: string): string {
  return `${name}\u0000${rev}\u0000m:${version}\u0000${baseUrl}`
}

function bodyBytes(v: RenderedBody): number {
  return (v.identity?.length ?? 0) + v.gzip.length + (v.br?.length ?? 0) + 256
}

function stateBytes(s: StoredPackument): number {
  let n = 512
  for (const v of s.versions) n += v.manifest.length + (v.readme?.length ?? 0) + 256
  return n
}
