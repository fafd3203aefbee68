/**
 * `npm access`, `npm org` and `npm team` (docs/protocol.md §5; npm's libnpmaccess, libnpmorg,
 * libnpmteam): every answer in the shape the CLI reads.
 *
 * - `GET /-/package/<pkg>/visibility` → `{ public }`; `POST /-/package/<pkg>/access` with
 *   `{ access }` or `{ publish_requires_tfa, automation_token_overrides_tfa }`;
 *   `GET /-/package/<pkg>/collaborators` → `{ user: read|write }` (these three are dispatched from
 *   the `/-/package/*` route in dist-tags.ts);
 * - `PUT|DELETE /-/team/<org>/<team>/package`, `GET` the team's packages;
 *   `GET /-/org/<org>/package`, `GET /-/user/<name>/package`;
 * - `PUT|DELETE|GET /-/org/<org>/user`; `PUT /-/org/<org>/team`, `GET` (with `?format=cli`);
 *   `DELETE /-/team/<org>/<team>`; `PUT|DELETE|GET /-/team/<org>/<team>/user`.
 *
 * A leading `@` of an org or a user is stripped, as the CLI does before encoding.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { badRequest, notFound } from '../../registry/errors.js'
import type { PackageName } from '../../registry/names.js'
import { asPackageName } from '../../registry/names.js'
import type { RouteContext } from '../context.js'
import { allowEmptyBody } from '../server-parsers.js'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const bare = (s: string): string => s.replace(/^[@~]/, '')

/** A string field of a JSON body. @throws RegistryError BAD_REQUEST */
function field(body: unknown, key: string): string {
  const v = isObject(body) ? body[key] : undefined
  if (typeof v !== 'string' || v === '') throw badRequest(`The body must carry "${key}".`)
  return v
}

/** A package name from a body's `package`. @throws RegistryError BAD_REQUEST */
function packageField(body: unknown): PackageName {
  const name = asPackageName(field(body, 'package'))
  if (!name) throw badRequest('Invalid package name.')
  return name
}

/**
 * The `/-/package/<pkg>/<sub>` answers other than dist-tags, for the dispatcher in dist-tags.ts.
 * @returns undefined when `sub` is none of visibility, access, collaborators
 */
export async function packageAccessRoute(ctx: RouteContext, name: PackageName, sub: string, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const { registry } = ctx
  if (sub === 'visibility' && req.method === 'GET') return reply.send(await registry.packageVisibility(name, ctx.caller(req)))
  if (sub === 'collaborators' && req.method === 'GET') return reply.send(await registry.orgs.collaborators(name, ctx.caller(req)))
  if (sub === 'access' && (req.method === 'POST' || req.method === 'PUT')) {
    await registry.setPackageAccess(name, req.body, await ctx.principal(req))
    return reply.send({ ok: true, id: name, ...(await registry.packageVisibility(name, ctx.caller(req))), mfa: await registry.packageMfa(name, ctx.caller(req)) })
  }
  if (sub === 'access' && req.method === 'GET') {
    return reply.send({ ...(await registry.packageVisibility(name, ctx.caller(req))), mfa: await registry.packageMfa(name, ctx.caller(req)) })
  }
  return undefined
}

/** Registers the org, team and package-listing routes. */
export function orgRoutes(app: FastifyInstance, ctx: RouteContext): void {
  // libnpmteam and libnpmorg send DELETE bodies; some carry none.
  void app.register(async (scope) => {
    allowEmptyBody(scope)
    routes(scope, ctx)
  })
}

type P = { org: string; team: string; user: string }

function routes(app: FastifyInstance, ctx: RouteContext): void {
  const { registry } = ctx
  const orgs = registry.orgs
  const who = (req: FastifyRequest) => ctx.principal(req)

  // Org membership (npm org set / rm / ls).
  app.put<{ Params: P }>('/-/org/:org/user', async (req, reply) => {
    const body = req.body
    const role = isObject(body) && typeof body.role === 'string' ? body.role : 'developer'
    return reply.send(await orgs.setMember(bare(req.params.org), bare(field(body, 'user')), role, await who(req)))
  })
  app.delete<{ Params: P }>('/-/org/:org/user', async (req, reply) => {
    await orgs.removeMember(bare(req.params.org), bare(field(req.body, 'user')), await who(req))
    return reply.send({ ok: true })
  })
  app.get<{ Params: P }>('/-/org/:org/user', async (req, reply) => reply.send(orgs.members(bare(req.params.org), await who(req))))

  // Teams (npm team create / destroy / add / rm / ls).
  app.put<{ Params: P }>('/-/org/:org/team', async (req, reply) => {
    const body = req.body
    const description = isObject(body) && typeof body.description === 'string' ? body.description : null
    const team = field(body, 'name')
    await orgs.createTeam(bare(req.params.org), team, description, await who(req))
    return reply.code(201).send({ name: team, description })
  })
  app.get<{ Params: P }>('/-/org/:org/team', async (req, reply) => reply.send(orgs.teams(bare(req.params.org), await who(req))))
  app.delete<{ Params: P }>('/-/team/:org/:team', async (req, reply) => {
    await orgs.destroyTeam(bare(req.params.org), req.params.team, await who(req))
    return reply.send({ ok: true })
  })
  app.put<{ Params: P }>('/-/team/:org/:team/user', async (req, reply) => {
    await orgs.addTeamMember(bare(req.params.org), req.params.team, bare(field(req.body, 'user')), await who(req))
    return reply.code(201).send({ ok: true })
  })
  app.delete<{ Params: P }>('/-/team/:org/:team/user', async (req, reply) => {
    await orgs.removeTeamMember(bare(req.params.org), req.params.team, bare(field(req.body, 'user')), await who(req))
    return reply.send({ ok: true })
  })
  app.get<{ Params: P }>('/-/team/:org/:team/user', async (req, reply) => reply.send(orgs.teamMembers(bare(req.params.org), req.params.team, await who(req))))

  // Team grants (npm access grant / revoke / list packages @org:team).
  app.put<{ Params: P }>('/-/team/:org/:team/package', async (req, reply) => {
    const body = req.body
    await orgs.grant(bare(req.params.org), req.params.team, packageField(body), isObject(body) ? body.permissions : undefined, await who(req))
    return reply.code(201).send({ ok: true })
  })
  app.delete<{ Params: P }>('/-/team/:org/:team/package', async (req, reply) => {
    await orgs.revoke(bare(req.params.org), req.params.team, packageField(req.body), await who(req))
    return reply.send({ ok: true })
  })
  app.get<{ Params: P }>('/-/team/:org/:team/package', async (req, reply) => reply.send(await orgs.teamPackages(bare(req.params.org), req.params.team, await who(req))))

  // npm access list packages <scope|user>: the org's packages, else (404) the user's.
  app.get<{ Params: P }>('/-/org/:org/package', async (req, reply) => reply.send(await registry.orgPackages(bare(req.params.org), await who(req))))
  app.get<{ Params: P }>('/-/user/:user/package', async (req, reply) => {
    const user = bare(req.params.user)
    if (user === '') throw notFound()
    return reply.send(await registry.userPackages(user, ctx.caller(req)))
  })
}
