/**
 * `/-/package/<name>/dist-tags[/<tag>]` (docs/protocol.md §3.4; npm's `lib/commands/dist-tag.js`):
 * the name may contain `%2f` or a literal slash after the scope. The same wildcard carries
 * `/-/package/<name>/visibility|access|collaborators` (`npm access`), answered by routes/access.ts.
 */
import type { FastifyInstance } from 'fastify'
import { notFound } from '../../registry/errors.js'
import type { RouteContext } from '../context.js'
import { parsePackageSubpath } from '../package-path.js'
import { allowEmptyBody } from '../server-parsers.js'
import { packageAccessRoute } from './access.js'

/** Registers the dist-tag routes. */
export function distTagRoutes(app: FastifyInstance, ctx: RouteContext): void {
  // `npm dist-tag rm` sends a DELETE without a body.
  void app.register(async (scope) => {
    allowEmptyBody(scope)
    distTagRoute(scope, ctx)
  })
}

function distTagRoute(app: FastifyInstance, ctx: RouteContext): void {
  const { registry } = ctx
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'DELETE', 'POST'],
    url: '/-/package/*',
    handler: async (req, reply) => {
      const tail = (req.params as { '*': string })['*']
      const parsed = parsePackageSubpath(tail.split('?')[0] ?? '')
      if (parsed && parsed.rest.length === 1 && parsed.rest[0] !== 'dist-tags') {
        // visibility, access, collaborators (routes/access.ts)
        const answered = await packageAccessRoute(ctx, parsed.name, parsed.rest[0] as string, req, reply)
        if (answered) return answered
      }
      if (!parsed || parsed.rest[0] !== 'dist-tags' || parsed.rest.length > 2) throw notFound()
      const { name } = parsed
      const tag = parsed.rest[1]
      if ((req.method === 'GET' || req.method === 'HEAD') && tag === undefined) return reply.send(await registry.distTags(name, ctx.caller(req)))
      if (tag === undefined) throw notFound()
      const principal = await ctx.principal(req)
      if (req.method === 'PUT' || req.method === 'POST') {
        const tags = await registry.setDistTag(name, tag, req.body, principal)
        return reply.code(201).send({ ok: true, id: name, 'dist-tags': tags })
      }
      if (req.method === 'DELETE') {
        await registry.deleteDistTag(name, tag, principal)
        return reply.send({ ok: true, id: name })
      }
      throw notFound()
    },
  })
}
