/**
 * `pier backup FILE` and `pier restore FILE` (docs/backup.md): parse their arguments, load the
 * configuration, open the stores as `pier gc` and `pier verify` do (`withStores`: the database
 * migrated first, nothing swept), and run ops/backup.ts over storage/meta/snapshot.ts's one read
 * transaction (backup) or one write transaction (restore). Exit codes: 0 done, 1 failed (nothing
 * restored; a partial backup file removed), 2 a usage error.
 */
import { createReadStream, createWriteStream, existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../config/load.js'
import { BackupError, restoreBackup, writeBackup, type BackupSummary, type RestoreSummary } from '../ops/backup.js'
import { withBulkLoad, withSnapshot } from '../storage/meta/snapshot.js'
import { UsageError, withStores } from './gc.js'

/** `pier backup --help` / `pier restore --help` (main.ts hands both commands, with --help, to runBackupCommand). */
export const BACKUP_HELP = `Usage: pier backup FILE [--since SEQ] [--json] [--config FILE]
       pier restore FILE [--json] [--config FILE]

backup writes one consistent snapshot of the metadata (every table, read in one transaction)
and every tarball blob the versions refer to, as a tar archive (gzipped when FILE ends in .gz
or .tgz; '-' writes plain tar to stdout), while Pier serves. The archive holds a manifest, the
rows as JSON lines, the blobs and the SHA-256 of every entry. It is written to FILE.part and
renamed to FILE when complete. --since SEQ writes an incremental backup: the packages changed
after change SEQ (the seq a previous backup printed), their new blobs and the small tables.

restore loads a backup into an empty database and blob store (a full backup), or an incremental
backup on top of the restored state it follows. Every entry is checked before the metadata is
committed, in one transaction: a damaged archive changes nothing ('-' reads stdin).

  --since SEQ    (backup) only what changed after change sequence number SEQ
  --json         print the summary as one JSON object
  --config FILE  the configuration of the Pier to back up or restore into
`

/** Where `runBackupCommand` writes and reads (defaults: this process's). */
export interface BackupIo {
  stdout?: Writable
  stderr?: (s: string) => void
  stdin?: Readable
  /** Environment for the configuration (`PIER_CONFIG`, `pier_*` overrides). */
  env?: NodeJS.ProcessEnv
  /** Folder that FILE and relative storage paths are resolved against. */
  cwd?: string
}

/** Pier's version from package.json (two folders above dist/src/cli), or `unknown`. */
function pierVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    return typeof pkg.version === 'string' ? pkg.version : 'unknown'
  } catch {
    return 'unknown'
  }
}

/** Parsed arguments. */
interface BackupArgs {
  file: string
  since?: number
  json: boolean
  config?: string
  help: boolean
}

/** @throws UsageError */
function parseBackupArgs(cmd: 'backup' | 'restore', args: string[]): BackupArgs {
  let values
  let positionals
  try {
    ;({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c' },
        since: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  if (values.help) return { file: '', json: false, help: true }
  if (positionals.length !== 1) throw new UsageError(`pier ${cmd} takes one FILE ('-' for ${cmd === 'backup' ? 'stdout' : 'stdin'})`)
  if (values.since !== undefined && cmd === 'restore') throw new UsageError('--since is an option of pier backup (an incremental backup knows what it follows)')
  if (values.since !== undefined && !/^\d+$/.test(values.since)) throw new UsageError(`--since must be a change sequence number (0 or more), not "${values.since}"`)
  return {
    file: positionals[0] as string,
    ...(values.since === undefined ? {} : { since: Number(values.since) }),
    json: values.json === true,
    ...(values.config === undefined ? {} : { config: values.config }),
    help: false,
  }
}

/** The summary line of a backup, e.g. `backup: 40 entries, 120 rows, 30 blobs (1048576 bytes), 1100000 bytes written; seq 57 (next: --since 57)`. */
export function backupSummaryLine(file: string, s: BackupSummary): string {
  const kind = s.manifest.since === null ? 'backup' : `incremental backup (since ${s.manifest.since})`
  return `${kind} ${file}: ${s.entries} entries, ${s.rows} rows, ${s.blobs} blobs (${s.blobBytes} bytes), ${s.bytes} bytes written; seq ${s.manifest.seq} (next incremental: --since ${s.manifest.seq})`
}

/** The summary line of a restore. */
export function restoreSummaryLine(file: string, s: RestoreSummary): string {
  const kind = s.manifest.since === null ? 'restored' : `restored incremental (since ${s.manifest.since})`
  return `${kind} ${file}: ${s.entries} entries, ${s.rows} rows, ${s.blobs} blobs (${s.blobBytes} bytes, ${s.blobsPresent} already stored), ${s.bytes} bytes read; seq ${s.manifest.seq}`
}

/** The `--json` summary (snake_case keys). */
export function summaryJson(cmd: 'backup' | 'restore', file: string, s: BackupSummary | RestoreSummary): Record<string, unknown> {
  return {
    command: cmd,
    file,
    kind: s.manifest.since === null ? 'full' : 'incremental',
    entries: s.entries,
    rows: s.rows,
    blobs: s.blobs,
    blob_bytes: s.blobBytes,
    bytes: s.bytes,
    ...('blobsPresent' in s ? { blobs_present: s.blobsPresent } : {}),
    seq: s.manifest.seq,
    since: s.manifest.since,
    tables: s.manifest.tables,
    pier: s.manifest.pier,
    created: s.manifest.created,
    backend: s.manifest.backend,
  }
}

/** Ends `out` (a file stream) and waits until its bytes are flushed and the file closed. */
function closed(out: Writable): Promise<void> {
  return new Promise((res, rej) => {
    if (out.closed) return res()
    out.once('close', () => res())
    out.once('error', rej)
  })
}

/**
 * `pier backup FILE …` / `pier restore FILE …`: the whole command, from its arguments to its exit
 * code. Failures are printed to stderr as `pier: <message>`; the configuration's warnings as
 * `pier: warning: …`. The summary goes to stdout (to stderr when the archive itself is stdout).
 * @param args the arguments after the command name
 * @returns 0 done, 1 failed (printed), 2 a usage error
 * @throws nothing the caller must handle: an unexpected error is printed with its stack and gives 1
 */
export async function runBackupCommand(cmd: 'backup' | 'restore', args: string[], io: BackupIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout
  const err = io.stderr ?? ((s: string) => void process.stderr.write(s))
  let parsed: BackupArgs
  try {
    parsed = parseBackupArgs(cmd, args)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    err(`pier: ${e.message} (see pier ${cmd} --help)\n`)
    return 2
  }
  if (parsed.help) {
    stdout.write(BACKUP_HELP)
    return 0
  }
  const cwd = io.cwd ?? process.cwd()
  const toStdio = parsed.file === '-'
  const path = toStdio ? '-' : resolve(cwd, parsed.file)
  const partial = `${path}.part`
  try {
    const loaded = loadConfig({ file: parsed.config, cwd, ...(io.env ? { env: io.env } : {}) })
    for (const w of loaded.warnings) err(`pier: warning: ${w}\n`)
    const { config } = loaded
    let line: string
    let json: Record<string, unknown>
    if (cmd === 'backup') {
      const gzip = /\.(t?gz)$/i.test(parsed.file)
      const out: Writable = toStdio ? stdout : createWriteStream(partial)
      let summary: BackupSummary
      try {
        summary = await withStores(config, cwd, (meta, blobs) =>
          withSnapshot(meta, (snap) =>
            writeBackup(snap, blobs, out, { ...(parsed.since === undefined ? {} : { since: parsed.since }), gzip, pier: pierVersion(), blobsKind: config.storage.type }),
          ),
        )
        if (!toStdio) {
          await closed(out)
          renameSync(partial, path)
        }
      } catch (e) {
        if (!toStdio) {
          // Closed first: the file may be opened after a failure that came early.
          out.destroy()
          await closed(out).catch(() => undefined)
          rmSync(partial, { force: true })
        }
        throw e
      }
      line = backupSummaryLine(parsed.file, summary)
      json = summaryJson('backup', parsed.file, summary)
    } else {
      if (!toStdio && !existsSync(path)) throw new BackupError(`${parsed.file}: no such file`)
      if (!toStdio && !statSync(path).isFile()) throw new BackupError(`${parsed.file}: not a file`)
      const input: Readable = toStdio ? (io.stdin ?? process.stdin) : createReadStream(path)
      const summary = await withStores(config, cwd, (meta, blobs) => restoreBackup(input, (fn) => withBulkLoad(meta, fn), blobs))
      line = restoreSummaryLine(parsed.file, summary)
      json = summaryJson('restore', parsed.file, summary)
    }
    const text = parsed.json ? `${JSON.stringify(json)}\n` : `${line}\n`
    if (cmd === 'backup' && toStdio) err(text)
    else stdout.write(text)
    return 0
  } catch (e) {
    if (e instanceof BackupError || e instanceof ConfigError) err(`pier: ${cmd} failed: ${e.message}\n`)
    else err(`pier: ${cmd} failed: ${(e as Error).stack ?? String(e)}\n`)
    return 1
  }
}
