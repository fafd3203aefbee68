/**
 * Package names: validation and the pieces derived from them.
 * Follows npm's rules (validate-npm-package-name): ≤214 chars, URL-safe, lower case for new names,
 * no leading `.` or `_`, optional `@scope/` prefix.
 */
import validate from 'validate-npm-package-name'

/** A validated package name such as `lodash` or `@scope/pkg`. */
export type PackageName = string & { readonly __brand: 'PackageName' }

/**
 * Names already found valid: every GET validates its name, and validate-npm-package-name took
 * about an eighth of the fast path's CPU in a profile of warm installs (2026-12-01). Bounded:
 * cleared when full, and only names of at most `VALID_NAME_MEMO_LENGTH` characters are kept, so
 * it holds at most ~10 MiB however long the names clients send.
 */
const validNames = new Set<string>()
const VALID_NAMES_MAX = 50_000
/** npm's longest name for a new package; longer (legacy) names are validated every time. */
const VALID_NAME_MEMO_LENGTH = 214

/**
 * Checks a name for use in a lookup (legacy names such as upper-case ones stay readable).
 * @returns the branded name, or `undefined` when it cannot be any package's name.
 */
export function asPackageName(raw: string): PackageName | undefined {
  if (validNames.has(raw)) return raw as PackageName
  const r = validate(raw)
  if (!r.validForOldPackages) return undefined
  if (raw.length > VALID_NAME_MEMO_LENGTH) return raw as PackageName
  if (validNames.size >= VALID_NAMES_MAX) validNames.clear()
  validNames.add(raw)
  return raw as PackageName
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
