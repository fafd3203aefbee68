/**
 * `GET /-/health` (ops/health.ts runs the checks): 200 for ok and degraded, 503 for down; never
 * cached. Anyone may ask, but only operators see why: the details (backends with their error
 * text, uplinks with their URLs, cache sizes) go to `auth.admins`, and to loopback clients when
 * `server.health_details: loopback`; everyone else gets `{ "status": ... }` alone. Its requests
 * are left out of the info-level request log: monitors call it every few seconds.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RouteContext } from '../context.js'

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/** Registers `GET /-/health`. */
export function healthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const admins = new Set(ctx.config.auth.admins)
  /** Whether this caller sees the details; bad credentials are only "not an admin" here. */
  async function detailed(req: FastifyRequest): Promise<boolean> {
    // `req.ip` is the client's address (X-Forwarded-For only with trust_proxy), not a proxy's.
    if (ctx.config.server.health_details === 'loopback' && LOOPBACK.has(req.ip)) return true
    if (admins.size === 0 || req.headers.authorization === undefined) return false
    const principal = await ctx.principal(req).catch(() => undefined)
    return principal?.name !== undefined && admins.has(principal.name)
  }
  app.get('/-/health', async (req, reply) => {
    ctx.hooks.quiet(reply.raw)
    const [health, details] = await Promise.all([ctx.health(), detailed(req)])
    return reply
      .code(health.status === 'down' ? 503 : 200)
      .header('cache-control', 'no-store')
      .send(details ? health : { status: health.status })
  })
}
