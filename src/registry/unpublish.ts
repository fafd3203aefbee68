/**
 * Unpublish (docs/protocol.md §3.3, npm's `lib/commands/unpublish.js` and libnpmpublish's
 * `unpublish.js`): versions are never deleted, only marked unpublished, so their manifest and
 * tarball answer 410 afterwards and the version cannot be published again (unless
 * `allow_previous_version`); `time` keeps their entries. Blobs are kept too (content-addressed;
 * `pier gc` removes unreferenced ones). Each function here is a mutation the write path runs.
 */
import semver from 'semver'
import { badRequest, notFound } from './errors.js'
import { tarballFileName } from './names.js'
import { sortVersions } from './packument.js'
import type { PackageTx } from './stores.js'
import type { StoredVersion } from './types.js'
import type { Mutation, WriteContext } from './write-path.js'

/**
 * Marks `removed` unpublished, drops the dist-tags that named them, and points `latest` at the
 * highest remaining stable version (else the highest prerelease), as npm's one-version unpublish
 * expects the registry to.
 * @param live the versions published before this change
 */
export async function unpublishVersions(tx: PackageTx, name: string, removed: readonly string[], live: readonly StoredVersion[], now: string): Promise<void> {
  await tx.markUnpublished(name, [...removed], now)
  const tags = await tx.getDistTags(name)
  for (const [tag, v] of Object.entries(tags)) if (removed.includes(v)) await tx.deleteDistTag(name, tag)
  if (removed.includes(tags.latest ?? '')) {
    const remaining = sortVersions(live.filter((v) => !removed.includes(v.version)))
    const stable = remaining.filter((v) => !semver.prerelease(v.version))
    const next = (stable.at(-1) ?? remaining.at(-1))?.version
    if (next) await tx.setDistTag(name, 'latest', next)
  }
}

/**
 * A whole unpublish (`DELETE /:name/-rev/:rev`): every version unpublished, every dist-tag
 * removed; the packument answers 404 afterwards and the change feed records a deletion.
 */
export async function unpublishAll(w: WriteContext): Promise<Mutation<undefined>> {
  const live = (await w.tx.listVersions(w.name)).filter((v) => v.unpublished === null)
  await w.tx.markUnpublished(w.name, live.map((v) => v.version), w.now)
  for (const tag of Object.keys(await w.tx.getDistTags(w.name))) await w.tx.deleteDistTag(w.name, tag)
  return { changed: true, deleted: true, value: undefined }
}

/**
 * `DELETE /:name/-/:file/-rev/:rev`, npm's last step of a one-version unpublish. The version is
 * normally already unpublished by the preceding PUT (then nothing changes); if it is still live it
 * is unpublished now, unless it is the last one.
 * @throws RegistryError NOT_FOUND (no such tarball), BAD_REQUEST (the last live version)
 */
export async function removeTarball(w: WriteContext, file: string): Promise<Mutation<undefined>> {
  const all = await w.tx.listVersions(w.name)
  const row = all.find((v) => tarballFileName(w.name, v.version) === file)
  if (!row) throw notFound()
  if (row.unpublished !== null) return { changed: false, value: undefined }
  const live = all.filter((v) => v.unpublished === null)
  if (live.length === 1) throw badRequest('Cannot remove the last version this way: unpublish the whole package instead.')
  await unpublishVersions(w.tx, w.name, [row.version], live, w.now)
  return { changed: true, value: undefined, audit: { versions: [row.version] } }
}
