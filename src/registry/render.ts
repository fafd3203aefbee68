/**
 * Serialises a packument variant once, with its gzip form, for the render cache. Local and cached
 * (uplink) packuments go through here, so a warm GET of either costs the same. Response headers
 * are not made here: `src/http/representation.ts` derives them from these fields.
 */
import { promisify } from 'node:util'
import { brotliCompress, constants as zlibConstants, gunzip, gzip } from 'node:zlib'

const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)
const brotliAsync = promisify(brotliCompress)

/**
 * Bodies up to this size (bytes) keep their uncompressed bytes beside the gzip form; bigger ones
 * keep only gzip (npm, pnpm, yarn and bun all accept it), which lets the render cache hold about
 * ten times more of the big packuments an install asks for, and is inflated for the rare client
 * that accepts no encoding.
 */
export const IDENTITY_KEEP_BYTES = 64 * 1024

/** A packument variant, serialised and compressed once. */
export interface RenderedBody {
  /** Its render-cache key (`renderKey`). */
  key: string
  /** `_rev` of the document rendered (a cached uplink copy's digest revision for proxied names). */
  rev: string
  /** The abbreviated ("corgi") document, rather than the full one. */
  abbreviated: boolean
  /** What, besides `rev`, tells this variant apart: the form and the base URL its tarball links use. */
  variant: string
  /** The document's `time.modified`, ms since the epoch (whole seconds, as HTTP dates have). */
  modified: number
  /** The uncompressed bytes, kept only for small bodies (`IDENTITY_KEEP_BYTES`); see `identityOf`. */
  identity?: Buffer
  gzip: Buffer
  /** Computed on the first request that accepts only brotli (`brotliOf`). */
  br?: Buffer
  /** A cached uplink copy the uplink could not confirm (served with RFC 7234's warn-code 110). */
  stale?: boolean
}

/** The uncompressed bytes of a rendered body (inflated from gzip when not kept). */
export async function identityOf(body: RenderedBody): Promise<Buffer> {
  return body.identity ?? gunzipAsync(body.gzip)
}

/** The brotli bytes of a body (quality 5: fast, close to gzip -9 in size); set on the body once. */
export async function brotliOf(body: RenderedBody): Promise<Buffer> {
  body.br ??= await brotliAsync(await identityOf(body), { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } })
  return body.br
}

/** The variant part of a render key: form and base URL. */
function variantOf(abbreviated: boolean, baseUrl: string): string {
  return `${abbreviated ? 'a' : 'f'}:${baseUrl}`
}

/** Render-cache key of a variant of revision `rev`. */
export function renderKey(name: string, rev: string, abbreviated: boolean, baseUrl: string): string {
  return `${name}\u0000${rev}\u0000${variantOf(abbreviated, baseUrl)}`
}

/**
 * Serialises and gzips one variant.
 * @param doc the document to send (full or abbreviated)
 * @param modified the document's last change, ms since the epoch
 */
export async function renderBody(doc: object, name: string, rev: string, abbreviated: boolean, baseUrl: string, modified: number): Promise<RenderedBody> {
  const identity = Buffer.from(JSON.stringify(doc))
  const gz = await gzipAsync(identity, { level: 6 })
  return {
    key: renderKey(name, rev, abbreviated, baseUrl),
    rev,
    abbreviated,
    variant: variantOf(abbreviated, baseUrl),
    modified: Math.floor(modified / 1000) * 1000,
    ...(identity.length <= IDENTITY_KEEP_BYTES ? { identity } : {}),
    gzip: gz,
  }
}
