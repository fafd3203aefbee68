/**
 * Pier's own administration API under `/-/pier/v1/` (not part of npm's protocol; administrators
 * only: `auth.admins`, or users made with `pier user add --admin`):
 *
 * - `GET /-/pier/v1/audit?since=&user=&package=&after=&limit=` — a page of the audit log
 *   (`{ objects: AuditRecord[], urls: { next } }`, oldest first; follow `next` for the rest).
 * - `GET /-/pier/v1/tokens` — every user's tokens, redacted as `npm token list` shows them.
 */
import type { FastifyInstance } from 'fastify'
import { requireAdmin } from '../../auth/auth-service.js'
import { badRequest } from '../../registry/errors.js'
import type { RouteContext } from '../context.js'

/** Registers the administration routes. */
export function adminRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/-/pier/v1/audit', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>
    const limit = q.limit === undefined ? 100 : Number(q.limit)
    const after = q.after === undefined ? undefined : Number(q.after)
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequest('limit must be a whole number from 1 to 1000.')
    if (after !== undefined && (!Number.isInteger(after) || after < 0)) throw badRequest('after must be a sequence number.')
    if (q.since !== undefined && Number.isNaN(Date.parse(q.since))) throw badRequest('since must be an ISO 8601 time.')
    const principal = await ctx.principal(req)
    const objects = await ctx.auth.readAudit(principal, {
      limit,
      ...(after !== undefined ? { after } : {}),
      ...(q.since !== undefined ? { since: new Date(q.since).toISOString() } : {}),
      ...(q.user !== undefined ? { user: q.user } : {}),
      ...(q.package !== undefined ? { package: q.package } : {}),
    })
    const last = objects[objects.length - 1]
    const next = new URLSearchParams()
    for (const k of ['since', 'user', 'package'] as const) if (q[k] !== undefined) next.set(k, q[k])
    if (last) next.set('after', String(last.seq))
    next.set('limit', String(limit))
    return reply
      .header('cache-control', 'no-store')
      .send({ objects, urls: { next: objects.length === limit ? `/-/pier/v1/audit?${next.toString()}` : null } })
  })

  app.get('/-/pier/v1/tokens', async (req, reply) => {
    requireAdmin(await ctx.principal(req))
    return reply.header('cache-control', 'no-store').send({ objects: await ctx.auth.listTokens({ all: true }) })
  })
}
