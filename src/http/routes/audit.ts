/**
 * npm audit (docs/protocol.md §4.2): the request goes to the audit uplink without the names that
 * must stay in the company (local ones, private scopes, names the rules do not proxy: the
 * registry's `upstreamNames`), re-encoded as the client sent it (npm gzips the bulk body), and the
 * uplink's answer is relayed unchanged. A request with nothing left to ask is answered here, with
 * the shape a clean audit gets, without contacting the uplink. Bodies stay raw bytes in this
 * scope (its own content-type parser), bounded by `max_body_size` and, inflated, by
 * `MAX_AUDIT_INFLATED`.
 */
import type { FastifyInstance } from 'fastify'
import { badRequest } from '../../registry/errors.js'
import { auditKind, auditNames, decodeAuditBody, EMPTY_BULK_REPORT, emptyTreeReport, encodeAuditBody, pruneAudit } from '../../uplink/audit.js'
import { UplinkError } from '../../uplink/uplink.js'
import type { RouteContext } from '../context.js'
import { sendError } from '../errors.js'
import { nestedDeeperThan } from '../server-parsers.js'

/**
 * Deepest nesting of objects and arrays an audit body may have. The names are collected, pruned
 * and re-encoded by recursive walks (uplink/audit.ts, JSON.stringify), which a body nested 10,000
 * levels deep would overflow; a real tree nests two levels per level of `node_modules`.
 */
export const MAX_AUDIT_DEPTH = 1000

/** The audit endpoints npm and pnpm post to. */
export const AUDIT_PATHS = ['/-/npm/v1/security/advisories/bulk', '/-/npm/v1/security/audits/quick', '/-/npm/v1/security/audits']

/** Registers the audit routes. */
export function auditRoutes(app: FastifyInstance, ctx: RouteContext): void {
  void app.register(async (audit) => {
    audit.removeAllContentTypeParsers()
    audit.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    for (const url of AUDIT_PATHS) {
      const kind = auditKind(url)
      audit.post(url, async (req, reply) => {
        const uplink = ctx.auditUplink
        if (!uplink) return sendError(reply, 501, 'This registry has no advisory source configured: npm audit is not available.')
        const encoding = typeof req.headers['content-encoding'] === 'string' ? req.headers['content-encoding'].trim().toLowerCase() : undefined
        const doc = decodeAuditBody(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), encoding || undefined)
        if (nestedDeeperThan(doc, MAX_AUDIT_DEPTH)) throw badRequest(`The audit body nests deeper than ${MAX_AUDIT_DEPTH} levels.`)
        const keep = await ctx.registry.upstreamNames(auditNames(kind, doc))
        const pruned = pruneAudit(kind, doc, keep)
        if (pruned.empty) return reply.send(kind === 'bulk' ? EMPTY_BULK_REPORT : emptyTreeReport())
        const headers: Record<string, string> = {}
        for (const k of ['content-type', 'content-encoding', 'accept', 'accept-encoding', 'npm-command']) {
          const v = req.headers[k]
          if (typeof v === 'string') headers[k] = v
        }
        let res
        try {
          res = await uplink.forward(url.slice(1), { method: 'POST', headers, body: encodeAuditBody(pruned.doc, encoding) })
        } catch (e) {
          if (!(e instanceof UplinkError)) throw e
          return sendError(reply, e.failure === 'timeout' ? 504 : 502, `${e.message}: npm audit is not available.`)
        }
        return reply.code(res.status).headers(res.headers).send(res.body)
      })
    }
  })
}
