/**
 * `pier import` over opened stores (the CLI, src/cli/import.ts, opens them): a Verdaccio or
 * Sinopia storage folder with its htpasswd file, or a list of names from another registry, into
 * Pier. Local packages go through the registry's write path (`Registry.importPackage`, op
 * `import`, registry/import.ts); packages Verdaccio had only cached from an uplink go to Pier's
 * uplink cache (the `uplink_packuments` rows and their verified tarballs, as the uplink cache
 * keeps them, uplink/uplink-cache.ts); users to the user table (users.ts). Every step is
 * idempotent, so a re-run catches up with what changed at the source, while Pier serves.
 * docs/moving-from-verdaccio.md describes it for users.
 */
import { readFile } from 'node:fs/promises'
import type { Config } from '../../config/schema.js'
import type { UserStore } from '../../auth/user-store.js'
import { cachedTarballKey } from '../../registry/blob-keys.js'
import type { ImportedPackage, ImportOutcome } from '../../registry/import.js'
import { verifyTarball } from '../../registry/import.js'
import { expectedDigest } from '../../registry/integrity.js'
import { Registry } from '../../registry/registry.js'
import type { OrgStore } from '../../registry/orgs.js'
import type { BlobStore, PackageStore } from '../../registry/stores.js'
import type { Principal } from '../../registry/types.js'
import { DEFAULT_UPLINK, isOwnUrl, npmConfiguredRegistry } from '../../uplink/open-uplinks.js'
import type { UplinkCacheStore } from '../../uplink/uplink-cache.js'
import { parseHtpasswd } from './htpasswd.js'
import { RegistrySource } from './registry-source.js'
import { importUsers } from './users.js'
import { cachedOfFolder, packageOfFolder, readStorage, readStorageDb, type CachedFolder } from './verdaccio.js'

/** The stores an import writes to (the metadata store implements all of them). */
export type ImportStores = PackageStore & OrgStore & UserStore & UplinkCacheStore

/** The user name the import's writes are recorded under in the audit log. */
export const IMPORTER = 'pier-import'

/** Something not imported, and why. */
export interface SkipLine {
  package?: string
  version?: string
  tag?: string
  user?: string
  reason: string
}

/** What an import did (or, with `dryRun`, would do). Sizes in bytes. */
export interface ImportSummary {
  source: 'verdaccio' | 'sinopia' | 'registry'
  dryRun: boolean
  packages: { seen: number; created: number; changed: number; unchanged: number; failed: number }
  versions: { added: number; updated: number }
  /** Tarballs verified and stored for local packages. */
  tarballs: { count: number; bytes: number }
  /** Packages cached from an uplink, into Pier's uplink cache. */
  cached: { packages: number; changed: number; tarballs: number; bytes: number; uplink: string | null }
  users: { created: number; updated: number; unchanged: number; kept: number }
  /** Verdaccio's database file had a secret (its token key: Verdaccio's tokens are not imported). */
  secret: boolean
  /** Skipped items with their reasons (failed packages too, with `failed` counted above). */
  skipped: SkipLine[]
  /** Wall time, ms. */
  durationMs: number
}

/** Told after each package: how many are done out of how many, and which one it was. */
export type Progress = (done: number, total: number, name: string) => void

/** Options common to both sources. */
export interface ImportOptions {
  dryRun: boolean
  /** `--maintainer`: the maintainers of packages whose source names none (Verdaccio 5 records none). */
  maintainers?: string[] | undefined
  /** Packages imported at once (default 4). */
  concurrency?: number
  progress?: Progress
}

/** A Verdaccio / Sinopia import. */
export interface StorageImportOptions extends ImportOptions {
  kind: 'verdaccio' | 'sinopia'
  /** The storage folder. */
  storage: string
  /** The htpasswd file, if users are to be imported. */
  htpasswd?: string | undefined
  /** Pier's configured uplinks, name → URL, in configuration order. */
  uplinks: ReadonlyArray<readonly [string, string]>
  /** `--uplink NAME`: the uplink cached packages are filed under. */
  uplink?: string | undefined
}

/** A registry import. */
export interface RegistryImportOptions extends ImportOptions {
  url: string
  token?: string | undefined
  /** Names to import. */
  names: string[]
  /** Scopes whose every package is imported (`@acme`). */
  scopes: string[]
}

/** An import that cannot start (a bad option, an unreadable source): exit code 1 or 2 by `usage`. */
export class ImportError extends Error {
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(message)
    this.name = 'ImportError'
  }
}

const PRINCIPAL: Principal = Object.freeze({ name: IMPORTER, readonly: false, admin: true })

function emptySummary(source: ImportSummary['source'], dryRun: boolean): ImportSummary {
  return {
    source,
    dryRun,
    packages: { seen: 0, created: 0, changed: 0, unchanged: 0, failed: 0 },
    versions: { added: 0, updated: 0 },
    tarballs: { count: 0, bytes: 0 },
    cached: { packages: 0, changed: 0, tarballs: 0, bytes: 0, uplink: null },
    users: { created: 0, updated: 0, unchanged: 0, kept: 0 },
    secret: false,
    skipped: [],
    durationMs: 0,
  }
}

/**
 * Runs `work` over `items`, at most `limit` at a time, in order of start.
 * @throws nothing of its own: `work` must catch what it can recover from
 */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      await work(items[i] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane))
}

/** Adds one package's outcome to the summary. */
function record(s: ImportSummary, o: ImportOutcome): void {
  if (o.created) s.packages.created++
  else if (o.changed) s.packages.changed++
  else s.packages.unchanged++
  s.versions.added += o.added.length
  s.versions.updated += o.updated.length
  s.tarballs.count += o.tarballs
  s.tarballs.bytes += o.bytes
  for (const k of o.skipped) s.skipped.push({ package: o.name, ...(k.version ? { version: k.version } : {}), ...(k.tag ? { tag: k.tag } : {}), reason: k.reason })
}

/** The registry the import writes through: the write path, with an administrator as the writer. */
function registryOf(stores: ImportStores, blobs: BlobStore): Registry {
  return new Registry(stores, blobs, { allowPreviousVersion: false, open: false })
}

/** Imports one local package, recording the outcome or the failure. */
async function importOne(registry: Registry, s: ImportSummary, source: ImportedPackage, o: ImportOptions): Promise<void> {
  const pkg = source.maintainers.length === 0 && o.maintainers?.length ? { ...source, maintainers: o.maintainers } : source
  try {
    record(s, await registry.importPackage(pkg, PRINCIPAL, { dryRun: o.dryRun }))
  } catch (e) {
    s.packages.failed++
    s.skipped.push({ package: pkg.name, reason: `failed: ${(e as Error).message}` })
  }
}

/** `origin + path` of a URL without trailing slash, for matching tarball URLs to an uplink; `undefined` when not a URL. */
function urlBase(u: string): string | undefined {
  try {
    const x = new URL(u)
    return `${x.origin}${x.pathname.replace(/\/+$/, '')}`
  } catch {
    return undefined
  }
}

/**
 * The uplink a cached package is filed under: `--uplink`, else the configured uplink whose URL
 * the package's tarball URLs start with, else the first configured one.
 */
function uplinkFor(c: CachedFolder, o: StorageImportOptions): string | undefined {
  if (o.uplink) return o.uplink
  for (const [name, url] of o.uplinks) {
    const base = urlBase(url)
    if (base && c.urls.some((u) => u.startsWith(`${base}/`))) return name
  }
  return o.uplinks[0]?.[0]
}

/** Imports one package Verdaccio had cached from an uplink into Pier's uplink cache. */
async function importCached(stores: ImportStores, blobs: BlobStore, s: ImportSummary, c: CachedFolder, o: StorageImportOptions): Promise<void> {
  const uplink = uplinkFor(c, o)
  if (!uplink) {
    s.skipped.push({ package: c.name, reason: 'cached from an uplink, but Pier has no uplink configured to file it under (--uplink, or uplinks in the configuration)' })
    return
  }
  s.cached.uplink = s.cached.uplink ?? uplink
  if (await stores.readPackage(c.name)) {
    s.skipped.push({ package: c.name, reason: 'cached from an uplink, but Pier has a local package of that name (which wins)' })
    return
  }
  s.cached.packages++
  for (const t of c.tarballs) {
    const dist = (t.dist ?? {}) as { integrity?: unknown; shasum?: unknown }
    const expected = expectedDigest(typeof dist.integrity === 'string' ? dist.integrity : undefined, typeof dist.shasum === 'string' ? dist.shasum : undefined)
    if (!expected) {
      s.skipped.push({ package: c.name, version: t.version, reason: 'cached tarball without dist.integrity or dist.shasum: not kept' })
      continue
    }
    const key = cachedTarballKey(expected)
    if (await blobs.stat(key)) continue
    const bytes = await t.read()
    // Verdaccio keeps only the tarballs someone installed; the others are fetched on demand, as any cached tarball.
    if (!bytes) continue
    const v = verifyTarball(bytes, t.dist)
    if ('problem' in v) {
      s.skipped.push({ package: c.name, version: t.version, reason: `cached tarball not kept: ${v.problem}` })
      continue
    }
    if (!o.dryRun) await blobs.put(key, bytes)
    s.cached.tarballs++
    s.cached.bytes += bytes.length
  }
  const existing = await stores.getCachedPackument(c.name, uplink)
  if (existing?.body === c.body) return
  s.cached.changed++
  if (o.dryRun) return
  // The tarballs are stored first: the packument that refers to them is written after them.
  await stores.putCachedPackument({
    name: c.name,
    uplink,
    etag: c.etag ?? null,
    last_modified: null,
    fetched_at: c.fetchedAt ?? new Date().toISOString(),
    body: c.body,
  })
}

/**
 * Imports a Verdaccio or Sinopia storage folder and (with `htpasswd`) its users.
 * @throws ImportError when the storage folder, its database file or the htpasswd file cannot be
 *   read, or `--uplink` names no configured uplink; a package's failure is recorded, not thrown
 */
export async function importStorage(stores: ImportStores, blobs: BlobStore, o: StorageImportOptions): Promise<ImportSummary> {
  const started = Date.now()
  const s = emptySummary(o.kind, o.dryRun)
  if (o.uplink && !o.uplinks.some(([n]) => n === o.uplink)) throw new ImportError(`--uplink ${o.uplink}: no such uplink in the configuration`, true)
  let db
  let storage
  try {
    db = await readStorageDb(o.storage)
    storage = await readStorage(o.storage, db)
  } catch (e) {
    throw new ImportError(`cannot read the storage folder ${o.storage}: ${(e as Error).message}`)
  }
  let htpasswd
  if (o.htpasswd) {
    try {
      htpasswd = parseHtpasswd(await readFile(o.htpasswd, 'utf8'))
    } catch (e) {
      throw new ImportError(`cannot read the htpasswd file ${o.htpasswd}: ${(e as Error).message}`)
    }
  }
  s.secret = db.hasSecret
  for (const p of storage.problems) s.skipped.push({ package: p.name, reason: p.reason })
  if (htpasswd) {
    for (const line of htpasswd.malformed) s.skipped.push({ user: `line ${line}`, reason: 'not a user:hash line' })
    for (const u of await importUsers(stores, htpasswd.entries, { dryRun: o.dryRun, actor: IMPORTER })) {
      if (u.result === 'skipped') s.skipped.push({ user: u.user, reason: u.reason })
      else s.users[u.result]++
    }
  }
  const registry = registryOf(stores, blobs)
  const total = storage.folders.length
  let done = 0
  s.packages.seen = storage.folders.filter((f) => f.local).length
  await pool(storage.folders, o.concurrency ?? 4, async (f) => {
    if (f.local) await importOne(registry, s, packageOfFolder(f), o)
    else {
      try {
        await importCached(stores, blobs, s, cachedOfFolder(f), o)
      } catch (e) {
        s.packages.failed++
        s.skipped.push({ package: f.name, reason: `failed: ${(e as Error).message}` })
      }
    }
    o.progress?.(++done, total, f.name)
  })
  s.durationMs = Date.now() - started
  return s
}

/**
 * Pier's uplinks, name → URL, in configuration order; without `uplinks` in the configuration the
 * default one `pier start` would use (`npm config get registry`, unless that is this Pier).
 */
export async function configuredUplinkUrls(config: Config): Promise<[string, string][]> {
  if (config.uplinks !== undefined) return Object.entries(config.uplinks).map(([n, u]) => [n, u.url])
  const url = await npmConfiguredRegistry()
  return url && !isOwnUrl(url, config) ? [[DEFAULT_UPLINK, url]] : []
}

/**
 * Parses a names file: one package name a line, `#` starting a comment, blank lines ignored.
 * @returns the names in file order, each once
 */
export function parseNames(text: string): string[] {
  const names = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '')
  return [...new Set(names)]
}

/**
 * Imports packages from another registry: the names given and every package of each scope, at
 * most `concurrency` at a time. A re-run reads each packument again but only the tarballs of the
 * versions Pier does not hold yet, so an interrupted run resumes where it stopped.
 * @throws ImportError when a scope cannot be listed; a package's failure is recorded, not thrown
 */
export async function importRegistry(stores: ImportStores, blobs: BlobStore, o: RegistryImportOptions): Promise<ImportSummary> {
  const started = Date.now()
  const s = emptySummary('registry', o.dryRun)
  const source = new RegistrySource({ url: o.url, token: o.token })
  const names = new Set(o.names)
  for (const scope of o.scopes) {
    try {
      for (const n of await source.scopeNames(scope)) names.add(n)
    } catch (e) {
      throw new ImportError(`cannot list the packages of ${scope}: ${(e as Error).message}`)
    }
  }
  const list = [...names]
  s.packages.seen = list.length
  const registry = registryOf(stores, blobs)
  let done = 0
  await pool(list, o.concurrency ?? 4, async (name) => {
    try {
      const doc = await source.packument(name)
      if (!doc) s.skipped.push({ package: name, reason: 'the source does not know it (404)' })
      else await importOne(registry, s, source.packageOf(name, doc), o)
    } catch (e) {
      s.packages.failed++
      s.skipped.push({ package: name, reason: `failed: ${(e as Error).message}` })
    }
    o.progress?.(++done, list.length, name)
  })
  s.durationMs = Date.now() - started
  return s
}
