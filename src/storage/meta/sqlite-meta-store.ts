/**
 * The embedded default metadata store: one SQLite file through better-sqlite3, in WAL mode.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { Database } from './schema.js'
import { KyselyMetaStore } from './kysely-meta-store.js'

/** Options of the SQLite store. */
export interface SqliteMetaStoreOptions {
  /** Path of the database file; its folder is created if missing. */
  file: string
  /**
   * SQLite `synchronous` pragma. `full` (default) fsyncs the WAL at every commit, so a committed
   * publish survives power loss; `normal` survives a process crash only.
   */
  synchronous?: 'full' | 'normal'
}

/**
 * SQLite's page cache for the connection, KiB (`cache_size`, negative = KiB; SQLite's default is
 * 2,000 KiB). A typical packument read touches a few pages of three indexes and the versions
 * table; with 2 MB of a multi-gigabyte file cached, each was a read from the OS
 * (docs/performance.md, "SQLite's page cache").
 */
export const SQLITE_CACHE_KIB = 65_536

/** Prepared statements kept per connection, by SQL text (Kysely prepares every query anew). */
export const SQLITE_STATEMENT_CACHE = 256

/**
 * `database` as Kysely's SqliteDialect takes it, with its `prepare` caching up to `max` statements
 * by SQL text, least recently used out first. Kysely runs each statement to its end (`all` or
 * `run`) before the next; a cached statement still iterating (`busy`, a streamed query) is not
 * handed out again: a fresh one is prepared instead. Statements re-prepare themselves after a
 * schema change (sqlite3_prepare_v3), so migrations need no flush.
 */
export function cachingDatabase(database: SQLite.Database, max = SQLITE_STATEMENT_CACHE): { prepare(sql: string): SQLite.Statement; close(): void } {
  const cache = new Map<string, SQLite.Statement>()
  return {
    prepare(sql: string): SQLite.Statement {
      const hit = cache.get(sql)
      if (hit && !hit.busy) {
        cache.delete(sql)
        cache.set(sql, hit)
        return hit
      }
      const stmt = database.prepare(sql)
      if (!hit) {
        cache.set(sql, stmt)
        if (cache.size > max) cache.delete(cache.keys().next().value as string)
      }
      return stmt
    },
    close(): void {
      cache.clear()
      database.close()
    },
  }
}

/** How often a SQLite store looks for writes of other processes (`watchChanges`), ms. */
export const SQLITE_CHANGES_POLL_MS = 1000

/**
 * MetaStore on one SQLite file (WAL, busy_timeout 5 s, a 64 MiB page cache, prepared statements
 * reused; Kysely serialises queries on one connection).
 */
export class SqliteMetaStore extends KyselyMetaStore {
  constructor(opts: SqliteMetaStoreOptions) {
    mkdirSync(dirname(opts.file), { recursive: true })
    const database = new SQLite(opts.file)
    database.pragma('journal_mode = WAL')
    database.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
    database.pragma('busy_timeout = 5000')
    database.pragma(`cache_size = -${SQLITE_CACHE_KIB}`)
    super(new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingDatabase(database) }) }))
  }

  /**
   * Writes of other processes on the same file (`pier import` while Pier serves, a `pier` command
   * beside `pier start`): reads the change sequence (`changes`, one row per package write, seq its
   * primary key) every `intervalMs` and calls `onChange` with each name written since the last
   * read, this process's own writes included (dropping a cached copy of one's own write costs one
   * re-read). A failed read is retried at the next tick, after `onLost` (some may be missed). The
   * first read starts at the sequence's end: nothing written before the watch is reported.
   * @param intervalMs ms between reads (SQLITE_CHANGES_POLL_MS)
   * @returns a function that stops the polling
   */
  async watchChanges(onChange: (name: string) => void, onLost: () => void, intervalMs = SQLITE_CHANGES_POLL_MS): Promise<() => Promise<void>> {
    let last = await this.lastChangeSeq()
    let busy: Promise<void> | undefined
    const poll = async (): Promise<void> => {
      for (;;) {
        const page = await this.changesSince(last, 1000)
        for (const c of page) {
          last = c.seq
          onChange(c.name)
        }
        if (page.length < 1000) return
      }
    }
    const timer = setInterval(() => {
      if (busy) return
      busy = poll()
        .catch(() => onLost())
        .finally(() => (busy = undefined))
    }, intervalMs)
    timer.unref()
    return async () => {
      clearInterval(timer)
      await busy
    }
  }
}
