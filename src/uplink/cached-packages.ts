/**
 * Reads of names that are not local, served from uplinks' cached data (docs/protocol.md §2, and
 * docs/architecture.md, "GET flow"): the registry's `UplinkReads`. The registry asks here only
 * after its read gate admitted the caller and after finding no local package.
 *
 * No dependency confusion: only names whose `packages` rule lists uplinks are proxied, never a
 * scope listed in `private_scopes` nor a scope with any local package; a local name never gets
 * here at all.
 *
 * Packuments render through the same cache of pre-serialised bytes as local ones, keyed by the
 * cached copy's revision. Tarballs stream from the uplink to the client while being verified
 * against the manifest's integrity and kept; only a verified body is committed to the blob store.
 * A tarball is never read whole before the client gets its first bytes (without a Content-Length
 * it goes out chunked); the copy kept for the blob store is bounded per tarball (`MAX_KEPT`) and
 * across all downloads in flight (`MAX_KEPT_TOTAL`): beyond, the tarball is served, not cached.
 *
 * Every map here is bounded: by entries (`localScopes`, `present`), by bytes (`searches`), by the
 * downloads in flight (`downloads`), or by the cached packuments' lifetime (`answers`, a WeakMap).
 */
import { pipeline, type Readable } from 'node:stream'
import { LRUCache } from 'lru-cache'
import { cachedTarballKey } from '../registry/blob-keys.js'
import { notFound, RegistryError } from '../registry/errors.js'
import { expectedDigest, type ExpectedDigest } from '../registry/integrity.js'
import { asPackageName, scopeOf } from '../registry/names.js'
import { abbreviate } from '../registry/packument.js'
import type { PackageRules } from '../registry/package-rules.js'
import { renderBody, renderKey, type RenderedBody } from '../registry/render.js'
import type { BlobStore } from '../registry/stores.js'
import { SMALL_TARBALL, type TarballData, type TarballLookup } from '../registry/tarball.js'
import type { SearchObject, SearchQuery } from '../registry/search.js'
import type { Manifest, Packument } from '../registry/types.js'
import type { PeekedTarball, UplinkReads, UplinkReadsShared } from '../registry/uplink-reads.js'
import { rewritePackument, type UplinkTarball } from './rewrite.js'
import type { CachedPackument, UplinkCache, UplinkLog } from './uplink-cache.js'
import { UplinkError, type Uplink } from './uplink.js'
import { IntegrityError, KeepBudget, VerifyingTee } from './verifying-tee.js'

/** Sent with cached data the uplink could not confirm (RFC 7234 §5.5, warn-code 110). */
export const STALE_WARNING = '110 - "Response is Stale"'
/** Largest tarball kept while streaming (bigger ones are verified and served, not cached), bytes. */
const MAX_KEPT = 256 * 1024 * 1024
/** Most bytes kept at once by all the downloads in flight (past it, further tarballs are served, not cached). */
const MAX_KEPT_TOTAL = 512 * 1024 * 1024
/** Memory for the uplink's search answers, bytes (as JSON). */
const SEARCH_BYTES = 16 * 1024 * 1024
/** How long "this scope has no local package" is believed (another node may publish one), ms. */
const LOCAL_SCOPE_TTL = 10_000
/** A tarball missing from a cached packument triggers a revalidation only if the copy is older, ms. */
const MISSING_TARBALL_REVALIDATE = 10_000
/** How long an uplink's search answer is reused, ms. */
const SEARCH_TTL = 60_000
/** How long a failed uplink search is not retried (searches are then answered locally), ms. */
const SEARCH_FAILURE_TTL = 5_000
/** A search's answer when the uplink has nothing (or is not asked). */
const NO_HITS: { objects: SearchObject[]; total: number } = Object.freeze({ objects: [], total: 0 }) as { objects: SearchObject[]; total: number }

/** Where a cached tarball comes from. */
export interface CachedTarballSource {
  name: string
  uplink: Uplink
  tarball: UplinkTarball
  expected: ExpectedDigest | undefined
}

/** The lookup answered for a cached tarball, shared by the requests for it. */
interface CachedTarballAnswer extends TarballLookup {
  readonly origin: 'uplink'
  readonly source: CachedTarballSource
}

/** What the cached read path needs besides what the registry shares. */
export interface CachedPackagesDeps extends UplinkReadsShared {
  cache: UplinkCache
  uplinks: ReadonlyMap<string, Uplink>
  rules: PackageRules
  blobs: BlobStore
  log: UplinkLog
  /** How long "this scope has no local package" is believed, ms (default 10 s; on a shared store, the staleness bound). */
  localScopeTtlMs?: number | undefined
  /** How long a search may wait for the uplink, ms (`search.timeout`, default 2000). */
  searchTimeoutMs?: number | undefined
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

/** An uplink failure as the client sees it: 504 for a timeout, 502 otherwise. */
function unavailable(e: unknown, name: string): unknown {
  if (!(e instanceof UplinkError)) return e
  const code = e.failure === 'timeout' ? 'UPLINK_TIMEOUT' : 'UPLINK_UNAVAILABLE'
  return new RegistryError(code, `${e.message}, and nothing is cached for "${name}".`)
}

const isAnswer = (t: TarballLookup): t is CachedTarballAnswer => t.origin === 'uplink' && 'source' in t

/** Reads served from uplinks (the registry's `UplinkReads`). */
export class CachedPackages implements UplinkReads {
  /** scope → whether it has a local package (`until`: when to ask the store again). */
  private readonly localScopes = new LRUCache<string, { local: boolean; until: number }>({ max: 10_000 })
  /** Blob keys of cached tarballs known to be in the blob store → size, bytes. */
  private readonly present = new LRUCache<string, number>({ max: 100_000 })
  /** The answer of `tarball` per tarball of a cached packument (dropped with the packument). */
  private readonly answers = new WeakMap<UplinkTarball, CachedTarballAnswer>()
  /** Uplink tarball downloads in flight, by blob key: concurrent requests share one (removed as each ends). */
  private readonly downloads = new Map<string, Promise<DownloadOutcome>>()
  /** The uplink's search answers, by uplink, size, from and text (a failure is remembered briefly too). */
  private readonly searches: LRUCache<string, { objects: SearchObject[]; total: number }, { uplink: Uplink; q: SearchQuery }>
  /** Bytes the downloads in flight keep for the blob store, all together. */
  private readonly kept = new KeepBudget(MAX_KEPT_TOTAL)

  constructor(private readonly d: CachedPackagesDeps) {
    this.searches = new LRUCache({
      max: 1000,
      maxSize: SEARCH_BYTES,
      sizeCalculation: (v, key) => (v === NO_HITS ? 0 : JSON.stringify(v.objects).length) + key.length + 64,
      ttl: SEARCH_TTL,
      fetchMethod: (_key, _stale, { context, options }) =>
        this.askSearch(context.uplink, context.q).catch((e: unknown) => {
          this.d.log.warn({ uplink: context.uplink.name, err: (e as Error).message }, 'uplink search failed: local hits only')
          options.ttl = SEARCH_FAILURE_TTL
          return NO_HITS
        }),
    })
  }

  /** How full each in-memory map is (entries; bytes when bounded by bytes), for `GET /-/health`'s details. */
  cacheSizes(): Record<string, { entries: number; bytes?: number; max: number }> {
    return {
      ...this.d.cache.sizes(),
      uplink_local_scopes: { entries: this.localScopes.size, max: this.localScopes.max },
      uplink_stored_tarballs: { entries: this.present.size, max: this.present.max },
      uplink_searches: { entries: this.searches.size, bytes: this.searches.calculatedSize, max: this.searches.maxSize },
      uplink_downloads: { entries: this.downloads.size, bytes: this.kept.used, max: this.kept.max },
    }
  }

  async mayAsk(name: string): Promise<boolean> {
    if (this.d.rules.uplinksFor(name).length === 0) return false
    const scope = scopeOf(name)
    return scope === undefined || !(await this.scopeIsLocal(scope))
  }

  async search(q: SearchQuery): Promise<{ objects: SearchObject[]; total: number }> {
    const first = this.d.rules.proxiedUplinks()[0]
    const uplink = first === undefined ? undefined : this.d.uplinks.get(first)
    if (!uplink || (await this.mentionsPrivateScope(q.text))) return NO_HITS
    return (await this.searches.fetch(`${uplink.name}\u0000${q.size}\u0000${q.from}\u0000${q.text}`, { context: { uplink, q } })) ?? NO_HITS
  }

  /** Asks the uplink's search; keeps the hits the rules would proxy from that uplink. */
  private async askSearch(uplink: Uplink, q: SearchQuery): Promise<{ objects: SearchObject[]; total: number }> {
    const r = await uplink.search(q, { timeoutMs: this.d.searchTimeoutMs ?? 2000 })
    const objects: SearchObject[] = []
    for (const o of r.objects) {
      const name = (o as { package?: { name?: unknown } } | null)?.package?.name
      if (typeof name !== 'string' || !asPackageName(name) || !this.d.rules.uplinksFor(name).includes(uplink.name)) continue
      const scope = scopeOf(name)
      if (scope !== undefined && (await this.scopeIsLocal(scope))) continue
      objects.push(o as SearchObject)
    }
    return { objects, total: r.total }
  }

  /**
   * Whether a search text names a scope that must not go upstream: `@scope/…`, `@scope` or npm's
   * `scope:` qualifier, for a private scope, a scope no rule proxies, or one with a local package.
   */
  private async mentionsPrivateScope(text: string): Promise<boolean> {
    const scopes = new Set<string>()
    for (const m of text.matchAll(/(?:^|\s)@([^\s/@]+)/g)) scopes.add(`@${m[1] ?? ''}`)
    for (const m of text.matchAll(/(?:^|\s)scope:@?([^\s/@]+)/g)) scopes.add(`@${m[1] ?? ''}`)
    for (const scope of scopes) {
      if (this.d.rules.uplinksFor(`${scope}/x`).length === 0 || (await this.scopeIsLocal(scope))) return true
    }
    return false
  }

  localWrite(name: string): void {
    const scope = scopeOf(name)
    if (scope) this.localScopes.set(scope, { local: true, until: Infinity })
  }

  async packumentBody(name: string, abbreviated: boolean, baseUrl: string): Promise<RenderedBody | undefined> {
    const hit = await this.lookup(name)
    if (!hit) return undefined
    const { entry } = hit
    const body = await this.d.body(renderKey(name, entry.rev, abbreviated, baseUrl), () => {
      const doc = this.document(entry, baseUrl)
      return renderBody(abbreviated ? abbreviate(doc) : doc, name, entry.rev, abbreviated, baseUrl, Date.parse(entry.modified))
    })
    if (!body || !hit.stale) return body
    return { ...body, stale: true }
  }

  async manifest(name: string, spec: string, baseUrl: string): Promise<Manifest> {
    const hit = await this.lookup(name)
    if (!hit) throw notFound()
    const doc = this.document(hit.entry, baseUrl)
    const m = doc.versions[doc['dist-tags'][spec] ?? spec]
    if (!m) throw notFound(`version not found: ${spec}`)
    return m
  }

  async tarball(name: string, file: string): Promise<TarballLookup | undefined> {
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
      answer = { origin: 'uplink', key, integrity, size: undefined, source: { name, uplink: hit.uplink, tarball: t, expected } }
      this.answers.set(t, answer)
    }
    this.learnSize(answer)
    return answer
  }

  /** Sets an answer's size once its blob is known to be stored; from then on it is final. */
  private learnSize(answer: CachedTarballAnswer): void {
    if (answer.size !== undefined || !answer.key) return
    answer.size = this.d.tarballBytes.get(answer.key)?.length ?? this.present.get(answer.key)
  }

  /**
   * A fresh copy is never stale, so no Warning applies: the fast path needs the scope known not
   * to be local, the first uplink's copy fresh, and the variant rendered.
   */
  peekPackumentBody(name: string, abbreviated: boolean, baseUrl: string): RenderedBody | undefined {
    const entry = this.peekEntry(name)
    return entry && this.d.peekBody(renderKey(name, entry.rev, abbreviated, baseUrl))
  }

  peekNotFound(name: string): boolean {
    const names = this.d.rules.uplinksFor(name)
    if (names.length === 0) return true
    const scope = scopeOf(name)
    if (scope !== undefined) {
      const local = this.knownLocal(scope)
      if (local !== false) return local === true
    }
    // As `lookup`: an uplink that is not configured is skipped; each other one must have said 404.
    return names.every((n) => {
      const up = this.d.uplinks.get(n)
      return up === undefined || this.d.cache.peekNotFound(name, up)
    })
  }

  peekTarball(name: string, file: string): PeekedTarball | undefined {
    const t = this.peekEntry(name)?.tarballs.get(file)
    const answer = t && this.answers.get(t)
    if (!answer) return undefined
    this.learnSize(answer)
    if (answer.size === undefined) return undefined
    const bytes = this.d.tarballBytes.get(answer.key)
    return bytes && { lookup: answer, bytes }
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

  isStored(t: TarballLookup): boolean {
    return t.key !== '' && this.present.has(t.key)
  }

  async tarballData(t: TarballLookup): Promise<TarballData> {
    if (!isAnswer(t)) throw notFound()
    if (!t.key) return this.download(t)
    const local = await this.stored(t)
    if (local) return local
    // Another request is already downloading this tarball: wait for its verified bytes.
    const shared = this.downloads.get(t.key)
    if (shared) {
      const outcome = await shared
      if ('bytes' in outcome) return { body: outcome.bytes, size: outcome.bytes.length }
      if ('error' in outcome) throw outcome.error
    } else if (this.present.has(t.key)) {
      // Committed by a download that ended while this request read the blob store.
      const now = await this.stored(t)
      if (now) return now
    }
    return this.download(t)
  }

  /** The tarball from memory or the blob store, or `undefined`. */
  private async stored(t: CachedTarballAnswer): Promise<TarballData | undefined> {
    const mem = this.d.tarballBytes.get(t.key)
    if (mem) return { body: mem, size: mem.length }
    const h = await this.d.blobs.get(t.key)
    if (!h) return undefined
    this.present.set(t.key, h.size)
    return { body: h.body, size: h.size }
  }

  /**
   * Downloads through a verifying tee, announcing the download in `downloads` (when its body can
   * be kept) so that concurrent requests for the same tarball wait for it instead of asking the
   * uplink again.
   */
  private download(t: CachedTarballAnswer): Promise<TarballData> {
    const shareable = t.key !== '' && t.source.expected !== undefined && t.source.uplink.cacheTarballs
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
  private async fetchVerified(t: CachedTarballAnswer, done: (o: DownloadOutcome) => void): Promise<TarballData> {
    const { name, uplink, tarball, expected } = t.source
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
      // A Content-Length beyond MAX_KEPT: verified and served, not kept (nor cached).
      const keep = uplink.cacheTarballs && (dl.size ?? 0) <= MAX_KEPT ? MAX_KEPT : 0
      const tee = new VerifyingTee(expected, keep, this.kept, async (bytes) => {
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
    // No Content-Length: streamed all the same (chunked to the client), never read whole first. A
    // failure (too large, corrupt, cut) destroys the stream: the client sees an aborted transfer.
    return { body: out, size: dl.size }
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
