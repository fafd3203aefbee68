/**
 * Who may do what. `auth.type: local` (default): anyone reads, writes need a user, changing an
 * existing package needs one of its maintainers, and the `packages` rules (package-rules.ts) may
 * narrow who reads and who publishes per name. `auth.type: none`: everything is open, as in the
 * original registry; anonymous writers act as user `anonymous`.
 *
 * Administrators (`Principal.admin`) pass every rule and maintainer check. A granular token
 * (`Principal.grant`) narrows its user to what it names: a package it does not cover is read as
 * an anonymous caller would, and cannot be changed.
 *
 * These are the decisions; the read gate (read-gate.ts) and the write path (write-path.ts) are the
 * only places that ask them.
 */
import { forbidden, notFound, unauthenticated } from './errors.js'
import { PackageRules } from './package-rules.js'
import { AccessDirectory, scopeOrg } from './orgs.js'
import type { Principal, TokenGrant } from './types.js'

const NOBODY: Principal = Object.freeze({ name: undefined, readonly: false })

/** The scope of a package name (`@acme` of `@acme/x`), or undefined. */
function scopeOf(name: string): string | undefined {
  return name.startsWith('@') ? name.slice(0, name.indexOf('/')) : undefined
}

/** Whether granular token `g` names package `name` (the package itself, its scope, or all). */
export function grantCovers(g: TokenGrant, name: string): boolean {
  if (g.packagesAll || g.packages.includes(name)) return true
  const scope = scopeOf(name)
  return scope !== undefined && g.scopes.some((s) => (s.startsWith('@') ? s : `@${s}`) === scope)
}

/** A grant in words, for refusals: `@acme/*, lodash-fork (read-write)`. */
export function describeGrant(g: TokenGrant): string {
  const what = g.packagesAll ? ['every package'] : [...g.scopes.map((s) => `${s.startsWith('@') ? s : `@${s}`}/*`), ...g.packages]
  return `${what.length > 0 ? what.join(', ') : 'no package'} (${g.permission})`
}

/** The user name recorded for writes when `auth.type` is `none` and no credentials were sent. */
export const ANONYMOUS_WRITER = 'anonymous'

/** Access decisions for one auth mode. */
export class AccessPolicy {
  /**
   * @param directory orgs, teams, grants and private packages (orgs.ts): a private package is read
   *   only by its maintainers, granted teams and its org's owners and admins; org members publish
   *   new packages in the org's scope, and teams granted `write` change existing ones
   */
  constructor(
    readonly open: boolean,
    readonly rules: PackageRules = new PackageRules([]),
    readonly directory: AccessDirectory = new AccessDirectory(),
  ) {}

  /** Whether anyone may read `name`: then the GET hot path needs no credentials. */
  readableByAll(name: string): boolean {
    return this.open || (this.rules.readableByAll(name) && this.directory.visibility(name) === 'public')
  }

  /**
   * Whether `p` may read `name`: everything in open mode and for admins, else the `access` rule,
   * as anonymous when `p`'s granular token does not cover `name` for reading.
   */
  canRead(name: string, p: Principal): boolean {
    if (this.open) return true
    const as = p.grant && !(grantCovers(p.grant, name) && p.grant.permission !== 'no-access') ? NOBODY : p
    if (as.admin === true) return true
    if (!this.rules.canRead(name, as)) return false
    if (this.directory.visibility(name) === 'public') return true
    return as.name !== undefined && this.directory.mayReadPrivate(name, as.name)
  }

  /**
   * Checks the `access` rule of `name`.
   * @throws RegistryError UNAUTHENTICATED (anonymous caller), NOT_FOUND (a user the rule leaves out:
   *   the package stays invisible, as npm expects of private packages)
   */
  requireRead(name: string, p: Principal): void {
    if (this.canRead(name, p)) return
    // 401 only where the rule (which depends on the name alone) shuts anonymous callers out: a
    // private package in a scope anyone may read answers 404, as an unknown name there does.
    if (p.name === undefined && !this.rules.readableByAll(name)) throw unauthenticated('You must be logged in to read this package. Run `npm login`.')
    throw notFound()
  }

  /**
   * Checks the `publish` rule of `name` (publishing and every other change).
   * @throws RegistryError UNAUTHENTICATED, FORBIDDEN
   */
  requirePublish(name: string, p: Principal): void {
    if (this.open) return
    this.requireTokenWrite(name, p)
    if (p.admin === true || this.rules.canPublish(name, p)) return
    if (p.name === undefined) throw unauthenticated('You must be logged in to publish this package. Run `npm login`.')
    throw forbidden(`User "${p.name}" may not publish "${name}" (packages rule "${this.rules.match(name).pattern}").`)
  }

  /**
   * Checks that `p`'s granular token (if any) may change `name`: decided by the name alone, so the
   * write path asks it before anything that depends on the package.
   * @throws RegistryError FORBIDDEN naming what the token is limited to
   */
  requireTokenWrite(name: string, p: Principal): void {
    if (this.open || !p.grant) return
    if (grantCovers(p.grant, name) && p.grant.permission === 'read-write') return
    throw forbidden(`This token may not change "${name}": it is limited to ${describeGrant(p.grant)}.`)
  }

  /**
   * The user name a write is recorded under.
   * @throws RegistryError UNAUTHENTICATED without credentials (unless open), FORBIDDEN for a read-only token
   */
  writer(p: Principal): string {
    if (p.readonly) throw forbidden('This token is read-only: it cannot be used to change anything.')
    if (p.name) return p.name
    if (this.open) return ANONYMOUS_WRITER
    throw unauthenticated('You must be logged in to publish or change packages. Run `npm login`.')
  }

  /**
   * Checks that `user` may change package `name`, whose maintainers are `maintainers`.
   * @param admin the writer is an administrator (always passes)
   * @throws RegistryError FORBIDDEN when not a maintainer (never in open mode)
   */
  requireMaintainer(user: string, name: string, maintainers: readonly string[], admin = false): void {
    if (this.open || admin || maintainers.includes(user)) return
    // A team granted read-write, or an owner or admin of the package's org.
    if (this.directory.teamRight(name, user) === 'write' || this.directory.managesScopeOf(name, user)) return
    throw forbidden(`User "${user}" is not a maintainer of "${name}".`)
  }

  /**
   * Checks that `user` may write package `name` at all: in a scope that belongs to an org, only
   * the org's members may (npm: publishing into an org's scope needs membership). Asked before
   * any check that depends on the package, so it reveals nothing about it.
   * @param admin the writer is an administrator (always passes)
   * @throws RegistryError FORBIDDEN naming the org
   */
  requireMayCreate(user: string, name: string, admin = false): void {
    if (this.open || admin) return
    const org = scopeOrg(name)
    if (org === undefined || !this.directory.hasOrg(org) || this.directory.role(org, user) !== undefined) return
    throw forbidden(`User "${user}" is not a member of org "${org}", which owns the scope @${org}.`)
  }
}
