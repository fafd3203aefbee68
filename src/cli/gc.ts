/**
 * `pier gc`: opens the configured stores the way a tool running beside serving nodes must (the
 * disk store's temp files are left alone, as `openBlobStore` always does: they are other
 * processes' writes in progress), runs `collectGarbage` (ops/gc.ts) and formats its report.
 */
import { resolve } from 'node:path'
import { parseDuration } from '../config/uplinks.js'
import type { Config } from '../config/schema.js'
import { collectGarbage, type GcReport } from '../ops/gc.js'
import { openBlobStore } from '../storage/blobs/open-blob-store.js'
import type { BlobStore } from '../registry/stores.js'
import type { MetaStore } from '../storage/meta/meta-store.js'
import { openMetaStore } from '../storage/meta/open-meta-store.js'

/** A bad command-line argument: printed as `pier: <message>` without a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** Default `--grace`: 24 hours, in ms. */
export const DEFAULT_GRACE_MS = 24 * 3_600_000

/**
 * Parses `--grace`: plain seconds (`3600`), or a number with a unit `ms`, `s`, `m`, `h`, `d`
 * (`3600s`, `60m`, `24h`, `7d`; units as in the configuration's durations, config/uplinks.ts).
 * @returns milliseconds
 * @throws UsageError naming the accepted forms
 */
export function parseGrace(v: string): number {
  const s = v.trim()
  if (/^\d+$/.test(s)) return Number(s) * 1000
  if (!/^\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)$/i.test(s)) throw new UsageError(`--grace: invalid duration "${v}" (use seconds or e.g. 3600s, 60m, 24h, 7d)`)
  return parseDuration(s)
}

/**
 * Milliseconds for messages, in the largest unit that divides them: `7d`, `24h`, `90m`, `30s`, `0s`,
 * else `1500ms`. Days only from two on, so the default reads `24h`.
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s'
  if (ms >= 2 * 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/**
 * The one-line summary `pier gc` prints, e.g.
 * `gc: 120 blobs, 3 unreferenced (4096 bytes), 2 deleted, 1 kept (younger than 24h)`;
 * a dry run says `would be deleted`, and blobs gone before their deletion are mentioned when any.
 */
export function summaryLine(r: GcReport): string {
  const deleted = r.dryRun ? `${r.deleted} would be deleted (dry run)` : `${r.deleted} deleted`
  const gone = r.gone > 0 ? `, ${r.gone} already gone` : ''
  return `gc: ${r.blobs} blobs, ${r.unreferenced} unreferenced (${r.unreferencedBytes} bytes), ${deleted}, ${r.kept} kept (younger than ${formatDuration(r.graceMs)})${gone}`
}

/** The `--json` output: the report with snake_case keys and the grace period in seconds. */
export function reportJson(r: GcReport): Record<string, unknown> {
  return {
    blobs: r.blobs,
    bytes: r.bytes,
    references: r.references,
    unreferenced: r.unreferenced,
    unreferenced_bytes: r.unreferencedBytes,
    deleted: r.deleted,
    deleted_bytes: r.deletedBytes,
    deleted_keys: r.deletedKeys,
    kept: r.kept,
    kept_bytes: r.keptBytes,
    gone: r.gone,
    grace_seconds: r.graceMs / 1000,
    dry_run: r.dryRun,
  }
}

/**
 * Opens the stores of `config`, collects garbage and closes them.
 * The database is migrated first, as every `pier` command does. Besides giving the queries the
 * tables they expect, this stops a gc older than the database: Kysely refuses a database holding
 * a migration it does not know ("corrupted migrations"), and such a migration could have added
 * references this gc would not see.
 * @param cwd folder that relative storage paths are resolved against (default: process cwd)
 * @throws GcRefusedError, or the stores' errors
 */
export async function runGc(config: Config, opts: { graceMs: number; dryRun: boolean; cwd?: string }): Promise<GcReport> {
  return withStores(config, opts.cwd, (meta, blobs) => collectGarbage(meta, blobs, { graceMs: opts.graceMs, dryRun: opts.dryRun }))
}

/**
 * Opens the metadata store (migrated, as every `pier` command does: see `runGc`) and the blob
 * store of `config` without sweeping its temp files, runs `fn`, and closes both whatever happens
 * (`pier gc`, `pier verify`).
 * @param cwd folder that relative storage paths are resolved against (default: process cwd)
 * @throws the stores' errors, and whatever `fn` throws
 */
export async function withStores<T>(config: Config, cwd: string | undefined, fn: (meta: MetaStore, blobs: BlobStore) => Promise<T>): Promise<T> {
  const base = cwd ?? process.cwd()
  const dataDir = resolve(base, config.storage.local.path)
  const meta = await openMetaStore(config.storage.meta, dataDir, base)
  try {
    await meta.migrate()
    const blobs = await openBlobStore(config.storage, dataDir)
    try {
      return await fn(meta, blobs)
    } finally {
      await blobs.close?.()
    }
  } finally {
    await meta.close()
  }
}
