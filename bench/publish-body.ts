/**
 * npm's publish wire body for the bench (`PUT /<name>`: the packument with one version, plus the
 * tarball as a base64 `_attachments` entry), made by the tests' builder (test/helpers/publish-body.ts,
 * compiled beside this file): a real gzipped tarball made by `tar`.
 */
import { publishBody } from '../test/helpers/publish-body.js'

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
  const { body } = publishBody(pkg, {
    files: { 'README.md': `# ${name}\n\nPublished by the Pier bench.\n`, 'index.js': `module.exports = ${JSON.stringify(`${name}@${version}`)}\n` },
  })
  const manifest = body.versions[version] as { dist: { tarball: string } }
  manifest.dist.tarball = new URL(`${name}/-/${name}-${version}.tgz`, base).href
  return { name, version, json: JSON.stringify(body) }
}
