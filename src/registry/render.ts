/**
 * Serialises a packument variant once, with its gzip form and response headers, for the render
 * cache. Local and cached packuments go through here, so a warm GET of either costs the same.
 */
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { gzip } from 'node:zlib'
import type { RenderedBody } from './render-cache.js'

const gzipAsync = promisify(gzip)

/** Render-cache key of a variant of revision `rev`. */
export function renderKey(name: string, rev: string, abbreviated: boolean, baseUrl: string): string {
  return `${name}\u0000${rev}\u0000${abbreviated ? 'a' : 'f'}:${baseUrl}`
}

/**
 * @param doc the document to send (full or abbreviated)
 * @param lastModified HTTP date
 */
export async function renderBody(doc: object, rev: string, abbreviated: boolean, baseUrl: string, lastModified: string): Promise<RenderedBody> {
  const identity = Buffer.from(JSON.stringify(doc))
  const gz = await gzipAsync(identity, { level: 6 })
  const vh = createHash('sha1').update(`${abbreviated ? 'a' : 'f'}:${baseUrl}`).digest('hex').slice(0, 8)
  const etag = `W/"${rev}-${abbreviated ? 'a' : 'f'}${vh}"`
  return {
    etag,
    lastModified,
    contentType: abbreviated ? 'application/vnd.npm.install-v1+json' : 'application/json',
    headers: { etag, 'last-modified': lastModified, vary: 'Accept, Accept-Encoding', 'cache-control': 'public, max-age=300' },
    identity,
    gzip: gz,
  }
}
