/**
 * The operations behind `npm org`, `npm team` and `npm access` (docs/protocol.md §5): org
 * membership, teams, team grants, and the listings. Changes run in one `OrgStore` transaction
 * with their audit-log entry; the directory (orgs.ts) is reloaded after each, and on the other
 * nodes when the store's notification arrives. Package status and mfa are package writes and run
 * in the write path (registry.ts `setPackageAccess`).
 *
 * Who may do what:
 * - an org's owners and admins manage its teams, team members and grants; only owners add,
 *   promote or remove owners; any member lists the org's members and teams; administrators
 *   (`Principal.admin`) may do everything;
 * - an org (and so a scope) is created only by an administrator (`pier org create`), with its
 *   first owner and a `developers` team holding that owner;
 * - a caller who is not a member of an org is answered as if it did not exist (404).
 */
import type { AuditEntry } from './audit-log.js'
import { badRequest, forbidden, notFound, RegistryError, unauthenticated } from './errors.js'
import type { AccessDirectory, OrgRole, OrgStore, OrgTx, TeamPermission } from './orgs.js'
import type { ReadGate } from './read-gate.js'
import type { Caller, Principal } from './types.js'

const ORG_NAME = /^[a-z0-9][a-z0-9._-]{0,213}$/
const TEAM_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,213}$/
const ROLES = new Set<OrgRole>(['developer', 'admin', 'owner'])

/** `npm access list packages`'s map: package → `read` | `write`. */
export type PackageRights = Record<string, TeamPermission>

/** What the org operations need. */
export interface OrgAdminDeps {
  store: OrgStore
  directory: AccessDirectory
  gate: ReadGate
  /** Maintainer names of a local package, sorted (empty when unknown). */
  maintainersOf(name: string): Promise<readonly string[]>
}

/** The org, team and grant operations. */
export class OrgAdmin {
  constructor(private readonly d: OrgAdminDeps) {}

  /** Reloads the directory from the store (after a change, here or on another node). */
  async reload(): Promise<void> {
    this.d.directory.load(await this.d.store.loadAccessDirectory())
  }

  /**
   * Creates org `name` (the scope `@name`) with `owner` as its owner and a `developers` team
   * holding the owner (`pier org create`; administrators only over HTTP, which has no route).
   * @throws RegistryError BAD_REQUEST (name), NOT_FOUND (no such user), CONFLICT (exists)
   */
  async createOrg(name: string, owner: string, actor: Principal): Promise<void> {
    if (!ORG_NAME.test(name)) throw badRequest(`Invalid org name "${name}" (lower case letters, digits, . _ -).`)
    await this.change(actor, 'org', { op: 'create', org: name, owner }, async (tx, now) => {
      if (!(await tx.userExists(owner))) throw notFound(`User "${owner}" does not exist.`)
      if (!(await tx.insertOrg(name, now))) throw new RegistryError('CONFLICT', `Org "${name}" already exists.`)
      await tx.setMember(name, owner, 'owner')
      await tx.insertTeam(name, 'developers', null, now)
      await tx.addTeamMember(name, 'developers', owner)
    })
  }

  /**
   * `npm org set <org> <user> [role]`: adds `user` or changes their role.
   * @returns npm's answer `{ org: { name, size }, user, role }`
   * @throws RegistryError NOT_FOUND (org, user), FORBIDDEN (not an owner/admin; owners only for owners), BAD_REQUEST (role)
   */
  async setMember(org: string, user: string, role: string, p: Principal): Promise<{ org: { name: string; size: number }; user: string; role: OrgRole }> {
    if (!ROLES.has(role as OrgRole)) throw badRequest(`Invalid role "${role}": developer, admin or owner.`)
    const current = this.manage(org, p)
    if ((role === 'owner' || this.d.directory.role(org, user) === 'owner') && current !== 'owner') {
      throw forbidden(`Only an owner of org "${org}" may add, change or remove an owner.`)
    }
    await this.change(p, 'org', { op: 'set', org, user, role }, async (tx) => {
      if (!(await tx.userExists(user))) throw notFound(`User "${user}" does not exist.`)
      await tx.setMember(org, user, role as OrgRole)
    })
    return { org: { name: org, size: this.d.directory.members(org).size }, user, role: role as OrgRole }
  }

  /**
   * `npm org rm <org> <user>`: removes `user` from the org and its teams.
   * @throws RegistryError NOT_FOUND, FORBIDDEN, BAD_REQUEST (the last owner)
   */
  async removeMember(org: string, user: string, p: Principal): Promise<void> {
    const current = this.manage(org, p)
    const role = this.d.directory.role(org, user)
    if (role === undefined) throw notFound(`User "${user}" is not a member of org "${org}".`)
    if (role === 'owner') {
      if (current !== 'owner') throw forbidden(`Only an owner of org "${org}" may remove an owner.`)
      const owners = [...this.d.directory.members(org).values()].filter((r) => r === 'owner').length
      if (owners <= 1) throw badRequest(`"${user}" is the last owner of org "${org}": add another owner first.`)
    }
    await this.change(p, 'org', { op: 'rm', org, user }, async (tx) => {
      await tx.removeMember(org, user)
    })
  }

  /** `npm org ls <org>`: members and roles. @throws RegistryError NOT_FOUND (not a member) */
  members(org: string, p: Principal): Record<string, OrgRole> {
    this.member(org, p)
    return Object.fromEntries([...this.d.directory.members(org)].sort(([a], [b]) => a.localeCompare(b)))
  }

  /** `npm team create @org:team`. @throws RegistryError NOT_FOUND, FORBIDDEN, BAD_REQUEST, CONFLICT */
  async createTeam(org: string, team: string, description: string | null, p: Principal): Promise<void> {
    if (!TEAM_NAME.test(team)) throw badRequest(`Invalid team name "${team}".`)
    this.manage(org, p)
    await this.change(p, 'team', { op: 'create', org, team }, async (tx, now) => {
      if (!(await tx.insertTeam(org, team, description, now))) throw new RegistryError('CONFLICT', `Team "${org}:${team}" already exists.`)
    })
  }

  /** `npm team destroy @org:team`: the team, its members and grants. @throws RegistryError NOT_FOUND, FORBIDDEN */
  async destroyTeam(org: string, team: string, p: Principal): Promise<void> {
    this.manage(org, p)
    this.team(org, team)
    await this.change(p, 'team', { op: 'destroy', org, team }, async (tx) => {
      await tx.deleteTeam(org, team)
    })
  }

  /** `npm team add @org:team <user>`: the user must be a member of the org. @throws RegistryError NOT_FOUND, FORBIDDEN, BAD_REQUEST */
  async addTeamMember(org: string, team: string, user: string, p: Principal): Promise<void> {
    this.manage(org, p)
    this.team(org, team)
    if (this.d.directory.role(org, user) === undefined) throw badRequest(`User "${user}" is not a member of org "${org}": \`npm org set ${org} ${user}\` first.`)
    await this.change(p, 'team', { op: 'add', org, team, user }, async (tx) => {
      await tx.addTeamMember(org, team, user)
    })
  }

  /** `npm team rm @org:team <user>`. @throws RegistryError NOT_FOUND, FORBIDDEN */
  async removeTeamMember(org: string, team: string, user: string, p: Principal): Promise<void> {
    this.manage(org, p)
    if (!this.team(org, team).has(user)) throw notFound(`User "${user}" is not in team "${org}:${team}".`)
    await this.change(p, 'team', { op: 'rm', org, team, user }, async (tx) => {
      await tx.removeTeamMember(org, team, user)
    })
  }

  /** `npm team ls @org`: `org:team` names, sorted. @throws RegistryError NOT_FOUND */
  teams(org: string, p: Principal): string[] {
    this.member(org, p)
    return this.d.directory.teamsOf(org).map((t) => `${org}:${t}`)
  }

  /** `npm team ls @org:team`: member names, sorted. @throws RegistryError NOT_FOUND */
  teamMembers(org: string, team: string, p: Principal): string[] {
    this.member(org, p)
    return [...this.team(org, team)].sort()
  }

  /**
   * `npm access grant read-only|read-write @org:team <pkg>`: the package must be a local package
   * of the org's scope that the caller may read.
   * @throws RegistryError NOT_FOUND, FORBIDDEN, BAD_REQUEST (permission, a package outside the scope)
   */
  async grant(org: string, team: string, pkg: string, permissions: unknown, p: Principal): Promise<void> {
    const permission: TeamPermission | undefined =
      permissions === 'read-write' || permissions === 'write' ? 'write' : permissions === 'read-only' || permissions === 'read' ? 'read' : undefined
    if (permission === undefined) throw badRequest('permissions must be read-only or read-write.')
    this.manage(org, p)
    this.team(org, team)
    await this.grantable(org, pkg, p)
    await this.change(p, 'access', { op: 'grant', org, team, package: pkg, permission }, async (tx) => {
      await tx.setGrant(org, team, pkg, permission)
    }, pkg)
  }

  /** `npm access revoke @org:team <pkg>`. @throws RegistryError NOT_FOUND, FORBIDDEN */
  async revoke(org: string, team: string, pkg: string, p: Principal): Promise<void> {
    this.manage(org, p)
    this.team(org, team)
    await this.grantable(org, pkg, p)
    await this.change(p, 'access', { op: 'revoke', org, team, package: pkg }, async (tx) => {
      if ((await tx.removeGrant(org, team, pkg)) === 0) throw notFound(`Team "${org}:${team}" has no grant on "${pkg}".`)
    }, pkg)
  }

  /** `npm access list packages @org:team`: the team's grants the caller may see. @throws RegistryError NOT_FOUND */
  async teamPackages(org: string, team: string, caller: Principal): Promise<PackageRights> {
    this.member(org, caller)
    this.team(org, team)
    const granted = [...this.d.directory.teamPackages(org, team)].sort(([a], [b]) => a.localeCompare(b))
    const visible = await this.d.gate.visibleTo(caller, granted.map(([pkg]) => pkg))
    const out: PackageRights = {}
    for (const [pkg, perm] of granted) if (visible(pkg)) out[pkg] = perm
    return out
  }

  /**
   * `npm access list packages @org`: the org's local packages the caller may read, each `write`
   * when the caller may change it (maintainer, team granted write, org owner/admin), else `read`.
   * @throws RegistryError NOT_FOUND (no such org: npm then asks `/-/user/<name>/package`)
   */
  async orgPackages(org: string, caller: Principal, packagesInScope: string[], maintained: ReadonlySet<string>): Promise<PackageRights> {
    if (!this.d.directory.hasOrg(org)) throw notFound(`Org "${org}" not found.`)
    const visible = await this.d.gate.visibleTo(caller, packagesInScope)
    const out: PackageRights = {}
    for (const pkg of packagesInScope) if (visible(pkg)) out[pkg] = this.rightOf(pkg, caller, maintained)
    return out
  }

  /** `npm access list packages <user>`: what `user` maintains or is granted, as far as the caller may see. */
  async userPackages(user: string, caller: Caller, maintained: readonly string[]): Promise<PackageRights> {
    const rights = new Map<string, TeamPermission>(maintained.map((n) => [n, 'write']))
    for (const org of this.orgsOf(user)) {
      for (const team of this.d.directory.teamsOf(org)) {
        if (!this.d.directory.teamMembers(org, team)?.has(user)) continue
        for (const [pkg, perm] of this.d.directory.teamPackages(org, team)) if (rights.get(pkg) !== 'write') rights.set(pkg, perm)
      }
    }
    const visible = await this.d.gate.visibleTo(caller, [...rights.keys()])
    const out: PackageRights = {}
    for (const [pkg, perm] of [...rights].sort(([a], [b]) => a.localeCompare(b))) if (visible(pkg)) out[pkg] = perm
    return out
  }

  /** `npm access list collaborators <pkg>`: maintainers (`write`) and members of granted teams. @throws RegistryError NOT_FOUND */
  async collaborators(pkg: string, caller: Caller): Promise<PackageRights> {
    await this.d.gate.admit(pkg, caller)
    const maintainers = await this.d.maintainersOf(pkg)
    if (maintainers.length === 0) throw notFound()
    const out = new Map<string, TeamPermission>(maintainers.map((m) => [m, 'write']))
    for (const [key, perm] of this.d.directory.grantsOn(pkg)) {
      const [org, team] = key.split(':') as [string, string]
      for (const user of this.d.directory.teamMembers(org, team) ?? []) if (out.get(user) !== 'write') out.set(user, perm)
    }
    return Object.fromEntries([...out].sort(([a], [b]) => a.localeCompare(b)))
  }

  /** Orgs `user` belongs to. */
  private orgsOf(user: string): string[] {
    const all = new Set<string>()
    for (const org of this.d.directory.orgNames()) if (this.d.directory.role(org, user) !== undefined) all.add(org)
    return [...all]
  }

  private rightOf(pkg: string, p: Principal, maintained: ReadonlySet<string>): TeamPermission {
    if (p.name === undefined) return 'read'
    if (p.admin === true || maintained.has(pkg) || this.d.directory.managesScopeOf(pkg, p.name) || this.d.directory.teamRight(pkg, p.name) === 'write') return 'write'
    return 'read'
  }

  /** A package the caller may grant on: of the org's scope, readable by them, and local. */
  private async grantable(org: string, pkg: string, p: Principal): Promise<void> {
    if (!pkg.startsWith(`@${org}/`)) throw badRequest(`"${pkg}" is not in the scope @${org}: teams of "${org}" are granted only its packages.`)
    await this.d.gate.admit(pkg, p)
    if ((await this.d.maintainersOf(pkg)).length === 0) throw notFound()
  }

  /** The caller's role in `org` (administrators count as owners). @throws RegistryError UNAUTHENTICATED, NOT_FOUND */
  private member(org: string, p: Principal): OrgRole {
    if (p.name === undefined) throw unauthenticated('You must be logged in. Run `npm login`.')
    if (p.grant && !(p.grant.orgs.includes(org) && p.grant.orgsPermission !== 'no-access')) throw forbidden(`This token may not act on org "${org}".`)
    if (!this.d.directory.hasOrg(org)) throw notFound(`Org "${org}" not found.`)
    if (p.admin === true) return 'owner'
    const role = this.d.directory.role(org, p.name)
    if (role === undefined) throw notFound(`Org "${org}" not found.`)
    return role
  }

  /** The caller's role, which must be owner or admin. @throws RegistryError NOT_FOUND, FORBIDDEN */
  private manage(org: string, p: Principal): OrgRole {
    const role = this.member(org, p)
    if (p.readonly) throw forbidden('This token is read-only: it cannot be used to change anything.')
    if (p.grant && p.grant.orgsPermission !== 'read-write') throw forbidden(`This token may not change org "${org}".`)
    if (role !== 'owner' && role !== 'admin') throw forbidden(`User "${String(p.name)}" is not an owner or admin of org "${org}".`)
    return role
  }

  /** Members of team `org:team`. @throws RegistryError NOT_FOUND */
  private team(org: string, team: string): ReadonlySet<string> {
    const t = this.d.directory.teamMembers(org, team)
    if (!t) throw notFound(`Team "${org}:${team}" not found.`)
    return t
  }

  /** Runs one directory change with its audit entry, then reloads the directory. */
  private async change(p: Principal, action: AuditEntry['action'], details: Record<string, unknown>, fn: (tx: OrgTx, now: string) => Promise<void>, pkg: string | null = null): Promise<void> {
    const now = new Date().toISOString()
    await this.d.store.orgTransaction(async (tx) => {
      await fn(tx, now)
      await tx.appendAudit({ at: now, actor: p.name ?? null, token: p.tokenKey ?? null, ip: p.ip ?? null, action, package: pkg, details })
    })
    await this.reload()
  }
}
