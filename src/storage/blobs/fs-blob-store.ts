/**
 * BlobStore on the local file system: write to a temp file, fsync, rename into place, fsync the
 * folder. A crash leaves either the whole blob or only a temp file (removed at next start-up).
 */
import { createReadStream } from 'node:fs'
import { mkdir, open, readFile, rename, rm, stat, readdir } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { dirname, join, resolve, sep } from 'node:path'
import type { BlobHandle, BlobStore } from './blob-store.js'

const TMP_DIR = '.tmp'

/** Stores blobs as files below `root`. */
export class FsBlobStore implements BlobStore {
  readonly root: string

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
    const tmp = join(this.root, TMP_DIR, `${randomBytes(8).toString('hex')}.part`)
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(body)
      await fh.sync()
    } finally {
      await fh.close()
    }
    const dir = dirname(dest)
    await mkdir(dir, { recursive: true })
    await rename(tmp, dest)
    const dh = await open(dir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
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
