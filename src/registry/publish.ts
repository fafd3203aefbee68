/**
 * Publish (docs/protocol.md §3.1; npm's wire format is libnpmpublish's `publish.js`): `planPublish`
 * checks the body and its tarball and turns them into a plan of what to store, without I/O;
 * `applyPublish` is the mutation the write path (write-path.ts) runs with that plan.
 */
import { createHash } from 'node:crypto'
import semver from 'semver'
import ssri from 'ssri'
import { gone, badRequest, RegistryError } from './errors.js'
import { newNameProblems, unscopedName } from './names.js'
import { DEFAULT_TARBALL_LIMITS, inspectTarball, type TarballLimits } from './tarball-facts.js'
import type { Manifest, StoredVersion } from './types.js'
import type { Mutation, WriteContext } from './write-path.js'

/** What a publish will store. */
export interface PublishPlan {
  name: string
  version: string
  /** Manifest to store: the client's, minus `readme`, with `dist` recomputed (no `tarball`). */
  manifest: Manifest
  readme: string | undefined
  readmeFilename: string | undefined
  tarball: Buffer
  /** `sha512-<base64>` of the tarball. */
  integrity: string
  /** sha512 of the tarball, hex (the blob's content address). */
  sha512Hex: string
  /** sha1 of the tarball, hex. */
  shasum: string
  /** dist-tags the body asks to point at this version (`latest` unless `--tag`). */
  tags: string[]
  /** `access` from the body (`public`, `restricted` or null). */
  access: string | null
}

/** Keys npm and others send inside a version that the registry owns and recomputes. */
const SERVER_OWNED = ['_npmUser', 'maintainers', '_id', '_attachments', '_rev', '_resolved', '_integrity', '_from'] as const

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A client's value in a message: strings and numbers as they are, anything else by its JSON type (never `String()` on an object). */
function shown(v: unknown): string {
  if (typeof v === 'string') return v.slice(0, 214)
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v)
  return Array.isArray(v) ? 'a list' : 'an object'
}

/**
 * Validates a publish body and its tarball.
 * @param body the parsed JSON of `PUT /<name>` with non-empty `_attachments`
 * @param urlName the package name taken from the URL
 * @param limits caps on what the tarball may unpack to (tarball-facts.ts)
 * @throws RegistryError BAD_REQUEST for any disagreement: name, semver, attachment, length,
 *   integrity/shasum, tarball package.json name or version ("manifest confusion"), an entry path
 *   outside the package folder; TOO_LARGE (413) when the tarball unpacks beyond `limits`
 */
export async function planPublish(body: Record<string, unknown>, urlName: string, limits: TarballLimits = DEFAULT_TARBALL_LIMITS): Promise<PublishPlan> {
  const name = body.name ?? body._id
  if (typeof name !== 'string' || name !== urlName) {
    throw badRequest(`The package name in the body (${shown(name)}) does not match the URL (${urlName}).`)
  }
  const problems = newNameProblems(name)
  if (problems.length > 0) throw badRequest(`Invalid package name "${name}": ${problems.join('; ')}`)

  const versions = body.versions
  if (!isObject(versions) || Object.keys(versions).length !== 1) {
    throw badRequest('A publish must carry exactly one version in "versions".')
  }
  const [versionKey, rawManifest] = Object.entries(versions)[0] as [string, unknown]
  if (!isObject(rawManifest)) throw badRequest(`versions["${versionKey}"] is not an object.`)
  const version = semver.valid(versionKey)
  if (!version || version !== versionKey) throw badRequest(`Invalid version "${versionKey}": not a valid semver version.`)
  if (rawManifest.version !== version) throw badRequest(`The manifest's version (${shown(rawManifest.version)}) does not match "${version}".`)
  if (rawManifest.name !== name) throw badRequest(`The manifest's name (${shown(rawManifest.name)}) does not match "${name}".`)

  const attachments = body._attachments
  if (!isObject(attachments)) throw badRequest('Missing "_attachments".')
  const tgzKeys = Object.keys(attachments).filter((k) => k.endsWith('.tgz'))
  if (tgzKeys.length !== 1) throw badRequest('A publish must carry exactly one .tgz attachment.')
  // npm names the attachment with the full (scoped) name; others use the unscoped one. Accept both.
  const key = tgzKeys[0] as string
  const expected = [`${name}-${version}.tgz`, `${unscopedName(name)}-${version}.tgz`]
  if (!expected.includes(key)) throw badRequest(`Attachment "${key}" does not match ${expected[0]}.`)
  const att = attachments[key]
  if (!isObject(att) || typeof att.data !== 'string') throw badRequest(`Attachment "${key}" has no base64 "data".`)
  const tarball = Buffer.from(att.data, 'base64')
  if (tarball.length === 0) throw badRequest(`Attachment "${key}" is empty.`)
  const declared = typeof att.length === 'string' && /^\d{1,15}$/.test(att.length) ? Number(att.length) : att.length
  if (declared !== undefined && declared !== tarball.length) {
    throw badRequest(`Attachment "${key}" is ${tarball.length} bytes, but its "length" says ${shown(att.length)}.`)
  }

  const sha512 = createHash('sha512').update(tarball).digest()
  const sha512Hex = sha512.toString('hex')
  const integrity = `sha512-${sha512.toString('base64')}`
  const shasum = createHash('sha1').update(tarball).digest('hex')
  const dist = isObject(rawManifest.dist) ? rawManifest.dist : {}
  if (typeof dist.integrity === 'string' && dist.integrity !== '') {
    if (!ssri.checkData(tarball, dist.integrity)) throw badRequest(`The tarball does not match dist.integrity (${dist.integrity}).`)
  }
  if (typeof dist.shasum === 'string' && dist.shasum !== '' && dist.shasum !== shasum) {
    throw badRequest(`The tarball's sha1 (${shasum}) does not match dist.shasum (${dist.shasum}).`)
  }
  if (typeof dist.integrity !== 'string' && typeof dist.shasum !== 'string') {
    throw badRequest('The manifest has neither dist.integrity nor dist.shasum.')
  }

  const facts = await inspectTarball(tarball, limits)
  if (facts.packageJson.name !== name || facts.packageJson.version !== version) {
    throw badRequest(
      `Manifest confusion: the tarball's package.json says ${shown(facts.packageJson.name)}@${shown(facts.packageJson.version)}, ` +
        `but the manifest says ${name}@${version}.`,
    )
  }

  const manifest: Record<string, unknown> = { ...rawManifest }
  for (const k of SERVER_OWNED) delete manifest[k]
  const readme = typeof manifest.readme === 'string' ? manifest.readme : undefined
  const readmeFilename = typeof manifest.readmeFilename === 'string' ? manifest.readmeFilename : undefined
  delete manifest.readme
  delete manifest.readmeFilename
  const { tarball: _ignoredUrl, ...restDist } = dist
  manifest.dist = {
    ...restDist,
    shasum,
    integrity,
    fileCount: facts.fileCount,
    unpackedSize: facts.unpackedSize,
  }
  manifest._hasShrinkwrap = facts.hasShrinkwrap

  const distTags = isObject(body['dist-tags']) ? body['dist-tags'] : {}
  const tags = Object.entries(distTags)
    .filter(([, v]) => v === version)
    .map(([t]) => t)
  for (const t of tags) {
    if (semver.validRange(t)) throw badRequest(`Tag "${t}" is a semver range; tags must not be.`)
  }
  const access = typeof body.access === 'string' ? body.access : null
  if (access !== null && access !== 'public' && access !== 'restricted') throw badRequest(`Invalid access "${access}".`)
  if (access === 'restricted' && !name.startsWith('@')) throw badRequest('Unscoped packages cannot be restricted.')

  return {
    name,
    version,
    manifest: manifest as Manifest,
    readme,
    readmeFilename,
    tarball,
    integrity,
    sha512Hex,
    shasum,
    tags,
    access,
  }
}

/** A plan whose tarball is already in the blob store, under `key`. */
export interface StoredPlan {
  plan: PublishPlan
  /** Blob key of the tarball (blob-keys.ts `tarballKey`). */
  key: string
}

/**
 * The publish mutation: inserts the version (or, with `allowPreviousVersion`, replaces an
 * existing or unpublished one), points the requested dist-tags at it and `latest` too when the
 * package has none. A retry with the identical tarball changes nothing and succeeds: npm retries a
 * PUT after a 5xx (npm-registry-fetch), so the first attempt may have committed.
 * @param email the publisher's e-mail for `_npmUser`, when known
 * @throws RegistryError VERSION_EXISTS (409: the version exists with other bytes), GONE (410: the
 *   version was unpublished and `allowPreviousVersion` is off)
 */
export async function applyPublish(
  w: WriteContext,
  { plan, key }: StoredPlan,
  opts: { allowPreviousVersion: boolean; email?: string | undefined },
): Promise<Mutation<undefined>> {
  const manifest: Manifest = { ...plan.manifest, _npmUser: opts.email ? { name: w.writer, email: opts.email } : { name: w.writer } }
  const row: StoredVersion = {
    name: w.name,
    version: plan.version,
    manifest: JSON.stringify(manifest),
    readme: plan.readme ?? null,
    readme_filename: plan.readmeFilename ?? null,
    integrity: plan.integrity,
    shasum: plan.shasum,
    tarball_key: key,
    size: plan.tarball.length,
    published: w.now,
    unpublished: null,
  }
  // The common case, a new version, in one statement; the row lock on the package makes the
  // existing-row read below see what the insert ran into.
  const inserted = await w.tx.insertVersionIfAbsent(row)
  const existing = inserted ? undefined : await w.tx.getVersion(w.name, plan.version)
  if (!inserted) {
    if (!existing) throw new Error(`${w.name}@${plan.version}: the version row was neither inserted nor found`)
    if (existing.unpublished === null && existing.integrity === plan.integrity) return { changed: false, value: undefined }
    if (!opts.allowPreviousVersion) {
      if (existing.unpublished !== null) throw gone(`${w.name}@${plan.version} was unpublished and cannot be published again.`)
      throw new RegistryError('VERSION_EXISTS', `You cannot publish over the previously published versions: ${plan.version}.`)
    }
    await w.tx.replaceVersion(row)
  }
  for (const t of plan.tags) await w.tx.setDistTag(w.name, t, plan.version)
  // A publish tagged `latest` (npm's default) has just set it; otherwise point it here if unset.
  if (!plan.tags.includes('latest') && !(await w.tx.getDistTags(w.name)).latest) await w.tx.setDistTag(w.name, 'latest', plan.version)
  return { changed: true, value: undefined, audit: { version: plan.version, tags: plan.tags, integrity: plan.integrity, replaced: existing !== undefined } }
}
