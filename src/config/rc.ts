/**
 * rc-style configuration files: where they are looked for (the `rc` npm package 1.2.8's lookup
 * order, reimplemented so that every key's source can be reported), how a file's syntax is told
 * (JSON, INI or YAML), and the deep merge of one file over the ones before it (`deep-extend`'s
 * rules, which rc uses: mappings merge key by key, arrays and scalars replace).
 */
import { statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import ini from 'ini'
import { parse as parseYaml } from 'yaml'

/** A configuration file's syntax. */
export type ConfigFormat = 'json' | 'ini' | 'yaml'

/** A key's place in the configuration: one segment per nesting level, e.g. `['storage', 'meta', 'url']`. */
export type KeyPath = readonly string[]

/** Where the rc files are looked for. */
export interface RcLocations {
  /** Application name: `pier` gives `/etc/pierrc`, `~/.pierrc`, `.pierrc`… */
  name: string
  /** Home folder (rc: `$HOME`); empty or undefined: the home files are not looked for. */
  home: string | undefined
  /** System folder (rc: `/etc`); not looked in on Windows, as rc does. */
  etc: string
  /** Where the upward search for `.<name>rc` starts (rc: `process.cwd()`). */
  cwd: string
}

/**
 * The rc files to read, lowest precedence first, following rc 1.2.8's order:
 * `<etc>/<name>/config`, `<etc>/<name>rc`, `<home>/.config/<name>/config`, `<home>/.config/<name>`,
 * `<home>/.<name>/config`, `<home>/.<name>rc`, then the first `.<name>rc` found walking up from
 * `cwd` to the filesystem root (the nearest existing entry of that name, as rc's `find` stops there
 * even when it is a folder). The paths are absolute; whether the first six exist is not checked.
 */
export function rcFiles(loc: RcLocations): string[] {
  const files: string[] = []
  if (process.platform !== 'win32') files.push(join(loc.etc, loc.name, 'config'), join(loc.etc, `${loc.name}rc`))
  if (loc.home) {
    files.push(
      join(loc.home, '.config', loc.name, 'config'),
      join(loc.home, '.config', loc.name),
      join(loc.home, `.${loc.name}`, 'config'),
      join(loc.home, `.${loc.name}rc`),
    )
  }
  const found = findUp(loc.cwd, `.${loc.name}rc`)
  if (found) files.push(found)
  return files.map((f) => resolve(f))
}

/** The first `<dir>/<name>` that exists, for `dir` = `start` and each of its parents up to the root (rc's `find`). */
export function findUp(start: string, name: string): string | undefined {
  let dir = resolve(start)
  for (;;) {
    const candidate = join(dir, name)
    try {
      statSync(candidate)
      return candidate
    } catch {
      const parent = dirname(dir)
      if (parent === dir) return undefined
      dir = parent
    }
  }
}

/** An INI `[section]` line (at column 0, as the `ini` package reads it). */
const INI_SECTION = /^\[[^\]]*\]\s*$/
/**
 * An INI `key = value` line: a key without `:` (so a YAML `key: a=b` line is not one) that does
 * not start like a YAML list item, a comment or a flow collection.
 */
const INI_ASSIGNMENT = /^\s*[^\s=:#;[\]{}-][^=:]*=/

/**
 * Tells a configuration file's syntax from its name, then its text: `.json` → JSON; `.yaml`/`.yml`
 * → YAML (a JSON text is YAML too, so such files read as they always have); a text starting with
 * `{` (after white space) → JSON, as rc decides; `.ini` → INI; any other name (`.pierrc`,
 * `config`) → INI when a line that is not a comment looks like `[section]` or `key = value`, else
 * YAML.
 */
export function detectFormat(path: string, text: string): ConfigFormat {
  const name = basename(path).toLowerCase()
  if (name.endsWith('.json')) return 'json'
  if (name.endsWith('.yaml') || name.endsWith('.yml')) return 'yaml'
  if (/^\s*\{/.test(text)) return 'json'
  if (name.endsWith('.ini')) return 'ini'
  for (const line of text.split(/\r?\n|\r/)) {
    if (/^\s*([#;]|$)/.test(line)) continue
    if (INI_SECTION.test(line) || INI_ASSIGNMENT.test(line)) return 'ini'
  }
  return 'yaml'
}

/**
 * A string from the environment or an INI file as a value: `true`/`false` → booleans, decimal
 * numbers (`4000`, `-1`, `0.5`) → numbers, anything else unchanged. Pier's environment overrides
 * have always coerced this way (the schema turns numbers back into strings where it wants text).
 */
export function coerceString(v: string): unknown {
  if (v === 'true') return true
  if (v === 'false') return false
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v)
  return v
}

/** Copies what `ini.parse` returns into plain objects, coercing its strings with `coerceString`. */
function fromIni(v: unknown): unknown {
  if (typeof v === 'string') return coerceString(v)
  if (Array.isArray(v)) return v.map(fromIni)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromIni(x)]))
  return v
}

/**
 * Parses one configuration file's text (syntax from `detectFormat`): JSON with `JSON.parse`, YAML
 * with the `yaml` package, INI with the `ini` package (its dotted sections such as `[storage.meta]`
 * nest; its string values are coerced with `coerceString`). An empty document is `{}`.
 * @returns the top-level mapping
 * @throws Error (the parser's message, or "the top level must be a mapping"); callers add the file name
 */
export function parseConfigText(path: string, text: string): Record<string, unknown> {
  const format = detectFormat(path, text)
  const parsed: unknown = format === 'json' ? JSON.parse(text) : format === 'ini' ? fromIni(ini.parse(text)) : parseYaml(text)
  if (parsed === null || parsed === undefined) return {}
  if (!isMapping(parsed)) throw new Error('the top level must be a mapping')
  return parsed
}

/** A plain object (`{…}`, or `ini`'s null-prototype objects), not an array or null. */
export function isMapping(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}

function clone(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clone)
  if (isMapping(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]))
  return v
}

/**
 * Merges `source` into `target` the way rc merges its files (`deep-extend`): a mapping over a
 * mapping merges key by key; anything else (scalar, array, a mapping over a non-mapping) replaces,
 * as a copy. `__proto__` keys are skipped.
 * @returns `target`, mutated
 */
export function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(source)) {
    if (k === '__proto__') continue
    const existing = target[k]
    if (isMapping(v) && isMapping(existing)) deepMerge(existing, v)
    else target[k] = clone(v)
  }
  return target
}

/**
 * The leaves of a mapping: every value that is not a non-empty mapping (scalars, arrays, `{}`),
 * with its key path, in the mapping's key order. `undefined` values are skipped.
 */
export function leaves(obj: Record<string, unknown>, prefix: KeyPath = []): Array<[KeyPath, unknown]> {
  const out: Array<[KeyPath, unknown]> = []
  for (const [k, v] of Object.entries(obj)) {
    const path = [...prefix, k]
    if (v === undefined) continue
    if (isMapping(v) && Object.keys(v).length > 0) out.push(...leaves(v, path))
    else out.push([path, v])
  }
  return out
}

/** A key path as one line of text: segments joined by `.`; a segment that is empty or holds `.`, `=`, `"` or white space is JSON-quoted. */
export function dottedKey(path: KeyPath): string {
  return path.map((s) => (s === '' || /[.="\s]/.test(s) ? JSON.stringify(s) : s)).join('.')
}

/** Whether `path` is `prefix` or lies beneath it (segments compared exactly). */
export function isUnder(path: KeyPath, prefix: KeyPath): boolean {
  return prefix.length <= path.length && prefix.every((s, i) => path[i] === s)
}

/**
 * Which source set each leaf of a merged configuration: filled layer by layer alongside
 * `deepMerge`, so a key set again by a later layer names the later one. Sources are strings such
 * as a file path or `env PIER_SERVER__PORT`.
 */
export class SourceTracker {
  readonly #entries = new Map<string, { path: KeyPath; source: string }>()

  /** An independent copy (e.g. to remember what the files set before the environment overrides it). */
  clone(): SourceTracker {
    const copy = new SourceTracker()
    for (const [k, e] of this.#entries) copy.#entries.set(k, e)
    return copy
  }

  /** Records `source` for every leaf of `layer` (call after or before `deepMerge` of that layer, in layer order). */
  addLayer(layer: Record<string, unknown>, source: string): void {
    for (const [path, value] of leaves(layer)) {
      if (isMapping(value)) {
        // `{}` merged over a mapping changes nothing; it only counts where nothing is beneath.
        if ([...this.#entries.values()].some((e) => e.path.length > path.length && isUnder(e.path, path))) continue
      }
      this.set(path, source)
    }
  }

  /** Records that `source` set the leaf at `path` (replacing what was at, beneath or above it). */
  set(path: KeyPath, source: string): void {
    this.delete(path)
    for (let n = 1; n < path.length; n++) this.#entries.delete(JSON.stringify(path.slice(0, n)))
    this.#entries.set(JSON.stringify(path), { path: [...path], source })
  }

  /** Forgets the leaf at `path` and every leaf beneath it. */
  delete(path: KeyPath): void {
    for (const [k, e] of this.#entries) if (isUnder(e.path, path)) this.#entries.delete(k)
  }

  /** The distinct sources of the leaf at `path` and the leaves beneath it, keys compared without regard to case. */
  sourcesUnder(path: KeyPath): string[] {
    const lower = path.map((s) => s.toLowerCase())
    const found = new Set<string>()
    for (const e of this.#entries.values()) if (isUnder(e.path.map((s) => s.toLowerCase()), lower)) found.add(e.source)
    return [...found]
  }

  /**
   * The source of the leaf at `path`: the environment's when a variable set it under any case
   * (overrides arrive lowercased, `storage.s3.accesskeyid`, and the schema matches such keys
   * without regard to case, the environment's winning), else the exact key's, else a key differing
   * only in case. Undefined when nothing set it.
   */
  get(path: KeyPath): string | undefined {
    const lower = JSON.stringify(path.map((s) => s.toLowerCase()))
    let fromEnv: string | undefined
    let other: string | undefined
    for (const e of this.#entries.values()) {
      if (JSON.stringify(e.path.map((s) => s.toLowerCase())) !== lower) continue
      if (e.source.startsWith('env ')) fromEnv = e.source
      else other = e.source
    }
    return fromEnv ?? this.#entries.get(JSON.stringify(path))?.source ?? other
  }
}
