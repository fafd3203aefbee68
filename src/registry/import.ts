/**
 * Import of a package from another registry (`pier import`, docs/moving-from-verdaccio.md): the
 * write path's `import` operation. `prepareImport` reads, verifies and stores the tarballs of the
 * versions Pier lacks (outside the transaction, as a publish stores its blob first);
 * `planImport` compares the source's package with what Pier holds (pure); `applyImport` is the
 * mutation that carries the plan out in the write's transaction.
 *
 * What the source says is kept as it was: each version's manifest (`_npmUser`, `deprecated`,
 * `dist.integrity` and `dist.shasum`), its readme, its publish time, the package's `created` and
 * `modified` (write-path.ts `times`), dist-tags, maintainers and stars. A re-run writes only what
 * differs and nothing at all (no `_rev` bump) when nothing does:
 *
 * - versions are added, never removed, and never change content: a version Pier holds with other
 *   bytes, or unpublished, is skipped with the reason; one it holds with the same bytes gets the
 *   source's `deprecated` and readme when they differ;
 * - dist-tags, maintainers and stars are made to match the source's (`latest` is never removed;
 *   a tag naming a version that was not imported is skipped with the reason);
 * - a tarball is referenced only after its bytes matched the manifest's `dist.integrity` (ssri)
 *   and `dist.shasum` (sha1): npm's own check of a download (pacote).
 */
import { createHash } from 'node:crypto'
import semver from 'semver'
import ssri from 'ssri'
import { tarballKey } from './blob-keys.js'
import type { BlobStore } from './stores.js'
import type { Manifest, StoredVersion } from './types.js'
import type { Mutation, WriteContext } from './write-path.js'

/** One version as the source registry holds it. */
export interface ImportedVersion {
  version: string
  /** The source's manifest: the package.json plus registry fields (`dist`, `_npmUser`, `deprecated`…). */
  manifest: Record<string, unknown>
  /** The version's readme (Verdaccio keeps only the latest one, at the packument's top level). */
  readme?: string | undefined
  readmeFilename?: string | undefined
  /** ISO 8601 publish time (the packument's `time[version]`); absent: the time of the import. */
  published?: string | undefined
  /**
   * Reads the tarball's bytes.
   * @returns `undefined` when the source does not have it
   * @throws an Error naming what failed (a read error, an HTTP status): the version is skipped
   */
  tarball(): Promise<Buffer | undefined>
}

/** One package as the source registry holds it. */
export interface ImportedPackage {
  name: string
  versions: ImportedVersion[]
  /** tag → version. */
  distTags: Record<string, string>
  /** Maintainer user names; empty: the package keeps the ones it has (a new one gets none: only administrators may change it). */
  maintainers: string[]
  /** User names that starred the package (the packument's `users`). */
  stars: string[]
  /** ISO 8601 `time.created` and `time.modified` of the source. */
  created?: string | undefined
  modified?: string | undefined
}

/** Something not imported, and why. */
export interface ImportSkip {
  version?: string
  tag?: string
  reason: string
}

/** What an import of one package did (or, in a dry run, would do). */
export interface ImportOutcome {
  name: string
  /** False when Pier already held everything (no write, no `_rev` bump). */
  changed: boolean
  /** `_rev` afterwards (absent in a dry run). */
  rev?: string
  /** The package did not exist in Pier before. */
  created: boolean
  /** Versions added. */
  added: string[]
  /** Versions Pier held with the same bytes whose deprecation or readme was brought in line. */
  updated: string[]
  /** dist-tags set (tag → version) or removed (tag → null). */
  tags: Record<string, string | null>
  /** The maintainers afterwards, when they changed. */
  maintainers?: string[]
  /** Stars added and removed (user names). */
  starsAdded: string[]
  starsRemoved: string[]
  skipped: ImportSkip[]
  /** Tarballs read, verified and stored (or, in a dry run, verified), and their bytes. */
  tarballs: number
  bytes: number
}

/** What Pier holds of the package, as `planImport` compares it. */
export interface ImportCurrent {
  versions: readonly StoredVersion[]
  distTags: Record<string, string>
  maintainers: readonly string[]
  stars: readonly string[]
}

/** A version whose tarball was verified (and, unless a dry run, stored), ready to insert; or a skip. */
export type PreparedVersion = { row: StoredVersion } | { skip: string }

/** The registry fields a manifest loses on import: Pier adds its own when it serves the version. */
const DROPPED = ['_id', '_rev', '_attachments', '_resolved', '_integrity', '_from', 'maintainers', 'readme', 'readmeFilename'] as const

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The digests of a verified tarball. */
export interface TarballDigests {
  /** `sha512-<base64>`. */
  integrity: string
  /** sha512, hex: the blob's content address. */
  sha512Hex: string
  /** sha1, hex. */
  shasum: string
}

/**
 * Checks a tarball against its manifest's `dist`: the `integrity` string (ssri, the strongest
 * algorithm it names) and the sha1 `shasum`, each when given; one of them must be.
 * @returns the digests, or the reason the tarball is refused
 */
export function verifyTarball(bytes: Buffer, dist: unknown): TarballDigests | { problem: string } {
  const d = isObject(dist) ? dist : {}
  const integrity = typeof d.integrity === 'string' && d.integrity !== '' ? d.integrity : undefined
  const declaredSha = typeof d.shasum === 'string' && d.shasum !== '' ? d.shasum.toLowerCase() : undefined
  if (!integrity && !declaredSha) return { problem: 'the manifest has neither dist.integrity nor dist.shasum: the tarball cannot be verified' }
  const sha512 = createHash('sha512').update(bytes).digest()
  const shasum = createHash('sha1').update(bytes).digest('hex')
  if (integrity && !ssri.checkData(bytes, integrity)) return { problem: `the tarball does not match dist.integrity (${integrity.slice(0, 40)}…)` }
  if (declaredSha && declaredSha !== shasum) return { problem: `the tarball's sha1 ${shasum} does not match dist.shasum ${declaredSha}` }
  return { integrity: `sha512-${sha512.toString('base64')}`, sha512Hex: sha512.toString('hex'), shasum }
}

/**
 * The manifest Pier stores for an imported version: the source's, without the registry fields it
 * recomputes when serving (`_id`, `maintainers`, `dist.tarball`) and without the readme (stored
 * apart), `_npmUser` and `deprecated` kept; `dist.integrity` as the source wrote it (else the
 * sha512 of the bytes) and `dist.shasum` the verified sha1.
 */
export function storedManifest(v: ImportedVersion, digests: Pick<TarballDigests, 'integrity' | 'shasum'>): Manifest {
  const m: Record<string, unknown> = { ...v.manifest }
  for (const k of DROPPED) delete m[k]
  const dist = isObject(m.dist) ? m.dist : {}
  const { tarball: _url, ...rest } = dist
  const integrity = typeof rest.integrity === 'string' && rest.integrity !== '' ? rest.integrity : digests.integrity
  m.dist = { ...rest, shasum: digests.shasum, integrity }
  return m as Manifest
}

/** The readme of a version as the source gives it (the manifest's own, else the one passed along). */
function readmeOf(v: ImportedVersion): { readme: string | null; filename: string | null } {
  const own = typeof v.manifest.readme === 'string' ? v.manifest.readme : undefined
  const readme = v.readme ?? own
  const filename = v.readmeFilename ?? (typeof v.manifest.readmeFilename === 'string' ? v.manifest.readmeFilename : undefined)
  return { readme: readme === undefined || readme === '' ? null : readme, filename: filename === undefined || filename === '' ? null : filename }
}

/** Why a source version cannot be imported at all (before its tarball is read), or `undefined`. */
function versionProblem(v: ImportedVersion, name: string): string | undefined {
  if (semver.valid(v.version) !== v.version) return `"${v.version}" is not a valid semver version`
  if (v.manifest.version !== undefined && v.manifest.version !== v.version) return `its manifest says version ${String(v.manifest.version)}`
  if (v.manifest.name !== undefined && v.manifest.name !== name) return `its manifest says name ${String(v.manifest.name)}`
  return undefined
}

/**
 * Reads, verifies and stores (unless `dryRun`) the tarball of every source version that Pier does
 * not hold yet, one at a time (only one tarball is in memory at once).
 * @param has whether Pier already holds the version (then its tarball is not read at all: a re-run
 *   reads only what is new)
 * @param now ISO 8601, the publish time of versions the source gives none for
 * @returns per version: the row to insert, or why it is skipped; plus the tarballs and bytes read
 * @throws the blob store's errors (nothing was referenced yet: the import of this package fails)
 */
export async function prepareImport(
  pkg: ImportedPackage,
  has: (version: string) => Promise<boolean>,
  blobs: BlobStore,
  o: { dryRun: boolean; now: string },
): Promise<{ prepared: Map<string, PreparedVersion>; tarballs: number; bytes: number }> {
  const prepared = new Map<string, PreparedVersion>()
  let tarballs = 0
  let bytes = 0
  for (const v of pkg.versions) {
    const problem = versionProblem(v, pkg.name)
    if (problem) {
      prepared.set(v.version, { skip: problem })
      continue
    }
    if (await has(v.version)) continue
    let data: Buffer | undefined
    try {
      data = await v.tarball()
    } catch (e) {
      prepared.set(v.version, { skip: `the tarball could not be read: ${(e as Error).message}` })
      continue
    }
    if (!data) {
      prepared.set(v.version, { skip: 'the source has no tarball for it' })
      continue
    }
    const digests = verifyTarball(data, v.manifest.dist)
    if ('problem' in digests) {
      prepared.set(v.version, { skip: digests.problem })
      continue
    }
    const key = tarballKey(digests.sha512Hex)
    if (!o.dryRun) await blobs.put(key, data)
    tarballs++
    bytes += data.length
    const { readme, filename } = readmeOf(v)
    prepared.set(v.version, {
      row: {
        name: pkg.name,
        version: v.version,
        manifest: JSON.stringify(storedManifest(v, digests)),
        readme,
        readme_filename: filename,
        integrity: digests.integrity,
        shasum: digests.shasum,
        tarball_key: key,
        size: data.length,
        published: v.published ?? o.now,
        unpublished: null,
      },
    })
  }
  return { prepared, tarballs, bytes }
}

/** What `applyImport` changes. */
export interface ImportPlan {
  insert: StoredVersion[]
  /** Existing rows (same bytes) with the source's deprecation and readme. */
  replace: StoredVersion[]
  setTags: Record<string, string>
  deleteTags: string[]
  /** New maintainer list, when it differs. */
  maintainers?: string[]
  starsAdd: string[]
  starsRemove: string[]
  skipped: ImportSkip[]
}

/** The manifest JSON of `row` with `deprecated` set as in `source` (unchanged text when it already is). */
function withDeprecation(row: StoredVersion, source: Record<string, unknown>): string {
  const m = JSON.parse(row.manifest) as Record<string, unknown>
  const want = typeof source.deprecated === 'string' && source.deprecated !== '' ? source.deprecated : undefined
  const have = typeof m.deprecated === 'string' && m.deprecated !== '' ? m.deprecated : undefined
  if (want === have) return row.manifest
  if (want === undefined) delete m.deprecated
  else m.deprecated = want
  return JSON.stringify(m)
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n')

/**
 * Compares the source's package with Pier's copy (pure).
 * @param prepared the outcome of `prepareImport` for the versions Pier lacked
 * @param created the package is created by this import (its maintainers so far: the importer)
 */
export function planImport(current: ImportCurrent, pkg: ImportedPackage, prepared: ReadonlyMap<string, PreparedVersion>, created = false): ImportPlan {
  const plan: ImportPlan = { insert: [], replace: [], setTags: {}, deleteTags: [], starsAdd: [], starsRemove: [], skipped: [] }
  const byVersion = new Map(current.versions.map((r) => [r.version, r]))
  const live = new Set(current.versions.filter((r) => r.unpublished === null).map((r) => r.version))
  /** Source versions Pier holds with the source's bytes once the plan is applied: what tags may name. */
  const same = new Set<string>()
  for (const v of pkg.versions) {
    const p = prepared.get(v.version)
    if (p && 'skip' in p) {
      plan.skipped.push({ version: v.version, reason: p.skip })
      continue
    }
    const existing = byVersion.get(v.version)
    if (!existing) {
      // Pier lacked it when the tarballs were prepared; it is inserted now.
      if (p) {
        plan.insert.push(p.row)
        live.add(v.version)
        same.add(v.version)
      } else plan.skipped.push({ version: v.version, reason: 'appeared while importing: import again' })
      continue
    }
    if (existing.unpublished !== null) {
      plan.skipped.push({ version: v.version, reason: `it was unpublished from Pier on ${existing.unpublished}` })
      continue
    }
    const dist = isObject(v.manifest.dist) ? v.manifest.dist : {}
    const sameBytes =
      (typeof dist.integrity === 'string' && dist.integrity !== '' ? ssriMatches(dist.integrity, existing.integrity) : true) &&
      (typeof dist.shasum === 'string' && dist.shasum !== '' ? dist.shasum.toLowerCase() === existing.shasum : true)
    if (!sameBytes) {
      plan.skipped.push({ version: v.version, reason: `Pier holds ${v.version} with other content (${existing.integrity.slice(0, 30)}…)` })
      continue
    }
    same.add(v.version)
    const manifest = withDeprecation(existing, v.manifest)
    const { readme, filename } = readmeOf(v)
    const readmeChanged = readme !== null && (readme !== existing.readme || filename !== existing.readme_filename)
    if (manifest !== existing.manifest || readmeChanged) {
      plan.replace.push({ ...existing, manifest, ...(readmeChanged ? { readme, readme_filename: filename } : {}) })
    }
  }
  for (const [tag, version] of Object.entries(pkg.distTags)) {
    if (typeof version !== 'string') continue
    if (!same.has(version)) {
      plan.skipped.push({ tag, reason: `dist-tag ${tag} names ${version}, which was not imported` })
      continue
    }
    if (semver.validRange(tag)) {
      plan.skipped.push({ tag, reason: `dist-tag ${tag} is a semver range` })
      continue
    }
    if (current.distTags[tag] !== version) plan.setTags[tag] = version
  }
  for (const tag of Object.keys(current.distTags)) if (tag !== 'latest' && !(tag in pkg.distTags)) plan.deleteTags.push(tag)
  const tagsAfter = { ...current.distTags, ...plan.setTags }
  if (!tagsAfter.latest && live.size > 0) plan.setTags.latest = [...live].sort(semver.compare).at(-1) as string
  if (pkg.maintainers.length > 0 && !sameSet(pkg.maintainers, current.maintainers)) plan.maintainers = [...new Set(pkg.maintainers)].sort()
  // A package this import creates starts with the importer as its maintainer: a source that names
  // none (Verdaccio 5 records none) leaves it with none, so only administrators may change it.
  else if (pkg.maintainers.length === 0 && created && current.maintainers.length > 0) plan.maintainers = []
  const stars = new Set(current.stars)
  const want = new Set(pkg.stars)
  plan.starsAdd = [...want].filter((u) => !stars.has(u)).sort()
  plan.starsRemove = [...stars].filter((u) => !want.has(u)).sort()
  return plan
}

/** Whether a source's integrity string accepts the stored sha512 integrity (same algorithm and digest). */
function ssriMatches(source: string, stored: string): boolean {
  const s = ssri.parse(source)
  const algo = s.pickAlgorithm()
  if (algo !== 'sha512') return true // only a weaker algorithm: the shasum (and the bytes, at insert) decide
  return ssri.parse(stored).match(s) !== false
}

/** Whether a plan changes anything. */
export function planChanges(p: ImportPlan): boolean {
  return (
    p.insert.length + p.replace.length + Object.keys(p.setTags).length + p.deleteTags.length + p.starsAdd.length + p.starsRemove.length > 0 ||
    p.maintainers !== undefined
  )
}

/**
 * The import mutation (write-path.ts runs it, `op: 'import'`): reads Pier's copy inside the
 * transaction, plans against it and applies the plan.
 * @returns the plan carried out; `changed: false` when it was empty (a package this write created
 *   always counts as changed)
 */
export async function applyImport(w: WriteContext, pkg: ImportedPackage, prepared: ReadonlyMap<string, PreparedVersion>): Promise<Mutation<ImportPlan>> {
  const { tx, name } = w
  const current: ImportCurrent = {
    versions: await tx.listVersions(name),
    distTags: await tx.getDistTags(name),
    maintainers: w.maintainers,
    stars: await tx.getStars(name),
  }
  const plan = planImport(current, pkg, prepared, w.created)
  if (!planChanges(plan) && !w.created) return { changed: false, value: plan }
  for (const row of plan.insert) await tx.insertVersion(row)
  for (const row of plan.replace) await tx.replaceVersion(row)
  for (const [tag, version] of Object.entries(plan.setTags)) await tx.setDistTag(name, tag, version)
  for (const tag of plan.deleteTags) await tx.deleteDistTag(name, tag)
  if (plan.maintainers) await tx.setMaintainers(name, plan.maintainers)
  for (const u of plan.starsAdd) await tx.setStar(name, u, true)
  for (const u of plan.starsRemove) await tx.setStar(name, u, false)
  return {
    changed: true,
    value: plan,
    audit: {
      added: plan.insert.map((r) => r.version),
      updated: plan.replace.map((r) => r.version),
      tags: { ...plan.setTags, ...Object.fromEntries(plan.deleteTags.map((t) => [t, null])) },
      ...(plan.maintainers ? { maintainers: plan.maintainers } : {}),
      stars: { added: plan.starsAdd, removed: plan.starsRemove },
      skipped: plan.skipped.length,
    },
  }
}
