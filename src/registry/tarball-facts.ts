/**
 * Reads a package tarball: the package.json it carries, its file count and unpacked size. Used at
 * publish to refuse "manifest confusion" (a manifest that disagrees with the tarball).
 *
 * Bounded and off the event loop: the gzip layer is inflated by zlib's streaming decoder on the
 * thread pool in 64 KiB chunks, and the tar listing walks those chunks as they arrive, so a gzip
 * bomb or a tar of a million entries neither blocks other requests nor fills memory. Inflation
 * stops as soon as the archive exceeds `maxUnpackedSize` bytes or `maxFiles` entries.
 */
import { posix } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { Parser, type ReadEntry } from 'tar'
import { badRequest, RegistryError } from './errors.js'

/** What a tarball says about itself. */
export interface TarballFacts {
  /** Parsed `<root>/package.json` (npm packs the root as `package/`). */
  packageJson: Record<string, unknown>
  fileCount: number
  /** Sum of the file sizes, bytes. */
  unpackedSize: number
  /** Whether `<root>/npm-shrinkwrap.json` is present (the corgi `_hasShrinkwrap`). */
  hasShrinkwrap: boolean
}

/** Caps on what a published tarball may expand to (`max_unpacked_size`, `max_unpacked_files`). */
export interface TarballLimits {
  /** Largest inflated tar stream (headers and file bodies), bytes. Default 256 MiB. */
  maxUnpackedSize: number
  /** Most entries (files, folders, links). Default 100,000. */
  maxFiles: number
}

/** Defaults of `max_unpacked_size` and `max_unpacked_files`. */
export const DEFAULT_TARBALL_LIMITS: TarballLimits = { maxUnpackedSize: 256 * 1024 * 1024, maxFiles: 100_000 }

/** Largest package.json read from a tarball, bytes. */
const MAX_PACKAGE_JSON = 4 * 1024 * 1024

/**
 * An entry path that would land outside the package folder when unpacked: absolute (`/x`, `C:x`,
 * `\\x`) or with a `..` segment. npm's own pack never writes one; tar's Unpack would strip them,
 * but Pier refuses the archive rather than serve it to clients that might not.
 */
function unsafePath(p: string): boolean {
  if (p.startsWith('/') || p.startsWith('\\') || /^[a-zA-Z]:/.test(p)) return true
  return p.split(/[\\/]/).includes('..')
}

/** A link target (resolved against the archive root) that points outside it, or is absolute. */
function escapes(target: string): boolean {
  if (target.startsWith('/') || target.startsWith('\\') || /^[a-zA-Z]:/.test(target)) return true
  const n = posix.normalize(target.replace(/\\/g, '/'))
  return n === '..' || n.startsWith('../')
}

/** Why the listing stopped early (a cap, an unsafe path): carried as the stream error. */
class Exceeded extends Error {
  constructor(readonly error: RegistryError) {
    super(error.message)
  }
}

/** Resolves when the tar parser wants more input, or has failed. */
function drained(parser: Parser): Promise<void> {
  return new Promise<void>((r) => {
    const done = (): void => {
      parser.off('drain', done)
      parser.off('error', done)
      r()
    }
    parser.on('drain', done)
    parser.on('error', done)
  })
}

/**
 * Inflates and walks a `.tgz` as a stream, within `limits`.
 * @throws RegistryError BAD_REQUEST when it is not a gzipped tar or has no top-level package.json;
 *   TOO_LARGE (413) when it inflates beyond `limits.maxUnpackedSize` bytes or holds more than
 *   `limits.maxFiles` entries
 */
export async function inspectTarball(tgz: Uint8Array, limits: TarballLimits = DEFAULT_TARBALL_LIMITS): Promise<TarballFacts> {
  let fileCount = 0
  let entries = 0
  let unpackedSize = 0
  let inflated = 0
  let hasShrinkwrap = false
  let pkgJson: { path: string; text: string } | undefined
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const path = entry.path
      if (tarError) {
        entry.resume()
        return
      }
      if (++entries > limits.maxFiles) {
        parser.abort(new Exceeded(new RegistryError('TOO_LARGE', `The tarball holds more than ${limits.maxFiles} entries (max_unpacked_files).`)))
        entry.resume()
        return
      }
      const link = entry.linkpath ? (entry.type === 'SymbolicLink' ? posix.join(posix.dirname(path), entry.linkpath) : entry.linkpath) : undefined
      const unsafe = unsafePath(path) ? path : link !== undefined && escapes(link) ? entry.linkpath : undefined
      if (unsafe !== undefined) {
        parser.abort(new Exceeded(badRequest(`The tarball has an entry outside its package folder: ${JSON.stringify(unsafe.slice(0, 200))}.`)))
        entry.resume()
        return
      }
      if (entry.type === 'File' || entry.type === 'OldFile') {
        fileCount++
        unpackedSize += entry.size
      }
      const depth = path.split('/').filter(Boolean).length
      const base = path.slice(path.lastIndexOf('/') + 1)
      if (depth === 2 && base === 'npm-shrinkwrap.json') hasShrinkwrap = true
      // npm packs into `package/`; other tools use another single root folder. Prefer `package/`.
      if (depth === 2 && base === 'package.json' && entry.size <= MAX_PACKAGE_JSON && (!pkgJson || path === 'package/package.json')) {
        const chunks: Buffer[] = []
        entry.on('data', (c: Buffer) => chunks.push(c))
        entry.on('end', () => {
          if (!pkgJson || path === 'package/package.json') pkgJson = { path, text: Buffer.concat(chunks).toString('utf8') }
        })
      } else {
        entry.resume()
      }
    },
  })
  const gunzip = createGunzip()
  gunzip.on('data', (c: Buffer) => {
    inflated += c.length
    if (inflated > limits.maxUnpackedSize) {
      gunzip.destroy(new Exceeded(new RegistryError('TOO_LARGE', `The tarball unpacks to more than ${limits.maxUnpackedSize} bytes (max_unpacked_size).`)))
    }
  })
  let tarError: Error | undefined
  parser.on('error', (e: Error) => {
    tarError ??= e
  })
  const done = new Promise<void>((resolveP) => {
    parser.on('end', () => resolveP())
    parser.on('close', () => resolveP())
    parser.on('error', () => resolveP())
  })
  try {
    await pipeline(Readable.from([Buffer.from(tgz.buffer, tgz.byteOffset, tgz.byteLength)]), gunzip, async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        if (tarError) break
        // Honour the parser's back-pressure so inflation never runs ahead of the listing.
        if (!parser.write(chunk)) await drained(parser)
      }
      yield* []
    })
    parser.end()
    await done
  } catch (e) {
    if (e instanceof Exceeded) throw e.error
    if (tarError instanceof Exceeded) throw tarError.error
    throw badRequest('The tarball is not gzip data.')
  }
  if (tarError instanceof Exceeded) throw tarError.error
  if (tarError) throw badRequest(`The tarball is not a valid tar archive: ${tarError.message}`)
  if (!pkgJson) throw badRequest('The tarball has no package.json at its root (expected package/package.json).')
  let packageJson: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(pkgJson.text.replace(/^\uFEFF/, ''))
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object')
    packageJson = parsed as Record<string, unknown>
  } catch {
    throw badRequest(`The tarball's ${pkgJson.path} is not valid JSON.`)
  }
  return { packageJson, fileCount, unpackedSize, hasShrinkwrap }
}
