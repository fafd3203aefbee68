/**
 * BlobStore on the local file system: write to a temp file, fsync, rename into place, fsync the
 * folder. A crash leaves either the whole blob or only a temp file. Keys are paths relative to the
 * root with `/` separators; temp files live in `<root>/.tmp`, named after their writer,
 * `<host>.<pid>.<random>.part`, so that a sweep (`sweepTemp`, run by `pier start` only) can tell
 * the debris of a process that died on this host from another process's write in progress, on
 * this host or on another one sharing the folder (NFS and the like).
 */
import { closeSync, constants, createReadStream, fsync, mkdirSync, openSync, renameSync, rmSync, utimesSync, write, writeSync } from 'node:fs'
import { access, mkdir, opendir, readFile, rm, stat, readdir } from 'node:fs/promises'
import { hostname } from 'node:os'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { dirname, join, relative, resolve, sep } from 'node:path'
import type { BlobHandle, BlobInfo, BlobStore } from '../../registry/stores.js'

const TMP_DIR = '.tmp'
const TMP_SUFFIX = '.part'
const fsyncAsync = promisify(fsync)
const writeAsync = promisify(write)
/** Bodies up to this many bytes are written with one synchronous write. */
const SYNC_WRITE_MAX = 256 * 1024
/** Default `maxAgeMs` of `sweepTemp`: 24 hours, in ms. No `put` takes anywhere near that long. */
export const TEMP_MAX_AGE_MS = 24 * 3_600_000

async function writeAllAsync(fd: number, body: Uint8Array): Promise<void> {
  let off = 0
  while (off < body.length) off += (await writeAsync(fd, body, off, body.length - off)).bytesWritten
}

/** This host's name as temp-file names record it: `os.hostname()`, or `unknown-host` when empty. */
function thisHost(): string {
  return hostname() || 'unknown-host'
}

/**
 * This host's name as it appears in temp-file names: `thisHost()` percent-encoded
 * (`encodeURIComponent`, so no `/`). Dots stay: names are parsed from the right.
 */
function hostTag(): string {
  return encodeURIComponent(thisHost())
}

/** The writer of a temp file, read from its name (`tempFileOwner`). */
export interface TempFileOwner {
  /** The host part, decoded: `os.hostname()` of the writer. */
  host: string
  /** The writer's process id on that host (a positive integer). */
  pid: number
}

/**
 * The writer a temp file's name records, for names `put` makes: `<host>.<pid>.<hex>.part`, the
 * host percent-encoded and possibly dotted (an FQDN).
 * @returns undefined for any other name (a temp file of an older Pier, or something else), whose
 *   owner is unknown
 */
export function tempFileOwner(name: string): TempFileOwner | undefined {
  if (!name.endsWith(TMP_SUFFIX)) return undefined
  const parts = name.slice(0, -TMP_SUFFIX.length).split('.')
  if (parts.length < 3) return undefined
  const random = parts.pop() as string
  const pidText = parts.pop() as string
  if (!/^[0-9a-f]+$/.test(random) || !/^[1-9][0-9]{0,9}$/.test(pidText)) return undefined
  const pid = Number(pidText)
  if (pid > 0x7fffffff) return undefined
  let host: string
  try {
    host = decodeURIComponent(parts.join('.'))
  } catch {
    return undefined
  }
  return host === '' ? undefined : { host, pid }
}

/**
 * Whether process `pid` exists on this host: `process.kill(pid, 0)` sends nothing and fails with
 * ESRCH when there is no such process. EPERM (it exists, another user's) counts as alive, and so
 * does any other error: when in doubt, a temp file is kept.
 */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** Options of `FsBlobStore.sweepTemp`. */
export interface TempSweepOptions {
  /** Temp files last modified longer ago than this many ms are removed whoever wrote them; default `TEMP_MAX_AGE_MS` (24 h). */
  maxAgeMs?: number
}

/** What `FsBlobStore.sweepTemp` did: file names inside `<root>/.tmp`. */
export interface TempSweep {
  /** Removed: written by a process of this host that no longer exists. */
  deadOwner: string[]
  /** Removed: last modified more than `maxAgeMs` ago (any host, or no owner in the name). */
  expired: string[]
  /** Left alone: writes in progress of live processes here, or of other hosts, younger than `maxAgeMs`. */
  kept: string[]
}

/** Stores blobs as files below `root`. */
export class FsBlobStore implements BlobStore {
  readonly root: string
  /** Folders known to exist (blob folders are never removed while running). */
  private readonly knownDirs = new Set<string>()

  /** `<host>.<pid>.`: the start of this process's temp-file names (`tempFileOwner` reads it back). */
  private readonly tempPrefix = `${hostTag()}.${process.pid}.`

  /** @param root the store's folder (resolved to an absolute path); nothing is created before `init` */
  constructor(root: string) {
    this.root = resolve(root)
  }

  /**
   * Creates the root and its temp folder (`mkdir -p`). Removes nothing: temp files are other
   * processes' writes in progress unless proven otherwise, which only `sweepTemp` does.
   * @param opts.clearTemp run `sweepTemp()` (default maxAge) once the folders exist; default false.
   *   Only a node starting to serve (`pier start`) asks for it.
   * @throws the file system's error (EACCES, ENOTDIR, …)
   */
  async init(opts: { clearTemp?: boolean } = {}): Promise<void> {
    await mkdir(join(this.root, TMP_DIR), { recursive: true })
    if (opts.clearTemp === true) await this.sweepTemp()
  }

  /**
   * Removes the temp files no process will finish: those whose name says they were written on this
   * host (same `os.hostname()`) by a process that no longer exists (`process.kill(pid, 0)` fails
   * with ESRCH), and any last modified more than `maxAgeMs` ago, from whatever host, or with a name
   * that records no writer. Everything else is left: a live process's write in progress, here or
   * on another host sharing the folder. Files that vanish meanwhile (renamed into place by their
   * writer) are skipped; folders inside `.tmp` are not touched.
   * Assumes the host name tells apart the hosts (and PID namespaces: containers) sharing the folder.
   * A PID reused since its writer died keeps that writer's files until they are `maxAgeMs` old.
   * @returns the names removed and kept (a missing `.tmp` gives empty lists)
   * @throws the file system's error other than ENOENT
   */
  async sweepTemp(opts: TempSweepOptions = {}): Promise<TempSweep> {
    const maxAgeMs = opts.maxAgeMs ?? TEMP_MAX_AGE_MS
    const now = Date.now()
    const here = thisHost()
    const out: TempSweep = { deadOwner: [], expired: [], kept: [] }
    const tmp = join(this.root, TMP_DIR)
    let names: string[]
    try {
      names = await readdir(tmp)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out
      throw e
    }
    for (const name of names.sort()) {
      const path = join(tmp, name)
      let s
      try {
        s = await stat(path)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw e
      }
      if (!s.isFile()) continue
      const owner = tempFileOwner(name)
      const list = owner !== undefined && owner.host === here && !processAlive(owner.pid) ? out.deadOwner : now - s.mtimeMs > maxAgeMs ? out.expired : out.kept
      if (list !== out.kept) await rm(path, { force: true })
      list.push(name)
    }
    return out
  }

  private pathOf(key: string): string {
    const p = resolve(this.root, key)
    if (!p.startsWith(this.root + sep)) throw new Error(`blob key escapes the store: ${key}`)
    return p
  }

  /**
   * Stores `body` under `key` (BlobStore.put): writes `<root>/.tmp/<host>.<pid>.<random>.part`,
   * fsyncs it, renames it to the key's path (creating its folders) and fsyncs that folder. A key
   * already stored only has its mtime refreshed. When any step fails the temp file is removed at
   * once, before the error is thrown; a failure of the last fsync leaves the blob in place (the
   * same bytes any retry writes) but is still thrown, as durability is not known.
   * @throws Error when `key` escapes the store; the file system's error (ENOSPC, ENOTDIR, EISDIR, …)
   */
  async put(key: string, body: Uint8Array): Promise<void> {
    const dest = this.pathOf(key)
    // Content-addressed: an existing blob already holds exactly these bytes (an idempotent retry,
    // or a publish of bytes an earlier failed publish left). Its mtime is refreshed so that
    // `pier gc` sees a young blob and spares it until the metadata referencing it has committed.
    if (touch(dest)) return
    // Small syscalls run synchronously (microseconds each); only the two fsyncs go to the thread
    // pool, so a publish costs two round trips instead of nine.
    const tmp = join(this.root, TMP_DIR, `${this.tempPrefix}${randomBytes(8).toString('hex')}${TMP_SUFFIX}`)
    const dir = dirname(dest)
    try {
      const fd = openSync(tmp, 'wx')
      try {
        // Large tarballs are written off the event loop; small ones in one quick syscall.
        if (body.length > SYNC_WRITE_MAX) await writeAllAsync(fd, body)
        else writeSync(fd, body)
        await fsyncAsync(fd)
      } finally {
        closeSync(fd)
      }
      if (!this.knownDirs.has(dir)) {
        mkdirSync(dir, { recursive: true })
        this.knownDirs.add(dir)
      }
      renameSync(tmp, dest)
    } catch (e) {
      // Nothing else will finish this file: remove it now rather than leave it to a sweep. A
      // failure to remove it is not what the caller needs to hear: the first error is thrown.
      try {
        rmSync(tmp, { force: true })
      } catch {
        // left for `sweepTemp`: this process will have exited by the next `pier start`
      }
      this.knownDirs.delete(dir)
      throw e
    }
    const dfd = openSync(dir, 'r')
    try {
      await fsyncAsync(dfd)
    } finally {
      closeSync(dfd)
    }
  }

  /** Opens the blob's file for streaming (BlobStore.get); `undefined` when missing. @throws the file system's error other than ENOENT and ENOTDIR */
  async get(key: string): Promise<BlobHandle | undefined> {
    const p = this.pathOf(key)
    try {
      const s = await stat(p)
      return { body: createReadStream(p), size: s.size }
    } catch (e) {
      if (missing(e)) return undefined
      throw e
    }
  }

  /** Reads the blob's file whole (BlobStore.read); `undefined` when missing. @throws the file system's error other than ENOENT and ENOTDIR */
  async read(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key))
    } catch (e) {
      if (missing(e)) return undefined
      throw e
    }
  }

  /** Removes the blob's file (BlobStore.delete); a missing one is not an error. */
  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true })
  }

  /** Walks the folders below the deepest one `prefix` names whole; skips `.tmp` (writes in progress). */
  async *list(prefix: string): AsyncIterable<BlobInfo> {
    const slash = prefix.lastIndexOf('/')
    const start = slash <= 0 ? this.root : this.pathOf(prefix.slice(0, slash))
    yield* this.walk(start, prefix)
  }

  private async *walk(dir: string, prefix: string): AsyncIterable<BlobInfo> {
    let entries
    try {
      entries = await opendir(dir)
    } catch (e) {
      if (missing(e)) return
      throw e
    }
    for await (const entry of entries) {
      if (dir === this.root && entry.name === TMP_DIR) continue
      const path = join(dir, entry.name)
      const key = relative(this.root, path).split(sep).join('/')
      if (entry.isDirectory()) {
        // Descend only where keys starting with `prefix` can be.
        if ((key + '/').startsWith(prefix) || prefix.startsWith(key + '/')) yield* this.walk(path, prefix)
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await this.statPath(key, path)
        if (info) yield info
      }
    }
  }

  /** The file's size and mtime; `undefined` when missing. */
  async stat(key: string): Promise<BlobInfo | undefined> {
    return this.statPath(key, this.pathOf(key))
  }

  /** The file's size and mtime; `undefined` when it is gone (deleted since it was listed). */
  private async statPath(key: string, path: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(path)
      return { key, modified: s.mtime, size: s.size }
    } catch (e) {
      if (missing(e)) return undefined
      throw e
    }
  }

  /** The root is a folder and its temp folder (where `put` writes first) is writable. */
  async ping(): Promise<void> {
    const s = await stat(this.root)
    if (!s.isDirectory()) throw new Error(`${this.root} is not a folder`)
    await access(join(this.root, TMP_DIR), constants.W_OK)
  }
}

/**
 * The error says the path does not exist: ENOENT, or ENOTDIR (a file sits where one of its folders
 * would be, so nothing can be stored there either).
 */
function missing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

/** Sets a file's mtime to now. @returns false when the file does not exist */
function touch(path: string): boolean {
  try {
    const now = new Date()
    utimesSync(path, now, now)
    return true
  } catch (e) {
    if (missing(e)) return false
    throw e
  }
}
