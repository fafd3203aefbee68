/**
 * Loads the configuration: a YAML or JSON file (`--config PATH`, `PIER_CONFIG`, or `./config.yaml`
 * when present), then environment overrides in rc's convention (`pier_server__port=4000` or
 * `PIER_SERVER__PORT=4000`: prefix `pier_`, `__` between nesting levels), then validation.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ConfigSchema, type Config } from './schema.js'

/** A configuration problem, naming the bad key. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Where configuration comes from. */
export interface LoadOptions {
  /** Explicit file path (`--config`). */
  file?: string
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/** Environment variables that are not key overrides. */
const NOT_OVERRIDES = new Set(['pier_config'])

function coerce(v: string): unknown {
  if (v === 'true') return true
  if (v === 'false') return false
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v)
  return v
}

/** Applies `pier_a__b=v` variables to `obj` (mutates and returns it). */
export function applyEnvOverrides(obj: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || !/^pier_/i.test(k) || NOT_OVERRIDES.has(k.toLowerCase())) continue
    const path = k.slice(5).toLowerCase().split('__').filter(Boolean)
    if (path.length === 0) continue
    let node = obj
    for (const seg of path.slice(0, -1)) {
      const next = node[seg]
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[seg] = {}
      node = node[seg] as Record<string, unknown>
    }
    node[path.at(-1) as string] = coerce(v)
  }
  return obj
}

/**
 * Reads and validates the configuration.
 * @throws ConfigError with the file name or the dotted key that is wrong
 */
export function loadConfig(opts: LoadOptions = {}): { config: Config; file: string | undefined } {
  const env = opts.env ?? process.env
  const cwd = opts.cwd ?? process.cwd()
  let file = opts.file ?? env.PIER_CONFIG ?? env.pier_config
  if (!file && existsSync(resolve(cwd, 'config.yaml'))) file = 'config.yaml'
  let raw: Record<string, unknown> = {}
  if (file) {
    const path = resolve(cwd, file)
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (e) {
      throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`)
    }
    try {
      const parsed: unknown = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
      if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the top level must be a mapping')
        raw = parsed as Record<string, unknown>
      }
    } catch (e) {
      throw new ConfigError(`invalid config file ${path}: ${(e as Error).message}`)
    }
    file = path
  }
  applyEnvOverrides(raw, env)
  const r = ConfigSchema.safeParse(raw)
  if (!r.success) {
    const msgs = r.error.issues.map((i) => {
      const key = i.path.join('.') || '(top level)'
      const keys = i.code === 'unrecognized_keys' ? ` ${i.keys.map((k) => [...i.path, k].join('.')).join(', ')}` : ''
      return `${key}: ${i.message}${keys}`
    })
    throw new ConfigError(`invalid configuration${file ? ` in ${file}` : ''}:\n  ${msgs.join('\n  ')}`)
  }
  return { config: r.data, file }
}
