/**
 * Small routes: ping, root, search, stars and the change feed (docs/protocol.md §4.1, §3.2, §4.3, §6).
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

/** Most rows one `/_changes` page returns, and how many when `limit` is not given. */
export const CHANGES_MAX_LIMIT = 10_000
const CHANGES_DEFAULT_LIMIT = 1000

/**
 * A non-negative integer query parameter (a `since` seq, a `limit`).
 * @throws RegistryError BAD_REQUEST naming the parameter when it is not one
 */
function count(q: Query, key: string, dflt: number): number {
  const v = param(q, key)
  if (v === undefined || v === '') return dflt
  if (!/^\d{1,15}$/.test(v)) throw badRequest(`The query parameter "${key}" must be a whole number, not "${v.slice(0, 40)}".`)
  return Number(v)
}

/** Registers ping, root, search, the starredByUser view and the change feed. */
export function miscRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { registry } = ctx

  app.get('/-/ping', async (_req, reply) => reply.send({}))

  // Browsers asking for HTML get the web UI's home page at this address instead (server.ts
  // rewriteUrl, web/negotiate.ts), so a cache in front must key this answer on Accept too.
  // `update_seq`: the change feed's end, where a new follower starts (CouchDB's root document).
  app.get('/', async (_req, reply) => reply.header('vary', 'Accept').send({ db_name: 'registry', engine: 'pier', update_seq: await registry.lastChangeSeq() }))

  // The change feed, CouchDB's `feed=normal` (docs/protocol.md §6): `since` (a seq, or `now`),
  // `limit` (1–10,000, default 1,000). What the public replica dropped (`include_docs`, filters,
  // `descending`) and the streaming feeds are refused with 400 rather than silently ignored.
  app.get('/_changes', async (req, reply) => {
    const q = req.query as Query
    const feed = param(q, 'feed') ?? 'normal'
    if (feed !== 'normal') throw badRequest(`feed=${feed.slice(0, 40)} is not supported: poll with feed=normal, passing last_seq back as since.`)
    for (const key of ['include_docs', 'descending', 'filter', 'doc_ids']) {
      const v = param(q, key)
      if (v !== undefined && v !== 'false') throw badRequest(`${key} is not supported: read each changed package with GET /<name>.`)
    }
    const since = param(q, 'since') === 'now' ? await registry.lastChangeSeq() : count(q, 'since', 0)
    const limit = count(q, 'limit', CHANGES_DEFAULT_LIMIT)
    if (limit < 1 || limit > CHANGES_MAX_LIMIT) throw badRequest(`The query parameter "limit" must be between 1 and ${CHANGES_MAX_LIMIT}.`)
    return reply.header('cache-control', 'no-cache').send(await registry.changes({ since, limit }, ctx.caller(req)))
  })

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
