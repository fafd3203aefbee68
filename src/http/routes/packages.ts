/**
 * Package routes: packument, manifest and tarball GETs; publish and document writes (PUT);
 * unpublish (DELETE). One wildcard per method, parsed by package-path.ts, because names carry
 * `%2f` or a literal `/` after the scope (docs/protocol.md §0.1). Each handler parses, makes one
 * registry call (which applies the read gate or runs the write path), and sends the answer in the
 * representation shared with the fast path (representation.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { badRequest, notFound } from '../../registry/errors.js'
import { identityOf } from '../../registry/render.js'
import type { Principal } from '../../registry/types.js'
import type { RouteContext } from '../context.js'
import { parsePackagePath } from '../package-path.js'
import { JSON_TYPE, NOT_FOUND_BODY, notModified, packumentEncoding, packumentRepresentation, tarballRepresentation, wantsAbbreviated } from '../representation.js'
import { allowEmptyBody } from '../server-parsers.js'

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
    const caller = ctx.caller(req)
    // `proxy_mode: redirect`: a name that is not local is fetched by the client from its uplink.
    if (registry.mayRedirect(p.name)) {
      const redirect = await registry.uplinkRedirect(p.name, pathOf(req), caller)
      if (redirect !== undefined) return reply.code(302).header('location', redirect).header('cache-control', 'no-cache').send()
    }
    const base = ctx.baseUrl(req)
    const h = req.headers
    if (p.kind === 'packument') {
      if ((req.query as Record<string, string | undefined>).write === 'true') {
        const doc = await registry.packumentForWrite(p.name, caller, base)
        return reply.header('cache-control', 'no-cache').send(doc)
      }
      const body = await registry.packument(p.name, caller, wantsAbbreviated(h.accept), base)
      if (!body) return reply.code(404).header('content-type', JSON_TYPE).send(NOT_FOUND_BODY)
      const rep = packumentRepresentation(body)
      void reply.headers(rep.common)
      if (notModified(h, rep.etag, rep.lastModified)) return reply.code(304).send()
      void reply.header('content-type', rep.contentType)
      // Pre-compressed once per revision; brotli is made on first demand.
      const encoding = packumentEncoding(h['accept-encoding'])
      if (encoding === 'gzip') return reply.header('content-encoding', 'gzip').send(body.gzip)
      if (encoding === 'br') return reply.header('content-encoding', 'br').send(await registry.brotli(body))
      return reply.send(await identityOf(body))
    }
    if (p.kind === 'manifest') {
      return reply.send(await registry.manifest(p.name, p.spec, caller, base))
    }
    if (p.kind === 'tarball') {
      const t = await registry.tarball(p.name, p.file, caller)
      const rep = tarballRepresentation(t)
      if (notModified(h, rep.etag)) return reply.code(304).headers(rep.notModified).send()
      if (registry.redirectsTarballs) {
        // storage.s3.redirect: the client fetches from the store. The signed URL expires, so the 302
        // itself must not be cached (npm follows it; it drops credentials only across host names).
        const location = await registry.tarballRedirect(t)
        if (location !== undefined) return reply.code(302).header('cache-control', 'no-store').header('location', location).send()
      }
      const data = await registry.tarballData(t)
      return reply.headers(tarballRepresentation(t, data.size).headers).send(data.body)
    }
    throw notFound()
  }

  app.get('/*', get)

  /** The writer of each PUT, found before its body is read. */
  const writers = new WeakMap<FastifyRequest, Principal>()

  app.put(
    '/*',
    {
      // Only a publish may be this large; every other JSON route keeps the server-wide 1 MiB.
      bodyLimit: ctx.config.max_body_size,
      // Credentials and write rights are checked before the body is read: an anonymous or
      // unauthorised client cannot make Pier buffer max_body_size bytes. When the body is refused
      // unread, the connection closes rather than draining it.
      onRequest: async (req, reply) => {
        const p = parsePackagePath(pathOf(req))
        try {
          if (!p || (p.kind !== 'packument' && p.kind !== 'rev')) throw notFound()
          const principal = await ctx.principal(req)
          await registry.admitWrite(p.name, principal)
          writers.set(req, principal)
        } catch (e) {
          if (req.headers['content-length'] !== '0' && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)) {
            void reply.header('connection', 'close')
          }
          throw e
        }
      },
    },
    async (req, reply) => {
      const p = parsePackagePath(pathOf(req))
      if (!p || (p.kind !== 'packument' && p.kind !== 'rev')) throw notFound()
      const body = req.body
      if (!isObject(body)) throw badRequest('The request body must be a JSON object.')
      const principal = writers.get(req) ?? (await ctx.principal(req))
      const attachments = body._attachments
      if (isObject(attachments) && Object.keys(attachments).length > 0) {
        const r = await registry.publish(p.name, body, principal)
        return reply.code(r.changed ? 201 : 200).send({ ok: true, id: p.name, rev: r.rev, success: true })
      }
      const r = await registry.update(p.name, body, principal, p.kind === 'rev' ? p.rev : undefined)
      return reply.code(r.changed ? 201 : 200).send({ ok: true, id: p.name, rev: r.rev })
    },
  )

  // npm sends DELETEs without a body, some with `content-type: application/json` all the same.
  void app.register(async (scope) => {
    allowEmptyBody(scope)
    scope.delete('/*', async (req, reply) => {
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
  })
}
