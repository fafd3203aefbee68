/**
 * The fast path: the GETs an install sends most (a packument, a small tarball) answered from
 * memory in front of Fastify, with the same status, headers and bytes the Fastify routes send
 * (both take them from representation.ts).
 *
 * Why: an `npm install` sends its requests a few at a time, so each wakes the server on its own
 * and the per-request cost is paid in full. Measured 2026-12-01 (npm 11, the bench fixture of 201
 * packages, client files on tmpfs): the server's CPU per install was 140 ms through Fastify, 90 ms
 * for a bare `node:http` server sending the same bytes and 40 ms for nginx; the install took 3.25,
 * 3.17 and 3.09 s (medians, interleaved). This handler brings Pier close to the bare server.
 *
 * It never decides anything the routes decide: the registry's `peekPackument` / `peekTarball` /
 * `peekManifest` / `peekNotFound` answer only for names its read gate finds readable by all (so no
 * credentials are needed) and not redirected to an uplink, and only from memory. The request hooks
 * (request-hooks.ts) ran before it, so its answers are logged like any other, and under load it is
 * not asked at all (server.ts: the load-shedding check answers first). It answers only when:
 * - GET, no query string, the path below the configured `url` prefix;
 * - a packument whose state and rendered variant are cached: a conditional request gets the
 *   route's 304 when `fresh` (whatever encoding it accepts), else the 200 when gzip is the
 *   negotiated encoding;
 * - a packument of a name cached as not local that no uplink serves (no rule proxies it, or each
 *   uplink's 404 is remembered): the route's 404, byte for byte;
 * - a version manifest (`/name/1.0.0`, `/name/latest`) of a local package whose state is cached
 *   and holds that live version: the bytes the route serialises (cached per `_rev`);
 * - a tarball whose lookup is cached and whose bytes are in memory (≤ 1 MiB), not redirected to
 *   the blob store, asked without conditional headers.
 * Otherwise it returns `false` and Fastify handles the request, which fills the caches for the next one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Registry } from '../registry/registry.js'
import { parsePackagePath, type PackagePath } from './package-path.js'
import {
  isConditional,
  manifestList,
  NOT_FOUND_BODY,
  NOT_FOUND_LIST,
  notModified,
  packumentEncoding,
  packumentRepresentation,
  tarballRepresentation,
  wantsAbbreviated,
} from './representation.js'

/** Most URL paths whose parse is kept (cleared when full), and the longest kept, characters. */
const PARSED_MAX = 20_000
const PARSED_MAX_LENGTH = 512

/**
 * `parsePackagePath` memoised for the fast path: an install asks the same few hundred paths over
 * and over, and splitting and decoding each one costs more than the rest of a warm answer's
 * lookups. Bounded: at most PARSED_MAX paths of at most PARSED_MAX_LENGTH characters, cleared
 * when full (the parse is pure, so a cleared memo only costs the next parse).
 */
function parsedPaths(): (url: string) => PackagePath | undefined {
  const seen = new Map<string, PackagePath | null>()
  return (url) => {
    const hit = seen.get(url)
    if (hit !== undefined) return hit ?? undefined
    const p = parsePackagePath(url)
    if (url.length <= PARSED_MAX_LENGTH) {
      if (seen.size >= PARSED_MAX) seen.clear()
      seen.set(url, p ?? null)
    }
    return p
  }
}

/** What the fast path needs from the server. */
export interface FastPathDeps {
  registry: Registry
  /** The configured `url`'s path without trailing slash ('' for none), stripped as Fastify's `rewriteUrl` does. */
  prefix: string
  /** Public base URL of a request, no trailing slash (context.ts `baseUrlResolver`). */
  baseUrl(req: { headers: IncomingMessage['headers']; protocol: string }): string
  /** The request's id (request-hooks.ts, the same one Fastify uses). */
  requestId(req: IncomingMessage): string
  /** Whether the server is closing (answers then end their keep-alive connection). */
  closing(): boolean
}

/** The fast path's handler and how many requests it answered. */
export interface FastPath {
  /** Answers `req` and returns true, or returns false untouched (Fastify takes it). */
  handle(req: IncomingMessage, res: ServerResponse): boolean
  /** Requests answered here since start (tests check that the path is taken). */
  readonly hits: number
}

/** Builds the fast path for one server. */
export function fastPath(d: FastPathDeps): FastPath {
  const { registry } = d
  let hits = 0
  const parse = parsedPaths()
  const baseOf = (req: IncomingMessage): string => d.baseUrl({ headers: req.headers, protocol: (req.socket as TLSSocket).encrypted ? 'https' : 'http' })
  const send = (req: IncomingMessage, res: ServerResponse, status: number, list: readonly string[], body?: Buffer): true => {
    const headers = list.slice()
    headers.push('x-request-id', d.requestId(req))
    if (d.closing()) headers.push('connection', 'close')
    res.writeHead(status, headers)
    res.end(body)
    hits++
    return true
  }
  return {
    get hits() {
      return hits
    },
    handle(req, res) {
      try {
        return answer(req, res)
      } catch (e) {
        // A bug here must not take the process down: before any byte is sent, the route answers.
        if (!res.headersSent) return false
        res.destroy(e as Error)
        return true
      }
    },
  }

  function answer(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET') return false
    let url = req.url ?? '/'
    if (url.includes('?')) return false
    if (d.prefix) {
      if (!url.startsWith(d.prefix + '/')) return false
      url = url.slice(d.prefix.length)
    }
    if (url.startsWith('/-/')) return false
    const p = parse(url)
    if (!p) return false
    const h = req.headers
    if (p.kind === 'packument') {
      const body = registry.peekPackument(p.name, wantsAbbreviated(h.accept), baseOf(req))
      if (!body) return registry.peekNotFound(p.name) && send(req, res, 404, NOT_FOUND_LIST, NOT_FOUND_BODY)
      const rep = packumentRepresentation(body)
      // The route decides 304 before it looks at the encoding: so does this.
      if (notModified(h, rep.etag, rep.lastModified)) return send(req, res, 304, rep.commonList)
      if (packumentEncoding(h['accept-encoding']) !== 'gzip') return false
      return send(req, res, 200, rep.gzipList, body.gzip)
    }
    if (p.kind === 'manifest') {
      const bytes = registry.peekManifest(p.name, p.spec, baseOf(req))
      return bytes !== undefined && send(req, res, 200, manifestList(bytes), bytes)
    }
    if (p.kind === 'tarball') {
      if (isConditional(h)) return false
      const t = registry.peekTarball(p.name, p.file)
      if (!t) return false
      return send(req, res, 200, tarballRepresentation(t.lookup).list, t.bytes)
    }
    return false
  }
}
