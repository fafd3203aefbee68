/**
 * BlobStore on the local file system: write to a temp file, fsync, rename into place, fsync the
 * folder. A crash leaves either the whole blob or only a temp file (removed at next start-up).
 */
import { closeSync, createReadStream, existsSync, fsync, mkdirSync, openSync, renameSync, write, writeSync } from 'node:fs'
import { mkdir, readFile, rm, stat, readdir } from 'node:fs/promises'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { dirname, join, resolve, sep } from 'node:path'
import type { BlobHandle, BlobStore } from './blob-store.js'

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

  /** Creates the folders and clears temp files left by a crash. */
  async init(): Promise<void> {
    await mkdir(join(this.root, TMP_DIR), { recursive: true })
    for (const f of await readdir(join(this.root, TMP_DIR))) await rm(join(this.root, TMP_DIR, f), { force: true })
  }

  private pathOf(key: string): string {
    const p = resolve(this.root, key)
    if (!p.startsWith(this.root + sep)) throw new Error(`blob key escapes the store: ${key}`)
    return p
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const dest = this.pathOf(key)
    // Content-addressed: an existing blob already holds exactly these bytes (an idempotent retry).
    if (existsSync(dest)) return
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
}
