/**
 * Reads a package tarball in memory: the package.json it carries, its file count and unpacked size.
 * Used at publish to refuse "manifest confusion" (a manifest that disagrees with the tarball).
 */
import { gunzipSync } from 'node:zlib'
import { list as tarList, type ReadEntry } from 'tar'
import { badRequest } from './errors.js'

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

/** Largest package.json read from a tarball, bytes. */
const MAX_PACKAGE_JSON = 4 * 1024 * 1024

/**
 * Gunzips and walks a `.tgz`.
 * @throws RegistryError BAD_REQUEST when it is not a gzipped tar or has no top-level package.json.
 */
export async function inspectTarball(tgz: Uint8Array): Promise<TarballFacts> {
  let tarBytes: Buffer
  try {
    tarBytes = gunzipSync(tgz)
  } catch {
    throw badRequest('The tarball is not gzip data.')
  }
  let fileCount = 0
  let unpackedSize = 0
  let hasShrinkwrap = false
  let pkgJson: { path: string; text: string } | undefined
  await new Promise<void>((resolveP, rejectP) => {
    const parser = tarList({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        const path = entry.path
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
    parser.on('error', (e: Error) => rejectP(badRequest(`The tarball is not a valid tar archive: ${e.message}`)))
    parser.on('end', () => resolveP())
    parser.on('close', () => resolveP())
    parser.end(tarBytes)
  })
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
