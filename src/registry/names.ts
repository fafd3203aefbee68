/**
 * Package names: validation and the pieces derived from them.
 * Follows npm's rules (validate-npm-package-name): ≤214 chars, URL-safe, lower case for new names,
 * no leading `.` or `_`, optional `@scope/` prefix.
 */
import validate from 'validate-npm-package-name'

/** A validated package name such as `lodash` or `@scope/pkg`. */
export type PackageName = string & { readonly __brand: 'PackageName' }

/**
 * Checks a name for use in a lookup (legacy names such as upper-case ones stay readable).
 * @returns the branded name, or `undefined` when it cannot be any package's name.
 */
export function asPackageName(raw: string): PackageName | undefined {
  const r = validate(raw)
  return r.validForOldPackages ? (raw as PackageName) : undefined
}

/**
 * Checks a name for a new publish: npm's rules for new packages.
 * @returns the list of problems, empty when the name is valid.
 */
export function newNameProblems(raw: string): string[] {
  const r = validate(raw)
  if (r.validForNewPackages) return []
  return [...(r.errors ?? []), ...(r.warnings ?? [])]
}

/** `@scope/pkg` → `@scope`; unscoped → `undefined`. */
export function scopeOf(name: string): string | undefined {
  return name.startsWith('@') ? name.slice(0, name.indexOf('/')) : undefined
}

/** `@scope/pkg` → `pkg`; `pkg` → `pkg`. The tarball file name is `<unscoped>-<version>.tgz`. */
export function unscopedName(name: string): string {
  return name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name
}

/** Conventional tarball file name: `<unscoped>-<version>.tgz` (npm pack's naming). */
export function tarballFileName(name: string, version: string): string {
  return `${unscopedName(name)}-${version}.tgz`
}

/**
 * URL path of a tarball below the registry root, as the public registry writes it
 * (`/@scope/pkg/-/pkg-1.0.0.tgz`, literal slash after the scope).
 */
export function tarballPath(name: string, version: string): string {
  return `/${name}/-/${tarballFileName(name, version)}`
}
