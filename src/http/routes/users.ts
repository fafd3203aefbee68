/**
 * Account routes (docs/protocol.md §1): legacy login/adduser, whoami, logout, user documents,
 * profile, tokens. npm 11's web login (`POST /-/v1/login`, `GET /-/v1/done`) is in web-login.ts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { badRequest, notFound, unauthenticated } from '../../registry/errors.js'
import type { Actor } from '../../auth/auth-service.js'
import { tokenOptions } from '../../auth/token-body.js'
import type { Principal } from '../../registry/types.js'
import type { RouteContext } from '../context.js'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Who acts, for the audit log. */
const actorOf = (p: Principal): Actor => ({ name: p.name ?? null, tokenKey: p.tokenKey, ip: p.ip })

/** Registers the account routes. */
export function userRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { auth } = ctx

  async function requireUser(req: FastifyRequest): Promise<Principal & { name: string }> {
    const p = await ctx.principal(req)
    if (!p.name) throw unauthenticated('You must be logged in. Run `npm login`.')
    return p as Principal & { name: string }
  }

  // `/-/user/org.couchdb.user:NAME[/-rev/REV]`: parsed by hand (the colon clashes with route params).
  const userFromPath = (tail: string): string | undefined => {
    const m = /^org\.couchdb\.user:([^/]+)(?:\/-rev\/[^/]+)?$/.exec(tail)
    if (!m?.[1]) return undefined
    try {
      return decodeURIComponent(m[1])
    } catch {
      return undefined
    }
  }
  app.put('/-/user/*', async (req, reply) => {
    const urlName = userFromPath((req.params as { '*': string })['*'])
    if (urlName === undefined) throw notFound()
    const body = req.body
    if (!isObject(body)) throw badRequest('Expected a JSON user document.')
    const name = typeof body.name === 'string' ? body.name : urlName
    if (name !== urlName) throw badRequest('The user name in the body does not match the URL.')
    const password = typeof body.password === 'string' ? body.password : ''
    const email = typeof body.email === 'string' ? body.email : undefined
    const r = await auth.login(name, password, email, req.ip)
    return reply.code(201).send({ ok: true, id: `org.couchdb.user:${name}`, rev: '_we_dont_use_revs_any_more', token: r.token })
  })
  app.get('/-/user/*', async (req) => {
    const name = userFromPath((req.params as { '*': string })['*'])
    if (name === undefined) throw notFound()
    return auth.userDoc(name)
  })

  app.get('/-/whoami', async (req) => ({ username: (await requireUser(req)).name }))

  // Route parameters arrive decoded once, as npm encoded them (`encodeURIComponent`): a second
  // decode would throw on `%25ff` and misread a token or key that contains `%`.
  app.delete<{ Params: { token: string } }>('/-/user/token/:token', async (req, reply) => {
    await auth.logout(req.params.token, req.ip)
    return reply.send({ ok: true })
  })

  app.get('/-/npm/v1/user', async (req) => {
    const p = await requireUser(req)
    const doc = await auth.userDoc(p.name)
    return { name: doc.name, email: doc.email, email_verified: false, tfa: false, created: null, updated: null, cidr_whitelist: null }
  })

  app.get('/-/npm/v1/tokens', async (req, reply) => {
    const p = await requireUser(req)
    const q = req.query as Record<string, string | undefined>
    const page = q.page === undefined ? 0 : Number(q.page)
    const perPage = q.perPage === undefined ? 100 : Number(q.perPage)
    if (!Number.isInteger(page) || page < 0 || !Number.isInteger(perPage) || perPage < 1 || perPage > 1000) {
      throw badRequest('Invalid page or perPage.')
    }
    const all = await auth.listTokens(p.name)
    const objects = all.slice(page * perPage, (page + 1) * perPage)
    const more = (page + 1) * perPage < all.length
    return reply.send({ objects, total: all.length, urls: more ? { next: `/-/npm/v1/tokens?page=${page + 1}&perPage=${perPage}` } : {} })
  })

  app.post('/-/npm/v1/tokens', async (req, reply) => {
    const p = await requireUser(req)
    const body = isObject(req.body) ? req.body : {}
    if (typeof body.password !== 'string') throw badRequest('A password is required to create a token.')
    await auth.checkPassword(p.name, body.password, req.ip)
    const { view } = await auth.createToken(p.name, tokenOptions(body), actorOf(p))
    return reply.code(201).send(view)
  })

  app.delete<{ Params: { key: string } }>('/-/npm/v1/tokens/token/:key', async (req, reply) => {
    const p = await requireUser(req)
    // Administrators may revoke anyone's token (npm sends the key or the token itself).
    await auth.revokeToken(p.name, req.params.key, actorOf(p), p.admin === true)
    return reply.code(204).send()
  })
}
