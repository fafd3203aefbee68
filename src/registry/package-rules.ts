/**
 * `packages:` rules: a glob on the package name (minimatch: `**`, `@scope/*`, `lodash`)
 * with who may read, who may publish and which uplinks to ask, first match wins, as in the
 * original registry's `package-access`. A name no rule matches is readable by all, publishable by
 * any user and never proxied.
 *
 * No dependency confusion: a scope listed in `private_scopes` never proxies, whatever the rules say.
 * (The registry adds the other two guards: a scope with any local package never proxies, and a
 * local name never takes versions from an uplink.)
 */
import { LRUCache } from 'lru-cache'
import { Minimatch } from 'minimatch'
import { scopeOf } from './names.js'
import type { Principal } from './types.js'

/** One compiled rule. */
export interface PackageRule {
  pattern: string
  access: string[]
  publish: string[]
  /** Uplink names, asked in this order. */
  proxy: string[]
  /** `redirect`: answer 302 to the first uplink instead of fetching (the original registry's mode). */
  proxyMode?: 'proxy' | 'redirect'
}

/** The rule applied when none matches. */
const NO_RULE: PackageRule = { pattern: '(none)', access: ['$all'], publish: ['$authenticated'], proxy: [] }

/** Whether a principal is in an `access`/`publish` list. */
export function allows(list: string[], p: Principal): boolean {
  for (const who of list) {
    if (who === '$all' || who === '@all' || who === 'all') return true
    if ((who === '$authenticated' || who === '@authenticated') && p.name !== undefined) return true
    if ((who === '$anonymous' || who === '@anonymous') && p.name === undefined) return true
    if (p.name !== undefined && who === p.name) return true
  }
  return false
}

/** The compiled `packages` and `private_scopes` configuration. */
export class PackageRules {
  private readonly compiled: { rule: PackageRule; mm: Minimatch }[]
  private readonly privateScopes: Set<string>
  /** name → rule: matching is a few regex tests, but it sits on the GET hot path. */
  private readonly memo = new LRUCache<string, PackageRule>({ max: 20_000 })

  constructor(rules: PackageRule[], privateScopes: string[] = []) {
    this.compiled = rules.map((rule) => ({ rule, mm: new Minimatch(rule.pattern) }))
    this.privateScopes = new Set(privateScopes)
  }

  /**
   * From configuration. Without `packages`, every name may be read by all, published by users and
   * proxied to every uplink (in configuration order).
   */
  static fromConfig(
    packages: Record<string, { access: string[]; publish: string[]; proxy: string[]; proxy_mode?: 'proxy' | 'redirect' }> | undefined,
    uplinkNames: string[],
    privateScopes: string[] = [],
  ): PackageRules {
    const rules = packages
      ? Object.entries(packages).map(([pattern, r]) => ({ pattern, access: r.access, publish: r.publish, proxy: r.proxy, proxyMode: r.proxy_mode }))
      : [{ pattern: '**', access: ['$all'], publish: ['$authenticated'], proxy: uplinkNames }]
    return new PackageRules(rules, privateScopes)
  }

  /** Every rule's uplink names that are not in `known` (a configuration error). */
  unknownUplinks(known: string[]): { pattern: string; uplink: string }[] {
    return this.compiled.flatMap(({ rule }) => rule.proxy.filter((u) => !known.includes(u)).map((uplink) => ({ pattern: rule.pattern, uplink })))
  }

  /** The first rule whose glob matches `name`. */
  match(name: string): PackageRule {
    let r = this.memo.get(name)
    if (!r) {
      r = this.compiled.find((c) => c.mm.match(name))?.rule ?? NO_RULE
      this.memo.set(name, r)
    }
    return r
  }

  /** Whether every caller may read `name` (the GET hot path skips authentication then). */
  readableByAll(name: string): boolean {
    const access = this.match(name).access
    return access.includes('$all') || access.includes('@all') || access.includes('all')
  }

  canRead(name: string, p: Principal): boolean {
    return allows(this.match(name).access, p)
  }

  canPublish(name: string, p: Principal): boolean {
    return allows(this.match(name).publish, p)
  }

  /** Every uplink some rule proxies to, each once, in rule order (the uplink a search asks first). */
  proxiedUplinks(): string[] {
    return [...new Set(this.compiled.flatMap(({ rule }) => rule.proxy))]
  }

  /** Whether `name` is redirected to its uplink rather than proxied (before any guard). */
  redirects(name: string): boolean {
    return this.match(name).proxyMode === 'redirect'
  }

  /** Uplinks the rules allow for `name`: none for a private scope. Local-data guards are the caller's. */
  uplinksFor(name: string): string[] {
    const scope = scopeOf(name)
    if (scope !== undefined && this.privateScopes.has(scope)) return []
    return this.match(name).proxy
  }
}
