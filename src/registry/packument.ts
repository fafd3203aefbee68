/**
 * Packuments (docs/protocol.md §2.1): assembly of the full document and the abbreviated
 * ("corgi", pacote's word) one from stored rows, with tarball URLs built from the caller's base
 * URL; and `Packuments`, the reads of local packages through the render cache: the rendered
 * packument, one version's manifest, the uncached document a write starts from.
 */
import semver from 'semver'
import { gone, notFound } from './errors.js'
import { tarballPath } from './names.js'
import { renderBody, renderKey, type RenderedBody } from './render.js'
import { manifestKey, type RenderCache } from './render-cache.js'
import type { PackageStore } from './stores.js'
import type { AbbreviatedPackument, Manifest, Packument, StoredPackument, StoredVersion } from './types.js'
import type { UplinkReads } from './uplink-reads.js'

/** Fields hoisted from the `latest` manifest to the packument's top level, as the public registry does. */
const HOISTED = ['description', 'homepage', 'keywords', 'repository', 'author', 'bugs', 'license', 'contributors'] as const

/** Fields kept per version in the abbreviated document (pacote's corgi list plus `libc`). */
const CORGI_FIELDS = [
  'name', 'version', 'deprecated', 'dependencies', 'optionalDependencies', 'devDependencies', 'bundleDependencies',
  'peerDependencies', 'peerDependenciesMeta', 'acceptDependencies', 'bin', 'directories', 'dist', 'engines',
  '_hasShrinkwrap', 'hasInstallScript', 'funding', 'cpu', 'os', 'libc',
] as const

/** Largest top-level readme served, characters (the public registry truncates at 64 KB). */
const MAX_README = 64 * 1024

/** `_rev` of a package row: `<seq>-<hex>`. */
export function revOf(state: Pick<StoredPackument, 'pkg'>): string {
  return `${state.pkg.rev_seq}-${state.pkg.rev_hash}`
}

/**
 * The manifest of one stored version as served: stored JSON plus `_id`, `maintainers` and an
 * absolute `dist.tarball` under `baseUrl` (no trailing slash).
 */
export function renderManifest(row: StoredVersion, baseUrl: string, maintainers: Packument['maintainers']): Manifest {
  const m = JSON.parse(row.manifest) as Manifest
  m._id = `${row.name}@${row.version}`
  m.maintainers = maintainers
  m.dist = { ...m.dist, tarball: baseUrl + tarballPath(row.name, row.version) }
  return m
}

/** Whether a package still has any published (not unpublished) version. */
export function liveVersions(state: StoredPackument): StoredVersion[] {
  return state.versions.filter((v) => v.unpublished === null)
}

/**
 * Builds the full packument.
 * @param baseUrl public base URL without trailing slash, e.g. `http://127.0.0.1:3000`
 * @returns `undefined` when every version was unpublished (served as 404).
 */
export function buildPackument(state: StoredPackument, baseUrl: string): Packument | undefined {
  const live = liveVersions(state)
  if (live.length === 0) return undefined
  const versions: Record<string, Manifest> = {}
  const time: Record<string, string> = { created: state.pkg.created, modified: state.pkg.modified }
  for (const v of state.versions) time[v.version] = v.published
  for (const v of sortVersions(live)) versions[v.version] = renderManifest(v, baseUrl, state.maintainers)
  const doc: Packument = {
    _id: state.pkg.name,
    _rev: revOf(state),
    name: state.pkg.name,
    'dist-tags': { ...state.distTags },
    versions,
    time,
    maintainers: state.maintainers,
  }
  const latestRow = live.find((v) => v.version === state.distTags.latest) ?? sortVersions(live).at(-1)
  const latest = latestRow ? versions[latestRow.version] : undefined
  if (latest) for (const k of HOISTED) if (latest[k] !== undefined) doc[k] = latest[k]
  if (state.stars.length > 0) doc.users = Object.fromEntries(state.stars.map((u) => [u, true]))
  if (latestRow?.readme) doc.readme = latestRow.readme.length > MAX_README ? latestRow.readme.slice(0, MAX_README) : latestRow.readme
  else doc.readme = ''
  if (latestRow?.readme_filename) doc.readmeFilename = latestRow.readme_filename
  return doc
}

/** The abbreviated document derived from a full one (docs/protocol.md §2.1 "corgi"). */
export function abbreviate(doc: Packument): AbbreviatedPackument {
  const versions: AbbreviatedPackument['versions'] = {}
  for (const [v, m] of Object.entries(doc.versions)) {
    const out: Record<string, unknown> = {}
    for (const f of CORGI_FIELDS) if (m[f] !== undefined) out[f] = m[f]
    const scripts = m.scripts as Record<string, unknown> | undefined
    if (scripts && (scripts.preinstall || scripts.install || scripts.postinstall)) out.hasInstallScript = true
    versions[v] = out
  }
  return { name: doc.name, modified: doc.time.modified as string, 'dist-tags': doc['dist-tags'], versions }
}

/** Versions in semver order (ascending). */
export function sortVersions(rows: StoredVersion[]): StoredVersion[] {
  return [...rows].sort((a, b) => semver.compare(a.version, b.version))
}

/** What `Packuments` reads with. */
export interface PackumentsDeps {
  store: PackageStore
  cache: RenderCache
  /** Reads of names that are not local, from uplinks; absent when proxying is off. */
  uplinks: UplinkReads | undefined
  /** Bound on serving a package state written by another node, ms (0: one node). */
  maxStalenessMs: number
}

/** Packument and manifest reads (behind the read gate: registry.ts calls these after `admit`). */
export class Packuments {
  constructor(private readonly d: PackumentsDeps) {}

  /** Stored state of a local package, from cache. `undefined` when never published here. */
  state(name: string): Promise<StoredPackument | undefined> {
    return this.d.cache.state(
      name,
      () => this.d.store.readPackage(name, { readmes: 'latest' }),
      // Shared store: a state past the staleness bound is kept when its stamp (`_rev` and
      // maintainers) is unchanged, one query instead of the whole package (a 5,000-version
      // package is 20 MB of manifests).
      this.d.maxStalenessMs ? (cached) => this.unchanged(name, cached) : undefined,
    )
  }

  /** Whether `cached` (`null`: not local) is still what the store holds for `name` (`PackageStore.packageStamp`). */
  private async unchanged(name: string, cached: StoredPackument | null): Promise<boolean> {
    const stamp = await this.d.store.packageStamp(name)
    if (!stamp || !cached) return !stamp && !cached
    if (stamp.rev !== revOf(cached) || stamp.maintainers.length !== cached.maintainers.length) return false
    return stamp.maintainers.every((m, i) => m.name === cached.maintainers[i]?.name && m.email === cached.maintainers[i]?.email)
  }

  /**
   * The state of a local package, read again from the store when the cached copy lacks what the
   * request asks for (`has` is false) and other nodes share the store: a version published on
   * another node a moment ago is in its packument there, and an install that read that packument
   * asks this node for the manifest or tarball next. Names with no local package are not re-read
   * (proxied names would cost a database read each), so for those the staleness bound applies.
   */
  async stateHaving(name: string, has: (s: StoredPackument) => boolean): Promise<StoredPackument | undefined> {
    const state = await this.state(name)
    if (!state || !this.d.maxStalenessMs || has(state)) return state
    this.d.cache.invalidate(name)
    return this.state(name)
  }

  /**
   * The rendered packument of GET /:name, local or (for a name with no local package) from an
   * uplink; `undefined` for an unknown or fully unpublished name (404).
   * @throws RegistryError UPLINK_* when an uplink fails and nothing is cached
   */
  async body(name: string, abbreviated: boolean, baseUrl: string): Promise<RenderedBody | undefined> {
    const state = await this.state(name)
    // Not local: an uplink's cached copy when the rules proxy this name (a local name never is).
    if (!state) return this.d.uplinks?.packumentBody(name, abbreviated, baseUrl)
    const rev = revOf(state)
    return this.d.cache.body(renderKey(name, rev, abbreviated, baseUrl), async () => {
      const doc = buildPackument(state, baseUrl)
      if (!doc) return undefined
      return renderBody(abbreviated ? abbreviate(doc) : doc, name, rev, abbreviated, baseUrl, Date.parse(state.pkg.modified))
    })
  }

  /**
   * The rendered packument when the package state and the variant are both in memory, else
   * `undefined` (the full path then loads, renders and caches them). Synchronous: no store read,
   * no uplink request (the fast path).
   */
  peekBody(name: string, abbreviated: boolean, baseUrl: string): RenderedBody | undefined {
    const state = this.d.cache.peekState(name)
    if (state === undefined) return undefined
    if (state === null) return this.d.uplinks?.peekPackumentBody(name, abbreviated, baseUrl)
    return this.d.cache.peekBody(renderKey(name, revOf(state), abbreviated, baseUrl))
  }

  /**
   * Whether `name` is cached as not local: the route would answer its packument GET from the
   * uplinks, or with 404 when none serves it. Synchronous (the fast path).
   */
  peekAbsent(name: string): boolean {
    return this.d.cache.peekState(name) === null
  }

  /**
   * The JSON bytes `manifest` would be serialised to (Fastify sends a manifest with
   * `JSON.stringify`), when the package state is in memory and holds `spec` (a version or a
   * dist-tag) as a live version; else `undefined` (the route then answers, 404 and 410 included).
   * Synchronous: rendered from the cached state at most once per (name, `_rev`, version, base URL).
   */
  peekManifest(name: string, spec: string, baseUrl: string): Buffer | undefined {
    const state = this.d.cache.peekState(name)
    if (!state) return undefined
    const version = state.distTags[spec] ?? spec
    return this.d.cache.manifest(manifestKey(name, revOf(state), version, baseUrl), () => {
      const row = state.versions.find((v) => v.version === version)
      if (!row || row.unpublished) return undefined
      return Buffer.from(JSON.stringify(renderManifest(row, baseUrl, state.maintainers)))
    })
  }

  /** The full packument read from the store, uncached (GET ?write=true before a write). @throws NOT_FOUND */
  async forWrite(name: string, baseUrl: string): Promise<Packument> {
    const state = await this.d.store.readPackage(name, { readmes: 'latest' })
    const doc = state && buildPackument(state, baseUrl)
    if (!doc) throw notFound()
    return doc
  }

  /**
   * One version's manifest, by version or dist-tag (GET /:name/:spec).
   * @throws RegistryError NOT_FOUND (unknown package, version or tag), GONE (unpublished version), UPLINK_*
   */
  async manifest(name: string, spec: string, baseUrl: string): Promise<Manifest> {
    const state = await this.stateHaving(name, (s) => s.distTags[spec] !== undefined || s.versions.some((v) => v.version === spec))
    if (!state && this.d.uplinks) return this.d.uplinks.manifest(name, spec, baseUrl)
    if (!state) throw notFound()
    const version = state.distTags[spec] ?? spec
    const row = state.versions.find((v) => v.version === version)
    if (!row) throw notFound(`version not found: ${spec}`)
    if (row.unpublished) throw gone(`${name}@${version} was unpublished.`)
    return renderManifest(row, baseUrl, state.maintainers)
  }

  /** dist-tags of a local package with a published version. @throws NOT_FOUND */
  async distTags(name: string): Promise<Record<string, string>> {
    const state = await this.state(name)
    if (!state || liveVersions(state).length === 0) throw notFound()
    return state.distTags
  }
}
