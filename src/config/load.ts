/**
 * Loads the configuration the way the `rc` npm package (1.2.8) layers it, lowest precedence first:
 * `/etc/pier/config`, `/etc/pierrc`, `~/.config/pier/config`, `~/.config/pier`, `~/.pier/config`,
 * `~/.pierrc`, the nearest `.pierrc` walking up from the working folder (rc.ts), then the explicit
 * file (`--config PATH`, else `PIER_CONFIG`, else `./config.yaml` when present), then environment
 * overrides in rc's convention (`pier_server__port=4000` or `PIER_SERVER__PORT=4000`: prefix
 * `pier_`, `__` between nesting levels), then validation (schema.ts). Every key's source is kept.
 */
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { resolve } from 'node:path'
import type { z } from 'zod'
import { coerceString, deepMerge, dottedKey, isMapping, isUnder, leaves, parseConfigText, rcFiles, SourceTracker, type KeyPath } from './rc.js'
import { ConfigSchema, type Config } from './schema.js'

/** A configuration problem, naming the bad key (and the file or variable it came from) or the bad file. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Where configuration comes from. */
export interface LoadOptions {
  /** Explicit file path (`--config`), relative to `cwd`. */
  file?: string
  /** Environment: `PIER_CONFIG` and the `pier_*` overrides (default `process.env`). */
  env?: NodeJS.ProcessEnv
  /** Working folder: relative paths and the upward search for `.pierrc` start here (default `process.cwd()`). */
  cwd?: string
  /** Home folder of the `~/.pierrc`-style files (default `os.homedir()`). */
  home?: string
  /** System folder of `/etc/pierrc` and `/etc/pier/config` (default `/etc`). */
  etc?: string
}

/** The loaded configuration and where it came from. */
export interface LoadResult {
  config: Config
  /** The explicit file (absolute), or undefined when there is none. */
  file: string | undefined
  /** Every file read, absolute, lowest precedence first (rc's `configs`). */
  files: string[]
  /**
   * For every leaf of `config` (dotted key path, as `dottedKey` writes it, e.g. `storage.meta.url`):
   * the file path that set it, `env PIER_STORAGE__META__URL` (the variable's name as given), or
   * `default`.
   */
  sources: Record<string, string>
  /** Problems that did not stop loading, e.g. `ignoring environment variable PIER_DIR: no config key "dir"`. */
  warnings: string[]
}

/** Environment variables that are not key overrides. */
const NOT_OVERRIDES = new Set(['pier_config'])

/** The key path a `pier_a__b` variable overrides (lowercased), or undefined when the variable is not an override. */
function overridePath(name: string): string[] | undefined {
  if (!/^pier_/i.test(name) || NOT_OVERRIDES.has(name.toLowerCase())) return undefined
  return name.slice(5).toLowerCase().split('__').filter(Boolean)
}

/** Applies the overrides of `env` to `obj` in `env`'s order, calling `onSet` for each key set. */
function applyEnv(obj: Record<string, unknown>, env: NodeJS.ProcessEnv, onSet?: (path: string[], name: string) => void): void {
  for (const [k, v] of Object.entries(env)) {
    const path = v === undefined ? undefined : overridePath(k)
    if (path === undefined || path.length === 0 || v === undefined) continue
    let node = obj
    for (const seg of path.slice(0, -1)) {
      const next = node[seg]
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[seg] = {}
      node = node[seg] as Record<string, unknown>
    }
    node[path.at(-1) as string] = coerceString(v)
    onSet?.(path, k)
  }
}

/**
 * Applies `pier_a__b=v` variables to `obj` (rc's environment convention: prefix `pier_` in any
 * case, `__` between levels, keys lowercased; values coerced: `true`/`false` → booleans, decimal
 * numbers → numbers). A non-mapping met on the way is replaced by `{}`. `PIER_CONFIG` is skipped.
 * @returns `obj`, mutated
 */
export function applyEnvOverrides(obj: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  applyEnv(obj, env)
  return obj
}

/** A file's text; undefined when an optional file is missing (or is a folder, as rc skips what it cannot read as a file). */
function readText(path: string, required: boolean): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (!required && (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR')) return undefined
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`)
  }
}

/** Whether `obj` has a value at `path` (through mappings only, keys compared exactly). */
function has(obj: Record<string, unknown>, path: KeyPath): boolean {
  let node: unknown = obj
  for (const seg of path) {
    if (!isMapping(node) || !Object.hasOwn(node, seg)) return false
    node = node[seg]
  }
  return true
}

/** Deletes `path` from `obj`, then the mappings above it left empty that the files did not have (the environment made them). */
function deletePath(obj: Record<string, unknown>, path: KeyPath, fromFiles: Record<string, unknown>): void {
  for (let n = path.length; n >= 1; n--) {
    const parentPath = path.slice(0, n - 1)
    let parent: unknown = obj
    for (const seg of parentPath) parent = isMapping(parent) ? parent[seg] : undefined
    if (!isMapping(parent)) return
    const key = path[n - 1] as string
    const child = parent[key]
    if (n < path.length && (!isMapping(child) || Object.keys(child).length > 0 || has(fromFiles, path.slice(0, n)))) return
    delete parent[key]
  }
}

/**
 * Reads, merges and validates the configuration: the rc files (rc 1.2.8's order, `rcFiles` in
 * rc.ts), the explicit file, then the environment; later layers override earlier ones by deep
 * merge (mappings merge, arrays and scalars replace). Each file may be JSON, INI or YAML
 * (`detectFormat`). A missing rc file is skipped; a file already read is not read again (rc's
 * rule). An environment variable naming no configuration key is dropped with a warning; an unknown
 * key in a file is an error.
 * @throws ConfigError naming the file that cannot be read or parsed (an explicit file must exist),
 *   or the dotted keys that are wrong and their sources
 */
export function loadConfig(opts: LoadOptions = {}): LoadResult {
  const env = opts.env ?? process.env
  const cwd = opts.cwd ?? process.cwd()
  let file = opts.file ?? env.PIER_CONFIG ?? env.pier_config
  if (!file && existsSync(resolve(cwd, 'config.yaml'))) file = 'config.yaml'
  if (file) file = resolve(cwd, file)

  const raw: Record<string, unknown> = {}
  const tracker = new SourceTracker()
  const files: string[] = []
  const candidates = rcFiles({ name: 'pier', home: opts.home ?? homedir(), etc: opts.etc ?? '/etc', cwd })
  for (const path of file ? [...candidates, file] : candidates) {
    if (files.includes(path)) continue
    const text = readText(path, path === file)
    if (text === undefined) continue
    let layer: Record<string, unknown>
    try {
      layer = parseConfigText(path, text)
    } catch (e) {
      throw new ConfigError(`invalid config file ${path}: ${(e as Error).message}`)
    }
    deepMerge(raw, layer)
    tracker.addLayer(layer, path)
    files.push(path)
  }

  const fromFiles = structuredClone(raw)
  const fileSources = tracker.clone()
  const overrides: Array<{ name: string; path: string[] }> = []
  applyEnv(raw, env, (path, name) => {
    tracker.set(path, `env ${name}`)
    overrides.push({ name, path })
  })

  const warnings: string[] = []
  for (const [name, v] of Object.entries(env)) {
    if (v !== undefined && overridePath(name)?.length === 0) warnings.push(`ignoring environment variable ${name}: no config key`)
  }
  for (;;) {
    const r = ConfigSchema.safeParse(raw)
    if (r.success) {
      const sources: Record<string, string> = {}
      for (const [path] of leaves(r.data as Record<string, unknown>)) sources[dottedKey(path)] = tracker.get(path) ?? 'default'
      return { config: r.data, file, files, sources, warnings }
    }
    // Unknown keys that only the environment brought: drop them (with a warning) and validate again.
    const unknown = r.error.issues
      .flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path.map(String), k]) : []))
      .filter((path) => has(raw, path) && !has(fromFiles, path) && overrides.some((o) => isUnder(o.path, path)))
    if (unknown.length === 0) throw new ConfigError(describeIssues(r.error.issues, files, (path, unknown) => (unknown && has(fromFiles, path) ? fileSources : tracker).sourcesUnder(path)))
    for (const path of unknown) {
      for (const o of overrides) {
        if (isUnder(o.path, path)) warnings.push(`ignoring environment variable ${o.name}: no config key "${dottedKey(o.path)}"`)
      }
      deletePath(raw, path, fromFiles)
      tracker.delete(path)
    }
  }
}

/**
 * One line per issue: `server.prot: Unrecognized key: "prot" server.prot (from /etc/pierrc)`.
 * `sourcesOf(path, unknown)` names where the key at `path` (or beneath it) came from; `unknown`:
 * the key is an unrecognized one (a file's, since the environment's were dropped).
 */
function describeIssues(issues: z.core.$ZodIssue[], files: string[], sourcesOf: (path: KeyPath, unknown: boolean) => string[]): string {
  const msgs = issues.map((i) => {
    const path = i.path.map(String)
    const key = path.join('.') || '(top level)'
    const unknown = i.code === 'unrecognized_keys' ? i.keys.map((k) => [...path, k]) : []
    const keys = unknown.length > 0 ? ` ${unknown.map((p) => p.join('.')).join(', ')}` : ''
    const from = new Set(unknown.length > 0 ? unknown.flatMap((p) => sourcesOf(p, true)) : path.length > 0 ? sourcesOf(path, false) : [])
    return `${key}: ${i.message}${keys}${from.size > 0 ? ` (from ${[...from].join(', ')})` : ''}`
  })
  return `invalid configuration${files.length === 1 ? ` in ${files[0]}` : ''}:\n  ${msgs.join('\n  ')}`
}
