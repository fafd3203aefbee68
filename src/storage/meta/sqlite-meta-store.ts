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
}
