/**
 * `pier config`: the merged, validated configuration with secrets masked (config/mask.ts), one
 * line per leaf key with where its value came from, or as JSON with `--json`.
 */
import type { LoadResult } from '../config/load.js'
import { maskConfig, maskValue } from '../config/mask.js'
import { dottedKey, leaves } from '../config/rc.js'

/** `pier config --help`. */
export const CONFIG_HELP = `Usage: pier config [--config FILE] [--json]

Prints the configuration Pier would run with, secrets masked (passwords in URLs, storage.s3
keys, tokens), one line per key with where it came from:

  storage.meta.url = postgres://pier:****@db.example.com/pier   (from /etc/pierrc)
  server.port = 4000                                            (env PIER_SERVER__PORT)
  server.host = 127.0.0.1                                       (default)

--json prints {"config": {...}, "sources": {"server.port": "env PIER_SERVER__PORT", ...}}.

Sources, lowest precedence first (as the rc package orders them): /etc/pier/config,
/etc/pierrc, ~/.config/pier/config, ~/.config/pier, ~/.pier/config, ~/.pierrc, the nearest
.pierrc from the working folder up, then --config FILE (else $PIER_CONFIG, else ./config.yaml
when present), then pier_* / PIER_* environment variables. Files may be JSON, INI or YAML.
`

/** How a value reads after `key = `: strings as they are (JSON-quoted when empty or with edge white space or line breaks), anything else as JSON. */
function formatValue(v: unknown): string {
  if (typeof v === 'string') return v === '' || v !== v.trim() || /[\r\n]/.test(v) ? JSON.stringify(v) : v
  return JSON.stringify(v) ?? String(v)
}

/** How a source reads in parentheses: `(default)`, `(env PIER_SERVER__PORT)`, `(from /etc/pierrc)`. */
function formatSource(source: string | undefined): string {
  if (source === undefined || source === 'default') return '(default)'
  if (source.startsWith('env ')) return `(${source})`
  return `(from ${source})`
}

/** Lines are padded to this width at most before their source, so one long value does not push every source far right. */
const MAX_PAD = 64

/**
 * The text form: one `key = value   (source)` line per leaf of the configuration, in the
 * configuration's key order, values masked, sources aligned.
 * @returns lines ending in `\n`
 */
export function configText(result: Pick<LoadResult, 'config' | 'sources'>): string {
  const rows = leaves(result.config as Record<string, unknown>).map(([path, value]) => {
    const key = dottedKey(path)
    return { line: `${key} = ${formatValue(maskValue(path, value))}`, source: formatSource(result.sources[key]) }
  })
  const width = Math.max(0, ...rows.map((r) => r.line.length).filter((n) => n <= MAX_PAD))
  return rows.map((r) => `${r.line.padEnd(width)}   ${r.source}\n`).join('')
}

/**
 * The `--json` form: `{ config, sources }`, the configuration masked and every leaf's source
 * (dotted key → file path, `env NAME` or `default`).
 * @returns pretty-printed JSON ending in `\n`
 */
export function configJson(result: Pick<LoadResult, 'config' | 'sources'>): string {
  return `${JSON.stringify({ config: maskConfig(result.config), sources: result.sources }, null, 2)}\n`
}
