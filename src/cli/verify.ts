/**
 * `pier verify`: parses its own arguments, loads the configuration, opens the configured stores the
 * way a tool running beside serving nodes must (as `pier gc` does: nothing swept, the database
 * migrated first), runs `verifyStore` (ops/verify.ts) and prints one line per problem and a
 * summary, or the report as JSON. Exit codes: 0 clean, 1 a problem remains (after `--repair`) or
 * the run could not be made (configuration, refused, a store's error), 2 a usage error.
 */
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { GcRefusedError } from '../ops/gc.js'
import { verifyStore, type VerifyProblem, type VerifyReport } from '../ops/verify.js'
import { DEFAULT_GRACE_MS, parseGrace, UsageError, withStores } from './gc.js'

/** `pier verify --help`. */
export const VERIFY_HELP = `Usage: pier verify [--grace DURATION] [--repair] [--json] [--config FILE]

Checks that every live version's tarball is in the blob store and hashes to its integrity, that
every dist-tag names a live version, that no blob older than DURATION (default 24h, as pier gc)
is left that nothing refers to, and that the stored tarballs of cached uplink packuments are
intact. Prints one line per problem, then
  verify: N versions, B blobs (X bytes) checked; P problems
Exit code 0 when clean, 1 when a problem remains, 2 on a usage error: a cron-able health check.

  --repair       delete orphaned blobs older than DURATION (exactly as pier gc does) and damaged
                 cached uplink tarballs (fetched again, and verified, on the next request); a
                 missing or damaged local tarball and a dangling dist-tag are only reported
  --grace D      3600s, 60m, 24h, 7d or plain seconds
  --json         print the report as one JSON object
  --config FILE  the configuration of the Pier to check
`

/** Where `runVerifyCommand` writes and reads its environment (defaults: this process's). */
export interface VerifyIo {
  stdout?: (s: string) => void
  stderr?: (s: string) => void
  /** Environment for the configuration (`PIER_CONFIG`, `pier_*` overrides). */
  env?: NodeJS.ProcessEnv
  /** Folder that relative paths are resolved against. */
  cwd?: string
}

/** The text line of one problem: `<kind> <subject>: <detail>; <action>`. */
export function problemLine(p: VerifyProblem): string {
  let subject: string
  if (p.kind === 'dangling-dist-tag') subject = `${p.package ?? ''} ${p.tag ?? ''} -> ${p.version ?? ''}`
  else if (p.kind === 'orphan-blob') subject = `${p.key ?? ''}${p.size === undefined ? '' : ` (${p.size} bytes)`}`
  else if (p.kind === 'cached-mismatch') subject = `${p.package ?? ''}@${p.version ?? ''} (uplink ${p.uplink ?? ''}) ${p.key ?? ''}`
  else subject = `${p.package ?? ''}@${p.version ?? ''} ${p.key ?? ''}`
  return `${p.kind} ${subject}: ${p.detail}; ${p.action}`
}

/**
 * The summary line, e.g. `verify: 120 versions, 130 blobs (4096000 bytes) checked; 2 problems`;
 * with `--repair` followed by `, R repaired, M remaining`.
 */
export function verifySummaryLine(r: VerifyReport): string {
  const base = `verify: ${r.versions} versions, ${r.blobs} blobs (${r.bytes} bytes) checked; ${r.problems.length} problems`
  return r.repair ? `${base}, ${r.problems.length - r.remaining} repaired, ${r.remaining} remaining` : base
}

/** The `--json` output: the report with snake_case keys, the grace period in seconds, `ok` when nothing remains. */
export function verifyReportJson(r: VerifyReport): Record<string, unknown> {
  return {
    ok: r.remaining === 0,
    versions: r.versions,
    blobs: r.blobs,
    bytes: r.bytes,
    dist_tags: r.distTags,
    listed_blobs: r.listed,
    cached_packuments: r.cachedPackuments,
    cached_tarballs: r.cachedTarballs,
    cached_stored: r.cachedStored,
    young_unreferenced: r.youngUnreferenced,
    grace_seconds: r.graceMs / 1000,
    repair: r.repair,
    remaining: r.remaining,
    problems: r.problems.map((p) => ({
      kind: p.kind,
      package: p.package ?? null,
      version: p.version ?? null,
      tag: p.tag ?? null,
      uplink: p.uplink ?? null,
      key: p.key ?? null,
      size: p.size ?? null,
      expected: p.expected ?? null,
      actual: p.actual ?? null,
      detail: p.detail,
      repaired: p.repaired,
      action: p.action,
    })),
  }
}

/**
 * Opens the stores of `config`, verifies them and closes them. The database is migrated first, as
 * every `pier` command does (and as `runGc` explains, a verify older than the database is refused).
 * @param cwd folder that relative storage paths are resolved against (default: process cwd)
 * @throws GcRefusedError (the database refers to no blob while the store holds old ones), or the stores' errors
 */
export async function runVerify(config: Config, opts: { graceMs: number; repair: boolean; cwd?: string }): Promise<VerifyReport> {
  return withStores(config, opts.cwd, (meta, blobs) => verifyStore(meta, blobs, { graceMs: opts.graceMs, repair: opts.repair }))
}

/** Parses the arguments after `verify`. @throws UsageError */
function parseVerifyArgs(args: string[]): { config?: string; graceMs: number; repair: boolean; json: boolean; help: boolean } {
  let values
  try {
    ;({ values } = parseArgs({
      args,
      allowPositionals: false,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        grace: { type: 'string' },
        repair: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (e) {
    // node:util's ERR_PARSE_ARGS_* (an unknown option, a missing value, a positional).
    throw new UsageError((e as Error).message)
  }
  return {
    ...(values.config === undefined ? {} : { config: values.config }),
    graceMs: values.grace === undefined ? DEFAULT_GRACE_MS : parseGrace(values.grace),
    repair: values.repair === true,
    json: values.json === true,
    help: values.help === true,
  }
}

/**
 * `pier verify [--grace D] [--repair] [--json] [--config FILE]`: the whole command, from its
 * arguments to its exit code. Usage errors and known failures are printed to stderr as
 * `pier: <message>`; the configuration's warnings as `pier: warning: …`.
 * @param args the arguments after `verify`
 * @returns 0 when nothing is wrong (or everything found was repaired), 1 when a problem remains or
 *   the check could not run (configuration error, refused, a store's error: printed), 2 on a usage error
 * @throws nothing the caller must handle: an unexpected error is printed with its stack and gives 1
 */
export async function runVerifyCommand(args: string[], io: VerifyIo = {}): Promise<number> {
  const out = io.stdout ?? ((s: string) => void process.stdout.write(s))
  const err = io.stderr ?? ((s: string) => void process.stderr.write(s))
  let parsed
  try {
    parsed = parseVerifyArgs(args)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    err(`pier: ${e.message} (see pier verify --help)\n`)
    return 2
  }
  if (parsed.help) {
    out(VERIFY_HELP)
    return 0
  }
  try {
    const cwd = io.cwd ?? process.cwd()
    const loaded = loadConfig({ file: parsed.config, cwd, ...(io.env ? { env: io.env } : {}) })
    for (const w of loaded.warnings) err(`pier: warning: ${w}\n`)
    const report = await runVerify(loaded.config, { graceMs: parsed.graceMs, repair: parsed.repair, cwd })
    if (parsed.json) out(`${JSON.stringify(verifyReportJson(report))}\n`)
    else out([...report.problems.map(problemLine), verifySummaryLine(report)].join('\n') + '\n')
    return report.remaining === 0 ? 0 : 1
  } catch (e) {
    if (e instanceof ConfigError || e instanceof GcRefusedError) err(`pier: ${e.message}\n`)
    else err(`pier: verify failed: ${(e as Error).stack ?? String(e)}\n`)
    return 1
  }
}
