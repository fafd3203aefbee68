/**
 * npm's publish wire body (`PUT /<name>`: the packument with one version, plus the tarball as a
 * base64 `_attachments` entry), built the way test/helpers/publish-body.ts does it: a real gzipped
 * tarball made by `tar` (root folder `package/`, fixed mtime, portable headers).
 */
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create as tarCreate } from 'tar'

const MTIME = new Date('2020-01-01T00:00:00Z')

/** Packs `package/` with the given package.json and files into a .tgz, in memory. */
export function packTarball(pkgJson: Record<string, unknown>, files: Record<string, string> = {}): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'pier-bench-pack-'))
  try {
    const root = join(dir, 'package')
    mkdirSync(root)
    writeFileSync(join(root, 'package.json'), JSON.stringify(pkgJson, null, 2) + '\n')
    for (const [f, content] of Object.entries(files)) writeFileSync(join(root, f), content)
    const file = join(dir, 'out.tgz')
    tarCreate({ gzip: true, cwd: dir, sync: true, file, portable: true, mtime: MTIME }, ['package'])
    return readFileSync(file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A ready-to-send publish of one version. */
export interface PublishRequest {
  name: string
  version: string
  /** The JSON body of `PUT /<name>`. */
  json: string
}

/**
 * The body npm sends to publish `name@version` (unscoped `name`) to the registry at `base`
 * (`dist.tarball` names that registry, as npm's does).
 */
export function publishRequest(base: string, name: string, version: string): PublishRequest {
  const pkg = { name, version, description: `bench ${name}`, main: 'index.js', license: 'MIT' }
  const readme = `# ${name}\n\nPublished by the Pier bench.\n`
  const tarball = packTarball(pkg, { 'README.md': readme, 'index.js': `module.exports = ${JSON.stringify(`${name}@${version}`)}\n` })
  const file = `${name}-${version}.tgz`
  const body = {
    _id: name,
    name,
    description: pkg.description,
    'dist-tags': { latest: version },
    versions: {
      [version]: {
        ...pkg,
        readme,
        readmeFilename: 'README.md',
        _id: `${name}@${version}`,
        _nodeVersion: process.versions.node,
        _npmVersion: '11.19.1',
        dist: {
          integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
          shasum: createHash('sha1').update(tarball).digest('hex'),
          tarball: new URL(`${name}/-/${file}`, base).href,
        },
      },
    },
    access: null,
    _attachments: { [file]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
  }
  return { name, version, json: JSON.stringify(body) }
}
