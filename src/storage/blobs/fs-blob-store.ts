/**
 * BlobStore on the local file system: write to a temp file, fsync, rename into place, fsync the
 * folder. A crash leaves either the whole blob or only a temp file (removed at next start-up).
 * Keys are paths relative to the root with `/` separators; temp files live in `<root>/.tmp`.
 */
import { closeSync, constants, createReadStream, fsync, mkdirSync, openSync, renameSync, utimesSync, write, writeSync } from 'node:fs'
import { access, mkdir, opendir, readFile, rm, stat, readdir } from 'node:fs/promises'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { dirname, join, relative, resolve, sep } from 'node:path'
import type { BlobHandle, BlobInfo, BlobStore } from '../../registry/stores.js'

const TMP_DIR = '.tmp'
const fsyncAsync = promisify(fsync)
const writeAsync = promisify(write)
/** Bodies up to this many bytes are written with one synchronous write. */
const SYNC_WRITE_MAX = 256 * 1024

async function writeAllAsync(fd: number, body: Uint8Array): Promise<void> {
  let off = 0
  while (off < body.length) off += (await writeAsync(fd, body, off, body.length - off)).bytesWritten
}

/** Stores blobs as files below `root`. */
export class FsBlobStore implements BlobStore {
  readonly root: string
  /** Folders known to exist (blob folders are never removed while running). */
  private readonly knownDirs = new Set<string>()

  constructor(root: string) {
    this.root = resolve(root)
  }

  /**
   * Creates the folders and (unless `clearTemp` is false) clears temp files left by a crash.
   * Pass `clearTemp: false` from a process that runs beside serving nodes (`pier gc`): their
   * temp files are writes in progress, not debris.
   */
  async init(opts: { clearTemp?: boolean } = {}): Promise<void> {
    await mkdir(join(this.root, TMP_DIR), { recursive: true })
    if (opts.clearTemp === false) return
    for (const f of await readdir(join(this.root, TMP_DIR))) await rm(join(this.root, TMP_DIR, f), { force: true })
  }

  private pathOf(key: string): string {
    const p = resolve(this.root, key)
    if (!p.startsWith(this.root + sep)) throw new Error(`blob key escapes the store: ${key}`)
    return p
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const dest = this.pathOf(key)
    // Content-addressed: an existing blob already holds exactly these bytes (an idempotent retry,
    // or a publish of bytes an earlier failed publish left). Its mtime is refreshed so that
    // `pier gc` sees a young blob and spares it until the metadata referencing it has committed.
    if (touch(dest)) return
    // Small syscalls run synchronously (microseconds each); only the two fsyncs go to the thread
    // pool, so a publish costs two round trips instead of nine.
    const tmp = join(this.root, TMP_DIR, `${randomBytes(8).toString('hex')}.part`)
    const fd = openSync(tmp, 'w')
    try {
      // Large tarballs are written off the event loop; small ones in one quick syscall.
      if (body.length > SYNC_WRITE_MAX) await writeAllAsync(fd, body)
      else writeSync(fd, body)
      await fsyncAsync(fd)
    } finally {
      closeSync(fd)
    }
    const dir = dirname(dest)
    if (!this.knownDirs.has(dir)) {
      mkdirSync(dir, { recursive: true })
      this.knownDirs.add(dir)
    }
    renameSync(tmp, dest)
    const dfd = openSync(dir, 'r')
    try {
      await fsyncAsync(dfd)
    } finally {
      closeSync(dfd)
    }
  }

  async get(key: string): Promise<BlobHandle | undefined> {
    const p = this.pathOf(key)
    try {
      const s = await stat(p)
      return { body: createReadStream(p), size: s.size }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw e
    }
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw e
    }
  }

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
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return
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
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
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

/** Sets a file's mtime to now. @returns false when the file does not exist */
function touch(path: string): boolean {
  try {
    const now = new Date()
    utimesSync(path, now, now)
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw e
  }
}
