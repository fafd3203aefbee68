/**
 * The read gate: the one place that decides whether a caller may learn anything about a package.
 * Every read of the registry (packument, manifest, tarball, dist-tags, search hits, stars, and
 * whatever later lists packages) passes through `admit` or, for lists, `filter`; both apply the
 * `packages` rule's `access` list (package-rules.ts) and nothing else.
 *
 * The decision depends on the name and the caller only, never on whether the package exists, so a
 * package the caller may not read is answered exactly like an unknown name: an anonymous caller
 * gets 401 (npm then asks for a login), a user the rule leaves out gets 404 (npm's "could not be
 * found or you do not have permission", docs/protocol.md §0.3), whether or not the name was ever
 * published. Names readable by all are decided without looking at the credentials at all.
 */
import type { AccessPolicy } from './access.js'
import type { Caller, Principal } from './types.js'

/** Resolves a caller (calls the credential check only when `c` is a function). */
export function principalOf(c: Caller): Promise<Principal> | Principal {
  return typeof c === 'function' ? c() : c
}

/** The registry's read gate. */
export class ReadGate {
  constructor(private readonly access: AccessPolicy) {}

  /**
   * Whether every caller may read `name`: then no credentials are needed (the GET fast path and
   * the routes skip authentication). Synchronous and memoized per name (package-rules.ts).
   */
  readableByAll(name: string): boolean {
    return this.access.readableByAll(name)
  }

  /**
   * Lets the caller read `name`, or throws exactly what an unknown name gets for that caller.
   * Returns synchronously (no promise) for names readable by all.
   * @throws RegistryError UNAUTHENTICATED (anonymous caller left out by the rule; or bad
   *   credentials, from the caller), NOT_FOUND (a user the rule leaves out)
   */
  admit(name: string, caller: Caller): void | Promise<void> {
    if (this.access.readableByAll(name)) return
    const p = principalOf(caller)
    if (!(p instanceof Promise)) return this.access.requireRead(name, p)
    return p.then((principal) => this.access.requireRead(name, principal))
  }

  /** Whether `principal` may read `name` (the predicate `admit` and `filter` share). */
  allows(name: string, principal: Principal): boolean {
    return this.access.canRead(name, principal)
  }

  /**
   * The items of a list whose package the caller may read, in order; the others are left out as
   * if they did not exist (a search total, a star list).
   * @param nameOf the package name of an item
   */
  async filter<T>(items: readonly T[], nameOf: (item: T) => string, caller: Caller): Promise<T[]> {
    if (items.every((i) => this.access.readableByAll(nameOf(i)))) return [...items]
    const principal = await principalOf(caller)
    return items.filter((i) => this.access.canRead(nameOf(i), principal))
  }

  /**
   * A predicate for a store that filters while it reads (search): resolves the caller once.
   * @returns `(name) => boolean`, true for the names the caller may read
   */
  async visibleTo(caller: Caller): Promise<(name: string) => boolean> {
    const principal = await principalOf(caller)
    return (name) => this.access.canRead(name, principal)
  }
}
