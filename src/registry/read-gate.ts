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
 *
 * With an outside authority (`auth.type: github`, permission-source.ts), the authority's right is
 * asked after the rules: no name is then readable by all, and lists are filtered asynchronously.
 */
import type { AccessPolicy } from './access.js'
import { forbidden, notFound, unauthenticated } from './errors.js'
import type { ExternalAccess } from './permission-source.js'
import type { Caller, Principal } from './types.js'

/** Resolves a caller (calls the credential check only when `c` is a function). */
export function principalOf(c: Caller): Promise<Principal> | Principal {
  return typeof c === 'function' ? c() : c
}

/** The registry's read gate. */
export class ReadGate {
  constructor(
    private readonly access: AccessPolicy,
    /** The outside authority, when one decides (auth.type github). */
    readonly external?: ExternalAccess,
  ) {}

  /**
   * Whether every caller may read `name`: then no credentials are needed (the GET fast path and
   * the routes skip authentication). Synchronous and memoized per name (package-rules.ts).
   */
  readableByAll(name: string): boolean {
    return this.external === undefined && this.access.readableByAll(name)
  }

  /**
   * Lets the caller read `name`, or throws exactly what an unknown name gets for that caller.
   * Returns synchronously (no promise) for names readable by all.
   * @throws RegistryError UNAUTHENTICATED (anonymous caller left out by the rule; or bad
   *   credentials, from the caller), NOT_FOUND (a user the rule leaves out)
   */
  admit(name: string, caller: Caller): void | Promise<void> {
    if (this.readableByAll(name)) return
    const p = principalOf(caller)
    if (this.external) return Promise.resolve(p).then((principal) => this.admitExternal(name, principal))
    if (!(p instanceof Promise)) return this.access.requireRead(name, p)
    return p.then((principal) => this.access.requireRead(name, principal))
  }

  /** The rules, then the authority's right (at least `read`). */
  private async admitExternal(name: string, p: Principal): Promise<void> {
    this.access.requireRead(name, p)
    if (p.admin === true || (await this.rightOf(name, p)) !== 'none') return
    if (p.name === undefined) throw unauthenticated('You must be logged in to read this package. Run `npm login`.')
    throw notFound()
  }

  private async rightOf(name: string, p: Principal, repository?: unknown): Promise<'none' | 'read' | 'write'> {
    const ext = this.external
    if (!ext) return 'write'
    return ext.source.rightOn(p, name, repository === undefined ? await ext.repositoryOf(name) : repository)
  }

  /**
   * The write path's check of the outside authority (after `admit` and the rules): the right must
   * be `write`, and the authority's own publish checks must pass. Nothing without an authority.
   * @param repository the publish body's `repository` for a first publish; else the stored one is used
   * @throws RegistryError FORBIDDEN, UNAVAILABLE (from the authority)
   */
  async requireExternalWrite(name: string, p: Principal, repository?: unknown): Promise<void> {
    const ext = this.external
    if (!ext || p.admin === true) return
    // A package's stored repository decides; the body's only for a first publish (a new version
    // cannot move the package under a repository its publisher controls).
    const repo = (await ext.repositoryOf(name)) ?? repository
    const right = await this.rightOf(name, p, repo)
    // No right at all: answered like an unknown name, as a read would be.
    if (right === 'none') {
      if (p.name === undefined) throw unauthenticated('You must be logged in to publish. Run `npm login`.')
      throw notFound()
    }
    if (right !== 'write') throw forbidden(`User "${String(p.name)}" has no write permission on the repository of "${name}".`)
    ext.source.checkPublish?.(p, name, repo)
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
    if (items.every((i) => this.readableByAll(nameOf(i)))) return [...items]
    const principal = await principalOf(caller)
    const visible = await this.visibleTo(principal, items.map(nameOf))
    return items.filter((i) => visible(nameOf(i)))
  }

  /**
   * A synchronous predicate for a store that filters while it reads (search), or for a list:
   * resolves the caller once. With an outside authority, only the names in `names` (their rights
   * asked now) can be visible, and without `names` none is: callers that cannot list the names
   * first (search) use `filter` on what the rules let through.
   * @returns `(name) => boolean`, true for the names the caller may read
   */
  async visibleTo(caller: Caller, names?: readonly string[]): Promise<(name: string) => boolean> {
    const principal = await principalOf(caller)
    if (!this.external || principal.admin === true) return (name) => this.access.canRead(name, principal)
    const ok = new Set<string>()
    for (const n of new Set(names ?? [])) {
      if (this.access.canRead(n, principal) && (await this.rightOf(n, principal)) !== 'none') ok.add(n)
    }
    return (name) => ok.has(name)
  }
}
