/**
 * Reads of names that are not local, served from uplinks' cached data (REGISTRY-API.md §2, and
 * ARCHITECTURE.md GET flow step 5). The registry asks here only after finding no local package.
 *
 * No dependency confusion: only names whose `packages` rule lists uplinks are proxied, never a
 * scope listed in `private_scopes` nor a scope with any local package; a local name never gets
 * here at all.
 *
 * Packuments render through the same cache of pre-serialised bytes as local ones, keyed by the
 * cached copy's revision. Tarballs stream from the uplink to the client while being verified
 * against the manifest's integrity and kept; only a verified body is committed to the blob store.
 */
import { pipeline, type Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { LRUCache } from 'lru-cache'
import type { BlobStore } from '../storage/blobs/blob-store.js'
import { tarballKey } from '../storage/blobs/blob-store.js'
import { rewritePackument, type UplinkTarball } from '../uplink/rewrite.js'
import type { CachedPackument, UplinkCache, UplinkLog } from '../uplink/uplink-cache.js'
import { UplinkError, type Uplink } from '../uplink/uplink.js'
import { expectedDigest, IntegrityError, VerifyingTee, type ExpectedDigest } from '../uplink/verifying-tee.js'
import { notFound, RegistryError } from './errors.js'
import { scopeOf } from './names.js'
import { abbreviate } from './packument.js'
import type { PackageRules } from './package-rules.js'
import { renderBody, renderKey } from './render.js'
import type { RenderedBody } from './render-cache.js'
import type { Manifest, Packument } from './types.js'

/** Sent with cached data the uplink could not confirm (RFC 7234 warn-code 110). */
export const STALE_WARNING = '110 - "Response is Stale"'
/** Largest tarball kept while streaming (bigger ones are verified and served, not cached). */
const MAX_KEPT = 256 * 1024 * 1024
/** Tarballs up to this size are also kept in memory. */
const SMALL_TARBALL = 1024 * 1024
/** How long "this scope has no local package" is believed (another node may publish one). */
const LOCAL_SCOPE_TTL = 10_000
/** A tarball missing from a cached packument triggers a revalidation only if the copy is older. */
const MISSING_TARBALL_REVALIDATE = 10_000

/** Where a cached tarball comes from. */
export interface CachedTarballSource {
  name: string
  uplink: Uplink
  tarball: UplinkTarball
  expected: ExpectedDigest | undefined
}

/** The registry's tarball lookup, as far as this file uses it (`size` is set by `tarballData`). */
interface CachedTarballLookup {
  key: string
  size: number
  cached?: CachedTarballSource
}

/** The lookup answered for a cached tarball, shared by the requests for it. */
interface CachedTarballAnswer {
  key: string
  size: number
  integrity: string
  cached: CachedTarballSource
  /** Response headers, set once the blob is stored (its size known): the route's fast path. */
  headers?: Record<string, string>
}

/** What the cached read path needs from the registry and the wiring. */
export interface CachedPackagesDeps {
  cache: UplinkCache
  uplinks: ReadonlyMap<string, Uplink>
  rules: PackageRules
  scopeHasPackages(scope: string): Promise<boolean>
  blobs: BlobStore
  /** The render cache: a variant by key, rendered once. */
  body(key: string, render: () => Promise<RenderedBody | undefined>): Promise<RenderedBody | undefined>
  /** The render cache's variant when already rendered, without rendering (the fast path). */
  peekBody(key: string): RenderedBody | undefined
  /** The registry's memory cache of small tarballs, by blob key. */
  tarballBytes: LRUCache<string, Buffer>
  log: UplinkLog
  /** How long "this scope has no local package" is believed, ms (default 10 s; on a shared store, the staleness bound). */
  localScopeTtlMs?: number
}

/**
 * How a shared uplink download ended, for the requests that waited on it: the verified bytes, an
 * error every waiter gets too, or `retry` (the body was not kept, or the first client left before
 * the end) meaning each waiter downloads for itself.
 */
type DownloadOutcome = { bytes: Buffer } | { error: unknown } | { retry: true }

/** A cached packument found for a name. */
interface Hit {
  entry: CachedPackument
  stale: boolean
  uplink: Uplink
}

/** The blob key of a verified tarball: content-addressed by the manifest's digest. */
export function cachedTarballKey(e: ExpectedDigest): string {
  const hex = Buffer.from(e.digests[0] ?? '', 'base64').toString('hex')
  return e.algorithm === 'sha512' ? tarballKey(hex) : `tarballs/${e.algorithm}/${hex.slice(0, 2)}/${hex}.tgz`
}

/** An uplink failure as the client sees it: 504 for a timeout, 502 otherwise. */
function unavailable(e: unknown, name: string): unknown {
  if (!(e instanceof UplinkError)) return e
  const code = e.failure === 'timeout' ? 'UPLINK_TIMEOUT' : 'UPLINK_UNAVAILABLE'
  return new RegistryError(code, `${e.message}, and nothing is cached for "${name}".`)
}

/** Reads served from uplinks. */
export class CachedPackages {
  /** scope → whether it has a local package (`until`: when to ask the store again). */
  private readonly localScopes = new Map<string, { local: boolean; until: number }>()
  /** Blob keys of cached tarballs known to be in the blob store → size. */
  private readonly present = new LRUCache<string, number>({ max: 100_000 })
  /** The answer of `tarball` per tarball of a cached packument (dropped with the packument). */
  private readonly answers = new WeakMap<UplinkTarball, CachedTarballAnswer>()
  /** Uplink tarball downloads in flight, by blob key: concurrent requests share one. */
  private readonly downloads = new Map<string, Promise<DownloadOutcome>>()

  constructor(private readonly d: CachedPackagesDeps) {}

  /** Call after a local publish of `name`: its scope stops proxying at once. */
  localPublished(name: string): void {
    const scope = scopeOf(name)
    if (scope) this.localScopes.set(scope, { local: true, until: Infinity })
  }

  /** The rendered packument, or `undefined` (404). @throws RegistryError UPLINK_* when the uplink fails and nothing is cached */
  async packumentBody(name: string, abbreviated: boolean, baseUrl: string): Promise<RenderedBody | undefined> {
    const hit = await this.lookup(name)
    if (!hit) return undefined
    const { entry } = hit
    const body = await this.d.body(renderKey(name, entry.rev, abbreviated, baseUrl), () => {
      const doc = this.document(entry, baseUrl)
      return renderBody(abbreviated ? abbreviate(doc) : doc, entry.rev, abbreviated, baseUrl, entry.modified)
    })
    if (!body || !hit.stale) return body
    return { ...body, headers: { ...body.headers, warning: STALE_WARNING } }
  }

  /** One version's manifest by version or dist-tag. @throws RegistryError NOT_FOUND, UPLINK_* */
  async manifest(name: string, spec: string, baseUrl: string): Promise<Manifest> {
    const hit = await this.lookup(name)
    if (!hit) throw notFound()
    const doc = this.document(hit.entry, baseUrl)
    const m = doc.versions[doc['dist-tags'][spec] ?? spec]
    if (!m) throw notFound(`version not found: ${spec}`)
    return m
  }

  /**
   * Finds a cached name's tarball. `size` is known when the blob is already cached; otherwise
   * `tarballData` sets it.
   * @returns `undefined` when the name is not proxied or has no such tarball
   */
  async tarball(name: string, file: string): Promise<CachedTarballAnswer | undefined> {
    let hit = await this.lookup(name)
    if (!hit) return undefined
    let t = hit.entry.tarballs.get(file)
    if (!t && Date.now() - hit.entry.fetchedAt > MISSING_TARBALL_REVALIDATE) {
      // Published upstream after this copy was fetched (a lockfile may name it): ask once more.
      hit = await this.lookup(name, true)
      t = hit?.entry.tarballs.get(file)
    }
    if (!hit || !t) return undefined
    let answer = this.answers.get(t)
    if (!answer) {
      const expected = expectedDigest(t.integrity, t.shasum)
      const key = expected ? cachedTarballKey(expected) : ''
      const integrity = t.integrity ?? (expected ? `${expected.algorithm}-${expected.digests[0]}` : `${name}/${t.version}`)
      answer = { key, size: 0, integrity, cached: { name, uplink: hit.uplink, tarball: t, expected } }
      this.answers.set(t, answer)
    }
    this.setHeaders(answer)
    return answer
  }

  /** Sets an answer's response headers once its blob is known to be stored (its size known). */
  private setHeaders(answer: CachedTarballAnswer): void {
    if (answer.headers || !answer.key) return
    const size = this.d.tarballBytes.get(answer.key)?.length ?? this.present.get(answer.key)
    if (size === undefined) return
    answer.size = size
    answer.headers = {
      etag: `"${answer.integrity}"`,
      'cache-control': 'public, max-age=31536000, immutable',
      'content-type': 'application/octet-stream',
      'content-length': String(size),
    }
  }

  /**
   * The fast path's packument (fast-path.ts): the rendered body when everything needed is in
   * memory (the scope known not to be local, the first uplink's copy fresh, the variant
   * rendered), else `undefined` and the request takes the full path. A fresh copy is never
   * stale, so no Warning header applies.
   */
  peekPackumentBody(name: string, abbreviated: boolean, baseUrl: string): RenderedBody | undefined {
    const entry = this.peekEntry(name)
    return entry && this.d.peekBody(renderKey(name, entry.rev, abbreviated, baseUrl))
  }

  /**
   * The fast path's tarball: its response headers and bytes when both are in memory (the lookup
   * answered before, the bytes kept), else `undefined`.
   */
  peekTarball(name: string, file: string): { headers: Record<string, string>; bytes: Buffer } | undefined {
    const t = this.peekEntry(name)?.tarballs.get(file)
    const answer = t && this.answers.get(t)
    if (!answer) return undefined
    this.setHeaders(answer)
    if (!answer.headers) return undefined
    const bytes = this.d.tarballBytes.get(answer.key)
    return bytes && { headers: answer.headers, bytes }
  }

  /** The first uplink's fresh in-memory copy of a proxied name, as `lookup` would find it; no I/O. */
  private peekEntry(name: string): CachedPackument | undefined {
    const first = this.d.rules.uplinksFor(name)[0]
    const uplink = first === undefined ? undefined : this.d.uplinks.get(first)
    if (!uplink) return undefined
    const scope = scopeOf(name)
    if (scope !== undefined && this.knownLocal(scope) !== false) return undefined
    return this.d.cache.peekFresh(name, uplink)
  }

  /** Whether the blob of a cached tarball is known to be stored (so it may be redirected to). */
  isStored(key: string): boolean {
    return key !== '' && this.present.has(key)
  }

  /**
   * The bytes of a cached tarball: from memory or the blob store, else downloaded from the uplink
   * through a verifying tee. Sets `t.size`.
   * @throws RegistryError NOT_FOUND (the uplink has no such tarball), UPLINK_* (uplink failed)
   */
  async tarballData(t: CachedTarballLookup): Promise<Buffer | Readable> {
    if (!t.key) return this.download(t)
    const local = await this.stored(t)
    if (local) return local
    // Another request is already downloading this tarball: wait for its verified bytes.
    const shared = this.downloads.get(t.key)
    if (shared) {
      const outcome = await shared
      if ('bytes' in outcome) {
        t.size = outcome.bytes.length
        return outcome.bytes
      }
      if ('error' in outcome) throw outcome.error
    } else if (this.present.has(t.key)) {
      // Committed by a download that ended while this request read the blob store.
      const now = await this.stored(t)
      if (now) return now
    }
    return this.download(t)
  }

  /** The tarball from memory or the blob store (sets `t.size`), or `undefined`. */
  private async stored(t: CachedTarballLookup): Promise<Buffer | Readable | undefined> {
    const mem = this.d.tarballBytes.get(t.key)
    if (mem) {
      t.size = mem.length
      return mem
    }
    const h = await this.d.blobs.get(t.key)
    if (!h) return undefined
    t.size = h.size
    this.present.set(t.key, h.size)
    return h.body
  }

  /**
   * Downloads through a verifying tee, announcing the download in `downloads` (when its body can
   * be kept) so that concurrent requests for the same tarball wait for it instead of asking the
   * uplink again.
   */
  private download(t: CachedTarballLookup): Promise<Buffer | Readable> {
    const shareable = t.key !== '' && t.cached?.expected !== undefined && t.cached.uplink.cacheTarballs
    if (!shareable) return this.fetchVerified(t, () => undefined)
    let settle!: (o: DownloadOutcome) => void
    const key = t.key
    const outcome = new Promise<DownloadOutcome>((res) => (settle = res))
    this.downloads.set(key, outcome)
    let settled = false
    const done = (o: DownloadOutcome): void => {
      if (settled) return
      settled = true
      if (this.downloads.get(key) === outcome) this.downloads.delete(key)
      settle(o)
    }
    return this.fetchVerified(t, done).catch((e: unknown) => {
      done({ error: e })
      throw e
    })
  }

  /**
   * One uplink download. `done` hears how it ended: the verified bytes (after they are committed),
   * an error the client also gets, or `retry`.
   */
  private async fetchVerified(t: CachedTarballLookup, done: (o: DownloadOutcome) => void): Promise<Buffer | Readable> {
    if (!t.cached) throw notFound()
    const { name, uplink, tarball, expected } = t.cached
    let dl
    try {
      dl = await uplink.fetchTarball(tarball.url)
    } catch (e) {
      throw unavailable(e, `${name}@${tarball.version}`)
    }
    if (!dl) throw notFound(`The tarball of ${name}@${tarball.version} is not on uplink "${uplink.name}".`)
    const fields = { uplink: uplink.name, pkg: name, version: tarball.version }
    let out: Readable = dl.body
    if (expected) {
      const keep = uplink.cacheTarballs ? MAX_KEPT : 0
      const tee = new VerifyingTee(expected, keep, async (bytes) => {
        if (!bytes) return done({ retry: true })
        await this.commit(t.key, bytes, fields)
        done({ bytes })
      })
      out = pipeline(dl.body, tee, (err) => {
        if (!err) return
        if (err instanceof IntegrityError) {
          this.d.log.warn({ ...fields, err: err.message }, 'uplink tarball failed its integrity check: not cached')
          done({ error: new RegistryError('UPLINK_UNAVAILABLE', `uplink "${uplink.name}" sent a bad tarball for ${name}@${tarball.version}: ${err.message}`) })
          return
        }
        if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') {
          this.d.log.debug(fields, 'client left during an uplink tarball download: not cached')
          done({ retry: true })
          return
        }
        this.d.log.warn({ ...fields, err: err.message }, 'uplink tarball download failed: not cached')
        done({ error: new RegistryError('UPLINK_UNAVAILABLE', `uplink "${uplink.name}" failed while sending the tarball of ${name}@${tarball.version}: ${err.message}`) })
      })
    } else {
      this.d.log.warn(fields, 'uplink manifest has no integrity or shasum: tarball passed through, not cached')
    }
    if (dl.size !== undefined) {
      t.size = dl.size
      return out
    }
    // No Content-Length: take the whole (verified) body first, so the client gets a length too.
    try {
      const bytes = await buffer(out)
      t.size = bytes.length
      return bytes
    } catch (e) {
      throw new RegistryError('UPLINK_UNAVAILABLE', `uplink "${uplink.name}" sent a bad tarball for ${name}@${tarball.version}: ${(e as Error).message}`)
    }
  }

  /** Stores a verified tarball; a failure is logged (the client still gets its bytes). */
  private async commit(key: string, bytes: Buffer, fields: object): Promise<void> {
    try {
      await this.d.blobs.put(key, bytes)
      this.present.set(key, bytes.length)
      if (bytes.length <= SMALL_TARBALL) this.d.tarballBytes.set(key, bytes)
    } catch (e) {
      this.d.log.warn({ ...fields, err: (e as Error).message }, 'could not store a cached tarball')
    }
  }

  /**
   * For a name whose rule says `proxy_mode: redirect`: the URL of `path` on its first uplink, when
   * the guards let the name go upstream (not a private scope, no local package in its scope).
   * The caller has checked that the name is not local.
   */
  async redirect(name: string, path: string): Promise<string | undefined> {
    const first = this.d.rules.uplinksFor(name)[0]
    const uplink = first === undefined ? undefined : this.d.uplinks.get(first)
    if (!uplink) return undefined
    const scope = scopeOf(name)
    if (scope !== undefined && (await this.scopeIsLocal(scope))) return undefined
    return uplink.urlOf(path)
  }

  /** The cached packument of a proxied name from the first uplink that has it. */
  private async lookup(name: string, revalidate = false): Promise<Hit | undefined> {
    const names = this.d.rules.uplinksFor(name)
    if (names.length === 0) return undefined
    const scope = scopeOf(name)
    if (scope !== undefined && (await this.scopeIsLocal(scope))) return undefined
    let failure: unknown
    for (const n of names) {
      const uplink = this.d.uplinks.get(n)
      if (!uplink) continue
      try {
        const r = await this.d.cache.packument(name, uplink, { revalidate })
        if (r.kind === 'ok') return { entry: r.entry, stale: r.stale, uplink }
      } catch (e) {
        failure ??= e
      }
    }
    if (failure !== undefined) throw unavailable(failure, name)
    return undefined
  }

  /** Whether `scope` has a local package, as last asked of the store; `undefined` when not known (or expired). */
  private knownLocal(scope: string): boolean | undefined {
    const known = this.localScopes.get(scope)
    return known && Date.now() < known.until ? known.local : undefined
  }

  private async scopeIsLocal(scope: string): Promise<boolean> {
    const known = this.knownLocal(scope)
    if (known !== undefined) return known
    const local = await this.d.scopeHasPackages(scope)
    this.localScopes.set(scope, { local, until: local ? Infinity : Date.now() + (this.d.localScopeTtlMs ?? LOCAL_SCOPE_TTL) })
    return local
  }

  private document(entry: CachedPackument, baseUrl: string): Packument {
    return rewritePackument(entry.name, JSON.parse(entry.text) as Record<string, unknown>, baseUrl, entry.rev, new Date(entry.modified).toISOString())
  }
}
