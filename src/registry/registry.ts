/**
 * The registry service: every read and write of packages, in npm's terms. Routes call one method
 * each; this class talks to the metadata store, the blob store and the render cache, and owns the
 * publish/update semantics of REGISTRY-API.md §2–§3.
 *
 * Inside `meta.transaction` only `tx` may be used: on SQLite the transaction holds the one
 * connection, so a query through `meta` would wait for it forever.
 */
import { promisify } from 'node:util'
import { brotliCompress, constants as zlibConstants } from 'node:zlib'
import type { Readable } from 'node:stream'
import { LRUCache } from 'lru-cache'
import semver from 'semver'
import type { BlobStore } from '../storage/blobs/blob-store.js'
import { tarballKey } from '../storage/blobs/blob-store.js'
import type { MetaStore, MetaTx, PackageState } from '../storage/meta/meta-store.js'
import type { VersionRow } from '../storage/meta/schema.js'
import type { Uplink } from '../uplink/uplink.js'
import type { UplinkCache, UplinkLog } from '../uplink/uplink-cache.js'
import { AccessPolicy } from './access.js'
import { CachedPackages, type CachedTarballSource } from './cached-packages.js'
import { badRequest, gone, notFound, RegistryError, revConflict } from './errors.js'
import { tarballFileName } from './names.js'
import { abbreviate, buildPackument, liveVersions, renderManifest, revOf, sortVersions } from './packument.js'
import { planPublish } from './publish.js'
import type { PackageRules } from './package-rules.js'
import { identityOf, renderBody, renderKey } from './render.js'
import { RenderCache, type RenderedBody } from './render-cache.js'
import type { Manifest, Packument, Principal } from './types.js'

const brotliAsync = promisify(brotliCompress)

/** Registry behaviour switches from config. */
export interface RegistryOptions {
  /** Let a publish replace an existing or unpublished version (`settings.allow_previous_version`). */
  allowPreviousVersion: boolean
  /** `auth.type: none`: no credentials needed for anything. */
  open: boolean
  /** Bytes of memory for cached package states and for rendered packuments. */
  cacheBytes?: { states: number; bodies: number }
  /** Bound on serving a package state written by another node, ms (0: single node, no bound needed). */
  maxStalenessMs?: number
  /**
   * When set (and the blob store can sign URLs), tarball GETs redirect to a signed URL of the
   * store valid this many seconds instead of streaming through Pier (`storage.s3.redirect`).
   */
  tarballRedirectSeconds?: number | undefined
  /** `packages` rules: who reads, who publishes, which uplinks (default: all read, users publish, no uplinks). */
  rules?: PackageRules
  /** Proxying: names that are not local are read from these uplinks when the rules allow. */
  uplinks?: {
    cache: UplinkCache
    uplinks: ReadonlyMap<string, Uplink>
    log: UplinkLog
  }
}

/** Answer of a write: the package's `_rev` afterwards. */
export interface WriteResult {
  rev: string
  /** False when the request changed nothing (an idempotent retry). */
  changed: boolean
}

/** A tarball ready to stream. */
export interface TarballLookup {
  key: string
  /** Bytes; for a tarball not yet cached from an uplink, known once `tarballData` resolved. */
  size: number
  integrity: string
  /** Set for a name served from an uplink. */
  cached?: CachedTarballSource
  /**
   * For a local tarball: its response headers (etag, cache-control, content-type, content-length),
   * built once per cached package state so the tarball GET sets them in one call.
   */
  headers?: Record<string, string>
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The registry. */
export class Registry {
  readonly access: AccessPolicy
  private readonly cache: RenderCache
  /** Reads of names that are not local, from uplinks; `undefined` when proxying is off. */
  private readonly cached: CachedPackages | undefined
  /** Tarball file name → version row, per cached package state (dropped with the state). */
  private readonly tarballIndex = new WeakMap<PackageState, Map<string, VersionRow>>()
  /** The lookup answered for a version row (rows are replaced, never mutated, on every write). */
  private readonly tarballLookups = new WeakMap<VersionRow, TarballLookup>()
  /** Bytes of small tarballs (≤ 1 MiB each), keyed by blob key; blobs are immutable, so never stale. */
  private readonly tarballBytes = new LRUCache<string, Buffer>({ maxSize: 16 * 1024 * 1024, sizeCalculation: (b) => b.length + 64 })

  constructor(
    readonly meta: MetaStore,
    readonly blobs: BlobStore,
    private readonly opts: RegistryOptions,
  ) {
    this.access = new AccessPolicy(opts.open, opts.rules)
    this.cache = new RenderCache({
      maxStateBytes: opts.cacheBytes?.states ?? 32 * 1024 * 1024,
      maxBodyBytes: opts.cacheBytes?.bodies ?? 48 * 1024 * 1024,
      stateTtlMs: opts.maxStalenessMs ?? 0,
    })
    const u = opts.uplinks
    if (u && u.uplinks.size > 0) {
      this.cached = new CachedPackages({
        ...u,
        rules: this.access.rules,
        scopeHasPackages: (scope) => meta.scopeHasPackages(scope),
        blobs,
        body: (key, render) => this.cache.body(key, render),
        peekBody: (key) => this.cache.peekBody(key),
        tarballBytes: this.tarballBytes,
        // Another node may publish a scope's first package: believe "not local" no longer than the staleness bound.
        ...(opts.maxStalenessMs ? { localScopeTtlMs: opts.maxStalenessMs } : {}),
      })
    }
  }

  /**
   * Drops this node's cached state of `name` (another node wrote it), or of every package when no
   * name is given (the change notifications were interrupted, so some may have been missed).
   */
  forget(name?: string): void {
    if (name === undefined) this.cache.invalidateAll()
    else this.cache.invalidate(name)
  }

  /** Stored state of a package, from cache. `undefined` when never published. */
  state(name: string): Promise<PackageState | undefined> {
    return this.cache.state(name, () => this.meta.readPackage(name))
  }

  /**
   * The state of a local package, read again from the store when the cached copy lacks what the
   * request asks for (`has` is false) and other nodes share the store: a version published on
   * another node a moment ago is in its packument there, and an install that read that packument
   * asks this node for the manifest or tarball next. Names with no local package are not re-read
   * (proxied names would cost a database read each), so for those the staleness bound applies.
   */
  private async stateHaving(name: string, has: (s: PackageState) => boolean): Promise<PackageState | undefined> {
    const state = await this.state(name)
    if (!state || !this.opts.maxStalenessMs || has(state)) return state
    this.cache.invalidate(name)
    return this.state(name)
  }

  /**
   * The rendered packument for GET /:name.
   * @param abbreviated corgi form (Accept `application/vnd.npm.install-v1+json`)
   * @param baseUrl public base URL without trailing slash
   * @throws RegistryError NOT_FOUND when unknown or fully unpublished
   */
  async packumentBody(name: string, abbreviated: boolean, baseUrl: string): Promise<RenderedBody> {
    const body = await this.findPackumentBody(name, abbreviated, baseUrl)
    if (!body) throw notFound()
    return body
  }

  /** As `packumentBody`, but `undefined` instead of NOT_FOUND (the 404 path throws nothing). */
  async findPackumentBody(name: string, abbreviated: boolean, baseUrl: string): Promise<RenderedBody | undefined> {
    const state = await this.state(name)
    // Not local: an uplink's cached copy when the rules proxy this name (a local name never is).
    if (!state) return this.cached?.packumentBody(name, abbreviated, baseUrl)
    const rev = revOf(state)
    return this.cache.body(renderKey(name, rev, abbreviated, baseUrl), async () => {
      const doc = buildPackument(state, baseUrl)
      if (!doc) return undefined
      return renderBody(abbreviated ? abbreviate(doc) : doc, rev, abbreviated, baseUrl, new Date(state.pkg.modified).toUTCString())
    })
  }

  /**
   * The fast path's packument (src/http/fast-path.ts): the rendered body of GET /:name when the
   * package state and the variant are both in memory, else `undefined` (the full path then
   * loads, renders and caches them). Synchronous: no store read, no uplink request.
   */
  peekPackumentBody(name: string, abbreviated: boolean, baseUrl: string): RenderedBody | undefined {
    const state = this.cache.peekState(name)
    if (state === undefined) return undefined
    if (state === null) return this.cached?.peekPackumentBody(name, abbreviated, baseUrl)
    return this.cache.peekBody(renderKey(name, revOf(state), abbreviated, baseUrl))
  }

  /**
   * The fast path's tarball: response headers and bytes of GET /:name/-/:file when the answer
   * is already known and the bytes are held in memory (small tarballs, ≤ 1 MiB), and tarballs
   * are not redirected to the blob store; else `undefined`. An unpublished or missing version
   * is left to the full path (410 / 404, and the re-read of a state that lacks the version).
   */
  peekTarball(name: string, file: string): { headers: Record<string, string>; bytes: Buffer } | undefined {
    if (this.redirectsTarballs) return undefined
    const state = this.cache.peekState(name)
    if (state === undefined) return undefined
    if (state === null) return this.cached?.peekTarball(name, file)
    const row = this.tarballRows(name, state).get(file)
    const lookup = row && !row.unpublished ? this.tarballLookups.get(row) : undefined
    const bytes = lookup?.headers && this.tarballBytes.get(lookup.key)
    return lookup?.headers && bytes ? { headers: lookup.headers, bytes } : undefined
  }

  /** Brotli form of a rendered body, computed once (quality 5: fast, close to gzip -9 size). */
  async brotli(name: string, abbreviated: boolean, baseUrl: string, body: RenderedBody): Promise<Buffer> {
    if (body.br) return body.br
    body.br = await brotliAsync(await identityOf(body), { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } })
    const state = await this.state(name)
    if (state) this.cache.resize(renderKey(name, revOf(state), abbreviated, baseUrl), body)
    return body.br
  }

  /**
   * `proxy_mode: redirect`: where to send a GET of `path` (below the registry root) for a name
   * that is not local, or `undefined` to serve it here.
   */
  async uplinkRedirect(name: string, path: string): Promise<string | undefined> {
    if (!this.cached || !this.mayRedirect(name) || (await this.state(name))) return undefined
    return this.cached.redirect(name, path)
  }

  /** Whether `name`'s rule redirects to an uplink (cheap: the GET path asks before anything async). */
  mayRedirect(name: string): boolean {
    return this.cached !== undefined && this.access.rules.redirects(name)
  }

  /** Full packument read from the store, uncached (GET ?write=true before a write). */
  async packumentForWrite(name: string, baseUrl: string): Promise<Packument> {
    const state = await this.meta.readPackage(name)
    const doc = state && buildPackument(state, baseUrl)
    if (!doc) throw notFound()
    return doc
  }

  /**
   * One version's manifest, by version or dist-tag (GET /:name/:spec).
   * @throws RegistryError NOT_FOUND (unknown package, version or tag), GONE (unpublished version)
   */
  async manifest(name: string, spec: string, baseUrl: string): Promise<Manifest> {
    const state = await this.stateHaving(name, (s) => s.distTags[spec] !== undefined || s.versions.some((v) => v.version === spec))
    if (!state && this.cached) return this.cached.manifest(name, spec, baseUrl)
    if (!state) throw notFound()
    const version = state.distTags[spec] ?? spec
    const row = state.versions.find((v) => v.version === version)
    if (!row) throw notFound(`version not found: ${spec}`)
    if (row.unpublished) throw gone(`${name}@${version} was unpublished.`)
    return renderManifest(row, baseUrl, state.maintainers)
  }

  /**
   * Finds the tarball behind `/:name/-/:file`.
   * @throws RegistryError NOT_FOUND, GONE (the version was unpublished)
   */
  async tarball(name: string, file: string): Promise<TarballLookup> {
    const state = await this.stateHaving(name, (s) => this.tarballRows(name, s).has(file))
    if (!state) {
      const cached = await this.cached?.tarball(name, file)
      if (!cached) throw notFound()
      return cached
    }
    const row = this.tarballRows(name, state).get(file)
    if (!row) throw notFound()
    if (row.unpublished) throw gone(`${name}@${row.version} was unpublished.`)
    let lookup = this.tarballLookups.get(row)
    if (!lookup) {
      lookup = {
        key: row.tarball_key,
        size: row.size,
        integrity: row.integrity,
        headers: {
          etag: `"${row.integrity}"`,
          'cache-control': 'public, max-age=31536000, immutable',
          'content-type': 'application/octet-stream',
          'content-length': String(row.size),
        },
      }
      this.tarballLookups.set(row, lookup)
    }
    return lookup
  }

  /** Tarball file name → version row of one cached state (built once per state). */
  private tarballRows(name: string, state: PackageState): Map<string, VersionRow> {
    let byFile = this.tarballIndex.get(state)
    if (!byFile) {
      byFile = new Map(state.versions.map((v) => [tarballFileName(name, v.version), v]))
      this.tarballIndex.set(state, byFile)
    }
    return byFile
  }

  /**
   * Where to send a tarball GET instead of serving the bytes: a URL of the blob store valid
   * `tarballRedirectSeconds`, or `undefined` when Pier serves the bytes itself.
   */
  /** Whether tarball GETs may answer with a redirect to the blob store (`storage.s3.redirect`). */
  get redirectsTarballs(): boolean {
    return this.opts.tarballRedirectSeconds !== undefined && this.blobs.signedUrl !== undefined
  }

  async tarballRedirect(t: TarballLookup): Promise<string | undefined> {
    const seconds = this.opts.tarballRedirectSeconds
    if (seconds === undefined || !this.blobs.signedUrl) return undefined
    // A cached tarball not yet known to be stored is downloaded from its uplink by tarballData.
    if (t.cached && !this.cached?.isStored(t.key)) return undefined
    return this.blobs.signedUrl(t.key, seconds)
  }

  /**
   * The bytes of a tarball: from memory when small (≤ 1 MiB), else a file stream.
   * @throws RegistryError NOT_FOUND when the blob is missing from the store
   */
  async tarballData(t: TarballLookup): Promise<Buffer | Readable> {
    if (t.cached && this.cached) return this.cached.tarballData(t)
    const hit = this.tarballBytes.get(t.key)
    if (hit) return hit
    if (t.size <= 1024 * 1024) {
      const bytes = await this.blobs.read(t.key)
      if (!bytes) throw notFound('Tarball missing from storage.')
      this.tarballBytes.set(t.key, bytes)
      return bytes
    }
    const h = await this.blobs.get(t.key)
    if (!h) throw notFound('Tarball missing from storage.')
    return h.body
  }

  /**
   * Publishes one version (PUT /:name with `_attachments`). The tarball is stored before the
   * metadata transaction that references it, so a crash leaves at worst an unreferenced blob.
   * A retry with the identical tarball succeeds without change (npm retries PUT after 5xx).
   * @throws RegistryError BAD_REQUEST (see planPublish), UNAUTHENTICATED, FORBIDDEN,
   *   VERSION_EXISTS (409), GONE (410, version was unpublished)
   */
  async publish(name: string, body: Record<string, unknown>, principal: Principal, email?: string): Promise<WriteResult> {
    const writer = this.access.writer(principal)
    this.access.requirePublish(name, principal)
    const plan = await planPublish(body, name)
    const key = tarballKey(plan.sha512Hex)
    await this.blobs.put(key, plan.tarball)
    const now = new Date().toISOString()
    const manifest: Manifest = { ...plan.manifest, _npmUser: email ? { name: writer, email } : { name: writer } }
    const row: VersionRow = {
      name,
      version: plan.version,
      manifest: JSON.stringify(manifest),
      readme: plan.readme ?? null,
      readme_filename: plan.readmeFilename ?? null,
      integrity: plan.integrity,
      shasum: plan.shasum,
      tarball_key: key,
      size: plan.tarball.length,
      published: now,
      unpublished: null,
    }
    const result = await this.meta.transaction(async (tx) => {
      let pkg = await tx.getPackage(name)
      if (!pkg && (await tx.insertPackage(name, now))) {
        await tx.setMaintainers(name, [writer])
      } else {
        // Existing, or created by a concurrent publish (PostgreSQL) that committed first.
        pkg ??= await tx.getPackage(name)
        this.access.requireMaintainer(writer, name, await tx.getMaintainers(name))
      }
      const existing = await tx.getVersion(name, plan.version)
      if (existing) {
        if (existing.unpublished === null && existing.integrity === plan.integrity) {
          return { rev: `${pkg?.rev_seq}-${pkg?.rev_hash}`, changed: false }
        }
        if (!this.opts.allowPreviousVersion) {
          if (existing.unpublished !== null) {
            throw gone(`${name}@${plan.version} was unpublished and cannot be published again.`)
          }
          throw new RegistryError('VERSION_EXISTS', `You cannot publish over the previously published versions: ${plan.version}.`)
        }
        await tx.replaceVersion(row)
      } else {
        await tx.insertVersion(row)
      }
      for (const t of plan.tags) await tx.setDistTag(name, t, plan.version)
      const tags = await tx.getDistTags(name)
      if (!tags.latest) await tx.setDistTag(name, 'latest', plan.version)
      return { rev: await tx.bumpRev(name, now), changed: true }
    })
    if (result.changed) this.cache.invalidate(name)
    // Its scope now has a local package: it stops proxying at once.
    this.cached?.localPublished(name)
    return result
  }

  /**
   * A document write without attachments (PUT /:name or PUT /:name/-rev/:rev): deprecate and
   * undeprecate, star and unstar, owner changes, and unpublish of the versions missing from the
   * body (REGISTRY-API.md §3.2–3.3). Only differences from the stored state are applied.
   * @throws RegistryError NOT_FOUND, REV_CONFLICT (409), UNAUTHENTICATED, FORBIDDEN, BAD_REQUEST
   */
  async update(name: string, body: Record<string, unknown>, principal: Principal, urlRev?: string): Promise<WriteResult> {
    const writer = this.access.writer(principal)
    const now = new Date().toISOString()
    const result = await this.meta.transaction(async (tx) => {
      const pkg = await tx.getPackage(name)
      if (!pkg) throw notFound()
      const current = `${pkg.rev_seq}-${pkg.rev_hash}`
      const rev = urlRev ?? (typeof body._rev === 'string' ? body._rev : undefined)
      if (rev !== undefined && rev !== current) throw revConflict()
      const maintainers = await tx.getMaintainers(name)
      let changed = false
      if (isObject(body.users)) {
        await tx.setStar(name, writer, body.users[writer] === true)
        changed = true
      }
      if (isObject(body.versions)) {
        changed = (await this.applyVersionChanges(tx, name, body.versions, writer, maintainers, now)) || changed
      }
      if (Array.isArray(body.maintainers)) {
        changed = (await this.applyMaintainers(tx, name, body.maintainers, writer, maintainers)) || changed
      }
      if (!changed) return { rev: current, changed: false }
      return { rev: await tx.bumpRev(name, now), changed: true }
    })
    if (result.changed) this.cache.invalidate(name)
    return result
  }

  private async applyVersionChanges(
    tx: MetaTx,
    name: string,
    bodyVersions: Record<string, unknown>,
    writer: string,
    maintainers: string[],
    now: string,
  ): Promise<boolean> {
    const live = (await tx.listVersions(name)).filter((v) => v.unpublished === null)
    const removed = live.filter((v) => !(v.version in bodyVersions)).map((v) => v.version)
    let changed = false
    for (const row of live) {
      const m = bodyVersions[row.version]
      if (!isObject(m) || typeof m.deprecated !== 'string') continue
      const stored = JSON.parse(row.manifest) as Manifest
      const want = m.deprecated === '' ? undefined : m.deprecated
      if (stored.deprecated === want) continue
      this.access.requireMaintainer(writer, name, maintainers)
      if (want === undefined) delete stored.deprecated
      else stored.deprecated = want
      await tx.updateManifest(name, row.version, JSON.stringify(stored))
      changed = true
    }
    if (removed.length > 0) {
      this.access.requireMaintainer(writer, name, maintainers)
      if (removed.length === live.length) throw badRequest('Cannot remove every version this way: unpublish the whole package instead.')
      await this.unpublishVersions(tx, name, removed, live, now)
      changed = true
    }
    return changed
  }

  /** Marks versions unpublished, drops the tags that named them, and re-points `latest`. */
  private async unpublishVersions(tx: MetaTx, name: string, removed: string[], live: VersionRow[], now: string): Promise<void> {
    await tx.markUnpublished(name, removed, now)
    const tags = await tx.getDistTags(name)
    for (const [tag, v] of Object.entries(tags)) if (removed.includes(v)) await tx.deleteDistTag(name, tag)
    if (removed.includes(tags.latest ?? '')) {
      const remaining = sortVersions(live.filter((v) => !removed.includes(v.version)))
      const stable = remaining.filter((v) => !semver.prerelease(v.version))
      const next = (stable.at(-1) ?? remaining.at(-1))?.version
      if (next) await tx.setDistTag(name, 'latest', next)
    }
  }

  private async applyMaintainers(tx: MetaTx, name: string, list: unknown[], writer: string, maintainers: string[]): Promise<boolean> {
    const names = [...new Set(list.map((m) => (isObject(m) ? m.name : m)).filter((n): n is string => typeof n === 'string'))].sort()
    if (names.join('\n') === [...maintainers].sort().join('\n')) return false
    this.access.requireMaintainer(writer, name, maintainers)
    if (names.length === 0) throw badRequest('A package must keep at least one maintainer.')
    for (const n of names) {
      if (!maintainers.includes(n) && !(await tx.userExists(n))) throw notFound(`User "${n}" does not exist.`)
    }
    await tx.setMaintainers(name, names)
    return true
  }

  /**
   * Unpublishes a whole package (DELETE /:name/-rev/:rev). Versions stay recorded as unpublished
   * (410 afterwards), dist-tags are removed and the packument answers 404.
   * @throws RegistryError NOT_FOUND, REV_CONFLICT, UNAUTHENTICATED, FORBIDDEN
   */
  async unpublishPackage(name: string, rev: string | undefined, principal: Principal): Promise<WriteResult> {
    const writer = this.access.writer(principal)
    const now = new Date().toISOString()
    const result = await this.meta.transaction(async (tx) => {
      const pkg = await tx.getPackage(name)
      if (!pkg) throw notFound()
      if (rev !== undefined && rev !== `${pkg.rev_seq}-${pkg.rev_hash}`) throw revConflict()
      this.access.requireMaintainer(writer, name, await tx.getMaintainers(name))
      const live = (await tx.listVersions(name)).filter((v) => v.unpublished === null)
      await tx.markUnpublished(name, live.map((v) => v.version), now)
      for (const tag of Object.keys(await tx.getDistTags(name))) await tx.deleteDistTag(name, tag)
      return { rev: await tx.bumpRev(name, now, true), changed: true }
    })
    this.cache.invalidate(name)
    return result
  }

  /**
   * DELETE /:name/-/:file/-rev/:rev, npm's last step of a one-version unpublish. The version is
   * normally already unpublished by the preceding PUT; if it is still live it is unpublished now.
   * Blobs are content-addressed and kept (a later `gc` removes unreferenced ones).
   */
  async removeTarball(name: string, file: string, rev: string | undefined, principal: Principal): Promise<WriteResult> {
    const writer = this.access.writer(principal)
    const now = new Date().toISOString()
    const result = await this.meta.transaction(async (tx) => {
      const pkg = await tx.getPackage(name)
      if (!pkg) throw notFound()
      const current = `${pkg.rev_seq}-${pkg.rev_hash}`
      if (rev !== undefined && rev !== current) throw revConflict()
      this.access.requireMaintainer(writer, name, await tx.getMaintainers(name))
      const all = await tx.listVersions(name)
      const row = all.find((v) => tarballFileName(name, v.version) === file)
      if (!row) throw notFound()
      if (row.unpublished !== null) return { rev: current, changed: false }
      const live = all.filter((v) => v.unpublished === null)
      if (live.length === 1) throw badRequest('Cannot remove the last version this way: unpublish the whole package instead.')
      await this.unpublishVersions(tx, name, [row.version], live, now)
      return { rev: await tx.bumpRev(name, now), changed: true }
    })
    if (result.changed) this.cache.invalidate(name)
    return result
  }

  /** dist-tags of a package (GET /-/package/:name/dist-tags). @throws NOT_FOUND */
  async distTags(name: string): Promise<Record<string, string>> {
    const state = await this.state(name)
    if (!state || liveVersions(state).length === 0) throw notFound()
    return state.distTags
  }

  /**
   * Points `tag` at `version` (PUT /-/package/:name/dist-tags/:tag).
   * @throws RegistryError BAD_REQUEST (tag is a semver range), NOT_FOUND (package or live version)
   */
  async setDistTag(name: string, tag: string, version: string, principal: Principal): Promise<WriteResult> {
    if (semver.validRange(tag)) throw badRequest(`Tag "${tag}" is a valid semver range; tags must not be.`)
    const writer = this.access.writer(principal)
    const now = new Date().toISOString()
    const result = await this.meta.transaction(async (tx) => {
      if (!(await tx.getPackage(name))) throw notFound()
      this.access.requireMaintainer(writer, name, await tx.getMaintainers(name))
      const v = await tx.getVersion(name, version)
      if (!v || v.unpublished !== null) throw notFound(`version not found: ${version}`)
      await tx.setDistTag(name, tag, version)
      return { rev: await tx.bumpRev(name, now), changed: true }
    })
    this.cache.invalidate(name)
    return result
  }

  /**
   * Removes a dist-tag (DELETE /-/package/:name/dist-tags/:tag); `latest` cannot be removed.
   * @throws RegistryError BAD_REQUEST (latest), NOT_FOUND (package or tag)
   */
  async deleteDistTag(name: string, tag: string, principal: Principal): Promise<WriteResult> {
    if (tag === 'latest') throw badRequest('The "latest" tag cannot be removed; point it at another version instead.')
    const writer = this.access.writer(principal)
    const now = new Date().toISOString()
    const result = await this.meta.transaction(async (tx) => {
      if (!(await tx.getPackage(name))) throw notFound()
      this.access.requireMaintainer(writer, name, await tx.getMaintainers(name))
      const tags = await tx.getDistTags(name)
      if (!(tag in tags)) throw notFound(`dist-tag not found: ${tag}`)
      await tx.deleteDistTag(name, tag)
      return { rev: await tx.bumpRev(name, now), changed: true }
    })
    this.cache.invalidate(name)
    return result
  }
}
