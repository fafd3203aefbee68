/**
 * `GET /-/health` (ops/health.ts runs the checks): 200 for ok and degraded, 503 for down; never
 * cached; no authentication. Its requests are left out of the info-level request log: monitors
 * call it every few seconds.
 */
import type { FastifyInstance } from 'fastify'
import type { RouteContext } from '../context.js'

/** Registers `GET /-/health`. */
export function healthRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/-/health', async (_req, reply) => {
    ctx.hooks.quiet(reply.raw)
    const health = await ctx.health()
    return reply
      .code(health.status === 'down' ? 503 : 200)
      .header('cache-control', 'no-store')
      .send(health)
  })
}
