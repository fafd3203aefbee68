/**
 * One HTTP representation of packuments and tarballs, used by the Fastify routes and by the fast
 * path alike, so both send the same status, headers and bytes:
 *
 * - content negotiation with `negotiator`: the abbreviated ("corgi") packument only when `Accept`
 *   names `application/vnd.npm.install-v1+json` and prefers it to `application/json` (pacote's
 *   header; docs/protocol.md §2.1); the encoding from `Accept-Encoding` by its q-values, gzip
 *   first on a tie (RFC 9110 §12.5.3: `gzip;q=0` means no gzip);
 * - conditional requests with `fresh`: `If-None-Match` lists, `*` and weak comparison, and
 *   `If-Modified-Since` (RFC 9110 §13.1);
 * - the response headers, built once per rendered body or tarball lookup (they are cached and
 *   immutable) as objects for Fastify and as flat `[name, value, …]` lists for `writeHead`.
 *
 * Why flat lists are kept: spreading a cached header object into a new one per response made V8
 * promote about 1.5 MB per scavenge at 20k req/s (peak RSS 225 MiB against 140 MiB under the
 * bench's load, measured 2026-12-01).
 */
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import fresh from 'fresh'
import Negotiator from 'negotiator'
import type { RenderedBody } from '../registry/render.js'
import type { TarballLookup } from '../registry/tarball.js'

/** pacote's media type of the abbreviated packument. */
export const CORGI = 'application/vnd.npm.install-v1+json'
/** Sent with cached data the uplink could not confirm (RFC 7234 §5.5, warn-code 110). */
export const STALE_WARNING = '110 - "Response is Stale"'
const TARBALL_CACHE_CONTROL = 'public, max-age=31536000, immutable'
const PACKUMENT_CACHE_CONTROL = 'public, max-age=300'

/** An encoding Pier can send a packument in. */
export type PackumentEncoding = 'gzip' | 'br' | 'identity'
const ENCODINGS: PackumentEncoding[] = ['gzip', 'br', 'identity']

/**
 * A bounded memo of a header value's parse: clients send a handful of distinct `Accept` and
 * `Accept-Encoding` values, and parsing one costs more than the rest of a fast-path answer. Values
 * longer than `maxLength` are parsed every time, so it holds at most max × maxLength characters.
 */
function memo<T>(parse: (v: string) => T, max = 1000, maxLength = 256): (v: string) => T {
  const seen = new Map<string, T>()
  return (v) => {
    let r = seen.get(v)
    if (r === undefined) {
      r = parse(v)
      if (v.length > maxLength) return r
      if (seen.size >= max) seen.clear()
      seen.set(v, r)
    }
    return r
  }
}

const abbreviatedFor = memo((accept: string): boolean => {
  const n = new Negotiator({ headers: { accept } })
  const explicit = n.mediaTypes().map((t) => t.toLowerCase())
  return explicit.includes(CORGI) && n.mediaType([CORGI, 'application/json']) === CORGI
})

/** Whether a packument GET asks for the abbreviated document (docs/protocol.md §2.1). */
export function wantsAbbreviated(accept: string | undefined): boolean {
  return accept !== undefined && abbreviatedFor(accept)
}

const encodingFor = memo((ae: string): PackumentEncoding => {
  // negotiator 1.x takes a preferred order for ties (its own types, 0.6, do not declare it yet).
  const n = new Negotiator({ headers: { 'accept-encoding': ae } }) as Negotiator & { encoding(a: string[], o: { preferred: string[] }): string | undefined }
  const chosen = n.encoding(ENCODINGS, { preferred: ENCODINGS })
  return (chosen as PackumentEncoding | undefined) ?? 'identity'
})

/**
 * The encoding of a packument answer: the client's preferred of gzip, br and identity (gzip on a
 * tie: every npm client sends `gzip,deflate`); identity when it accepts none of them.
 */
export function packumentEncoding(acceptEncoding: string | string[] | undefined): PackumentEncoding {
  if (acceptEncoding === undefined) return 'identity'
  return encodingFor(Array.isArray(acceptEncoding) ? acceptEncoding.join(',') : acceptEncoding)
}

/** Whether the request is conditional (the only requests that can get a 304). */
export function isConditional(h: IncomingHttpHeaders): boolean {
  return h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined
}

/**
 * Whether a conditional GET gets 304: `If-None-Match` (a list, `*`, weak comparison) against the
 * ETag, else `If-Modified-Since` against `Last-Modified` (`fresh`, as Express decides it). The
 * request's `Cache-Control` is left out: fetch (undici, bun) adds `no-cache` to every conditional
 * request, which asks caches to revalidate with the origin (RFC 9111 §5.2.1.4); this is the
 * origin, and a matching validator is exactly the successful revalidation that asks for 304.
 */
export function notModified(h: IncomingHttpHeaders, etag: string, lastModified?: string): boolean {
  if (!isConditional(h)) return false
  const conditions = { 'if-none-match': h['if-none-match'], 'if-modified-since': h['if-modified-since'] }
  return fresh(conditions, lastModified === undefined ? { etag } : { etag, 'last-modified': lastModified })
}

/** How a rendered packument is sent, derived once per body. */
export interface PackumentRepresentation {
  /** Weak ETag: `W/"<rev>-<a|f><8 hex of the variant>"`, different per form and base URL. */
  etag: string
  /** HTTP date of `time.modified`. */
  lastModified: string
  contentType: string
  /** Headers of every answer, 200 and 304: etag, last-modified, vary, cache-control (and warning for a stale copy). */
  common: Record<string, string>
  /** `common` as a flat list (the fast path's 304). */
  commonList: string[]
  /** The whole header list of a gzip 200 (the fast path's answer). */
  gzipList: string[]
}

const packumentReps = new WeakMap<RenderedBody, PackumentRepresentation>()

/** The representation of a rendered packument (cached per body object). */
export function packumentRepresentation(body: RenderedBody): PackumentRepresentation {
  let rep = packumentReps.get(body)
  if (!rep) {
    const vh = createHash('sha1').update(body.variant).digest('hex').slice(0, 8)
    const etag = `W/"${body.rev}-${body.abbreviated ? 'a' : 'f'}${vh}"`
    const lastModified = new Date(body.modified).toUTCString()
    const common: Record<string, string> = { etag, 'last-modified': lastModified, vary: 'Accept, Accept-Encoding', 'cache-control': PACKUMENT_CACHE_CONTROL }
    if (body.stale) common.warning = STALE_WARNING
    const contentType = body.abbreviated ? CORGI : 'application/json'
    const commonList = Object.entries(common).flat()
    const gzipList = [...commonList, 'content-type', contentType, 'content-encoding', 'gzip', 'content-length', String(body.gzip.length)]
    rep = { etag, lastModified, contentType, common, commonList, gzipList }
    packumentReps.set(body, rep)
  }
  return rep
}

/** npm's 404 body of a packument GET, serialised once (the 404 path is as hot as any GET). */
export const NOT_FOUND_BODY = Buffer.from(JSON.stringify({ error: 'Not found', message: 'Not found' }))
/** Content type of every JSON answer but a packument's (Fastify's for serialised objects). */
export const JSON_TYPE = 'application/json; charset=utf-8'
/** The whole header list of the packument route's 404 (the fast path's answer for a known-absent name). */
export const NOT_FOUND_LIST: readonly string[] = Object.freeze(['content-type', JSON_TYPE, 'content-length', String(NOT_FOUND_BODY.length)])

const manifestLists = new WeakMap<Buffer, string[]>()

/**
 * The header list of a version manifest's 200 (`GET /:name/:version`): what Fastify sends for a
 * serialised object, `content-type` and `content-length` (cached per serialised manifest).
 */
export function manifestList(bytes: Buffer): string[] {
  let list = manifestLists.get(bytes)
  if (!list) {
    list = ['content-type', JSON_TYPE, 'content-length', String(bytes.length)]
    manifestLists.set(bytes, list)
  }
  return list
}

/** How a tarball is sent. */
export interface TarballRepresentation {
  /** Strong ETag: the quoted integrity string (the bytes never change under a name@version). */
  etag: string
  /** The 304's headers: etag and cache-control. */
  notModified: Record<string, string>
  /** The 200's headers: etag, cache-control, content-type and content-length when the size is known. */
  headers: Record<string, string>
  /** `headers` as a flat list (the fast path). */
  list: string[]
}

const tarballReps = new WeakMap<TarballLookup, TarballRepresentation>()

function buildTarball(t: TarballLookup, size: number | undefined): TarballRepresentation {
  const etag = `"${t.integrity}"`
  const notModified = { etag, 'cache-control': TARBALL_CACHE_CONTROL }
  // No Content-Encoding, ever: a transparently gunzipped .tgz would fail the integrity check.
  const headers: Record<string, string> = { ...notModified, 'content-type': 'application/octet-stream' }
  if (size !== undefined) headers['content-length'] = String(size)
  return { etag, notModified, headers, list: Object.entries(headers).flat() }
}

/**
 * The representation of a tarball. Cached per lookup once its size is final (local tarballs,
 * and cached ones once stored); `size` overrides for one answer (a cached tarball downloading).
 */
export function tarballRepresentation(t: TarballLookup, size: number | undefined = t.size): TarballRepresentation {
  if (t.size === undefined || size !== t.size) return buildTarball(t, size)
  let rep = tarballReps.get(t)
  if (!rep) {
    rep = buildTarball(t, t.size)
    tarballReps.set(t, rep)
  }
  return rep
}
