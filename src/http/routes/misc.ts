/**
 * Small routes: ping, root, search and stars (docs/protocol.md §4.1, §3.2, §4.3).
 */
import type { FastifyInstance } from 'fastify'
import { badRequest } from '../../registry/errors.js'
import type { RouteContext } from '../context.js'

/** Registers ping, root, search and the starredByUser view. */
export function miscRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { registry } = ctx

  app.get('/-/ping', async (_req, reply) => reply.send({}))

  app.get('/', async (_req, reply) => reply.send({ db_name: 'registry', engine: 'pier' }))

  app.get('/-/v1/search', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>
    const size = Math.min(250, Math.max(1, Number(q.size ?? 20) || 20))
    const from = Math.max(0, Number(q.from ?? 0) || 0)
    const { objects, total } = await registry.search({ text: q.text ?? '', size, from }, ctx.caller(req), ctx.baseUrl(req))
    return reply.send({ objects, total, time: new Date().toUTCString() })
  })

  app.get('/-/_view/starredByUser', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>
    let user: unknown
    try {
      user = JSON.parse(q.key ?? '')
    } catch {
      throw badRequest('key must be a JSON string, e.g. key="alice"')
    }
    if (typeof user !== 'string') throw badRequest('key must be a JSON string, e.g. key="alice"')
    return reply.send({ rows: await registry.starredBy(user, ctx.caller(req)) })
  })
}
