/**
 * Packument assembly from stored rows (REGISTRY-API.md §2.1): the full document and the
 * abbreviated ("corgi") one, with tarball URLs built from the caller's base URL.
 */
import semver from 'semver'
import type { PackageState } from '../storage/meta/meta-store.js'
import type { VersionRow } from '../storage/meta/schema.js'
import { tarballPath } from './names.js'
import type { AbbreviatedPackument, Manifest, Packument } from './types.js'

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
export function revOf(state: Pick<PackageState, 'pkg'>): string {
  return `${state.pkg.rev_seq}-${state.pkg.rev_hash}`
}

/**
 * The manifest of one stored version as served: stored JSON plus `_id`, `maintainers` and an
 * absolute `dist.tarball` under `baseUrl` (no trailing slash).
 */
export function renderManifest(row: VersionRow, baseUrl: string, maintainers: Packument['maintainers']): Manifest {
  const m = JSON.parse(row.manifest) as Manifest
  m._id = `${row.name}@${row.version}`
  m.maintainers = maintainers
  m.dist = { ...m.dist, tarball: baseUrl + tarballPath(row.name, row.version) }
  return m
}

/** Whether a package still has any published (not unpublished) version. */
export function liveVersions(state: PackageState): VersionRow[] {
  return state.versions.filter((v) => v.unpublished === null)
}

/**
 * Builds the full packument.
 * @param baseUrl public base URL without trailing slash, e.g. `http://127.0.0.1:3000`
 * @returns `undefined` when every version was unpublished (served as 404).
 */
export function buildPackument(state: PackageState, baseUrl: string): Packument | undefined {
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

/** The abbreviated document derived from a full one (REGISTRY-API.md §2.1 "corgi"). */
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
export function sortVersions(rows: VersionRow[]): VersionRow[] {
  return [...rows].sort((a, b) => semver.compare(a.version, b.version))
}
