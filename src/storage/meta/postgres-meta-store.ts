/**
 * The shared metadata store for several Pier nodes: PostgreSQL through node-postgres (`pg`).
 * Same queries as SQLite (KyselyMetaStore); the differences are the migrations (identity column,
 * "C" collation), row locks in write transactions, the change-feed lock, REPEATABLE READ package
 * reads, ILIKE search, an advisory lock so that nodes starting together migrate one at a time,
 * and session settings that keep JIT and parallel workers off Pier's short queries.
 */
import { Kysely, PostgresDialect, sql, type Migration } from 'kysely'
import pg from 'pg'
import type { Database } from './schema.js'
import { CHANGES_CHANNEL, KyselyMetaStore, PREPARED_MARK } from './kysely-meta-store.js'
import * as m0001 from './migrations/postgres/0001-init.js'
import * as m0002 from './migrations/0002-uplink-cache.js'
import * as m0003 from './migrations/0003-accounts.js'
import * as m0004 from './migrations/0004-orgs.js'
import * as m0005 from './migrations/0005-github-cache.js'
import * as m0006 from './migrations/0006-web-login.js'
import * as m0007 from './migrations/0007-search-index.js'
import * as m0008 from './migrations/0008-search-trigrams.js'

/**
 * PostgreSQL's migrations in name order, the same names as SQLite's (`SQLITE_MIGRATIONS`): its own
 * where the SQL differs (0001), the shared portable ones otherwise. Each is frozen in time.
 */
export const POSTGRES_MIGRATIONS: Record<string, Migration> = { '0001-init': m0001, '0002-uplink-cache': m0002, '0003-accounts': m0003.postgres, '0004-orgs': m0004, '0005-github-cache': m0005, '0006-web-login': m0006, '0007-search-index': m0007, '0008-search-trigrams': m0008.postgres }

/** Session advisory lock key held by the node that is migrating. */
export const MIGRATION_LOCK_KEY = 0x7069_6572_0002 // "pier" 0002

/**
 * Settings of every pooled session, run when a connection opens (node-postgres queues it ahead
 * of the connection's first query). Pier's queries are index lookups of a few rows; without
 * statistics (a database never analysed, or a bulk load that autovacuum has not caught up
 * with) the planner estimates thousands of rows for `versions WHERE name = $1`, and above
 * `jit_above_cost` and the parallel thresholds it then compiles the query with LLVM and starts
 * parallel workers: measured at 1M versions, 50–120 ms of JIT and 5–9 ms of worker start-up
 * for a read whose execution takes 0.1 ms (docs/performance.md, "PostgreSQL at 1M versions").
 * PostgreSQL documents JIT as meant for long-running analytical queries (§32.2, "When to JIT?").
 */
export const POSTGRES_SESSION_SETTINGS = 'set jit = off; set max_parallel_workers_per_gather = 0'

/** Options of the PostgreSQL store. */
export interface PostgresMetaStoreOptions {
  /** Connection string, `postgres://user:password@host:5432/database`. */
  url: string
  /** Connections in the pool (default 10); at least 2 (migration holds one for its lock). */
  poolSize?: number
  /**
   * Send the statements kysely-meta-store.ts marks (`PREPARED_MARK`) as named prepared
   * statements (`preparedStatements`); default true. `storage.meta.prepared_statements`.
   */
  preparedStatements?: boolean
  /** Told about errors of idle pooled connections (e.g. the server restarted); default: ignored, the pool replaces them. */
  onPoolError?: (err: Error) => void
}

/** Most statement texts kept as named prepared statements (each text is fixed; a bound against a leak). */
export const MAX_PREPARED_TEXTS = 64

/** Statement name by text, shared by every connection of the process (each parses a name once). */
const preparedNames = new Map<string, string>()

/**
 * Makes `client` send each statement whose text ends with `PREPARED_MARK` (kysely-meta-store.ts)
 * as a named prepared statement: node-postgres then parses it once per connection and later
 * sends only Bind/Execute (its `query({ name, text, values })`), so PostgreSQL plans it once
 * per connection instead of at every execution. Kysely calls `client.query(text, values)`;
 * other calls (a cursor, a config object, a callback) pass through untouched. Beyond
 * MAX_PREPARED_TEXTS distinct texts, a marked statement runs unnamed, as before.
 */
export function preparedStatements(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const [text, values] = args
    if (args.length <= 2 && typeof text === 'string' && text.endsWith(PREPARED_MARK)) {
      let name = preparedNames.get(text)
      if (name === undefined && preparedNames.size < MAX_PREPARED_TEXTS) {
        name = `pier_${preparedNames.size}`
        preparedNames.set(text, name)
      }
      if (name !== undefined) return query({ name, text, values })
    }
    return query(...args)
  }
}

/** MetaStore on PostgreSQL; any number of Pier nodes may share one database. */
export class PostgresMetaStore extends KyselyMetaStore {
  private readonly url: string
  private readonly onPoolError: ((err: Error) => void) | undefined

  constructor(opts: PostgresMetaStoreOptions) {
    const pool = new pg.Pool({ connectionString: opts.url, max: Math.max(2, opts.poolSize ?? 10) })
    // An idle client's error is emitted on the pool; unhandled, it would end the process.
    pool.on('error', (err) => opts.onPoolError?.(err))
    pool.on('connect', (client) => {
      // A connection ended by the server while checked out (the database dropped or restarted
      // under a query) emits `error` on its client, where the pool listens only while it is
      // idle: unheard, it would end the process. Nothing to report here: the query in flight
      // fails with the same error, and an idle client's reaches `onPoolError` through the pool.
      client.on('error', () => undefined)
      if (opts.preparedStatements !== false) preparedStatements(client)
      // Ignored when refused (a server before PostgreSQL 11 has no `jit`): the session runs as before.
      void client.query(POSTGRES_SESSION_SETTINGS).catch(() => undefined)
    })
    super(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), {
      migrations: POSTGRES_MIGRATIONS,
      concurrentWriters: true,
      dialect: 'postgres',
    })
    this.url = opts.url
    this.onPoolError = opts.onPoolError
  }

  /**
   * LISTENs on `CHANGES_CHANNEL` with a connection of its own (not from the pool). When that
   * connection fails it calls `onLost`, then reconnects after `retryMs` (1000 ms), again and again
   * until stopped (the first connection too), and calls `onLost` once more when listening again
   * (writes in between were missed). Never throws.
   */
  async watchChanges(onChange: (name: string) => void, onLost: () => void, retryMs = 1000): Promise<() => Promise<void>> {
    let stopped = false
    let client: pg.Client | undefined
    let timer: NodeJS.Timeout | undefined
    /** No connection listened for a while (the first connect failed, or one dropped). */
    let missed = false
    const retry = (): void => {
      missed = true
      if (stopped) return
      timer = setTimeout(() => {
        connect().catch((e: unknown) => {
          this.onPoolError?.(e as Error)
          retry()
        })
      }, retryMs)
      timer.unref()
    }
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.url })
      let live = false
      const lost = (err?: Error): void => {
        if (!live) return // a failed connect: the caller of connect() sees the rejection
        live = false
        if (err) this.onPoolError?.(err)
        if (client === c) client = undefined
        void c.end().catch(() => undefined)
        if (stopped) return
        onLost()
        retry()
      }
      c.on('error', lost)
      c.on('end', () => lost())
      c.on('notification', (n) => {
        if (n.channel === CHANGES_CHANNEL && n.payload) onChange(n.payload)
      })
      try {
        await c.connect()
        await c.query(`listen ${CHANGES_CHANNEL}`)
      } catch (e) {
        await c.end().catch(() => undefined)
        throw e
      }
      if (stopped) {
        await c.end()
        return
      }
      live = true
      client = c
      // Writes committed while no connection listened were missed: drop everything once more.
      if (missed) onLost()
      missed = false
    }
    try {
      await connect()
    } catch (e) {
      this.onPoolError?.(e as Error)
      onLost()
      retry()
    }
    return async () => {
      stopped = true
      if (timer) clearTimeout(timer)
      const c = client
      client = undefined
      await c?.end().catch(() => undefined)
    }
  }


  /**
   * Applies pending migrations while holding a session advisory lock on one connection, so when
   * several nodes start at once one migrates and the others wait, then find nothing to do.
   */
  override async migrate(): Promise<void> {
    await this.db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn)
      try {
        await super.migrate()
      } finally {
        await sql`select pg_advisory_unlock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn)
      }
    })
  }
}
