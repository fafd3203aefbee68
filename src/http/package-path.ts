/**
 * Parses package URLs (docs/protocol.md §0.1): the name may be `name`, `@scope%2fname`
 * (any case of `%2f`), `@scope/name` or `%40scope%2fname`; then an optional tail:
 * `/<version|tag>`, `/-/<file>.tgz`, `/-rev/<rev>`, `/-/<file>.tgz/-rev/<rev>`.
 */
import { asPackageName, type PackageName } from '../registry/names.js'

/** What a package URL addresses. */
export type PackagePath =
  | { kind: 'packument'; name: PackageName }
  | { kind: 'manifest'; name: PackageName; spec: string }
  | { kind: 'tarball'; name: PackageName; file: string }
  | { kind: 'rev'; name: PackageName; rev: string }
  | { kind: 'tarball-rev'; name: PackageName; file: string; rev: string }

function decode(seg: string): string | undefined {
  try {
    return decodeURIComponent(seg)
  } catch {
    return undefined
  }
}

/**
 * Splits a URL path (without query, below the registry's prefix) into name and tail.
 * @returns `undefined` when the path cannot address a package.
 */
export function parsePackagePath(path: string): PackagePath | undefined {
  const raw = path.split('/').slice(1)
  if (raw.length > 0 && raw.at(-1) === '') raw.pop()
  const segs: string[] = []
  for (const r of raw) {
    const d = decode(r)
    if (d === undefined) return undefined
    segs.push(d)
  }
  let nameStr = segs[0]
  let rest = segs.slice(1)
  if (nameStr === undefined || nameStr === '') return undefined
  if (nameStr.startsWith('@') && !nameStr.includes('/')) {
    const second = segs[1]
    if (second === undefined) return undefined
    nameStr = `${nameStr}/${second}`
    rest = segs.slice(2)
  }
  const name = asPackageName(nameStr)
  if (!name) return undefined
  const [a, b, c, d, ...more] = rest
  if (more.length > 0) return undefined
  if (a === undefined) return { kind: 'packument', name }
  if (a === '-rev' && b !== undefined && c === undefined) return { kind: 'rev', name, rev: b }
  if (a === '-' && b !== undefined && b.endsWith('.tgz')) {
    if (c === undefined) return { kind: 'tarball', name, file: b }
    if (c === '-rev' && d !== undefined) return { kind: 'tarball-rev', name, file: b, rev: d }
    return undefined
  }
  if (b === undefined && a !== '-' && a !== '-rev') return { kind: 'manifest', name, spec: a }
  return undefined
}

/**
 * Parses the package name in `/-/package/<name>/dist-tags[/<tag>]` style URLs.
 * @param tail the path after `/-/package/`
 */
export function parsePackageSubpath(tail: string): { name: PackageName; rest: string[] } | undefined {
  const raw = tail.split('/')
  const segs: string[] = []
  for (const r of raw) {
    const d = decode(r)
    if (d === undefined) return undefined
    segs.push(d)
  }
  let nameStr = segs[0] ?? ''
  let rest = segs.slice(1)
  if (nameStr.startsWith('@') && !nameStr.includes('/')) {
    nameStr = `${nameStr}/${segs[1] ?? ''}`
    rest = segs.slice(2)
  }
  const name = asPackageName(nameStr)
  return name ? { name, rest: rest.filter((s, i) => s !== '' || i < rest.length - 1) } : undefined
}
