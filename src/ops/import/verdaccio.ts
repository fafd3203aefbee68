/**
 * Reads a Verdaccio (or Sinopia) storage folder, the layout of Verdaccio's default storage
 * plugin (`@verdaccio/local-storage`, as Verdaccio 5 writes it; Sinopia's is the same):
 *
 * - `<storage>/<name>/package.json`: the packument, with Verdaccio's own fields `_attachments`
 *   (tarball file → `{ shasum, version }` of what was published here), `_uplinks` (uplink →
 *   `{ etag, fetched }` of what was cached), `_distfiles` (tarball file → `{ url, sha, registry }`
 *   of tarballs cached from an uplink) and `_rev`; the tarballs beside it, `<name>-<version>.tgz`;
 * - scoped packages one level deeper, `<storage>/@scope/<name>/…`, tarballs named without scope;
 * - `<storage>/.verdaccio-db.json` (`.sinopia-db.json`): `{ "list": [names published here],
 *   "secret": "…" }`.
 *
 * A package in `list` is local. One that is not, but has `_uplinks` or `_distfiles`, was only
 * cached from an uplink; one that is in neither (no database file, or a storage copied without
 * it) is taken as local.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { ImportedPackage, ImportedVersion } from '../../registry/import.js'

/** The database file of the storage folder. */
export interface StorageDb {
  /** Its path, or `undefined` when there is none. */
  file: string | undefined
  /** Names published to the registry itself. */
  list: string[]
  /** Whether it holds a `secret` (Verdaccio's key for its own tokens; never printed, not importable). */
  hasSecret: boolean
}

/** One package folder. */
export interface StoredFolder {
  name: string
  dir: string
  /** The parsed `package.json`. */
  doc: Record<string, unknown>
  /** Published to the registry (in the database's list), or only cached from an uplink. */
  local: boolean
}

/** A package folder that could not be read, and why. */
export interface FolderProblem {
  name: string
  reason: string
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Reads the database file (`.verdaccio-db.json`, else `.sinopia-db.json`).
 * @throws Error when the file exists but is not the expected JSON
 */
export async function readStorageDb(storage: string): Promise<StorageDb> {
  for (const f of ['.verdaccio-db.json', '.sinopia-db.json']) {
    const file = join(storage, f)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw e
    }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch {
      throw new Error(`${file} is not valid JSON`)
    }
    if (!isObject(doc)) throw new Error(`${file} is not a JSON object`)
    const list = Array.isArray(doc.list) ? doc.list.filter((n): n is string => typeof n === 'string') : []
    return { file, list, hasSecret: typeof doc.secret === 'string' && doc.secret !== '' }
  }
  return { file: undefined, list: [], hasSecret: false }
}

/** Names of the sub-folders of `dir` that do not start with a dot. */
async function folders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort()
}

/**
 * Every package folder of the storage, scoped ones included, in name order.
 * @param db the database file's list decides which are local (see the file comment)
 * @returns the readable folders, and those whose `package.json` is missing or unreadable
 * @throws Error when `storage` is not a readable folder
 */
export async function readStorage(storage: string, db: StorageDb): Promise<{ folders: StoredFolder[]; problems: FolderProblem[] }> {
  const st = await stat(storage)
  if (!st.isDirectory()) throw new Error(`${storage} is not a folder`)
  const listed = new Set(db.list)
  const out: StoredFolder[] = []
  const problems: FolderProblem[] = []
  const candidates: { name: string; dir: string }[] = []
  for (const top of await folders(storage)) {
    if (top.startsWith('@')) {
      for (const sub of await folders(join(storage, top))) candidates.push({ name: `${top}/${sub}`, dir: join(storage, top, sub) })
    } else candidates.push({ name: top, dir: join(storage, top) })
  }
  for (const c of candidates) {
    let text: string
    try {
      text = await readFile(join(c.dir, 'package.json'), 'utf8')
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      // A folder without package.json holds no package (Verdaccio leaves none behind but a user might).
      problems.push({ name: c.name, reason: code === 'ENOENT' ? 'the folder has no package.json' : `package.json could not be read: ${(e as Error).message}` })
      continue
    }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch {
      problems.push({ name: c.name, reason: 'package.json is not valid JSON' })
      continue
    }
    if (!isObject(doc)) {
      problems.push({ name: c.name, reason: 'package.json is not a JSON object' })
      continue
    }
    if (typeof doc.name === 'string' && doc.name !== c.name) {
      problems.push({ name: c.name, reason: `package.json is named ${doc.name}, not ${c.name}` })
      continue
    }
    const cached = !listed.has(c.name) && (Object.keys(isObject(doc._uplinks) ? doc._uplinks : {}).length > 0 || Object.keys(isObject(doc._distfiles) ? doc._distfiles : {}).length > 0)
    out.push({ name: c.name, dir: c.dir, doc, local: !cached })
  }
  for (const name of db.list) if (!out.some((f) => f.name === name) && !problems.some((p) => p.name === name)) problems.push({ name, reason: 'listed in the database file but its folder is missing' })
  return { folders: out, problems }
}

/** The file name of a version's tarball in its folder: the `dist.tarball` URL's last segment, else `<name>-<version>.tgz`. */
export function tarballFile(name: string, version: string, manifest: Record<string, unknown>): string {
  const dist = isObject(manifest.dist) ? manifest.dist : {}
  if (typeof dist.tarball === 'string') {
    try {
      const last = basename(new URL(dist.tarball).pathname)
      if (last.endsWith('.tgz')) return decodeURIComponent(last)
    } catch {
      // not a URL: the default name
    }
  }
  return `${name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name}-${version}.tgz`
}

/** Reads a file, `undefined` when it does not exist. */
async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}

/** User names of a list of npm persons (`[{ name, email }]`, or `"name <email>"` strings). */
function personNames(v: unknown): string[] {
  if (!Array.isArray(v)) return []
  const names: string[] = []
  for (const p of v) {
    const n = isObject(p) ? p.name : typeof p === 'string' ? p.split(/\s</)[0] : undefined
    if (typeof n === 'string' && n.trim() !== '') names.push(n.trim())
  }
  return names
}

/**
 * The package of a local folder, as the import takes it: every version of `versions` with its
 * tarball read lazily from the folder, `time` stamps, dist-tags, the top-level readme given to the
 * `latest` version, maintainers (the packument's; else every version's `maintainers`; else the
 * publishers, `_npmUser`) and stars (`users`).
 */
export function packageOfFolder(f: StoredFolder): ImportedPackage {
  const doc = f.doc
  const versions = isObject(doc.versions) ? doc.versions : {}
  const time = isObject(doc.time) ? doc.time : {}
  const tags = isObject(doc['dist-tags']) ? doc['dist-tags'] : {}
  const distTags = Object.fromEntries(Object.entries(tags).filter((e): e is [string, string] => typeof e[1] === 'string'))
  const latest = distTags.latest
  const topReadme = typeof doc.readme === 'string' && doc.readme !== '' ? doc.readme : undefined
  const topReadmeFile = typeof doc.readmeFilename === 'string' ? doc.readmeFilename : undefined
  const list: ImportedVersion[] = []
  const versionMaintainers: string[] = []
  const publishers: string[] = []
  for (const [version, m] of Object.entries(versions)) {
    if (!isObject(m)) continue
    versionMaintainers.push(...personNames(m.maintainers))
    if (isObject(m._npmUser) && typeof m._npmUser.name === 'string') publishers.push(m._npmUser.name)
    const ownReadme = typeof m.readme === 'string' && m.readme !== ''
    const published = typeof time[version] === 'string' ? (time[version] as string) : undefined
    list.push({
      version,
      manifest: m,
      ...(version === latest && !ownReadme && topReadme ? { readme: topReadme, readmeFilename: topReadmeFile } : {}),
      ...(published ? { published } : {}),
      tarball: () => readIfExists(join(f.dir, tarballFile(f.name, version, m))),
    })
  }
  const top = personNames(doc.maintainers)
  const maintainers = [...new Set(top.length > 0 ? top : versionMaintainers.length > 0 ? versionMaintainers : publishers)]
  const users = isObject(doc.users) ? Object.entries(doc.users).filter(([, v]) => v === true).map(([u]) => u) : []
  return {
    name: f.name,
    versions: list,
    distTags,
    maintainers,
    stars: users,
    created: typeof time.created === 'string' ? time.created : undefined,
    modified: typeof time.modified === 'string' ? time.modified : undefined,
  }
}

/** A package Verdaccio had only cached from an uplink, as Pier's uplink cache takes it. */
export interface CachedFolder {
  name: string
  /** The packument text for the uplink cache: Verdaccio's fields removed, `dist.tarball` the uplink's URL. */
  body: string
  /** The uplink's ETag, when Verdaccio kept one. */
  etag: string | undefined
  /** When Verdaccio last fetched it, ISO 8601 (else the import's time). */
  fetchedAt: string | undefined
  /** URLs of the tarballs (from `_distfiles`, else `dist.tarball`): they tell which uplink it came from. */
  urls: string[]
  /** The versions with their manifests' `dist` and the tarball, read lazily from the folder. */
  tarballs: { version: string; dist: unknown; read: () => Promise<Buffer | undefined> }[]
}

/**
 * The uplink-cache form of a folder cached from an uplink: the packument as the uplink sent it,
 * as far as Verdaccio kept it (`_attachments`, `_uplinks`, `_distfiles`, `_rev` removed; each
 * version's `dist.tarball` set back to the uplink's URL recorded in `_distfiles`).
 */
export function cachedOfFolder(f: StoredFolder): CachedFolder {
  const { _attachments: _a, _uplinks, _distfiles, _rev: _r, ...doc } = f.doc
  const distfiles = isObject(_distfiles) ? _distfiles : {}
  const versions = isObject(doc.versions) ? { ...doc.versions } : {}
  const urls: string[] = []
  const tarballs: CachedFolder['tarballs'] = []
  for (const [version, m] of Object.entries(versions)) {
    if (!isObject(m) || !isObject(m.dist)) continue
    const file = tarballFile(f.name, version, m)
    const df = distfiles[file]
    const url = isObject(df) && typeof df.url === 'string' ? df.url : typeof m.dist.tarball === 'string' ? m.dist.tarball : undefined
    if (url) urls.push(url)
    const manifest = { ...m, dist: { ...m.dist, ...(url ? { tarball: url } : {}) } }
    versions[version] = manifest
    tarballs.push({ version, dist: manifest.dist, read: () => readIfExists(join(f.dir, file)) })
  }
  let etag: string | undefined
  let fetched = 0
  for (const u of Object.values(isObject(_uplinks) ? _uplinks : {})) {
    if (!isObject(u)) continue
    if (typeof u.etag === 'string' && u.etag !== '') etag = u.etag
    if (typeof u.fetched === 'number' && u.fetched > fetched) fetched = u.fetched
  }
  return {
    name: f.name,
    body: JSON.stringify({ ...doc, versions }),
    etag,
    fetchedAt: fetched > 0 ? new Date(fetched).toISOString() : undefined,
    urls,
    tarballs,
  }
}
