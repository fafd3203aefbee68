/**
 * Organisations, teams and package access, the way npm's CLI speaks them (`npm org`, `npm team`,
 * `npm access`; docs/protocol.md §5): a scope belongs to an org once an administrator creates it
 * (`pier org create NAME --owner USER`); the org's owners and admins manage its members, teams and
 * team grants; a team grant (`read-only` / `read-write`) gives the team's members that right on one
 * of the scope's packages; a package's status is `public` (its `packages` rule decides who reads)
 * or `private` (readable only by its maintainers, teams granted it, the org's owners and admins,
 * and administrators). Rules still apply on top: a grant or a membership never widens what a
 * `packages` rule forbids.
 *
 * The directory is small (orgs, members, teams, grants, private packages) and read on every
 * access decision, so it is held in memory as one snapshot, loaded at start and again after every
 * change (here, or on another node: the store notifies, see `OrgStore`).
 */
import type { AuditEntry } from './audit-log.js'

/** A member's role in an org (npm's `npm org set <org> <user> <role>`). */
export type OrgRole = 'developer' | 'admin' | 'owner'
/** A team's right on a package (npm's `read-only` / `read-write` are stored as `read` / `write`). */
export type TeamPermission = 'read' | 'write'
/** A package's status (`npm access set status=`). */
export type PackageVisibility = 'public' | 'private'
/** `npm access set mfa=`: what a publish of the package requires (stored and reported). */
export type PackageMfa = 'none' | 'publish' | 'automation'

/** Everything the directory holds, as the store loads it. */
export interface AccessDirectorySnapshot {
  orgs: { name: string; created: string }[]
  members: { org: string; user: string; role: OrgRole }[]
  teams: { org: string; name: string; description: string | null }[]
  teamMembers: { org: string; team: string; user: string }[]
  grants: { org: string; team: string; package: string; permission: TeamPermission }[]
  /** Packages whose status or mfa was ever set, with the maintainers of the private ones. */
  packages: { name: string; visibility: PackageVisibility; mfa: PackageMfa; maintainers: string[] }[]
}

/** Writes to the directory, in one transaction (OrgStore.orgTransaction). */
export interface OrgTx {
  insertOrg(name: string, now: string): Promise<boolean>
  setMember(org: string, user: string, role: OrgRole): Promise<void>
  removeMember(org: string, user: string): Promise<number>
  insertTeam(org: string, team: string, description: string | null, now: string): Promise<boolean>
  /** Removes the team, its members and its grants. */
  deleteTeam(org: string, team: string): Promise<number>
  addTeamMember(org: string, team: string, user: string): Promise<void>
  removeTeamMember(org: string, team: string, user: string): Promise<number>
  setGrant(org: string, team: string, pkg: string, permission: TeamPermission): Promise<void>
  removeGrant(org: string, team: string, pkg: string): Promise<number>
  userExists(name: string): Promise<boolean>
  appendAudit(entry: AuditEntry): Promise<void>
}

/** Where the directory lives (the metadata store implements it). */
export interface OrgStore {
  loadAccessDirectory(): Promise<AccessDirectorySnapshot>
  /**
   * Runs `fn` in one transaction; at commit the other nodes are told the directory changed
   * (PostgreSQL: a notification `watchChanges` delivers as the name `ACCESS_CHANGED`).
   */
  orgTransaction<T>(fn: (tx: OrgTx) => Promise<T>): Promise<T>
  /** Names of the local packages in `scope` (`@acme`), sorted. */
  packagesInScope(scope: string): Promise<string[]>
  /** Names of the local packages `user` maintains, sorted. */
  packagesMaintainedBy(user: string): Promise<string[]>
  /** Whether a local package exists. */
  packageExists(name: string): Promise<boolean>
}

/** The name `PackageStore.watchChanges` reports when the directory changed on another node. */
export const ACCESS_CHANGED = '/-/access'

/** The org a scoped name belongs to (`acme` for `@acme/x`), if any. */
export function scopeOrg(name: string): string | undefined {
  return name.startsWith('@') && name.includes('/') ? name.slice(1, name.indexOf('/')) : undefined
}

/** The in-memory directory: sync lookups for the read gate and the write path. */
export class AccessDirectory {
  private orgs = new Set<string>()
  /** org → user → role */
  private roles = new Map<string, Map<string, OrgRole>>()
  /** `org:team` → members */
  private teams = new Map<string, { description: string | null; members: Set<string> }>()
  /** package → `org:team` → permission */
  private grants = new Map<string, Map<string, TeamPermission>>()
  private packages = new Map<string, { visibility: PackageVisibility; mfa: PackageMfa; maintainers: string[] }>()

  /** Replaces the whole directory with `s`. */
  load(s: AccessDirectorySnapshot): void {
    this.orgs = new Set(s.orgs.map((o) => o.name))
    this.roles = new Map()
    for (const m of s.members) {
      let r = this.roles.get(m.org)
      if (!r) this.roles.set(m.org, (r = new Map()))
      r.set(m.user, m.role)
    }
    this.teams = new Map(s.teams.map((t) => [`${t.org}:${t.name}`, { description: t.description, members: new Set<string>() }]))
    for (const tm of s.teamMembers) this.teams.get(`${tm.org}:${tm.team}`)?.members.add(tm.user)
    this.grants = new Map()
    for (const g of s.grants) {
      let m = this.grants.get(g.package)
      if (!m) this.grants.set(g.package, (m = new Map()))
      m.set(`${g.org}:${g.team}`, g.permission)
    }
    this.packages = new Map(s.packages.map((p) => [p.name, { visibility: p.visibility, mfa: p.mfa, maintainers: p.maintainers }]))
  }

  /** Every org's name. */
  orgNames(): string[] {
    return [...this.orgs]
  }

  hasOrg(org: string): boolean {
    return this.orgs.has(org)
  }

  /** `user`'s role in `org`, if a member. */
  role(org: string, user: string): OrgRole | undefined {
    return this.roles.get(org)?.get(user)
  }

  /** Members of `org` and their roles. */
  members(org: string): ReadonlyMap<string, OrgRole> {
    return this.roles.get(org) ?? new Map()
  }

  /** Team names of `org`, sorted. */
  teamsOf(org: string): string[] {
    return [...this.teams.keys()].filter((k) => k.startsWith(`${org}:`)).map((k) => k.slice(org.length + 1)).sort()
  }

  /** Members of team `org:team`; undefined when there is no such team. */
  teamMembers(org: string, team: string): ReadonlySet<string> | undefined {
    return this.teams.get(`${org}:${team}`)?.members
  }

  /** The packages team `org:team` is granted, with the permission. */
  teamPackages(org: string, team: string): Map<string, TeamPermission> {
    const key = `${org}:${team}`
    const out = new Map<string, TeamPermission>()
    for (const [pkg, m] of this.grants) {
      const p = m.get(key)
      if (p) out.set(pkg, p)
    }
    return out
  }

  /** The teams granted `pkg` (`org:team` → permission). */
  grantsOn(pkg: string): ReadonlyMap<string, TeamPermission> {
    return this.grants.get(pkg) ?? new Map()
  }

  /** The strongest right a team grant gives `user` on `pkg`. */
  teamRight(pkg: string, user: string): TeamPermission | undefined {
    let best: TeamPermission | undefined
    for (const [key, perm] of this.grantsOn(pkg)) {
      if (!this.teams.get(key)?.members.has(user)) continue
      if (perm === 'write') return 'write'
      best = 'read'
    }
    return best
  }

  /** Whether `user` is an owner or admin of the org owning `pkg`'s scope. */
  managesScopeOf(pkg: string, user: string): boolean {
    const org = scopeOrg(pkg)
    const role = org === undefined ? undefined : this.role(org, user)
    return role === 'owner' || role === 'admin'
  }

  visibility(pkg: string): PackageVisibility {
    return this.packages.get(pkg)?.visibility ?? 'public'
  }

  mfa(pkg: string): PackageMfa {
    return this.packages.get(pkg)?.mfa ?? 'none'
  }

  /**
   * Whether `user` may read private package `pkg`: a maintainer, a member of a team granted it,
   * or an owner or admin of its org.
   */
  mayReadPrivate(pkg: string, user: string): boolean {
    return (this.packages.get(pkg)?.maintainers.includes(user) ?? false) || this.teamRight(pkg, user) !== undefined || this.managesScopeOf(pkg, user)
  }
}
