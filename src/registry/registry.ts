/**
 * The registry: every read and write of packages, in npm's terms. Routes and the fast path call
 * one method each; nothing else reaches the stores.
 *
 * - Every read goes through the read gate (read-gate.ts) before anything about the package is
 *   looked up: a package the caller may not read is answered like an unknown name.
 * - Every write goes through the write path (write-path.ts): writer, gate, `publish` rule,
 *   maintainers, `_rev`, change feed and cache invalidation in one place.
 *
 * The pieces, one npm noun a file: packument.ts, tarball.ts, publish.ts, update.ts, unpublish.ts,
 * dist-tags.ts, stars.ts, search.ts. docs/architecture.md draws how a GET and a PUT flow.
 */
import { LRUCache } from 'lru-cache'
import { AccessPolicy } from './access.js'
import { tarballKey } from './blob-keys.js'
import { changeRow, type ChangesPage, type ChangesQuery } from './changes.js'
import { addDistTag, checkTagName, removeDistTag } from './dist-tags.js'
import { badRequest, notFound } from './errors.js'
import { applyImport, planChanges, planImport, prepareImport, type ImportedPackage, type ImportOutcome, type ImportPlan } from './import.js'
import { asPackageName } from './names.js'
import { liveVersions, Packuments } from './packument.js'
import { PackageRules } from './package-rules.js'
import { applyPublish, planPublish, type StoredPlan } from './publish.js'
import type { PermissionSource } from './permission-source.js'
import { principalOf, ReadGate } from './read-gate.js'
import { brotliOf, type RenderedBody } from './render.js'
import { OrgAdmin, type PackageRights } from './org-admin.js'
import { ACCESS_CHANGED, AccessDirectory, type OrgStore, type PackageMfa } from './orgs.js'
import { RenderCache, sizeOf, type CacheSize } from './render-cache.js'
import { searchObject, searchWords, type SearchObject, type SearchQuery } from './search.js'
import { starredBy, type StarRow } from './stars.js'
import type { BlobStore, PackageStore, SearchHit } from './stores.js'
import { Tarballs, type TarballData, type TarballLookup } from './tarball.js'
import type { TarballLimits } from './tarball-facts.js'
import type { Caller, Manifest, Packument, Principal, StoredPackument } from './types.js'
import { removeTarball, unpublishAll } from './unpublish.js'
import { applyUpdate } from './update.js'
import type { PeekedTarball, UplinkReads, UplinkReadsShared } from './uplink-reads.js'
import { WritePath, type WriteContext, type WriteLog } from './write-path.js'

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
  /** Builds the reads of names that are not local (uplinks); none: proxying is off. */
  uplinks?: ((shared: UplinkReadsShared) => UplinkReads) | undefined
  /** Where each committed write is logged. */
  log?: WriteLog | undefined
  /** `search.uplink`: searches ask the uplinks too. */
  searchUplink?: boolean
  /** Caps on what a published tarball may unpack to (`max_unpacked_size`, `max_unpacked_files`). */
  tarballLimits?: TarballLimits
  /** An outside authority over every read and write (`auth.type: github`, permission-source.ts). */
  permissionSource?: PermissionSource
}

/** Answer of a write: the package's `_rev` afterwards. */
export interface WriteResult {
  rev: string
  /** False when the request changed nothing (an idempotent retry). */
  changed: boolean
}

/** A page of search results in npm's shape (docs/protocol.md §4.1). */
export interface SearchResult {
  objects: SearchObject[]
  total: number
}

/** The `repository` field a publish body's one version names (for an outside authority). */
function repositoryOfBody(body: Record<string, unknown>): unknown {
  const versions = body.versions
  if (typeof versions !== 'object' || versions === null) return undefined
  const first = Object.values(versions as Record<string, unknown>)[0]
  return typeof first === 'object' && first !== null ? (first as Record<string, unknown>).repository : undefined
}

/** The registry. */
export class Registry {
  /** The read gate: the one place that decides who may read which package. */
  readonly gate: ReadGate
  private readonly access: AccessPolicy
  private readonly cache: RenderCache
  private readonly uplinks: UplinkReads | undefined
  private readonly packuments: Packuments
  private readonly tarballs: Tarballs
  private readonly writes: WritePath
  private readonly tarballBytes: LRUCache<string, Buffer>

  /** Orgs, teams and grants: `npm org`, `npm team`, `npm access` (org-admin.ts). */
  readonly orgs: OrgAdmin
  private readonly directory = new AccessDirectory()

  constructor(
    private readonly store: PackageStore & OrgStore,
    private readonly blobs: BlobStore,
    private readonly opts: RegistryOptions,
  ) {
    this.access = new AccessPolicy(opts.open, opts.rules ?? new PackageRules([]), this.directory)
    this.gate = new ReadGate(
      this.access,
      opts.permissionSource ? { source: opts.permissionSource, repositoryOf: (name) => this.repositoryOf(name) } : undefined,
    )
    this.cache = new RenderCache({
      maxStateBytes: opts.cacheBytes?.states ?? 32 * 1024 * 1024,
      maxBodyBytes: opts.cacheBytes?.bodies ?? 48 * 1024 * 1024,
      stateTtlMs: opts.maxStalenessMs ?? 0,
    })
    /** Bytes of small tarballs, keyed by blob key; blobs are immutable, so never stale. */
    const tarballBytes = (this.tarballBytes = new LRUCache<string, Buffer>({ maxSize: 16 * 1024 * 1024, sizeCalculation: (b) => b.length + 64 }))
    this.uplinks = opts.uplinks?.({
      body: (key, render) => this.cache.body(key, render),
      peekBody: (key) => this.cache.peekBody(key),
      tarballBytes,
      scopeHasPackages: (scope) => store.scopeHasPackages(scope),
    })
    const maxStalenessMs = opts.maxStalenessMs ?? 0
    this.packuments = new Packuments({ store, cache: this.cache, uplinks: this.uplinks, maxStalenessMs })
    this.tarballs = new Tarballs({
      packuments: this.packuments,
      cache: this.cache,
      blobs,
      uplinks: this.uplinks,
      tarballBytes,
      redirectSeconds: opts.tarballRedirectSeconds,
    })
    this.writes = new WritePath({ store, access: this.access, gate: this.gate, log: opts.log })
    this.orgs = new OrgAdmin({
      store,
      directory: this.directory,
      gate: this.gate,
      maintainersOf: async (name) => (await this.packuments.state(name))?.maintainers.map((m) => m.name) ?? [],
    })
    this.writes.onCommit((name, e) => {
      this.cache.invalidate(name)
      // Its scope now has a local package: it stops proxying at once.
      this.uplinks?.localWrite(name)
      // A status change, or maintainers of a private package: the directory holds both.
      if (e.op === 'access' || (e.op === 'update' && this.directory.visibility(name) === 'private')) void this.reloadAccess().catch(() => undefined)
    })
  }

  /** The `repository` field of a local package's `latest` manifest (undefined: not local, or none). */
  private async repositoryOf(name: string): Promise<unknown> {
    const state = await this.packuments.state(name)
    if (!state) return undefined
    const latest = state.distTags.latest
    const row = state.versions.find((v) => v.version === latest && v.unpublished === null) ?? state.versions.find((v) => v.unpublished === null)
    return row ? (JSON.parse(row.manifest) as Manifest).repository : undefined
  }

  /** Loads the access directory (orgs, teams, grants, private packages); call before serving. */
  async reloadAccess(): Promise<void> {
    await this.orgs.reload()
  }

  /**
   * Drops this node's cached state of `name` (another node wrote it), or of every package when no
   * name is given (the change notifications were interrupted, so some may have been missed).
   */
  forget(name?: string): void {
    if (name === ACCESS_CHANGED || name === undefined) void this.reloadAccess().catch(() => undefined)
    if (name === undefined) this.cache.invalidateAll()
    else if (name !== ACCESS_CHANGED) this.cache.invalidate(name)
  }

  // ---- Reads: each admits the caller through the gate first. ----

  /**
   * The rendered packument for GET /:name; `undefined` for an unknown or fully unpublished name.
   * @param abbreviated corgi form (Accept `application/vnd.npm.install-v1+json`)
   * @param baseUrl public base URL without trailing slash
   * @throws RegistryError UNAUTHENTICATED / NOT_FOUND from the gate, UPLINK_*
   */
  async packument(name: string, caller: Caller, abbreviated: boolean, baseUrl: string): Promise<RenderedBody | undefined> {
    await this.gate.admit(name, caller)
    return this.packuments.body(name, abbreviated, baseUrl)
  }

  /**
   * The fast path's packument (src/http/fast-path.ts): the rendered body when the name is readable
   * by all, not redirected to an uplink, and both its state and the variant are in memory; else
   * `undefined` (the full path then loads, renders and caches them). Synchronous, no I/O.
   */
  peekPackument(name: string, abbreviated: boolean, baseUrl: string): RenderedBody | undefined {
    if (!this.gate.readableByAll(name) || this.mayRedirect(name)) return undefined
    return this.packuments.peekBody(name, abbreviated, baseUrl)
  }

  /**
   * The fast path's 404 (src/http/fast-path.ts): true when the name is readable by all, not
   * redirected, cached as not local, and no uplink can serve it (no rule proxies it, or every
   * uplink's remembered 404 or a local scope says so, `UplinkReads.peekNotFound`): the route would
   * answer `GET /:name` with npm's 404 then. Synchronous, no I/O; false whenever unsure.
   */
  peekNotFound(name: string): boolean {
    if (!this.gate.readableByAll(name) || this.mayRedirect(name) || !this.packuments.peekAbsent(name)) return false
    if (!this.uplinks || this.access.rules.uplinksFor(name).length === 0) return true
    return this.uplinks.peekNotFound?.(name) === true
  }

  /**
   * The fast path's version manifest (`GET /:name/:version` or `/:name/:tag`): the JSON bytes the
   * route sends, for a local package readable by all whose state is in memory and holds the
   * version; else `undefined`. Synchronous, no I/O.
   */
  peekManifest(name: string, spec: string, baseUrl: string): Buffer | undefined {
    if (!this.gate.readableByAll(name) || this.mayRedirect(name)) return undefined
    return this.packuments.peekManifest(name, spec, baseUrl)
  }

  /**
   * How full each in-memory cache is (entries, bytes, bound), the registry's and the uplink
   * reads' (`UplinkReads.cacheSizes`), for `GET /-/health`'s details.
   */
  cacheSizes(): Record<string, CacheSize> {
    return { ...this.cache.sizes(), tarball_bytes: sizeOf(this.tarballBytes), ...this.uplinks?.cacheSizes?.() }
  }

  /** The brotli form of a rendered body, computed once and kept with it. */
  async brotli(body: RenderedBody): Promise<Buffer> {
    if (body.br) return body.br
    const br = await brotliOf(body)
    this.cache.resize(body)
    return br
  }

  /** Whether `name`'s rule redirects to an uplink (cheap: the GET path asks before anything async). */
  mayRedirect(name: string): boolean {
    return this.uplinks !== undefined && this.access.rules.redirects(name)
  }

  /**
   * `proxy_mode: redirect`: where to send a GET of `path` (below the registry root) for a name
   * that is not local, or `undefined` to serve it here.
   * @throws RegistryError from the gate
   */
  async uplinkRedirect(name: string, path: string, caller: Caller): Promise<string | undefined> {
    await this.gate.admit(name, caller)
    if (!this.uplinks || !this.mayRedirect(name) || (await this.packuments.state(name))) return undefined
    return this.uplinks.redirect(name, path)
  }

  /** Full packument read from the store, uncached (GET ?write=true before a write). @throws NOT_FOUND */
  async packumentForWrite(name: string, caller: Caller, baseUrl: string): Promise<Packument> {
    await this.gate.admit(name, caller)
    return this.packuments.forWrite(name, baseUrl)
  }

  /**
   * One version's manifest, by version or dist-tag (GET /:name/:spec).
   * @throws RegistryError NOT_FOUND (unknown package, version or tag), GONE (unpublished version)
   */
  async manifest(name: string, spec: string, caller: Caller, baseUrl: string): Promise<Manifest> {
    await this.gate.admit(name, caller)
    return this.packuments.manifest(name, spec, baseUrl)
  }

  /**
   * Finds the tarball behind `/:name/-/:file`.
   * @throws RegistryError NOT_FOUND, GONE (the version was unpublished), UPLINK_*
   */
  async tarball(name: string, file: string, caller: Caller): Promise<TarballLookup> {
    await this.gate.admit(name, caller)
    return this.tarballs.find(name, file)
  }

  /** The fast path's tarball: lookup and bytes when readable by all and all in memory; else `undefined`. */
  peekTarball(name: string, file: string): PeekedTarball | undefined {
    if (!this.gate.readableByAll(name) || this.mayRedirect(name)) return undefined
    return this.tarballs.peek(name, file)
  }

  /** Whether tarball GETs may answer with a redirect to the blob store (`storage.s3.redirect`). */
  get redirectsTarballs(): boolean {
    return this.tarballs.redirects
  }

  /** A signed blob-store URL for a tarball found by `tarball`, or `undefined` to serve the bytes. */
  tarballRedirect(t: TarballLookup): Promise<string | undefined> {
    return this.tarballs.redirect(t)
  }

  /** The bytes of a tarball found by `tarball`. @throws RegistryError NOT_FOUND (blob missing), UPLINK_* */
  tarballData(t: TarballLookup): Promise<TarballData> {
    return this.tarballs.data(t)
  }

  /** dist-tags of a package (GET /-/package/:name/dist-tags). @throws UNAUTHENTICATED, NOT_FOUND */
  async distTags(name: string, caller: Caller): Promise<Record<string, string>> {
    await this.gate.admit(name, caller)
    return this.packuments.distTags(name)
  }

  /**
   * Search under an outside authority: every hit the rules let through is checked against the
   * authority (its answers are cached), then paged, so `total` counts only what the caller may read.
   */
  private async searchExternal(q: SearchQuery, caller: Caller): Promise<{ total: number; hits: SearchHit[] }> {
    const principal = await principalOf(caller)
    const all = await this.store.search(searchWords(q.text), { size: 10_000, from: 0, visible: (n) => this.gate.allows(n, principal) })
    const hits = await this.gate.filter(all.hits, (h) => h.name, principal)
    return { total: hits.length, hits: hits.slice(q.from, q.from + q.size) }
  }

  /**
   * Search (GET /-/v1/search): only packages the caller may read are counted and listed. With
   * `searchUplink`, the uplink's hits follow the local ones (a local name always wins a clash; a
   * name of the uplink's that is local here is left out), up to `size`.
   */
  async search(q: SearchQuery, caller: Caller, baseUrl: string): Promise<SearchResult> {
    const visible = await this.gate.visibleTo(caller)
    const [local, upstream] = await Promise.all([
      this.gate.external ? this.searchExternal(q, caller) : this.store.search(searchWords(q.text), { size: q.size, from: q.from, visible }),
      this.opts.searchUplink && this.uplinks ? this.uplinks.search(q) : undefined,
    ])
    const objects = local.hits.map((h) => searchObject(h, baseUrl))
    if (!upstream) return { total: local.total, objects }
    const seen = new Set(objects.map((o) => o.package.name))
    for (const o of upstream.objects) {
      const name = o.package.name
      if (objects.length >= q.size) break
      if (seen.has(name) || !visible(name) || (await this.packuments.state(name))) continue
      seen.add(name)
      objects.push(o)
    }
    return { total: local.total + upstream.total, objects }
  }

  /**
   * A page of the change feed (GET /_changes, changes.ts): the rows after `q.since`, those of
   * packages the caller may not read left out as if they did not exist. `last_seq` is the last row
   * read, shown or not, so a follower that may read nothing of a page still moves past it; it is a
   * count of writes, which says nothing about which packages were written.
   */
  async changes(q: ChangesQuery, caller: Caller): Promise<ChangesPage> {
    const rows = await this.store.changesSince(q.since, q.limit)
    const shown = await this.gate.filter(rows, (r) => r.name, caller)
    return { results: shown.map(changeRow), last_seq: rows.at(-1)?.seq ?? q.since }
  }

  /** The change feed's last `seq` (the root document's `update_seq`; `since=now`). */
  lastChangeSeq(): Promise<number> {
    return this.store.lastChangeSeq()
  }

  // ---- Reads for the web UI (src/web/): gated like every other read. ----

  /**
   * The stored state of a local package with a live version, for the web UI's package and version
   * pages (which cache what they render by its `_rev`, `revOf`); undefined for an unknown name, a
   * fully unpublished one, or one only an uplink has (the UI shows local packages).
   * @param readmeOf a version whose readme the page shows: when the cached state holds only the
   *   latest's (`readmes: 'latest'`), that version's row is read whole and put in a copy of it
   * @throws RegistryError UNAUTHENTICATED / NOT_FOUND from the gate (as for an unknown name)
   */
  async packageState(name: string, caller: Caller, readmeOf?: string): Promise<StoredPackument | undefined> {
    await this.gate.admit(name, caller)
    const state = await this.packuments.state(name)
    if (!state || liveVersions(state).length === 0) return undefined
    if (readmeOf === undefined || state.readmes !== 'latest' || readmeOf === state.distTags.latest) return state
    const shown = state.versions.find((v) => v.version === readmeOf)
    if (!shown) return state
    const row = await this.store.getVersion(name, readmeOf)
    // Read with its own query: a write in between may have changed the row; show it only if it is
    // the same tarball the state describes.
    if (!row || row.integrity !== shown.integrity) return state
    return { ...state, versions: state.versions.map((v) => (v === shown ? { ...v, readme: row.readme } : v)) }
  }

  /**
   * The packages the caller may read, most recently changed first (the web UI's home page), and
   * how many there are: unreadable packages are neither listed nor counted.
   * @param limit hits returned
   */
  async recentPackages(limit: number, caller: Caller): Promise<{ total: number; hits: SearchHit[] }> {
    if (!this.gate.external) return this.store.recentPackages(limit, await this.gate.visibleTo(caller))
    const principal = await principalOf(caller)
    const all = await this.store.recentPackages(10_000, (n) => this.gate.allows(n, principal))
    const hits = await this.gate.filter(all.hits, (h) => h.name, principal)
    return { total: hits.length, hits: hits.slice(0, limit) }
  }

  /**
   * The local packages whose `latest` depends on `name` (dependencies, peer and optional), as far
   * as the caller may read them, sorted.
   * @throws RegistryError UNAUTHENTICATED / NOT_FOUND when the caller may not read `name` itself
   */
  async dependents(name: string, caller: Caller): Promise<string[]> {
    await this.gate.admit(name, caller)
    return this.gate.filter(await this.store.dependentsOf(name), (n) => n, caller)
  }

  /**
   * The names of an audit request that may be sent to an uplink: proxied by their rule, not local,
   * not in a private scope or a scope with a local package (a company's package names stay in).
   * @returns a subset of `names`; empty without uplinks
   */
  async upstreamNames(names: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>()
    if (!this.uplinks) return out
    for (const name of new Set(names)) {
      if (!asPackageName(name) || this.access.rules.uplinksFor(name).length === 0) continue
      if ((await this.packuments.state(name)) || !(await this.uplinks.mayAsk(name))) continue
      out.add(name)
    }
    return out
  }

  /** `npm stars USER`: the view rows of the packages `user` starred that the caller may read. */
  starredBy(user: string, caller: Caller): Promise<StarRow[]> {
    return starredBy(this.store, this.gate, user, caller)
  }

  /**
   * `npm access get status`: `{ public }` of a package the caller may read.
   * @throws RegistryError NOT_FOUND (unknown, or unreadable), UNAUTHENTICATED
   */
  async packageVisibility(name: string, caller: Caller): Promise<{ public: boolean }> {
    await this.gate.admit(name, caller)
    if (!(await this.store.packageExists(name))) throw notFound()
    return { public: this.directory.visibility(name) === 'public' }
  }

  /** The mfa setting of a package the caller may read (`npm access get mfa` has no route; reported here). */
  async packageMfa(name: string, caller: Caller): Promise<PackageMfa> {
    await this.gate.admit(name, caller)
    return this.directory.mfa(name)
  }

  /** `npm access list packages @org`. @throws RegistryError NOT_FOUND (no such org) */
  async orgPackages(org: string, caller: Principal): Promise<PackageRights> {
    const maintained = new Set(caller.name === undefined ? [] : await this.store.packagesMaintainedBy(caller.name))
    return this.orgs.orgPackages(org, caller, await this.store.packagesInScope(`@${org}`), maintained)
  }

  /** `npm access list packages <user>`. */
  async userPackages(user: string, caller: Caller): Promise<PackageRights> {
    return this.orgs.userPackages(user, caller, await this.store.packagesMaintainedBy(user))
  }

  // ---- Writes: each runs in the write path. ----

  /**
   * `npm access set status=public|private` and `set mfa=…` (POST /-/package/<name>/access):
   * `{ access: "public" | "restricted" }` and/or `{ publish_requires_tfa, automation_token_overrides_tfa }`.
   * Maintainers and the org's owners and admins may change it.
   * @throws RegistryError BAD_REQUEST (body), NOT_FOUND, FORBIDDEN, UNAUTHENTICATED
   */
  setPackageAccess(name: string, body: unknown, principal: Principal): Promise<WriteResult> {
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>
    const visibility = b.access === undefined ? undefined : b.access === 'public' ? 'public' : b.access === 'restricted' || b.access === 'private' ? 'private' : null
    if (visibility === null) throw badRequest('access must be "public" or "restricted".')
    let mfa: PackageMfa | undefined
    if (b.publish_requires_tfa !== undefined) {
      if (typeof b.publish_requires_tfa !== 'boolean') throw badRequest('publish_requires_tfa must be true or false.')
      mfa = !b.publish_requires_tfa ? 'none' : b.automation_token_overrides_tfa === true ? 'automation' : 'publish'
    }
    if (visibility === undefined && mfa === undefined) throw badRequest('Nothing to set: send "access" or "publish_requires_tfa".')
    return this.writes.write(name, principal, { op: 'access' }, async (w) => {
      const now = await w.tx.getPackageAccess(name)
      const next = { visibility: visibility ?? now.visibility, mfa: mfa ?? now.mfa }
      if (next.visibility === now.visibility && next.mfa === now.mfa) return { changed: false, value: undefined }
      await w.tx.setPackageAccess(name, next.visibility, next.mfa)
      return { changed: true, value: undefined, audit: { visibility: next.visibility, mfa: next.mfa } }
    })
  }

  /**
   * Whether `principal` may write `name` at all (the write path's first checks, see
   * WritePath.admit), for a route to ask before it reads the request body.
   * @throws RegistryError UNAUTHENTICATED, FORBIDDEN (read-only token, `publish` rule), NOT_FOUND
   */
  async admitWrite(name: string, principal: Principal): Promise<void> {
    await this.writes.admit(name, principal, undefined, { beforeBody: true })
  }

  /**
   * Publishes one version (PUT /:name with `_attachments`). The tarball is stored before the
   * metadata transaction that references it, so a crash leaves at worst an unreferenced blob.
   * @throws RegistryError BAD_REQUEST (see planPublish), TOO_LARGE (413, unpacks beyond the caps), UNAUTHENTICATED, FORBIDDEN, NOT_FOUND
   *   (a name the writer may not read), VERSION_EXISTS (409), GONE (410, version was unpublished)
   */
  async publish(name: string, body: Record<string, unknown>, principal: Principal): Promise<WriteResult> {
    const [r] = await this.publishBatch([{ name, body }], principal)
    if (!r) throw new Error('a batch of one publish answered nothing')
    return r
  }

  /**
   * Publishes several versions (of one package or many) in one transaction, each exactly as
   * `publish` does it (the same checks, blob first, `_rev` bump, change-feed row and audit entry
   * per version; WritePath.writeBatch): for bulk loads in process (bench/scale.ts), where one
   * transaction per version would cost a commit each. All or nothing: one refused version rolls
   * the whole batch back (its blobs stay, unreferenced, for `pier gc`).
   * @param items the name from the URL and the publish body, per version
   * @returns one result per item, in order
   * @throws RegistryError as `publish`, for the first item refused
   */
  async publishBatch(items: readonly { name: string; body: Record<string, unknown> }[], principal: Principal): Promise<WriteResult[]> {
    const { allowPreviousVersion } = this.opts
    const prepare = async (name: string, body: Record<string, unknown>): Promise<StoredPlan> => {
      const plan = await planPublish(body, name, this.opts.tarballLimits)
      const key = tarballKey(plan.sha512Hex)
      await this.blobs.put(key, plan.tarball)
      return { plan, key }
    }
    const results = await this.writes.writeBatch(
      principal,
      items.map(({ name, body }) => ({
        name,
        opts: { op: 'publish' as const, create: true, prepare: () => prepare(name, body), repository: repositoryOfBody(body) },
        fn: (w: WriteContext, stored: StoredPlan) => applyPublish(w, stored, { allowPreviousVersion, email: principal.email }),
      })),
    )
    return results.map((r) => ({ rev: r.rev, changed: r.changed }))
  }

  /**
   * Imports one package from another registry (`pier import`, import.ts): the versions Pier
   * lacks, with their tarballs verified against `dist.integrity` / `dist.shasum` and stored first,
   * then one `import` write keeping the source's times, `_npmUser`, readme, deprecations,
   * dist-tags, maintainers and stars. Only what differs is written; when nothing does, nothing is
   * (no `_rev` bump). A new package none of whose versions could be imported is not created.
   * @param principal the importer (an administrator passes every rule)
   * @param o.dryRun verify and compare only: nothing is stored or written
   * @returns what was (or would be) done, with every skipped version or tag and its reason
   * @throws RegistryError from the write path's checks; the blob store's and metadata store's errors
   */
  async importPackage(pkg: ImportedPackage, principal: Principal, o: { dryRun?: boolean } = {}): Promise<ImportOutcome> {
    const dryRun = o.dryRun === true
    const now = new Date().toISOString()
    const before = await this.store.readPackage(pkg.name)
    const held = new Set(before?.versions.map((v) => v.version))
    let prep: Awaited<ReturnType<typeof prepareImport>> | undefined
    const prepare = async (): Promise<Awaited<ReturnType<typeof prepareImport>>> =>
      (prep ??= await prepareImport(pkg, async (v) => held.has(v) || (await this.store.getVersion(pkg.name, v)) !== undefined, this.blobs, { dryRun, now }))
    const outcome = (plan: ImportPlan, changed: boolean, rev?: string): ImportOutcome => ({
      name: pkg.name,
      changed,
      ...(rev === undefined ? {} : { rev }),
      created: before === undefined && changed,
      added: plan.insert.map((r) => r.version),
      updated: plan.replace.map((r) => r.version),
      tags: { ...plan.setTags, ...Object.fromEntries(plan.deleteTags.map((t) => [t, null])) },
      ...(plan.maintainers ? { maintainers: plan.maintainers } : {}),
      starsAdded: plan.starsAdd,
      starsRemoved: plan.starsRemove,
      skipped: plan.skipped,
      tarballs: prep?.tarballs ?? 0,
      bytes: prep?.bytes ?? 0,
    })
    const current = (): Parameters<typeof planImport>[0] => ({
      versions: before?.versions ?? [],
      distTags: before?.distTags ?? {},
      maintainers: before?.maintainers.map((m) => m.name) ?? [],
      stars: before?.stars ?? [],
    })
    if (dryRun || !before) {
      const { prepared } = await prepare()
      const plan = planImport(current(), pkg, prepared)
      // Nothing to import into a new package: no empty package row is created.
      if (dryRun || plan.insert.length === 0) return outcome(plan, !dryRun ? false : planChanges(plan) && (before !== undefined || plan.insert.length > 0))
    }
    const r = await this.writes.write(
      pkg.name,
      principal,
      { op: 'import', create: true, maintainers: 'required', times: { created: pkg.created, modified: pkg.modified }, prepare: async () => (await prepare()).prepared },
      (w, prepared) => applyImport(w, pkg, prepared),
    )
    return outcome(r.value, r.changed, r.rev)
  }

  /**
   * A document write without attachments (PUT /:name or PUT /:name/-rev/:rev): deprecate and
   * undeprecate, star and unstar, owner changes, and unpublish of the versions missing from the
   * body (update.ts). Only differences from the stored state are applied.
   * @throws RegistryError NOT_FOUND, REV_CONFLICT (409), UNAUTHENTICATED, FORBIDDEN, BAD_REQUEST
   */
  update(name: string, body: Record<string, unknown>, principal: Principal, urlRev?: string): Promise<WriteResult> {
    return this.writes.write(name, principal, { op: 'update', rev: urlRev, maintainers: 'by-change' }, (w) => applyUpdate(w, body))
  }

  /**
   * Unpublishes a whole package (DELETE /:name/-rev/:rev). Versions stay recorded as unpublished
   * (410 afterwards), dist-tags are removed and the packument answers 404.
   * @throws RegistryError NOT_FOUND, REV_CONFLICT, UNAUTHENTICATED, FORBIDDEN
   */
  unpublishPackage(name: string, rev: string | undefined, principal: Principal): Promise<WriteResult> {
    return this.writes.write(name, principal, { op: 'unpublish', rev }, (w) => unpublishAll(w))
  }

  /**
   * DELETE /:name/-/:file/-rev/:rev, npm's last step of a one-version unpublish (unpublish.ts).
   * @throws RegistryError NOT_FOUND, REV_CONFLICT, UNAUTHENTICATED, FORBIDDEN, BAD_REQUEST
   */
  removeTarball(name: string, file: string, rev: string | undefined, principal: Principal): Promise<WriteResult> {
    return this.writes.write(name, principal, { op: 'remove-tarball', rev }, (w) => removeTarball(w, file))
  }

  /**
   * Points `tag` at `version` (PUT /-/package/:name/dist-tags/:tag).
   * @param version the request body: must be a JSON string
   * @returns the dist-tags afterwards
   * @throws RegistryError BAD_REQUEST (not a string, or a tag that is a semver range), NOT_FOUND
   *   (package or live version), UNAUTHENTICATED, FORBIDDEN
   */
  async setDistTag(name: string, tag: string, version: unknown, principal: Principal): Promise<Record<string, string>> {
    const prepare = async (): Promise<string> => {
      if (typeof version !== 'string') throw badRequest('The body must be a JSON string: the version the tag points to.')
      checkTagName(tag)
      return version
    }
    const r = await this.writes.write(name, principal, { op: 'dist-tag-add', prepare }, (w, v) => addDistTag(w, tag, v))
    return r.value
  }

  /**
   * Removes a dist-tag (DELETE /-/package/:name/dist-tags/:tag); `latest` cannot be removed.
   * @throws RegistryError BAD_REQUEST (latest), NOT_FOUND (package or tag), UNAUTHENTICATED, FORBIDDEN
   */
  async deleteDistTag(name: string, tag: string, principal: Principal): Promise<void> {
    await this.writes.write(name, principal, { op: 'dist-tag-rm' }, (w) => removeDistTag(w, tag))
  }
}

