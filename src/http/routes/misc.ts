/**
 * Small routes: ping, root, search and stars (docs/protocol.md §4.1, §3.2, §4.3).
 */
import type { FastifyInstance } from 'fastify'
import { badRequest } from '../../registry/errors.js'
import type { RouteContext } from '../context.js'

/** A parsed query string: a key given twice arrives as a list. */
type Query = Record<string, string | string[] | undefined>

/**
 * One query parameter.
 * @throws RegistryError BAD_REQUEST when it is repeated (`?text=a&text=b`): npm sends each once
 */
function param(q: Query, key: string): string | undefined {
  const v = q[key]
  if (Array.isArray(v)) throw badRequest(`The query parameter "${key}" is given more than once.`)
  return v
}

/** Registers ping, root, search and the starredByUser view. */
export function miscRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { registry } = ctx

  app.get('/-/ping', async (_req, reply) => reply.send({}))

  // Browsers asking for HTML get the web UI's home page at this address instead (server.ts
  // rewriteUrl, web/negotiate.ts), so a cache in front must key this answer on Accept too.
  app.get('/', async (_req, reply) => reply.header('vary', 'Accept').send({ db_name: 'registry', engine: 'pier' }))

  app.get('/-/v1/search', async (req, reply) => {
    const q = req.query as Query
    const size = Math.min(250, Math.max(1, Math.trunc(Number(param(q, 'size') ?? 20)) || 20))
    const from = Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.trunc(Number(param(q, 'from') ?? 0)) || 0))
    const { objects, total } = await registry.search({ text: param(q, 'text') ?? '', size, from }, ctx.caller(req), ctx.baseUrl(req))
    return reply.send({ objects, total, time: new Date().toUTCString() })
  })

  app.get('/-/_view/starredByUser', async (req, reply) => {
    const q = req.query as Query
    let user: unknown
    try {
      user = JSON.parse(param(q, 'key') ?? '')
    } catch {
      throw badRequest('key must be a JSON string, e.g. key="alice"')
    }
    if (typeof user !== 'string') throw badRequest('key must be a JSON string, e.g. key="alice"')
    return reply.send({ rows: await registry.starredBy(user, ctx.caller(req)) })
  })
}
