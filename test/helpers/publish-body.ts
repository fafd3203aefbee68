/**
 * Builds npm's publish wire body (docs/protocol.md §3.1) from a package.json object and files, with a
 * real gzipped tarball made by `tar` (root folder `package/`, as `npm pack` does). Tarballs are
 * deterministic (fixed mtime, portable headers): the same inputs give the same bytes.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { create as tarCreate } from 'tar'
import { tempDir } from './pier.js'

/** Deliberate damage, to test the server's checks. */
export interface Tamper {
  /** package.json written into the tarball instead of `pkg` ("manifest confusion"). */
  tarballPackageJson?: Record<string, unknown>
  /** `dist.integrity` sent in the manifest instead of the real one. */
  integrity?: string
  /** `dist.shasum` sent in the manifest instead of the real one. */
  shasum?: string
  /** The attachment's `length` instead of the real byte count. */
  length?: number
}

/** Options of `publishBody`. */
export interface PublishBodyOptions {
  /** Extra files inside `package/` (path relative to it → content). A README.md is added unless given. */
  files?: Record<string, string | Buffer>
  /** The dist-tag npm sends (`--tag`); default `latest`. */
  tag?: string
  /** `readme` sent inside the version, as npm does; default the README.md text. */
  readme?: string
  /** `access` field; default null (npm without --access). */
  access?: string | null
  tamper?: Tamper
}

/** A publish body with the facts of its tarball. */
export interface PublishBody {
  body: Record<string, unknown> & {
    versions: Record<string, Record<string, unknown>>
    _attachments: Record<string, { content_type: string; data: string; length: number }>
    'dist-tags': Record<string, string>
  }
  /** `sha512-<base64>` of the tarball. */
  integrity: string
  /** sha1 hex of the tarball. */
  shasum: string
  tarball: Buffer
}

const MTIME = new Date('2020-01-01T00:00:00Z')

/** Packs `package/` with the given package.json and files into a .tgz, in memory. */
export function packTarball(pkgJson: Record<string, unknown>, files: Record<string, string | Buffer> = {}): Buffer {
  const dir = tempDir('pier-pack-')
  try {
    const root = join(dir, 'package')
    mkdirSync(root, { recursive: true })
    writeFileSync(join(root, 'package.json'), JSON.stringify(pkgJson, null, 2) + '\n')
    for (const [f, content] of Object.entries(files)) {
      const p = join(root, f)
      mkdirSync(dirname(p), { recursive: true })
      writeFileSync(p, content)
    }
    const file = join(dir, 'out.tgz')
    tarCreate({ gzip: true, cwd: dir, sync: true, file, portable: true, mtime: MTIME }, ['package'])
    return readFileSync(file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * npm's `PUT /<name>` body for `pkg` (must have `name` and `version`).
 * The attachment key uses the full (scoped) name and `dist.tarball` an `http://` URL, as npm does.
 */
export function publishBody(pkg: Record<string, unknown>, opts: PublishBodyOptions = {}): PublishBody {
  const name = String(pkg.name)
  const version = String(pkg.version)
  const files: Record<string, string | Buffer> = { 'README.md': `# ${name}\n`, ...opts.files }
  const tarball = packTarball(opts.tamper?.tarballPackageJson ?? pkg, files)
  const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`
  const shasum = createHash('sha1').update(tarball).digest('hex')
  const readmeFile = files['README.md']
  const readme = opts.readme ?? (readmeFile === undefined ? 'ERROR: No README data found!' : readmeFile.toString())
  const tag = opts.tag ?? 'latest'
  const body: PublishBody['body'] = {
    _id: name,
    name,
    ...(typeof pkg.description === 'string' ? { description: pkg.description } : {}),
    'dist-tags': { [tag]: version },
    versions: {
      [version]: {
        ...pkg,
        readme,
        readmeFilename: 'README.md',
        _id: `${name}@${version}`,
        _nodeVersion: process.versions.node,
        _npmVersion: '11.19.1',
        dist: {
          integrity: opts.tamper?.integrity ?? integrity,
          shasum: opts.tamper?.shasum ?? shasum,
          tarball: `http://registry.example/${name}/-/${name}-${version}.tgz`,
        },
      },
    },
    access: opts.access ?? null,
    _attachments: {
      [`${name}-${version}.tgz`]: {
        content_type: 'application/octet-stream',
        data: tarball.toString('base64'),
        length: opts.tamper?.length ?? tarball.length,
      },
    },
  }
  return { body, integrity, shasum, tarball }
}
