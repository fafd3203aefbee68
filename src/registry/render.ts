/**
 * Serialises a packument variant once, with its gzip form and response headers, for the render
 * cache. Local and cached packuments go through here, so a warm GET of either costs the same.
 */
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { gunzip, gzip } from 'node:zlib'
import type { RenderedBody } from './render-cache.js'

const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)

/**
 * Bodies up to this size (bytes) keep their uncompressed bytes beside the gzip form; bigger ones
 * keep only gzip (npm, pnpm, yarn and bun all accept it), which lets the render cache hold about
 * ten times more of the big packuments an install asks for, and is inflated for the rare client
 * that accepts no encoding.
 */
export const IDENTITY_KEEP_BYTES = 64 * 1024

/** The uncompressed bytes of a rendered body (inflated from gzip when not kept). */
export async function identityOf(body: RenderedBody): Promise<Buffer> {
  return body.identity ?? gunzipAsync(body.gzip)
}

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
    ...(identity.length <= IDENTITY_KEEP_BYTES ? { identity } : {}),
    gzip: gz,
  }
}
