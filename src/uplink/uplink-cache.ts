/**
 * Cached packuments of uplinks: in memory (LRU) and durably in the metadata store, so a restarted
 * Pier still serves them while the uplink is down.
 *
 * - Within the uplink's `maxage` a cached copy is served without any request.
 * - Past it, the copy is served at once and refreshed in the background (stale-while-revalidate),
 *   conditionally (ETag / Last-Modified), so an unchanged packument costs a 304.
 * - Concurrent misses of one name share one uplink request (coalescing).
 * - A 404 is remembered briefly (negative cache), so unknown names do not hit the uplink per GET.
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

interface NotFoundSlot {
  until: number
}
type Slot = CachedPackument | NotFoundSlot

const NOT_FOUND: CacheLookup = { kind: 'not-found' }
/** Longest time an uplink's 404 is remembered, ms (never longer than the uplink's maxage). */
export const NOT_FOUND_TTL = 30_000

const isNotFound = (s: Slot): s is NotFoundSlot => 'until' in s

/** Options of the cache. */
export interface UplinkCacheOptions {
  /** Memory for cached packument texts, bytes (default 128 MiB). */
  maxBytes?: number
}

/** The cache of every uplink's packuments. */
export class UplinkCache {
  private readonly entries: LRUCache<string, Slot>
  /** Loads and forced revalidations that callers wait for, per uplink and name. */
  private readonly inflight = new Map<string, Promise<CacheLookup>>()
  /** Background refreshes, per uplink and name. */
  private readonly refreshing = new Map<string, Promise<void>>()

  constructor(
    private readonly store: UplinkCacheStore,
    private readonly log: UplinkLog,
    opts: UplinkCacheOptions = {},
  ) {
    this.entries = new LRUCache({
      maxSize: opts.maxBytes ?? 128 * 1024 * 1024,
      sizeCalculation: (s) => (isNotFound(s) ? 64 : s.text.length + s.tarballs.size * 256 + 512),
    })
  }

  /**
   * The cached packument of `name` from `up`, fetching or refreshing it as needed.
   * @param o.revalidate ask the uplink now even when the copy is fresh (a tarball missing from it)
   * @throws UplinkError when nothing is cached and the uplink fails
   */
  packument(name: string, up: Uplink, o: { revalidate?: boolean } = {}): Promise<CacheLookup> {
    const key = `${up.name}\u0000${name}`
    const slot = this.entries.get(key)
    if (slot && !o.revalidate) {
      if (isNotFound(slot)) {
        if (Date.now() < slot.until) return Promise.resolve(NOT_FOUND)
      } else {
        return Promise.resolve(this.serve(key, slot, up))
      }
    }
    let p = this.inflight.get(key)
    if (!p) {
      p = this.load(key, name, up, slot && !isNotFound(slot) ? slot : undefined, o.revalidate === true).finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return p
  }

  /**
   * The cached packument of `name` from `up` when it is in memory and fresh (within `maxage`),
   * else `undefined`; never asks the uplink or the store. For the fast path (fast-path.ts).
   */
  peekFresh(name: string, up: Uplink): CachedPackument | undefined {
    const slot = this.entries.get(`${up.name}\u0000${name}`)
    if (!slot || isNotFound(slot) || Date.now() - slot.fetchedAt >= up.maxage) return undefined
    return slot
  }

  /** Waits for background refreshes (call before closing the store). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.refreshing.values(), ...this.inflight.values()])
  }

  /** A cached copy: fresh as is; stale served at once while a refresh starts. */
  private serve(key: string, entry: CachedPackument, up: Uplink): CacheLookup {
    if (Date.now() - entry.fetchedAt < up.maxage) return { kind: 'ok', entry, stale: false }
    this.refresh(key, entry, up)
    return { kind: 'ok', entry, stale: entry.failedAt > entry.fetchedAt }
  }

  private async load(key: string, name: string, up: Uplink, prev: CachedPackument | undefined, revalidate: boolean): Promise<CacheLookup> {
    let entry = prev
    if (!entry) {
      const row = await this.store.getCachedPackument(name, up.name)
      entry = row && this.fromRow(row)
      if (entry) {
        this.entries.set(key, entry)
        if (!revalidate) return this.serve(key, entry, up)
      }
    }
    try {
      return await this.fetch(key, name, up, entry)
    } catch (e) {
      if (!entry) throw e
      this.failed(entry, e)
      return { kind: 'ok', entry, stale: true }
    }
  }

  private refresh(key: string, entry: CachedPackument, up: Uplink): void {
    if (this.refreshing.has(key)) return
    const p = this.fetch(key, entry.name, up, entry).then(
      () => undefined,
      (e: unknown) => this.failed(entry, e),
    )
    this.refreshing.set(key, p)
    void p.finally(() => this.refreshing.delete(key))
  }

  private failed(entry: CachedPackument, e: unknown): void {
    entry.failedAt = Date.now()
    const ue = e instanceof UplinkError ? e : undefined
    const fields = { uplink: entry.uplink, pkg: entry.name, failure: ue?.failure ?? 'error', err: (e as Error).message }
    // An open circuit fails every request at once; its opening was already logged.
    if (ue?.failure === 'circuit-open') this.log.debug(fields, 'uplink skipped: serving the cached packument')
    else this.log.warn(fields, 'uplink failed: serving the cached packument')
  }

  /** Asks the uplink (conditionally when `prev` is given) and updates both halves of the cache. */
  private async fetch(key: string, name: string, up: Uplink, prev: CachedPackument | undefined): Promise<CacheLookup> {
    const r = await up.fetchPackument(name, { etag: prev?.etag, lastModified: prev?.lastModified })
    const result = await this.apply(key, name, up, prev, r)
    // Logged once both halves of the cache hold the answer.
    this.log.info({ uplink: up.name, pkg: name, result: r.kind, conditional: prev !== undefined }, 'uplink packument fetched')
    return result
  }

  private async apply(key: string, name: string, up: Uplink, prev: CachedPackument | undefined, r: PackumentFetch): Promise<CacheLookup> {
    const now = Date.now()
    if (r.kind === 'not-modified') {
      if (!prev) throw new UplinkError(up.name, 'invalid', `uplink "${up.name}" answered 304 to an unconditional request`)
      prev.fetchedAt = now
      await this.durably(() => this.store.touchCachedPackument(name, up.name, new Date(now).toISOString()), prev)
      return { kind: 'ok', entry: prev, stale: false }
    }
    if (r.kind === 'not-found') {
      this.entries.set(key, { until: now + Math.min(up.maxage, NOT_FOUND_TTL) })
      if (prev) await this.durably(() => this.store.deleteCachedPackument(name, up.name), prev)
      return NOT_FOUND
    }
    const parsed = parseUplinkPackument(name, r.text)
    if ('problem' in parsed) throw new UplinkError(up.name, 'invalid', `uplink "${up.name}" sent an unusable packument for "${name}": ${parsed.problem}`)
    const entry = this.build(name, up.name, r.text, parsed.doc, r.etag, r.lastModified, now)
    this.entries.set(key, entry)
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
    return { kind: 'ok', entry, stale: false }
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
