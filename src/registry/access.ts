/**
 * Who may do what. `auth.type: local` (default): anyone reads, writes need a user, changing an
 * existing package needs one of its maintainers. `auth.type: none`: everything is open, as in the
 * original registry; anonymous writers act as user `anonymous`.
 */
import { forbidden, unauthenticated } from './errors.js'
import type { Principal } from './types.js'

/** The user name recorded for writes when `auth.type` is `none` and no credentials were sent. */
export const ANONYMOUS_WRITER = 'anonymous'

/** Access decisions for one auth mode. */
export class AccessPolicy {
  constructor(readonly open: boolean) {}

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

  /** Whether `user` may change the package (same rule as `requireMaintainer`, as a boolean). */
  isMaintainer(user: string, maintainers: string[]): boolean {
    return this.open || maintainers.includes(user)
  }
}
