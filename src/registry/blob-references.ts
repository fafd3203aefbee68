/**
 * Which blob keys the uplink cache refers to, for `pier gc`. Cached tarballs are stored under a
 * key derived from the uplink manifest's digest (`cachedTarballKey`, blob-keys.ts), so the keys a
 * cached packument may have put in the blob store follow from its text alone.
 */
import { cachedTarballKey } from './blob-keys.js'
import { expectedDigest } from './integrity.js'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * The blob keys under which Pier stores (or would store) the tarballs of a cached uplink
 * packument: for every version whose `dist` has an `integrity` or a `shasum`, the key its verified
 * download is committed under, `cachedTarballKey(expectedDigest(integrity, shasum))`, whether or
 * not it was ever downloaded. Versions without a `dist.tarball` count too (more than Pier would
 * fetch: a conservative superset).
 * @param body the packument JSON as the uplink sent it (the uplink cache's stored text)
 * @returns keys, in version order, possibly repeated; none when the body is not a JSON object
 *   (such a copy is never served: the cache refetches it, and its tarballs are only a cache)
 */
export function cachedTarballKeys(body: string): string[] {
  let doc: unknown
  try {
    doc = JSON.parse(body)
  } catch {
    return []
  }
  if (!isObject(doc) || !isObject(doc.versions)) return []
  const keys: string[] = []
  for (const m of Object.values(doc.versions)) {
    if (!isObject(m) || !isObject(m.dist)) continue
    const { integrity, shasum } = m.dist
    const expected = expectedDigest(typeof integrity === 'string' ? integrity : undefined, typeof shasum === 'string' ? shasum : undefined)
    if (expected) keys.push(cachedTarballKey(expected))
  }
  return keys
}
