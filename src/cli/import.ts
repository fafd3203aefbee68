/**
 * `pier import verdaccio|sinopia DIR` and `pier import registry URL`: parses its own arguments,
 * loads the configuration, opens the configured stores the way a tool running beside serving
 * nodes must (as `pier gc` does: migrated first, nothing swept), runs the import (ops/import/run.ts)
 * and prints a summary, or one JSON object with `--json`. A progress bar goes to stderr when
 * stderr is a terminal. Exit codes: 0 done (skipped items are reported, they do not fail the run),
 * 1 a package failed or the import could not run, 2 a usage error. docs/moving-from-verdaccio.md.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config/load.js'
import { configuredUplinkUrls, ImportError, importRegistry, importStorage, parseNames, type ImportSummary, type Progress } from '../ops/import/run.js'
import { UsageError, withStores } from './gc.js'

/** `pier import --help`. */
export const IMPORT_HELP = `Usage: pier import verdaccio DIR [--htpasswd FILE] [--uplink NAME] [options]
       pier import sinopia DIR [--htpasswd FILE] [--uplink NAME] [options]
       pier import registry URL [--names FILE] [--scope @S]... [--token T] [options]

Imports another registry into this Pier: every version (tarballs verified against their
integrity and shasum first), dist-tag, time stamp, readme, maintainer, star and deprecation.
It can run again, while Pier serves: only what changed at the source is written.

verdaccio / sinopia DIR: DIR is the storage folder (one folder per package, .verdaccio-db.json).
  Packages it had only cached from an uplink go to the uplink cache of --uplink NAME, else of
  the configured uplink whose URL their tarballs came from, else of the first uplink.
  --htpasswd FILE   import the users too; their hashes (bcrypt, {SHA}, $apr1$, crypt) work as
                    they are and are replaced by scrypt at each user's next login
registry URL: any registry that serves packuments (another Pier, Nexus, Artifactory...)
  --names FILE      one package name a line; # starts a comment
  --scope @S        every package of the scope (repeatable)
  --token T         sent as Authorization: Bearer to URL's host only

  --maintainer U    maintainer of the packages whose source names none (repeatable; Verdaccio 5
                    records none: without it they get none, and only administrators change them)
  --concurrency N   packages imported at once (default 4)
  --dry-run         verify and compare, write nothing
  --json            print the summary as one JSON object
  --config FILE     the configuration of the Pier to import into
Exit code 0 when done (skipped items are listed), 1 when a package failed, 2 on a usage error.
`

/** Where `runImportCommand` writes and reads its environment (defaults: this process's). */
export interface ImportIo {
  stdout?: (s: string) => void
  stderr?: (s: string) => void
  /** Whether stderr is a terminal (a progress bar is drawn); default `process.stderr.isTTY`. */
  tty?: boolean
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/** The parsed command line. */
interface ImportArgs {
  kind: 'verdaccio' | 'sinopia' | 'registry'
  target: string
  config?: string
  htpasswd?: string
  uplink?: string
  names?: string
  scopes: string[]
  maintainers: string[]
  token?: string
  concurrency: number
  dryRun: boolean
  json: boolean
  help: boolean
}

/** Parses the arguments after `import`. @throws UsageError */
function parseImportArgs(args: string[]): ImportArgs {
  let values
  let positionals
  try {
    ;({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        htpasswd: { type: 'string' },
        uplink: { type: 'string' },
        names: { type: 'string' },
        scope: { type: 'string', multiple: true },
        maintainer: { type: 'string', multiple: true },
        token: { type: 'string' },
        concurrency: { type: 'string' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  const help = values.help === true
  const [kind, target, ...rest] = positionals
  if (help) return { kind: 'verdaccio', target: '', scopes: [], maintainers: [], concurrency: 4, dryRun: false, json: false, help }
  if (kind !== 'verdaccio' && kind !== 'sinopia' && kind !== 'registry') throw new UsageError(`pier import takes verdaccio, sinopia or registry, not ${kind ?? 'nothing'}`)
  if (!target) throw new UsageError(kind === 'registry' ? 'pier import registry needs the source URL' : `pier import ${kind} needs the storage folder`)
  if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0] ?? ''}`)
  const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency takes a whole number from 1 to 64')
  const scopes = values.scope ?? []
  for (const s of scopes) if (!/^@?[a-z0-9][a-z0-9._~-]*$/i.test(s)) throw new UsageError(`--scope ${s}: not a scope name (@acme)`)
  if (kind === 'registry') {
    if (values.htpasswd !== undefined || values.uplink !== undefined) throw new UsageError('--htpasswd and --uplink are for verdaccio and sinopia imports')
    if (values.names === undefined && scopes.length === 0) throw new UsageError('pier import registry needs --names FILE or --scope @S')
    try {
      const u = new URL(target)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http')
    } catch {
      throw new UsageError(`${target} is not an http(s) URL`)
    }
  } else if (values.names !== undefined || scopes.length > 0 || values.token !== undefined) {
    throw new UsageError('--names, --scope and --token are for registry imports')
  }
  return {
    kind,
    target,
    ...(values.config === undefined ? {} : { config: values.config }),
    ...(values.htpasswd === undefined ? {} : { htpasswd: values.htpasswd }),
    ...(values.uplink === undefined ? {} : { uplink: values.uplink }),
    ...(values.names === undefined ? {} : { names: values.names }),
    scopes: scopes.map((s) => (s.startsWith('@') ? s : `@${s}`)),
    maintainers: values.maintainer ?? [],
    ...(values.token === undefined ? {} : { token: values.token }),
    concurrency,
    dryRun: values['dry-run'] === true,
    json: values.json === true,
    help,
  }
}

/** The text summary: totals, then one line per skipped item. */
export function summaryText(s: ImportSummary): string {
  const p = s.packages
  const lines = [
    `import${s.dryRun ? ' (dry run: nothing written)' : ''}: ${p.seen} packages (${p.created} new, ${p.changed} changed, ${p.unchanged} unchanged, ${p.failed} failed), ` +
      `${s.versions.added} versions added, ${s.versions.updated} updated, ${s.tarballs.count} tarballs (${s.tarballs.bytes} bytes) in ${(s.durationMs / 1000).toFixed(1)} s`,
  ]
  if (s.source !== 'registry') {
    lines.push(`cached: ${s.cached.packages} packages (${s.cached.changed} changed), ${s.cached.tarballs} tarballs (${s.cached.bytes} bytes)${s.cached.uplink ? ` into uplink ${s.cached.uplink}` : ''}`)
    lines.push(`users: ${s.users.created} created, ${s.users.updated} updated, ${s.users.unchanged} unchanged, ${s.users.kept} kept (already using a Pier password)`)
    if (s.secret) lines.push("secret: Verdaccio's token secret is not imported: users run npm login against Pier once")
  }
  lines.push(`skipped: ${s.skipped.length}`)
  for (const k of s.skipped) {
    const what = k.user !== undefined ? `user ${k.user}` : `${k.package ?? ''}${k.version ? `@${k.version}` : ''}${k.tag ? ` (tag ${k.tag})` : ''}`
    lines.push(`  ${what}: ${k.reason}`)
  }
  return lines.join('\n') + '\n'
}

/** A progress bar on stderr, redrawn in place with `\r`; `done` clears it. */
function progressBar(write: (s: string) => void): { update: Progress; done: () => void } {
  let drawn = false
  return {
    update: (done, total, name) => {
      const width = 30
      const filled = total === 0 ? width : Math.round((done / total) * width)
      write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${name.slice(0, 40).padEnd(40)}`)
      drawn = true
    },
    done: () => {
      if (drawn) write(`\r${' '.repeat(80)}\r`)
    },
  }
}

/**
 * `pier import …`: the whole command, from its arguments to its exit code. Usage errors and known
 * failures are printed to stderr as `pier: <message>`.
 * @param args the arguments after `import`
 * @returns 0 done, 1 a package failed or the import could not run, 2 a usage error
 */
export async function runImportCommand(args: string[], io: ImportIo = {}): Promise<number> {
  const out = io.stdout ?? ((s: string) => void process.stdout.write(s))
  const err = io.stderr ?? ((s: string) => void process.stderr.write(s))
  let a
  try {
    a = parseImportArgs(args)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    err(`pier: ${e.message} (see pier import --help)\n`)
    return 2
  }
  if (a.help) {
    out(IMPORT_HELP)
    return 0
  }
  const cwd = io.cwd ?? process.cwd()
  const bar = (io.tty ?? process.stderr.isTTY === true) ? progressBar(err) : undefined
  try {
    const loaded = loadConfig({ file: a.config, cwd, ...(io.env ? { env: io.env } : {}) })
    for (const w of loaded.warnings) err(`pier: warning: ${w}\n`)
    const config = loaded.config
    let names: string[] = []
    if (a.kind === 'registry' && a.names !== undefined) {
      try {
        names = parseNames(readFileSync(resolve(cwd, a.names), 'utf8'))
      } catch (e) {
        throw new ImportError(`cannot read --names ${a.names}: ${(e as Error).message}`)
      }
    }
    const uplinks = a.kind === 'registry' ? [] : await configuredUplinkUrls(config)
    const common = { dryRun: a.dryRun, concurrency: a.concurrency, maintainers: a.maintainers, ...(bar ? { progress: bar.update } : {}) }
    const summary = await withStores(config, cwd, (meta, blobs) =>
      a.kind === 'registry'
        ? importRegistry(meta, blobs, { ...common, url: a.target, token: a.token, names, scopes: a.scopes })
        : importStorage(meta, blobs, {
            ...common,
            kind: a.kind,
            storage: resolve(cwd, a.target),
            htpasswd: a.htpasswd === undefined ? undefined : resolve(cwd, a.htpasswd),
            uplinks,
            uplink: a.uplink,
          }),
    )
    bar?.done()
    out(a.json ? `${JSON.stringify({ ok: summary.packages.failed === 0, ...summary })}\n` : summaryText(summary))
    return summary.packages.failed === 0 ? 0 : 1
  } catch (e) {
    bar?.done()
    if (e instanceof ImportError && e.usage) {
      err(`pier: ${e.message} (see pier import --help)\n`)
      return 2
    }
    if (e instanceof ConfigError || e instanceof ImportError) err(`pier: ${e.message}\n`)
    else err(`pier: import failed: ${(e as Error).stack ?? String(e)}\n`)
    return 1
  }
}
