/**
 * Small routes: ping, root, search, stars, dist-tags and the audit endpoints.
 */
import type { FastifyInstance } from 'fastify'
import { badRequest, notFound, unauthenticated } from '../../registry/errors.js'
import { scopeOf } from '../../registry/names.js'
import type { RouteContext } from '../context.js'
import { parsePackageSubpath } from '../package-path.js'
import { sendError } from '../errors.js'
import { UplinkError } from '../../uplink/uplink.js'

/** Registers ping, search, stars, dist-tags and audit routes. */
export function miscRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { registry } = ctx

  app.get('/-/ping', async (_req, reply) => reply.send({}))

  app.get('/', async (_req, reply) => reply.send({ db_name: 'registry', engine: 'pier' }))

  app.get('/-/v1/search', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>
    const text = (q.text ?? '').trim()
    const size = Math.min(250, Math.max(1, Number(q.size ?? 20) || 20))
    const from = Math.max(0, Number(q.from ?? 0) || 0)
    const words = text.split(/\s+/).filter((w) => w !== '' && !w.includes(':'))
    const { total, hits } = await registry.meta.search(words, size, from)
    const base = ctx.baseUrl(req)
    const objects = hits.map((h) => {
      const m = JSON.parse(h.latest.manifest) as Record<string, unknown>
      const npmUser = m._npmUser as { name: string; email?: string } | undefined
      return {
        package: {
          name: h.name,
          scope: scopeOf(h.name)?.slice(1) ?? 'unscoped',
          version: h.latest.version,
          description: typeof m.description === 'string' ? m.description : '',
          keywords: Array.isArray(m.keywords) ? m.keywords : [],
          date: h.modified,
          links: { npm: `${base}/${h.name}` },
          publisher: npmUser ? { username: npmUser.name, email: npmUser.email ?? '' } : undefined,
          maintainers: h.maintainers.map((x) => ({ username: x.name, email: x.email ?? '' })),
        },
        score: { final: 1, detail: { quality: 1, popularity: 1, maintenance: 1 } },
        searchScore: 1,
      }
    })
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
    const names = await registry.meta.starredBy(user)
    return reply.send({ rows: names.map((n) => ({ key: user, value: n })) })
  })

  // /-/package/<name>/dist-tags[/<tag>]: the name may contain %2f or a literal slash after the scope.
  app.route({
    method: ['GET', 'PUT', 'DELETE', 'POST'],
    url: '/-/package/*',
    handler: async (req, reply) => {
      const tail = (req.params as { '*': string })['*']
      const parsed = parsePackageSubpath(tail.split('?')[0] ?? '')
      if (!parsed || parsed.rest[0] !== 'dist-tags' || parsed.rest.length > 2) throw notFound()
      const { name } = parsed
      const tag = parsed.rest[1]
      if (req.method === 'GET' && tag === undefined) return reply.send(await registry.distTags(name))
      if (tag === undefined) throw notFound()
      const principal = await ctx.principal(req)
      if (!principal.name && !registry.access.open) throw unauthenticated('You must be logged in to change dist-tags.')
      if (req.method === 'PUT' || req.method === 'POST') {
        const version = req.body
        if (typeof version !== 'string') throw badRequest('The body must be a JSON string: the version the tag points to.')
        await registry.setDistTag(name, tag, version, principal)
        return reply.code(201).send({ ok: true, id: name, 'dist-tags': await registry.distTags(name) })
      }
      if (req.method === 'DELETE') {
        await registry.deleteDistTag(name, tag, principal)
        return reply.send({ ok: true, id: name })
      }
      throw notFound()
    },
  })

  // npm audit: forwarded as sent (npm gzips the bulk body) to the audit uplink, its answer relayed.
  // Bodies stay raw bytes here, so this scope has its own content-type parser.
  void app.register(async (audit) => {
    audit.removeAllContentTypeParsers()
    audit.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    for (const url of ['/-/npm/v1/security/advisories/bulk', '/-/npm/v1/security/audits/quick', '/-/npm/v1/security/audits']) {
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
