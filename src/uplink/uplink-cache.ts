/**
 * Cached packuments of uplinks: in memory (LRU) and durably in the metadata store, so a restarted
 * Pier still serves them while the uplink is down.
 *
 * - Within the uplink's `maxage` a cached copy is served without any request.
 * - Past it, the copy is served at once and refreshed in the background (stale-while-revalidate),
 *   conditionally (ETag / Last-Modified), so an unchanged packument costs a 304.
 * - Concurrent misses of one name share one uplink request (coalescing).
 * - A 404 is remembered briefly (negative cache), so unknown names do not hit the uplink per GET;
 *   at most `maxNotFound` of them (a flood of made-up names evicts the oldest, it does not grow
 *   memory).
 * - When a refresh fails the copy keeps being served, flagged `stale` (the route adds a Warning
 *   header) and logged; with nothing cached the UplinkError reaches the caller (502/504).
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { parseUplinkPackument, tarballIndex, type UplinkTarball } from './rewrite.js'
import { UplinkError, type PackumentFetch, type Uplink } from './uplink.js'

/** One uplink's packument of one name, as the durable half of the cache stores it. */
export interface CachedPackumentRow {
  name: string
  uplink: string
  /** The uplink's ETag and Last-Modified, sent back when revalidating. */
  etag: string | null
  last_modified: string | null
  /** When the uplink last confirmed this copy (ISO 8601). */
  fetched_at: string
  /** The packument JSON as the uplink sent it. */
  body: string
}

/** The durable half of the cache (implemented by the metadata store). */
export interface UplinkCacheStore {
  getCachedPackument(name: string, uplink: string): Promise<CachedPackumentRow | undefined>
  /** Inserts or replaces the row of (name, uplink). */
  putCachedPackument(row: CachedPackumentRow): Promise<void>
  /** Records a successful revalidation (304). */
  touchCachedPackument(name: string, uplink: string, fetchedAt: string): Promise<void>
  deleteCachedPackument(name: string, uplink: string): Promise<void>
}

/** Where cache events are logged (a pino logger fits). */
export interface UplinkLog {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

/** One uplink's packument of one name, as cached. */
export interface CachedPackument {
  name: string
  uplink: string
  /** Revision of this copy: a digest of its text, stable across restarts and nodes. */
  rev: string
  /** The packument JSON as the uplink sent it. */
  text: string
  etag: string | undefined
  lastModified: string | undefined
  /** When the uplink last confirmed this copy, ms since the epoch. */
  fetchedAt: number
  /** When a refresh last failed (0: never since fetchedAt was set). */
  failedAt: number
  /** HTTP date for Last-Modified: the document's `time.modified`, else the fetch time. */
  modified: string
  /** tarball file name → where to fetch it. */
  tarballs: Map<string, UplinkTarball>
}

/** Result of a lookup. */
export type CacheLookup =
  /** `stale`: past `maxage` and the last refresh failed (serve with a Warning header). */
  | { kind: 'ok'; entry: CachedPackument; stale: boolean }
  | { kind: 'not-found' }

/** A remembered 404 of an uplink. */
interface NotFoundSlot {
  notFound: true
}
type Slot = CachedPackument | NotFoundSlot

const NOT_FOUND: CacheLookup = { kind: 'not-found' }
const NOT_FOUND_SLOT: NotFoundSlot = { notFound: true }
/** Longest time an uplink's 404 is remembered, ms (never longer than the uplink's maxage). */
export const NOT_FOUND_TTL = 30_000
/** Default bound of the negative cache, entries (each costs some 200 bytes). */
export const MAX_NOT_FOUND = 10_000

const isNotFound = (s: Slot): s is NotFoundSlot => 'notFound' in s

/** What a load of one key needs (lru-cache's fetch `context`). */
interface LoadContext {
  name: string
  up: Uplink
  /** A forced revalidation (a tarball missing from the copy): do not serve the durable copy unasked. */
  revalidate: boolean
}

/** Options of the cache. */
export interface UplinkCacheOptions {
  /** Memory for cached packument texts, bytes (default 128 MiB). */
  maxBytes?: number
  /** Most uplink 404s remembered at once, entries (default `MAX_NOT_FOUND`). */
  maxNotFound?: number
}

/**
 * The cache of every uplink's packuments: an lru-cache `fetch()` cache, keyed by uplink and name.
 * Each entry lives `maxage`; a stale entry is returned at once while lru-cache refreshes it in the
 * background (`allowStale`), one refresh per key at a time, and a refresh that fails leaves the
 * stale entry in place (`allowStaleOnFetchRejection`). A 404 of a name with nothing cached goes to
 * a separate LRU bounded by entries (`maxNotFound`), for at most `NOT_FOUND_TTL`.
 */
export class UplinkCache {
  private readonly entries: LRUCache<string, Slot, LoadContext>
  /** Remembered 404s, by the same key as `entries`; the value is unused (lru-cache needs one). */
  private readonly notFound: LRUCache<string, true>
  /** Loads in flight (to wait for at close; lru-cache itself coalesces them per key). */
  private readonly pending = new Set<Promise<unknown>>()

  constructor(
    private readonly store: UplinkCacheStore,
    private readonly log: UplinkLog,
    opts: UplinkCacheOptions = {},
  ) {
    this.notFound = new LRUCache<string, true>({ max: opts.maxNotFound ?? MAX_NOT_FOUND, ttl: NOT_FOUND_TTL })
    this.entries = new LRUCache<string, Slot, LoadContext>({
      maxSize: opts.maxBytes ?? 128 * 1024 * 1024,
      sizeCalculation: (s, key) => (isNotFound(s) ? key.length + 128 : s.text.length + s.tarballs.size * 256 + 512),
      allowStale: true,
      noDeleteOnStaleGet: true,
      allowStaleOnFetchRejection: true,
      fetchMethod: (key, stale, { context, options }) => {
        const p = this.load(key, context, stale, options)
        this.pending.add(p)
        void p.then(
          () => this.pending.delete(p),
          () => this.pending.delete(p),
        )
        return p
      },
    })
  }

  /**
   * The cached packument of `name` from `up`, fetching or refreshing it as needed.
   * @param o.revalidate ask the uplink now even when the copy is fresh (a tarball missing from it)
   * @throws UplinkError when nothing is cached and the uplink fails
   */
  async packument(name: string, up: Uplink, o: { revalidate?: boolean } = {}): Promise<CacheLookup> {
    const key = `${up.name}\u0000${name}`
    const revalidate = o.revalidate === true
    // A remembered 404 (lru-cache drops it once expired). An expired 404 is asked again and waited
    // for: a failure then is the caller's, not a stale 404.
    if (this.notFound.get(key) !== undefined) return NOT_FOUND
    const current = this.entries.peek(key, { allowStale: true })
    const entry = current !== undefined && !isNotFound(current)
    const slot = await this.entries.fetch(key, {
      context: { name, up, revalidate },
      forceRefresh: revalidate,
      allowStale: !revalidate && (current === undefined || entry),
      // Only an entry is something to fall back on; with none, the uplink's failure is the answer.
      allowStaleOnFetchRejection: entry,
    })
    if (!slot || isNotFound(slot)) return NOT_FOUND
    const fresh = Date.now() - slot.fetchedAt < up.maxage
    return { kind: 'ok', entry: slot, stale: !fresh && slot.failedAt > slot.fetchedAt }
  }

  /**
   * The cached packument of `name` from `up` when it is in memory and fresh (within `maxage`),
   * else `undefined`; never asks the uplink or the store. For the fast path (fast-path.ts).
   */
  peekFresh(name: string, up: Uplink): CachedPackument | undefined {
    const slot = this.entries.get(`${up.name}\u0000${name}`, { allowStale: true })
    if (!slot || isNotFound(slot) || Date.now() - slot.fetchedAt >= up.maxage) return undefined
    return slot
  }

  /**
   * Whether `up`'s 404 for `name` is remembered (and not expired), so `packument` would answer
   * not-found without asking anyone; never asks the uplink or the store. For the fast path.
   */
  peekNotFound(name: string, up: Uplink): boolean {
    return this.notFound.get(`${up.name}\u0000${name}`) !== undefined
  }

  /** How full the two halves in memory are: packuments (bytes) and remembered 404s (entries). */
  sizes(): { uplink_packuments: { entries: number; bytes: number; max: number }; uplink_not_found: { entries: number; max: number } } {
    return {
      uplink_packuments: { entries: this.entries.size, bytes: this.entries.calculatedSize, max: this.entries.maxSize },
      uplink_not_found: { entries: this.notFound.size, max: this.notFound.max },
    }
  }

  /** Waits for loads and background refreshes (call before closing the store). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending])
  }

  /** Milliseconds an entry has left within its uplink's `maxage` (at least 1: then it is stale). */
  private ttlOf(entry: CachedPackument, up: Uplink): number {
    return Math.max(1, Math.round(up.maxage - (Date.now() - entry.fetchedAt)))
  }

  /**
   * lru-cache's `fetchMethod`. Cold (nothing in memory): the durable copy is served as it is,
   * refreshed right after when past `maxage`; without one, the uplink is asked. Warm (`stale` is
   * the entry being refreshed): the uplink is asked conditionally. A failure with an entry to fall
   * back on marks it failed (the Warning header) and, warm, rejects, so lru-cache keeps it. A 404
   * goes to the negative cache; `undefined` (nothing kept here) unless it replaces an entry.
   */
  private async load(key: string, ctx: LoadContext, stale: Slot | undefined, options: { ttl?: number }): Promise<Slot | undefined> {
    const { name, up } = ctx
    let prev = stale && !isNotFound(stale) ? stale : undefined
    if (!stale) {
      const row = await this.store.getCachedPackument(name, up.name)
      prev = row && this.fromRow(row)
      if (prev && !ctx.revalidate) {
        options.ttl = this.ttlOf(prev, up)
        if (Date.now() - prev.fetchedAt >= up.maxage) this.refreshSoon(key, ctx)
        return prev
      }
    }
    try {
      const r = await up.fetchPackument(name, { etag: prev?.etag, lastModified: prev?.lastModified })
      const slot = await this.apply(name, up, prev, r)
      // Logged once the durable half holds the answer (the memory half takes it as this returns).
      this.log.info({ uplink: up.name, pkg: name, result: r.kind, conditional: prev !== undefined }, 'uplink packument fetched')
      if (isNotFound(slot)) {
        const ttl = Math.max(1, Math.min(up.maxage, NOT_FOUND_TTL))
        this.notFound.set(key, true, { ttl })
        // Nothing was cached: nothing to keep (lru-cache drops the key). A cached entry that the
        // uplink no longer has is replaced by a 404 slot, as lru-cache would otherwise keep it.
        if (!stale) return undefined
        options.ttl = ttl
        return slot
      }
      options.ttl = this.ttlOf(slot, up)
      return slot
    } catch (e) {
      if (!prev) throw e
      this.failed(prev, e)
      if (stale) throw e
      options.ttl = this.ttlOf(prev, up)
      return prev
    }
  }

  /** Starts a background refresh of `key` once the current load has put its answer in the cache. */
  private refreshSoon(key: string, ctx: LoadContext): void {
    setImmediate(() => void this.entries.fetch(key, { context: { ...ctx, revalidate: false }, forceRefresh: true, allowStale: true }))
  }

  private failed(entry: CachedPackument, e: unknown): void {
    entry.failedAt = Date.now()
    const ue = e instanceof UplinkError ? e : undefined
    const fields = { uplink: entry.uplink, pkg: entry.name, failure: ue?.failure ?? 'error', err: (e as Error).message }
    // An open circuit fails every request at once; its opening was already logged.
    if (ue?.failure === 'circuit-open') this.log.debug(fields, 'uplink skipped: serving the cached packument')
    else this.log.warn(fields, 'uplink failed: serving the cached packument')
  }

  /** Applies an uplink's answer to the durable half; returns the slot for the memory half. */
  private async apply(name: string, up: Uplink, prev: CachedPackument | undefined, r: PackumentFetch): Promise<Slot> {
    const now = Date.now()
    if (r.kind === 'not-modified') {
      if (!prev) throw new UplinkError(up.name, 'invalid', `uplink "${up.name}" answered 304 to an unconditional request`)
      prev.fetchedAt = now
      await this.durably(() => this.store.touchCachedPackument(name, up.name, new Date(now).toISOString()), prev)
      return prev
    }
    if (r.kind === 'not-found') {
      if (prev) await this.durably(() => this.store.deleteCachedPackument(name, up.name), prev)
      return NOT_FOUND_SLOT
    }
    const parsed = parseUplinkPackument(name, r.text)
    if ('problem' in parsed) throw new UplinkError(up.name, 'invalid', `uplink "${up.name}" sent an unusable packument for "${name}": ${parsed.problem}`)
    const entry = this.build(name, up.name, r.text, parsed.doc, r.etag, r.lastModified, now)
    await this.durably(
      () =>
        this.store.putCachedPackument({
          name,
          uplink: up.name,
          etag: entry.etag ?? null,
          last_modified: entry.lastModified ?? null,
          fetched_at: new Date(now).toISOString(),
          body: entry.text,
        }),
      entry,
    )
    return entry
  }

  /** Runs a store write; a failure is logged (the memory copy still serves). */
  private async durably(write: () => Promise<void>, entry: CachedPackument): Promise<void> {
    try {
      await write()
    } catch (e) {
      this.log.warn({ uplink: entry.uplink, pkg: entry.name, err: (e as Error).message }, 'could not store the cached packument')
    }
  }

  private fromRow(row: CachedPackumentRow): CachedPackument | undefined {
    const parsed = parseUplinkPackument(row.name, row.body)
    if ('problem' in parsed) {
      this.log.warn({ uplink: row.uplink, pkg: row.name, err: parsed.problem }, 'ignoring an unreadable cached packument')
      return undefined
    }
    const fetchedAt = Date.parse(row.fetched_at)
    return this.build(row.name, row.uplink, row.body, parsed.doc, row.etag ?? undefined, row.last_modified ?? undefined, Number.isNaN(fetchedAt) ? 0 : fetchedAt)
  }

  private build(
    name: string,
    uplink: string,
    text: string,
    doc: Record<string, unknown>,
    etag: string | undefined,
    lastModified: string | undefined,
    fetchedAt: number,
  ): CachedPackument {
    const time = doc.time as Record<string, unknown> | undefined
    const t = typeof time?.modified === 'string' ? Date.parse(time.modified) : Number.NaN
    const modified = new Date(Number.isNaN(t) ? (lastModified ? Date.parse(lastModified) || fetchedAt : fetchedAt) : t).toUTCString()
    const rev = `0-${createHash('sha1').update(text).digest('hex').slice(0, 20)}`
    return { name, uplink, rev, text, etag, lastModified, fetchedAt, failedAt: 0, modified, tarballs: tarballIndex(name, doc) }
  }
}
