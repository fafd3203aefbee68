/**
 * From an uplink's packument to the one Pier serves: every `dist.tarball` is rewritten to Pier's
 * own conventional URL (`<base>/<name>/-/<unscoped>-<version>.tgz`), so clients download through
 * Pier (which caches the tarball) and lockfiles record Pier's URL. The uplink's URL is kept in the
 * tarball index to fetch from.
 *
 * Local data always wins, whole: a name with any local version never shows versions from an uplink
 * (the registry serves its local packument and never asks), so there is no per-version merge to
 * get wrong. A scope with any local package, or listed in `private_scopes`, never proxies either.
 */
import { tarballFileName, tarballPath } from '../registry/names.js'
import type { Manifest, Packument } from '../registry/types.js'

/** Where one cached version's tarball comes from and how to check it. */
export interface UplinkTarball {
  version: string
  /** URL in the uplink's packument. */
  url: string
  integrity: string | undefined
  shasum: string | undefined
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parses and checks an uplink's packument text.
 * @returns the document, or a reason why it is not a packument of `name`
 */
export function parseUplinkPackument(name: string, text: string): { doc: Record<string, unknown> } | { problem: string } {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return { problem: 'the packument is not valid JSON' }
  }
  if (!isObject(doc)) return { problem: 'the packument is not a JSON object' }
  const docName = doc.name ?? doc._id
  if (docName !== undefined && docName !== name) return { problem: `the packument is named ${JSON.stringify(docName)}, not "${name}"` }
  if (doc.versions !== undefined && !isObject(doc.versions)) return { problem: 'the packument has no versions object' }
  return { doc }
}

/** tarball file name → where to fetch it, for every version with a `dist.tarball`. */
export function tarballIndex(name: string, doc: Record<string, unknown>): Map<string, UplinkTarball> {
  const index = new Map<string, UplinkTarball>()
  const versions = isObject(doc.versions) ? doc.versions : {}
  for (const [version, m] of Object.entries(versions)) {
    if (!isObject(m) || !isObject(m.dist) || typeof m.dist.tarball !== 'string') continue
    const dist = m.dist
    index.set(tarballFileName(name, version), {
      version,
      url: dist.tarball as string,
      integrity: typeof dist.integrity === 'string' ? dist.integrity : undefined,
      shasum: typeof dist.shasum === 'string' ? dist.shasum : undefined,
    })
  }
  return index
}

/**
 * The packument Pier serves for a cached document.
 * @param baseUrl Pier's public base URL, no trailing slash
 * @param rev the cached revision (`_rev`, also in the ETag)
 * @param modified fallback for `time.modified` when the uplink sent no `time`
 */
export function rewritePackument(name: string, doc: Record<string, unknown>, baseUrl: string, rev: string, modified: string): Packument {
  const versions: Record<string, Manifest> = {}
  const src = isObject(doc.versions) ? doc.versions : {}
  for (const [version, m] of Object.entries(src)) {
    if (!isObject(m) || !isObject(m.dist)) continue
    versions[version] = { ...m, name, version, dist: { ...m.dist, tarball: baseUrl + tarballPath(name, version) } } as Manifest
  }
  const { _attachments: _a, ...rest } = doc
  const time = isObject(doc.time) ? (doc.time as Record<string, string>) : {}
  return {
    ...rest,
    _id: name,
    _rev: rev,
    name,
    'dist-tags': isObject(doc['dist-tags']) ? (doc['dist-tags'] as Record<string, string>) : {},
    versions,
    time: time.modified ? time : { ...time, modified },
    maintainers: Array.isArray(doc.maintainers) ? (doc.maintainers as Packument['maintainers']) : [],
  }
}
