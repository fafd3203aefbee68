/**
 * Whole-database reads and bulk loads for `pier backup` / `pier restore` (ops/backup.ts,
 * docs/backup.md), over the Kysely instance of a `KyselyMetaStore` (SQLite or PostgreSQL).
 *
 * - `withSnapshot` reads every table inside ONE read transaction, so everything it returns is one
 *   consistent state of the database while nodes keep writing: on SQLite (WAL) a read transaction
 *   sees the database as of its first read until it ends; on PostgreSQL the transaction is
 *   `REPEATABLE READ READ ONLY` (one snapshot for all its statements). Rows are read page by page
 *   in primary-key order (keyset pagination: `(k1, k2) > (last1, last2)`), so memory holds one page.
 * - `withBulkLoad` writes in ONE transaction: a throw anywhere rolls everything back, so a failed
 *   restore leaves the database as it was. Identity columns (`changes.seq`, `audit_log.seq`) are
 *   inserted with their values (PostgreSQL: `OVERRIDING SYSTEM VALUE`), and the sequences are moved
 *   past the largest value at the end, so later writes continue after the restored ones (SQLite's
 *   `AUTOINCREMENT` follows inserted values by itself).
 *
 * The list of tables is `BACKUP_TABLES`, typed against `Database` (schema.ts), so a table added to
 * the schema without being listed here does not compile; test/unit/backup-tables.test.ts also
 * compares it with the tables a migrated database really has.
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely'
import type { Database } from './schema.js'
import type { MetaStore } from './meta-store.js'
import { KyselyMetaStore } from './kysely-meta-store.js'
import { SqliteMetaStore } from './sqlite-meta-store.js'
import type { BackupSource, RestoreTarget, TableInfo, TableScope } from '../../ops/backup.js'

/** A metadata table's name. */
export type TableName = keyof Database

/** The SQL dialects of the metadata store. */
export type Dialect = 'sqlite' | 'postgres'

/** How one table is read and loaded. */
export interface TableSpec {
  /** Primary-key columns: the order rows are read and written in, and the keyset of the pages. */
  key: readonly string[]
  /**
   * Which rows an incremental backup (`--since SEQ`) carries (a full one carries every row):
   * `package`: the rows of the packages changed after SEQ (the `changes` table), by the column
   * `name`, which a restore replaces; `changes`: the change-feed rows after SEQ, which a restore
   * appends; `whole`: every row (tables without a change sequence), which replace the table's.
   */
  scope: TableScope
  /** Rows per page read (smaller where a row may run to megabytes: readmes, cached packuments). */
  page: number
  /** An identity / autoincrement column whose sequence `finish` moves past the restored rows. */
  sequence?: string
}

/**
 * Every table of `Database`, in the order a backup writes them and a restore loads them (there
 * are no foreign keys, so any order loads; this one reads naturally).
 */
export const BACKUP_TABLES: { readonly [K in TableName]: TableSpec } = {
  packages: { key: ['name'], scope: 'package', page: 1000 },
  versions: { key: ['name', 'version'], scope: 'package', page: 200 },
  dist_tags: { key: ['name', 'tag'], scope: 'package', page: 1000 },
  maintainers: { key: ['name', 'user_name'], scope: 'package', page: 1000 },
  stars: { key: ['name', 'user_name'], scope: 'package', page: 1000 },
  package_access: { key: ['name'], scope: 'package', page: 1000 },
  search_index: { key: ['name'], scope: 'package', page: 1000 },
  users: { key: ['name'], scope: 'whole', page: 1000 },
  tokens: { key: ['key'], scope: 'whole', page: 1000 },
  orgs: { key: ['name'], scope: 'whole', page: 1000 },
  org_members: { key: ['org', 'user_name'], scope: 'whole', page: 1000 },
  teams: { key: ['org', 'name'], scope: 'whole', page: 1000 },
  team_members: { key: ['org', 'team', 'user_name'], scope: 'whole', page: 1000 },
  team_packages: { key: ['org', 'team', 'package'], scope: 'whole', page: 1000 },
  changes: { key: ['seq'], scope: 'changes', page: 1000, sequence: 'seq' },
  audit_log: { key: ['seq'], scope: 'whole', page: 1000, sequence: 'seq' },
  uplink_packuments: { key: ['name', 'uplink'], scope: 'whole', page: 10 },
  github_cache: { key: ['key'], scope: 'whole', page: 1000 },
  web_logins: { key: ['id_hash'], scope: 'whole', page: 1000 },
  web_secrets: { key: ['name'], scope: 'whole', page: 1000 },
}

/** The table names of `BACKUP_TABLES`, in its order. */
export const TABLE_NAMES = Object.keys(BACKUP_TABLES) as TableName[]

/** `BACKUP_TABLES` as the ports of ops/backup.ts list them. */
export const TABLE_INFO: readonly TableInfo[] = TABLE_NAMES.map((name) => ({ name, scope: BACKUP_TABLES[name].scope }))

/** Whether `name` is a table `BACKUP_TABLES` lists (a backup's entry names are checked with it). */
export function isTableName(name: string): name is TableName {
  return Object.prototype.hasOwnProperty.call(BACKUP_TABLES, name)
}

/** One row as the driver returns it: column name → string, number or null (the schema has no other types). */
export type Row = Record<string, unknown>

/** Distinct blob keys per query of `blobKeys`. */
const KEY_PAGE = 1000

/** The Kysely instance and dialect of a store. @throws Error for a store that is not a KyselyMetaStore */
function access(store: MetaStore): { db: Kysely<Database>; dialect: Dialect } {
  if (!(store instanceof KyselyMetaStore)) throw new Error('backup and restore need the SQL metadata store (SQLite or PostgreSQL)')
  return { db: store.backupDatabase(), dialect: store instanceof SqliteMetaStore ? 'sqlite' : 'postgres' }
}

/** `<col> in (names of the packages changed after since)`. */
function changedAfter(since: number, col = 'name'): RawBuilder<unknown> {
  return sql`${sql.ref(col)} in (select name from changes where seq > ${since})`
}

/** The rows a backup carries of `table` (incremental when `since` is given), as SQL conditions. */
function scopeConditions(table: TableName, since: number | undefined): RawBuilder<unknown>[] {
  if (since === undefined) return []
  const { scope } = BACKUP_TABLES[table]
  if (scope === 'package') return [changedAfter(since)]
  if (scope === 'changes') return [sql`seq > ${since}`]
  return []
}

/** `name` as a table name. @throws Error for a name `BACKUP_TABLES` does not list */
function tableOf(name: string): TableName {
  if (!isTableName(name)) throw new Error(`unknown metadata table ${JSON.stringify(name)}`)
  return name
}

function where(conds: RawBuilder<unknown>[]): RawBuilder<unknown> {
  return conds.length === 0 ? sql`` : sql`where ${sql.join(conds, sql` and `)}`
}

/** A `BackupSource` of this database (ops/backup.ts). */
export interface MetaSnapshot extends BackupSource {
  readonly dialect: Dialect
}

/**
 * Runs `fn` inside one read transaction of the store's database (see the file comment).
 * @throws Error for a store other than SQLite or PostgreSQL; the driver's errors; what `fn` throws
 */
export async function withSnapshot<T>(store: MetaStore, fn: (s: MetaSnapshot) => Promise<T>): Promise<T> {
  const { db, dialect } = access(store)
  const t = db.transaction()
  const builder = dialect === 'postgres' ? t.setIsolationLevel('repeatable read').setAccessMode('read only') : t
  return builder.execute((trx) => fn(snapshotOf(trx, dialect)))
}

function blobKeyConditions(since: number | undefined): RawBuilder<unknown>[] {
  if (since === undefined) return []
  return [changedAfter(since, 'v.name'), sql`v.published >= (select min(c.created) from changes c where c.name = v.name and c.seq > ${since})`]
}

function snapshotOf(trx: Transaction<Database>, dialect: Dialect): MetaSnapshot {
  return {
    dialect,
    tables: TABLE_INFO,
    async migrations() {
      const r = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(trx)
      return r.rows.map((x) => x.name)
    },
    async highWater() {
      const r = await sql<{ n: number | string | null }>`select max(seq) as n from changes`.execute(trx)
      return Number(r.rows[0]?.n ?? 0)
    },
    async count(name, since) {
      const table = tableOf(name)
      const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} ${where(scopeConditions(table, since))}`.execute(trx)
      return Number(r.rows[0]?.n ?? 0)
    },
    async *rows(name, since) {
      const table = tableOf(name)
      const spec = BACKUP_TABLES[table]
      const keys = sql.join(spec.key.map((k) => sql.ref(k)))
      let last: Row | undefined
      while (true) {
        const conds = scopeConditions(table, since)
        if (last) {
          const after = last
          conds.push(sql`(${keys}) > (${sql.join(spec.key.map((k) => after[k]))})`)
        }
        const r = await sql<Row>`select * from ${sql.table(table)} ${where(conds)} order by ${keys} limit ${spec.page}`.execute(trx)
        yield* r.rows
        last = r.rows.at(-1)
        if (r.rows.length < spec.page) break
      }
    },
    async *blobKeys(since) {
      let last: string | undefined
      while (true) {
        const conds = blobKeyConditions(since)
        if (last !== undefined) conds.push(sql`v.tarball_key > ${last}`)
        const r = await sql<{ k: string }>`select distinct v.tarball_key as k from versions v ${where(conds)} order by v.tarball_key limit ${KEY_PAGE}`.execute(trx)
        for (const row of r.rows) yield row.k
        last = r.rows.at(-1)?.k
        if (r.rows.length < KEY_PAGE) break
      }
    },
    async countBlobKeys(since) {
      const r = await sql<{ n: number | string }>`select count(distinct v.tarball_key) as n from versions v ${where(blobKeyConditions(since))}`.execute(trx)
      return Number(r.rows[0]?.n ?? 0)
    },
  }
}

/** A `RestoreTarget` of this database (ops/backup.ts). */
export interface MetaLoader extends RestoreTarget {
  readonly dialect: Dialect
}

/**
 * Runs `fn` inside one write transaction of the store's database: it commits when `fn` resolves
 * and rolls back when it throws (nothing of the load remains).
 * @throws Error for a store other than SQLite or PostgreSQL; the driver's errors; what `fn` throws
 */
export async function withBulkLoad<T>(store: MetaStore, fn: (l: MetaLoader) => Promise<T>): Promise<T> {
  const { db, dialect } = access(store)
  return db.transaction().execute((trx) => fn(loaderOf(trx, dialect)))
}

/** Names per `in (...)` list. */
const NAMES_PER_QUERY = 500

function loaderOf(trx: Transaction<Database>, dialect: Dialect): MetaLoader {
  const snap = snapshotOf(trx, dialect)
  return {
    dialect,
    tables: TABLE_INFO,
    migrations: () => snap.migrations(),
    highWater: () => snap.highWater(),
    async counts() {
      const out: Record<string, number> = {}
      for (const t of TABLE_NAMES) out[t] = await snap.count(t)
      return out
    },
    async deletePackages(names) {
      for (let i = 0; i < names.length; i += NAMES_PER_QUERY) {
        const part = names.slice(i, i + NAMES_PER_QUERY)
        for (const t of TABLE_NAMES) {
          if (BACKUP_TABLES[t].scope !== 'package') continue
          await sql`delete from ${sql.table(t)} where name in (${sql.join(part)})`.execute(trx)
        }
      }
    },
    async clear(name) {
      await sql`delete from ${sql.table(tableOf(name))}`.execute(trx)
    },
    async insert(name, rows) {
      const table = tableOf(name)
      const first = rows[0]
      if (!first) return
      const cols = Object.keys(first)
      const spec = BACKUP_TABLES[table]
      const override = dialect === 'postgres' && spec.sequence !== undefined && cols.includes(spec.sequence) ? sql`overriding system value` : sql``
      const conflict = spec.scope === 'changes' ? sql`on conflict do nothing` : sql``
      const values = sql.join(rows.map((r) => sql`(${sql.join(cols.map((c) => r[c] ?? null))})`))
      await sql`insert into ${sql.table(table)} (${sql.join(cols.map((c) => sql.ref(c)))}) ${override} values ${values} ${conflict}`.execute(trx)
    },
    async *tarballKeys(names) {
      if (names === undefined) {
        yield* snap.blobKeys()
        return
      }
      for (let i = 0; i < names.length; i += NAMES_PER_QUERY) {
        const part = names.slice(i, i + NAMES_PER_QUERY)
        const r = await sql<{ k: string }>`select distinct tarball_key as k from versions where name in (${sql.join(part)})`.execute(trx)
        for (const row of r.rows) yield row.k
      }
    },
    async finish() {
      if (dialect !== 'postgres') return
      for (const t of TABLE_NAMES) {
        const col = BACKUP_TABLES[t].sequence
        if (!col) continue
        await sql`select setval(pg_get_serial_sequence(${t}, ${col}), coalesce((select max(${sql.ref(col)}) from ${sql.table(t)}), 0) + 1, false)`.execute(trx)
      }
    },
  }
}

/**
 * The tables a migrated database really has (Kysely's own and the engine's left out), sorted: for
 * the test that `BACKUP_TABLES` lists every one. SQLite's `search_fts` (migration 0008) and its
 * FTS5 shadow tables are left out too: an index over `search_index` kept by triggers, so a
 * restore's inserts into `search_index` rebuild it and a backup need not carry it.
 * @throws as `access`; the driver's error
 */
export async function liveTables(store: MetaStore): Promise<string[]> {
  const { db, dialect } = access(store)
  const r =
    dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db)
      : await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`.execute(db)
  return r.rows
    .map((x) => x.name)
    .filter((n) => !n.startsWith('kysely_') && !n.startsWith('sqlite_') && !/^search_fts(_(data|idx|docsize|config|content))?$/.test(n))
    .sort()
}
