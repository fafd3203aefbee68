/**
 * dist-tags (`/-/package/:name/dist-tags[/:tag]`, docs/protocol.md §3.4; npm's
 * `lib/commands/dist-tag.js`): a tag names one published version; `latest` must exist while any
 * version does, so it can be moved but not removed. The mutations run inside the write path.
 */
import semver from 'semver'
import { badRequest, notFound } from './errors.js'
import type { Mutation, WriteContext } from './write-path.js'

/**
 * Refuses a tag name that npm would read as a version range (`npm install pkg@1.x` must never
 * mean a tag), as the public registry does.
 * @throws RegistryError BAD_REQUEST
 */
export function checkTagName(tag: string): void {
  if (semver.validRange(tag)) throw badRequest(`Tag "${tag}" is a valid semver range; tags must not be.`)
}

/**
 * Points `tag` at `version`.
 * @returns the package's dist-tags afterwards
 * @throws RegistryError NOT_FOUND when `version` is not a published version
 */
export async function addDistTag(w: WriteContext, tag: string, version: string): Promise<Mutation<Record<string, string>>> {
  const v = await w.tx.getVersion(w.name, version)
  if (!v || v.unpublished !== null) throw notFound(`version not found: ${version}`)
  await w.tx.setDistTag(w.name, tag, version)
  return { changed: true, value: await w.tx.getDistTags(w.name), audit: { tag, version } }
}

/**
 * Removes `tag`.
 * @throws RegistryError BAD_REQUEST (`latest`), NOT_FOUND (no such tag)
 */
export async function removeDistTag(w: WriteContext, tag: string): Promise<Mutation<undefined>> {
  if (tag === 'latest') throw badRequest('The "latest" tag cannot be removed; point it at another version instead.')
  const tags = await w.tx.getDistTags(w.name)
  if (!(tag in tags)) throw notFound(`dist-tag not found: ${tag}`)
  await w.tx.deleteDistTag(w.name, tag)
  return { changed: true, value: undefined, audit: { tag, version: tags[tag] } }
}
