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

/** How often a SQLite store looks for writes of other processes (`watchChanges`), ms. */
export const SQLITE_CHANGES_POLL_MS = 1000

/** MetaStore on one SQLite file (WAL, busy_timeout 5 s; Kysely serialises queries on one connection). */
export class SqliteMetaStore extends KyselyMetaStore {
  constructor(opts: SqliteMetaStoreOptions) {
    mkdirSync(dirname(opts.file), { recursive: true })
    const database = new SQLite(opts.file)
    database.pragma('journal_mode = WAL')
    database.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
    database.pragma('busy_timeout = 5000')
    super(new Kysely<Database>({ dialect: new SqliteDialect({ database }) }))
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
