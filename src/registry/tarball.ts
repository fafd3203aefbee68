/**
 * Tarball reads (`GET /:name/-/:file`, docs/protocol.md §2.3): finding the tarball of a file name,
 * its bytes (small ones from memory), and the blob store's signed URL when tarball GETs redirect
 * there (`storage.s3.redirect`). Names with no local package are asked of the uplinks.
 */
import type { Readable } from 'node:stream'
import { LRUCache } from 'lru-cache'
import { gone, notFound } from './errors.js'
import { tarballFileName } from './names.js'
import type { Packuments } from './packument.js'
import type { RenderCache } from './render-cache.js'
import type { BlobStore } from './stores.js'
import type { StoredPackument, StoredVersion } from './types.js'
import type { PeekedTarball, UplinkReads } from './uplink-reads.js'

/** Tarballs up to this size (bytes) are kept in memory once read. */
export const SMALL_TARBALL = 1024 * 1024

/** A tarball found for a file name, ready to serve. */
export interface TarballLookup {
  /** `local`: published here; `uplink`: a cached name's (the uplink reads know more of it). */
  readonly origin: 'local' | 'uplink'
  /** Blob key; '' for an uplink tarball whose manifest gives no digest (never stored). */
  readonly key: string
  /** SRI string of the bytes (the ETag is made of it). */
  readonly integrity: string
  /** Bytes, when known: always for a local tarball, for a cached one once it is stored. */
  size: number | undefined
}

/** The bytes of a tarball, and their length when known before streaming. */
export interface TarballData {
  body: Buffer | Readable
  size: number | undefined
}

/** What `Tarballs` reads with. */
export interface TarballsDeps {
  packuments: Packuments
  cache: RenderCache
  blobs: BlobStore
  uplinks: UplinkReads | undefined
  /** Small tarballs' bytes by blob key (shared with the uplink reads). */
  tarballBytes: LRUCache<string, Buffer>
  /** Seconds a signed tarball URL lives when tarball GETs redirect to the blob store; else undefined. */
  redirectSeconds: number | undefined
}

/** Tarball reads (behind the read gate: registry.ts calls these after `admit`). */
export class Tarballs {
  /** Tarball file name → version row, per cached package state (dropped with the state). */
  private readonly index = new WeakMap<StoredPackument, Map<string, StoredVersion>>()
  /** The lookup answered for a version row (rows are replaced, never mutated, on every write). */
  private readonly lookups = new WeakMap<StoredVersion, TarballLookup>()

  constructor(private readonly d: TarballsDeps) {}

  /** Whether tarball GETs answer with a redirect to the blob store (`storage.s3.redirect`). */
  get redirects(): boolean {
    return this.d.redirectSeconds !== undefined && this.d.blobs.signedUrl !== undefined
  }

  /**
   * Finds the tarball behind `/:name/-/:file`.
   * @throws RegistryError NOT_FOUND, GONE (the version was unpublished), UPLINK_*
   */
  async find(name: string, file: string): Promise<TarballLookup> {
    const state = await this.d.packuments.stateHaving(name, (s) => this.rows(name, s).has(file))
    if (!state) {
      const cached = await this.d.uplinks?.tarball(name, file)
      if (!cached) throw notFound()
      return cached
    }
    const row = this.rows(name, state).get(file)
    if (!row) throw notFound()
    if (row.unpublished) throw gone(`${name}@${row.version} was unpublished.`)
    return this.lookupOf(row)
  }

  /**
   * The tarball when its lookup and bytes are already in memory and tarballs are not redirected
   * to the blob store, else `undefined`. An unpublished or missing version is left to `find`
   * (410 / 404, and the re-read of a state that lacks the version). Synchronous (the fast path).
   */
  peek(name: string, file: string): PeekedTarball | undefined {
    if (this.redirects) return undefined
    const state = this.d.cache.peekState(name)
    if (state === undefined) return undefined
    if (state === null) return this.d.uplinks?.peekTarball(name, file)
    const row = this.rows(name, state).get(file)
    const lookup = row && !row.unpublished ? this.lookups.get(row) : undefined
    const bytes = lookup && this.d.tarballBytes.get(lookup.key)
    return lookup && bytes ? { lookup, bytes } : undefined
  }

  /**
   * Where to send the client instead of serving the bytes: a URL of the blob store valid
   * `redirectSeconds`, or `undefined` when Pier serves the bytes itself (no redirect configured,
   * or a cached tarball not yet known to be stored: `data` downloads it from its uplink).
   */
  async redirect(t: TarballLookup): Promise<string | undefined> {
    const seconds = this.d.redirectSeconds
    if (seconds === undefined || !this.d.blobs.signedUrl) return undefined
    if (t.origin === 'uplink' && !this.d.uplinks?.isStored(t)) return undefined
    return this.d.blobs.signedUrl(t.key, seconds)
  }

  /**
   * The bytes of a tarball: from memory when small (≤ `SMALL_TARBALL`), else a blob stream.
   * @throws RegistryError NOT_FOUND when the blob is missing from the store, UPLINK_*
   */
  async data(t: TarballLookup): Promise<TarballData> {
    if (t.origin === 'uplink' && this.d.uplinks) return this.d.uplinks.tarballData(t)
    const hit = this.d.tarballBytes.get(t.key)
    if (hit) return { body: hit, size: hit.length }
    if (t.size !== undefined && t.size <= SMALL_TARBALL) {
      const bytes = await this.d.blobs.read(t.key)
      if (!bytes) throw notFound('Tarball missing from storage.')
      this.d.tarballBytes.set(t.key, bytes)
      return { body: bytes, size: bytes.length }
    }
    const h = await this.d.blobs.get(t.key)
    if (!h) throw notFound('Tarball missing from storage.')
    return { body: h.body, size: h.size }
  }

  private lookupOf(row: StoredVersion): TarballLookup {
    let lookup = this.lookups.get(row)
    if (!lookup) {
      lookup = { origin: 'local', key: row.tarball_key, integrity: row.integrity, size: row.size }
      this.lookups.set(row, lookup)
    }
    return lookup
  }

  /** Tarball file name → version row of one cached state (built once per state). */
  private rows(name: string, state: StoredPackument): Map<string, StoredVersion> {
    let byFile = this.index.get(state)
    if (!byFile) {
      byFile = new Map(state.versions.map((v) => [tarballFileName(name, v.version), v]))
      this.index.set(state, byFile)
    }
    return byFile
  }
}
