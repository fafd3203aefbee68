/**
 * npm audit (docs/protocol.md §4.2): forwarded as sent (npm gzips the bulk body) to the audit
 * uplink, its answer relayed. Bodies stay raw bytes here, so this scope has its own content-type
 * parser.
 */
import type { FastifyInstance } from 'fastify'
import { UplinkError } from '../../uplink/uplink.js'
import type { RouteContext } from '../context.js'
import { sendError } from '../errors.js'

/** The audit endpoints npm and pnpm post to. */
export const AUDIT_PATHS = ['/-/npm/v1/security/advisories/bulk', '/-/npm/v1/security/audits/quick', '/-/npm/v1/security/audits']

/** Registers the audit routes. */
export function auditRoutes(app: FastifyInstance, ctx: RouteContext): void {
  void app.register(async (audit) => {
    audit.removeAllContentTypeParsers()
    audit.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    for (const url of AUDIT_PATHS) {
      audit.post(url, async (req, reply) => {
        const uplink = ctx.auditUplink
        if (!uplink) return sendError(reply, 501, 'This registry has no advisory source configured: npm audit is not available.')
        const headers: Record<string, string> = {}
        for (const k of ['content-type', 'content-encoding', 'accept', 'accept-encoding', 'npm-command']) {
          const v = req.headers[k]
          if (typeof v === 'string') headers[k] = v
        }
        let res
        try {
          res = await uplink.forward(url.slice(1), { method: 'POST', headers, body: Buffer.isBuffer(req.body) ? req.body : undefined })
        } catch (e) {
          if (!(e instanceof UplinkError)) throw e
          return sendError(reply, e.failure === 'timeout' ? 504 : 502, `${e.message}: npm audit is not available.`)
        }
        return reply.code(res.status).headers(res.headers).send(res.body)
      })
    }
  })
}
