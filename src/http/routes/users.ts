/**
 * Account routes (docs/protocol.md §1): legacy login/adduser, whoami, logout, user documents,
 * profile, tokens; `POST /-/v1/login` answers 404 so npm falls back to the legacy prompts.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { badRequest, notFound, unauthenticated } from '../../registry/errors.js'
import type { Actor, TokenOptions } from '../../auth/auth-service.js'
import type { GrantPermission, Principal } from '../../registry/types.js'
import type { RouteContext } from '../context.js'
import { sendError } from '../errors.js'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * A token's `cidr_whitelist` from a request body: a list of strings, or absent (`null` too).
 * @throws RegistryError BAD_REQUEST for anything else (an object in the list cannot be a range)
 */
function cidrList(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((c): c is string => typeof c === 'string')) {
    throw badRequest('cidr_whitelist must be a list of CIDR strings, e.g. ["10.0.0.0/8"].')
  }
  return v
}

const PERMISSIONS = new Set<GrantPermission>(['read-only', 'read-write', 'no-access'])

/** A list of strings from a token body field, or undefined. @throws RegistryError BAD_REQUEST */
function stringList(body: Record<string, unknown>, key: string): string[] | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string' && s.length > 0 && s.length <= 214)) {
    throw badRequest(`${key} must be a list of names.`)
  }
  return v
}

/** A permission field of a token body. @throws RegistryError BAD_REQUEST */
function permission(body: Record<string, unknown>, key: string): GrantPermission | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string' || !PERMISSIONS.has(v as GrantPermission)) throw badRequest(`${key} must be read-only, read-write or no-access.`)
  return v as GrantPermission
}

/**
 * `POST /-/npm/v1/tokens`'s body as TokenOptions: npm 11's granular shape (`name`, `description`,
 * `packages`, `packages_all`, `scopes`, `orgs`, `packages_and_scopes_permission`,
 * `orgs_permission`, `expires` in days, `cidr_whitelist`) or the legacy one (`readonly`,
 * `cidr_whitelist`); docs/protocol.md §1.7. A token naming packages, scopes or orgs is granular.
 * @throws RegistryError BAD_REQUEST for a field of the wrong type
 */
export function tokenOptions(body: Record<string, unknown>): TokenOptions {
  const o: TokenOptions = { readonly: body.readonly === true }
  const cidr = cidrList(body.cidr_whitelist)
  if (cidr) o.cidrWhitelist = cidr
  if (body.name !== undefined && body.name !== null) {
    if (typeof body.name !== 'string') throw badRequest('name must be a string.')
    o.name = body.name
  }
  if (body.description !== undefined && body.description !== null) {
    if (typeof body.description !== 'string') throw badRequest('description must be a string.')
    o.description = body.description
  }
  if (body.expires !== undefined && body.expires !== null) {
    if (typeof body.expires !== 'number' || !Number.isInteger(body.expires)) throw badRequest('expires must be a whole number of days.')
    o.expiresDays = body.expires
  }
  const packages = stringList(body, 'packages')
  const scopes = stringList(body, 'scopes')
  const orgs = stringList(body, 'orgs')
  const packagesAll = body.packages_all === true
  const perm = permission(body, 'packages_and_scopes_permission')
  const orgsPerm = permission(body, 'orgs_permission')
  if (packages || scopes || orgs || packagesAll || perm || orgsPerm) {
    o.grant = {
      packagesAll,
      packages: packages ?? [],
      scopes: (scopes ?? []).map((s) => (s.startsWith('@') ? s : `@${s}`)),
      permission: perm ?? 'read-only',
      orgs: (orgs ?? []).map((s) => s.replace(/^@/, '')),
      orgsPermission: orgsPerm ?? 'no-access',
    }
  }
  return o
}

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

  // npm ≥9 tries web login first; any 4xx makes it fall back to username/password prompts.
  app.post('/-/v1/login', async (_req, reply) =>
    sendError(reply, 404, 'Web login is not available on this registry; use username and password (npm falls back automatically).'),
  )

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
