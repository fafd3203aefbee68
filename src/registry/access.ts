/**
 * Who may do what. `auth.type: local` (default): anyone reads, writes need a user, changing an
 * existing package needs one of its maintainers, and the `packages` rules (package-rules.ts) may
 * narrow who reads and who publishes per name. `auth.type: none`: everything is open, as in the
 * original registry; anonymous writers act as user `anonymous`.
 *
 * These are the decisions; the read gate (read-gate.ts) and the write path (write-path.ts) are the
 * only places that ask them.
 */
import { forbidden, notFound, unauthenticated } from './errors.js'
import { PackageRules } from './package-rules.js'
import type { Principal } from './types.js'

/** The user name recorded for writes when `auth.type` is `none` and no credentials were sent. */
export const ANONYMOUS_WRITER = 'anonymous'

/** Access decisions for one auth mode. */
export class AccessPolicy {
  constructor(
    readonly open: boolean,
    readonly rules: PackageRules = new PackageRules([]),
  ) {}

  /** Whether anyone may read `name`: then the GET hot path needs no credentials. */
  readableByAll(name: string): boolean {
    return this.open || this.rules.readableByAll(name)
  }

  /** Whether `p` may read `name` (`access` rule; everything in open mode). */
  canRead(name: string, p: Principal): boolean {
    return this.open || this.rules.canRead(name, p)
  }

  /**
   * Checks the `access` rule of `name`.
   * @throws RegistryError UNAUTHENTICATED (anonymous caller), NOT_FOUND (a user the rule leaves out:
   *   the package stays invisible, as npm expects of private packages)
   */
  requireRead(name: string, p: Principal): void {
    if (this.open || this.rules.canRead(name, p)) return
    if (p.name === undefined) throw unauthenticated('You must be logged in to read this package. Run `npm login`.')
    throw notFound()
  }

  /**
   * Checks the `publish` rule of `name` (publishing and every other change).
   * @throws RegistryError UNAUTHENTICATED, FORBIDDEN
   */
  requirePublish(name: string, p: Principal): void {
    if (this.open || this.rules.canPublish(name, p)) return
    if (p.name === undefined) throw unauthenticated('You must be logged in to publish this package. Run `npm login`.')
    throw forbidden(`User "${p.name}" may not publish "${name}" (packages rule "${this.rules.match(name).pattern}").`)
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
   * @throws RegistryError FORBIDDEN when not a maintainer (never in open mode)
   */
  requireMaintainer(user: string, name: string, maintainers: string[]): void {
    if (this.open || maintainers.includes(user)) return
    throw forbidden(`User "${user}" is not a maintainer of "${name}".`)
  }
}
