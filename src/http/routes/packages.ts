/**
 * Package routes: packument, manifest and tarball GETs; publish and document writes (PUT);
 * unpublish (DELETE). One wildcard per method, parsed by package-path.ts, because names carry
 * `%2f` or a literal `/` after the scope.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { notFound, badRequest } from '../../registry/errors.js'
import { identityOf } from '../../registry/render.js'
import { parsePackagePath } from '../package-path.js'
import type { RouteContext } from '../context.js'

const CORGI = 'application/vnd.npm.install-v1+json'
/** npm's 404 body, serialised once (the 404 path is as hot as any GET). */
const NOT_FOUND_BODY = Buffer.from(JSON.stringify({ error: 'Not found', message: 'Not found' }))
const TARBALL_CACHE_CONTROL = 'public, max-age=31536000, immutable'

function pathOf(req: FastifyRequest): string {
  const url = req.url
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Registers the package routes. */
export function packageRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { registry } = ctx

  async function get(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const p = parsePackagePath(pathOf(req))
    if (!p) throw notFound()
    // `packages` access rules: credentials are looked at only for names not readable by all.
    if (!registry.access.readableByAll(p.name)) registry.access.requireRead(p.name, await ctx.principal(req))
    // `proxy_mode: redirect`: a name that is not local is fetched by the client from its uplink.
    if (registry.mayRedirect(p.name)) {
      const redirect = await registry.uplinkRedirect(p.name, pathOf(req))
      if (redirect !== undefined) return reply.code(302).header('location', redirect).header('cache-control', 'no-cache').send()
    }
    const base = ctx.baseUrl(req)
    if (p.kind === 'packument') {
      const query = req.query as Record<string, string | undefined>
      if (query.write === 'true') {
        const doc = await registry.packumentForWrite(p.name, base)
        return reply.header('cache-control', 'no-cache').send(doc)
      }
      const accept = req.headers.accept
      const abbreviated = accept !== undefined && accept.includes(CORGI)
      const body = await registry.findPackumentBody(p.name, abbreviated, base)
      if (!body) return reply.code(404).header('content-type', 'application/json').send(NOT_FOUND_BODY)
      void reply.headers(body.headers)
      if (req.headers['if-none-match'] === body.etag) return reply.code(304).send()
      void reply.header('content-type', body.contentType)
      const ae = req.headers['accept-encoding'] ?? ''
      // Pre-compressed once per revision; gzip first (npm sends `gzip,deflate`), brotli when only it is offered.
      if (ae.includes('gzip')) return reply.header('content-encoding', 'gzip').send(body.gzip)
      if (ae.includes('br')) return reply.header('content-encoding', 'br').send(await registry.brotli(p.name, abbreviated, base, body))
      return reply.send(await identityOf(body))
    }
    if (p.kind === 'manifest') {
      return reply.send(await registry.manifest(p.name, p.spec, base))
    }
    if (p.kind === 'tarball') {
      const t = await registry.tarball(p.name, p.file)
      if (t.headers && !registry.redirectsTarballs) {
        // A local tarball served by Pier (the common case): headers built once, set in one call.
        if (req.headers['if-none-match'] === t.headers.etag) {
          return reply.code(304).header('etag', t.headers.etag).header('cache-control', TARBALL_CACHE_CONTROL).send()
        }
        return reply.headers(t.headers).send(await registry.tarballData(t))
      }
      const etag = `"${t.integrity}"`
      void reply.header('etag', etag).header('cache-control', TARBALL_CACHE_CONTROL)
      if (req.headers['if-none-match'] === etag) return reply.code(304).send()
      // storage.s3.redirect: the client fetches from the store. The signed URL expires, so the 302
      // itself must not be cached (npm follows it; it drops credentials only across host names).
      const location = await registry.tarballRedirect(t)
      if (location !== undefined) return reply.code(302).removeHeader('etag').header('cache-control', 'no-store').header('location', location).send()
      const data = await registry.tarballData(t)
      return reply.header('content-type', 'application/octet-stream').header('content-length', t.size).send(data)
    }
    throw notFound()
  }

  app.get('/*', get)

  app.put('/*', async (req, reply) => {
    const p = parsePackagePath(pathOf(req))
    if (!p || (p.kind !== 'packument' && p.kind !== 'rev')) throw notFound()
    const body = req.body
    if (!isObject(body)) throw badRequest('The request body must be a JSON object.')
    const principal = await ctx.principal(req)
    const attachments = body._attachments
    const rev = p.kind === 'rev' ? p.rev : undefined
    if (isObject(attachments) && Object.keys(attachments).length > 0) {
      const r = await registry.publish(p.name, body, principal, principal.email)
      req.log.info({ pkg: p.name, rev: r.rev, changed: r.changed }, 'publish')
      return reply.code(r.changed ? 201 : 200).send({ ok: true, id: p.name, rev: r.rev, success: true })
    }
    const r = await registry.update(p.name, body, principal, rev)
    return reply.code(r.changed ? 201 : 200).send({ ok: true, id: p.name, rev: r.rev })
  })

  app.delete('/*', async (req, reply) => {
    const p = parsePackagePath(pathOf(req))
    if (!p) throw notFound()
    const principal = await ctx.principal(req)
    if (p.kind === 'rev' || p.kind === 'packument') {
      const r = await registry.unpublishPackage(p.name, p.kind === 'rev' ? p.rev : undefined, principal)
      return reply.send({ ok: true, id: p.name, rev: r.rev })
    }
    if (p.kind === 'tarball-rev' || p.kind === 'tarball') {
      const r = await registry.removeTarball(p.name, p.file, p.kind === 'tarball-rev' ? p.rev : undefined, principal)
      return reply.send({ ok: true, id: p.name, rev: r.rev })
    }
    throw notFound()
  })
}
