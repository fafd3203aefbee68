/**
 * MetaStore over Kysely: the SQL shared by every dialect. `SqliteMetaStore` (sqlite-meta-store.ts)
 * and `PostgresMetaStore` (postgres-meta-store.ts) supply the dialect, their migrations and
 * whether writers need locks (`KyselyMetaStoreOptions`).
 */
import { randomBytes } from 'node:crypto'
import { Kysely, Migrator, sql, type Migration, type MigrationProvider, type Transaction, type TransactionBuilder } from 'kysely'
import type { CachedPackumentRow, Database, PackageRow, TokenRow, UserRow, VersionRow } from './schema.js'
import type { MetaStore } from './meta-store.js'
import { cachedTarballKeys } from '../../registry/blob-references.js'
import type { AuditAction, AuditEntry, AuditQuery, AuditRecord } from '../../registry/audit-log.js'
import { ACCESS_CHANGED, type AccessDirectorySnapshot, type OrgRole, type OrgTx, type PackageMfa, type PackageVisibility, type TeamPermission } from '../../registry/orgs.js'
import type { PackageChange, PackageStamp, PackageTx, SearchHit } from '../../registry/stores.js'
import type { WebLoginRecord } from '../../auth/web-login.js'
import type { Person, StoredPackument } from '../../registry/types.js'
import * as m0001 from './migrations/0001-init.js'
import * as m0002 from './migrations/0002-uplink-cache.js'
import * as m0003 from './migrations/0003-accounts.js'
import * as m0004 from './migrations/0004-orgs.js'
import * as m0005 from './migrations/0005-github-cache.js'
import * as m0006 from './migrations/0006-web-login.js'
import * as m0007 from './migrations/0007-search-index.js'
import * as m0008 from './migrations/0008-search-trigrams.js'
import { searchText } from './migrations/0007-search-index.js'

/**
 * Rewrites `name`'s row of `search_index` (migration 0007) from its live `latest` version, or
 * removes it when there is none; run by every `_rev` bump, in the write's transaction.
 * @param known the live `latest` manifest when the transaction itself wrote it (a publish tagged
 *   `latest`): then it is not read back. `undefined`: read it.
 * The row is written only when its text changes (an `ON CONFLICT … DO UPDATE … WHERE`), so a
 * publish that keeps the name, description and keywords leaves the trigram index untouched.
 */
async function refreshSearchRow(trx: Transaction<Database>, name: string, known?: string): Promise<void> {
  const manifest =
    known ??
    (
      await trx
        .selectFrom('dist_tags')
        .innerJoin('versions', (j) => j.onRef('versions.name', '=', 'dist_tags.name').onRef('versions.version', '=', 'dist_tags.version'))
        .select('versions.manifest')
        .where('dist_tags.name', '=', name)
        .where('dist_tags.tag', '=', 'latest')
        .where('versions.unpublished', 'is', null)
        .executeTakeFirst()
    )?.manifest
  if (manifest === undefined) {
    await trx.deleteFrom('search_index').where('name', '=', name).execute()
    return
  }
  const text = searchText(name, manifest)
  await trx
    .insertInto('search_index')
    .values({ name, text })
    .onConflict((oc) => oc.column('name').doUpdateSet({ text }).where('search_index.text', '<>', text))
    .execute()
}

/** The first row's JSON of `readPackagePostgres`: the package row and what hangs off it, in `readPackage`'s orders. */
interface PostgresPackageMeta {
  pkg: PackageRow
  /** `[tag, version]`, by tag. */
  tags: [string, string][]
  /** `[user name, e-mail or null]`, by user name. */
  maintainers: [string, string | null][]
  /** User names, sorted. */
  stars: string[]
}

/** A package row's `_rev` after this transaction's bumps (`KyselyMetaTx.bumpRev` on PostgreSQL). */
interface PendingRev {
  rev_seq: number
  rev_hash: string
  modified: string
}

/**
 * PostgreSQL's end of a package transaction (`KyselyMetaTx.flush`) in one statement: writes the
 * package rows' `_rev` bumps (`revs`) and the search rows (`search`, rewritten only where the
 * text changed), takes the change-feed lock (`CHANGES_LOCK_KEY`), NOTIFYs each of `names` on
 * `CHANGES_CHANNEL`, inserts the audit entries and the change-feed rows, each in the order given.
 * The lock is a CTE the insert's rows are joined with, so it is held before any `seq` is drawn;
 * the rows come from `unnest … with ordinality`, ordered, so `seq` follows `changes`' order.
 * Each data-modifying CTE runs once, to completion, whether or not the insert reads it
 * (PostgreSQL §7.8.4); they write different tables, one row per key (names are unique in
 * `revs` and in `search`), so the shared snapshot changes nothing.
 */
async function appendChangesPostgres(
  trx: Transaction<Database>,
  changes: readonly { name: string; rev: string; deleted: number; created: string }[],
  names: readonly string[],
  audit: readonly AuditEntry[],
  revs: ReadonlyMap<string, PendingRev> = new Map(),
  search: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  const r = [...revs]
  const revCte =
    r.length === 0
      ? sql``
      : sql`, r as (update packages p set rev_seq = u.rev_seq, rev_hash = u.rev_hash, modified = u.modified
          from unnest(${r.map(([n]) => n)}::text[], ${r.map(([, v]) => v.rev_seq)}::integer[], ${r.map(([, v]) => v.rev_hash)}::text[],
            ${r.map(([, v]) => v.modified)}::text[]) as u(name, rev_seq, rev_hash, modified)
          where p.name = u.name)`
  const t = [...search]
  const searchCte =
    t.length === 0
      ? sql``
      : sql`, s as (insert into search_index (name, text)
          select u.name, u.text from unnest(${t.map(([n]) => n)}::text[], ${t.map(([, x]) => x)}::text[]) as u(name, text)
          on conflict (name) do update set text = excluded.text where search_index.text <> excluded.text)`
  const auditCte =
    audit.length === 0
      ? sql``
      : sql`, a as (insert into audit_log (at, actor, token, ip, action, package, details)
          select at, actor, token, ip, action, package, details
          from unnest(${audit.map((e) => e.at)}::text[], ${audit.map((e) => e.actor)}::text[], ${audit.map((e) => e.token)}::text[],
            ${audit.map((e) => e.ip)}::text[], ${audit.map((e) => e.action)}::text[], ${audit.map((e) => e.package)}::text[],
            ${audit.map((e) => JSON.stringify(e.details))}::text[]) with ordinality as u(at, actor, token, ip, action, package, details, ord)
          order by ord)`
  await sql`with l as materialized (select pg_advisory_xact_lock(${sql.lit(CHANGES_LOCK_KEY)})),
      n as materialized (select count(pg_notify(${CHANGES_CHANNEL}, x)) from unnest(${names}::text[]) as x)${revCte}${searchCte}${auditCte}
    insert into changes (name, rev, deleted, created)
    select c.name, c.rev, c.deleted, c.created
    from l, n, unnest(${changes.map((c) => c.name)}::text[], ${changes.map((c) => c.rev)}::text[], ${changes.map((c) => c.deleted)}::integer[],
      ${changes.map((c) => c.created)}::text[]) with ordinality as c(name, rev, deleted, created, ord)
    order by c.ord${PREPARED}`.execute(trx)
}

/** Inserts one audit-log entry with `db` (the store, or a transaction). */
async function insertAudit(db: Kysely<Database>, e: AuditEntry): Promise<void> {
  await db.insertInto('audit_log').values({ ...e, details: JSON.stringify(e.details) }).execute()
}

/** SQLite's migrations in name order; each is frozen in time. */
export const SQLITE_MIGRATIONS: Record<string, Migration> = { '0001-init': m0001, '0002-uplink-cache': m0002, '0003-accounts': m0003.sqlite, '0004-orgs': m0004, '0005-github-cache': m0005, '0006-web-login': m0006, '0007-search-index': m0007, '0008-search-trigrams': m0008.sqlite }

/**
 * Advisory lock key (`pg_advisory_xact_lock`) serialising appends to `changes` on PostgreSQL, so
 * `seq` order is commit order: a sequence hands out numbers at insert time, and without the lock a
 * later-committing transaction could hold a lower `seq` than one a `_changes` reader already saw.
 */
export const CHANGES_LOCK_KEY = 0x7069_6572_0001 // "pier" 0001
/** Transaction advisory lock key held while a sign-up checks `max_users` and inserts (PostgreSQL). */
export const USERS_LOCK_KEY = 0x7069_6572_0003 // "pier" 0003
/**
 * PostgreSQL NOTIFY channel: every committed write of a package sends its name here (payload: the
 * package name), so the other nodes drop their cached copy at once instead of at `max_staleness`.
 */
export const CHANGES_CHANNEL = 'pier_packages'

/**
 * The comment that ends the text of a statement PostgreSQL should keep prepared: the store's
 * pooled connections (postgres-meta-store.ts `preparedStatements`) send a statement whose text
 * ends with it as a named prepared statement, parsed and planned once per connection
 * (PostgreSQL §55.2.3, the extended query protocol), instead of on every execution. Measured
 * 2026-12-02 on the bench machine: `readPackage`'s statement took 1.20 ms unnamed and 0.30 ms
 * named (p50, 2,000 runs each, a warm connection; `select $1` took 0.07 ms), nearly all of it
 * planning. Only for statements whose text is fixed (no lists of varying length) and whose
 * result columns are named, not `*`: a prepared `*` fails with "cached plan must not change
 * result type" once another node's migration adds a column. SQLite ignores the comment.
 */
export const PREPARED_MARK = ' /* pier:prepared */'
/** Every column of `tokens`, by name (the compiler checks that none is missing). */
const TOKEN_COLUMNS = ['key', 'token_prefix', 'user_name', 'readonly', 'cidr_whitelist', 'description', 'name', 'expires', 'last_used', 'grants', 'created', 'updated'] as const
const TOKEN_COLUMNS_COMPLETE: Exclude<keyof TokenRow, (typeof TOKEN_COLUMNS)[number]> extends never ? true : never = true
void TOKEN_COLUMNS_COMPLETE
/** `PREPARED_MARK` for a Kysely builder's `modifyEnd`, or the end of a raw `sql` statement. */
const PREPARED = sql.raw(PREPARED_MARK)

class StaticMigrations implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations
  }
}

/** Version rows per query of `referencedBlobKeys` (three short columns each). */
const VERSION_PAGE = 1000
/** Cached packuments per query of `referencedBlobKeys` (a popular package's text runs to megabytes). */
const CACHED_PAGE = 10

/** What differs between the dialects. */
export interface KyselyMetaStoreOptions {
  /** The dialect's migrations, same names and logical schema on every dialect. Default: SQLite's. */
  migrations?: Record<string, Migration>
  /**
   * Several connections may write at once (PostgreSQL): `MetaTx.getPackage` takes the row lock
   * (`SELECT … FOR UPDATE`), the change-feed append before commit takes the change-feed lock,
   * and `readPackage` reads one REPEATABLE READ snapshot. SQLite has one writer and needs none of it.
   */
  concurrentWriters?: boolean
  /**
   * The SQL dialect (default `sqlite`), for what portable SQL cannot say alike: the trigram
   * index search narrows with (migration 0008: SQLite's FTS5 `search_fts` table; PostgreSQL's
   * pg_trgm GIN index serves the `LIKE` filters themselves), the prefix query of
   * `scopeHasPackages`, and `ILIKE` where a case-insensitive match is meant (PostgreSQL's `LIKE`
   * is case-sensitive).
   */
  dialect?: 'sqlite' | 'postgres'
}

/** MetaStore implemented with portable Kysely queries. */
export class KyselyMetaStore implements MetaStore {
  private readonly migrations: Record<string, Migration>
  private readonly concurrentWriters: boolean
  private readonly likeOp: 'like' | 'ilike'
  private readonly dialect: 'sqlite' | 'postgres'

  constructor(
    protected readonly db: Kysely<Database>,
    opts: KyselyMetaStoreOptions = {},
  ) {
    this.migrations = opts.migrations ?? SQLITE_MIGRATIONS
    this.concurrentWriters = opts.concurrentWriters ?? false
    this.dialect = opts.dialect ?? 'sqlite'
    // PostgreSQL's LIKE is case-sensitive: the dependents prefilter uses ILIKE there.
    this.likeOp = this.dialect === 'postgres' ? 'ilike' : 'like'
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: new StaticMigrations(this.migrations) })
    const { error } = await migrator.migrateToLatest()
    if (error) throw error instanceof Error ? error : new Error(String(error))
  }

  /** The transaction `readPackage` reads in: one consistent snapshot of the package's rows. */
  private snapshot(): TransactionBuilder<Database> {
    const t = this.db.transaction()
    return this.concurrentWriters ? t.setIsolationLevel('repeatable read').setAccessMode('read only') : t
  }

  async close(): Promise<void> {
    await this.db.destroy()
  }

  /** `select 1` on a pooled connection (SQLite: the one connection, after any running transaction). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db)
  }

  /** Keyset pagination in primary-key order: (name, version), then (name, uplink). */
  async *referencedBlobKeys(): AsyncIterable<string> {
    let lastVersion: { name: string; version: string } | undefined
    while (true) {
      const after = lastVersion
      const rows = await this.db
        .selectFrom('versions')
        .select(['name', 'version', 'tarball_key'])
        .$if(after !== undefined, (q) => q.where((eb) => eb(eb.refTuple('name', 'version'), '>', eb.tuple(after?.name ?? '', after?.version ?? ''))))
        .orderBy('name')
        .orderBy('version')
        .limit(VERSION_PAGE)
        .execute()
      for (const r of rows) yield r.tarball_key
      lastVersion = rows.at(-1)
      if (rows.length < VERSION_PAGE) break
    }
    let lastCached: { name: string; uplink: string } | undefined
    while (true) {
      const after = lastCached
      const rows = await this.db
        .selectFrom('uplink_packuments')
        .select(['name', 'uplink', 'body'])
        .$if(after !== undefined, (q) => q.where((eb) => eb(eb.refTuple('name', 'uplink'), '>', eb.tuple(after?.name ?? '', after?.uplink ?? ''))))
        .orderBy('name')
        .orderBy('uplink')
        .limit(CACHED_PAGE)
        .execute()
      for (const r of rows) yield* cachedTarballKeys(r.body)
      lastCached = rows.at(-1)
      if (rows.length < CACHED_PAGE) break
    }
  }

  async readPackage(name: string, opts: { readmes?: 'all' | 'latest' } = {}): Promise<StoredPackument | undefined> {
    // PostgreSQL: one statement (one round trip, one snapshot) instead of seven.
    return this.dialect === 'postgres' ? this.readPackagePostgres(name, opts) : this.readPackageInTransaction(name, opts)
  }

  /**
   * `readPackage` on PostgreSQL in one statement, where the transaction below takes seven round
   * trips (begin, the package row, its versions, dist-tags, maintainers and stars, commit): a
   * cold packument GET waits on each. One statement reads one snapshot (PostgreSQL §13.2.1), so
   * it is as consistent as the transaction. The first row carries the package row, dist-tags,
   * maintainers and stars as one JSON value (every column is text or integer, so JSON keeps their
   * types); the version rows follow as rows, decoded as the transaction's query decodes them
   * (their manifests are not escaped into JSON and parsed back). The rare `readmes: 'latest'`
   * case whose `latest` names no live version needs every readme: the transaction reads it.
   */
  private async readPackagePostgres(name: string, opts: { readmes?: 'all' | 'latest' }): Promise<StoredPackument | undefined> {
    const onlyLatest = opts.readmes === 'latest'
    const readme = onlyLatest
      ? sql`case when v.version = (select t.version from dist_tags t where t.name = v.name and t.tag = 'latest') then v.readme end`
      : sql`v.readme`
    const { rows } = await sql<VersionRow & { k: number; meta: PostgresPackageMeta | null }>`
      select 0 as k,
        json_build_object(
          'pkg', row_to_json(p),
          'tags', (select coalesce(json_agg(json_build_array(t.tag, t.version) order by t.tag), '[]'::json) from dist_tags t where t.name = p.name),
          'maintainers', (select coalesce(json_agg(json_build_array(m.user_name, u.email) order by m.user_name), '[]'::json)
            from maintainers m left join users u on u.name = m.user_name where m.name = p.name),
          'stars', (select coalesce(json_agg(s.user_name order by s.user_name), '[]'::json) from stars s where s.name = p.name)
        ) as meta,
        null::text as name, null::text as version, null::text as manifest, null::text as readme, null::text as readme_filename,
        null::text as integrity, null::text as shasum, null::text as tarball_key, null::integer as size, null::text as published,
        null::text as unpublished
      from packages p where p.name = ${name}
      union all
      select 1, null, v.name, v.version, v.manifest, ${readme}, v.readme_filename, v.integrity, v.shasum, v.tarball_key, v.size,
        v.published, v.unpublished
      from versions v where v.name = ${name}
      order by k, published, version${PREPARED}`.execute(this.db)
    const first = rows[0]
    if (!first?.meta) return undefined
    const { pkg, tags, maintainers: people, stars } = first.meta
    const versions: VersionRow[] = []
    for (let i = 1; i < rows.length; i++) {
      const { k: _k, meta: _meta, ...v } = rows[i] as VersionRow & { k: number; meta: null }
      versions.push(v)
    }
    const distTags: Record<string, string> = {}
    for (const [tag, version] of tags) distTags[tag] = version
    const maintainers: Person[] = people.map(([n, email]) => (email ? { name: n, email } : { name: n }))
    const state: StoredPackument = { pkg, versions, distTags, maintainers, stars }
    if (!onlyLatest) return state
    if (!versions.some((v) => v.version === distTags.latest && v.unpublished === null)) return this.readPackageInTransaction(name, opts)
    return { ...state, readmes: 'latest' }
  }

  /** `readPackage` as one transaction of several reads (SQLite, where a read costs no round trip). */
  private async readPackageInTransaction(name: string, opts: { readmes?: 'all' | 'latest' }): Promise<StoredPackument | undefined> {
    const onlyLatest = opts.readmes === 'latest'
    // One transaction so the snapshot is consistent (a publish cannot land between the reads).
    return this.snapshot().execute(async (trx) => {
      const pkg = await trx.selectFrom('packages').selectAll().where('name', '=', name).executeTakeFirst()
      if (!pkg) return undefined
      const versionRows = onlyLatest
        ? trx
            .selectFrom('versions')
            .select(['name', 'version', 'manifest', 'readme_filename', 'integrity', 'shasum', 'tarball_key', 'size', 'published', 'unpublished'])
            // The readme of the version `latest` names only (a primary-key lookup per row).
            .select(sql<string | null>`case when version = (select t.version from dist_tags t where t.name = versions.name and t.tag = 'latest') then readme end`.as('readme'))
        : trx.selectFrom('versions').selectAll()
      const [versions, tags, maint, stars] = await Promise.all([
        versionRows.where('name', '=', name).orderBy('published').orderBy('version').execute(),
        trx.selectFrom('dist_tags').select(['tag', 'version']).where('name', '=', name).orderBy('tag').execute(),
        trx
          .selectFrom('maintainers')
          .leftJoin('users', 'users.name', 'maintainers.user_name')
          .select(['maintainers.user_name as name', 'users.email as email'])
          .where('maintainers.name', '=', name)
          .orderBy('maintainers.user_name')
          .execute(),
        trx.selectFrom('stars').select('user_name').where('name', '=', name).orderBy('user_name').execute(),
      ])
      const distTags: Record<string, string> = {}
      for (const t of tags) distTags[t.tag] = t.version
      const maintainers: Person[] = maint.map((m) => (m.email ? { name: m.name, email: m.email } : { name: m.name }))
      const state: StoredPackument = { pkg, versions, distTags, maintainers, stars: stars.map((s) => s.user_name) }
      if (!onlyLatest) return state
      // No live version under `latest`: the packument shows the highest live version's readme
      // (packument.ts), which SQL cannot pick by semver; read them all, as for `readmes: 'all'`.
      if (!versions.some((v) => v.version === distTags.latest && v.unpublished === null)) {
        const readmes = await trx.selectFrom('versions').select(['version', 'readme']).where('name', '=', name).execute()
        const byVersion = new Map(readmes.map((r) => [r.version, r.readme]))
        for (const v of versions) v.readme = byVersion.get(v.version) ?? null
        return state
      }
      return { ...state, readmes: 'latest' }
    })
  }

  async packageStamp(name: string): Promise<PackageStamp | undefined> {
    // The maintainers as one JSON array of [name, email] pairs in readPackage's order (PostgreSQL's
    // json, parsed by node-postgres; SQLite's text).
    const list =
      this.dialect === 'postgres'
        ? sql<[string, string | null][] | string>`(select coalesce(json_agg(json_build_array(m.user_name, u.email) order by m.user_name), '[]'::json) from maintainers m left join users u on u.name = m.user_name where m.name = packages.name)`
        : sql<[string, string | null][] | string>`(select json_group_array(json_array(user_name, email)) from (select m.user_name, u.email from maintainers m left join users u on u.name = m.user_name where m.name = packages.name order by m.user_name))`
    const row = await this.db.selectFrom('packages').select(['rev_seq', 'rev_hash']).select(list.as('people')).where('packages.name', '=', name).modifyEnd(PREPARED).executeTakeFirst()
    if (!row) return undefined
    const people = typeof row.people === 'string' ? (JSON.parse(row.people) as [string, string | null][]) : row.people
    return { rev: `${row.rev_seq}-${row.rev_hash}`, maintainers: people.map(([n, email]) => (email ? { name: n, email } : { name: n })) }
  }

  async getVersion(name: string, version: string): Promise<VersionRow | undefined> {
    return this.db.selectFrom('versions').selectAll().where('name', '=', name).where('version', '=', version).executeTakeFirst()
  }

  async transaction<T>(fn: (tx: PackageTx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const tx = new KyselyMetaTx(trx, this.concurrentWriters, this.dialect)
      const result = await fn(tx)
      await tx.flush()
      return result
    })
  }

  async getUser(name: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst()
  }

  async listUsers(): Promise<UserRow[]> {
    return this.db.selectFrom('users').selectAll().orderBy('name').execute()
  }

  async countUsers(): Promise<number> {
    const r = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    return Number(r.n)
  }

  async insertUser(row: UserRow, maxUsers = -1, audit?: AuditEntry): Promise<'inserted' | 'taken' | 'full'> {
    if (maxUsers < 0) {
      return this.db.transaction().execute(async (trx) => {
        const r = await trx.insertInto('users').values(row).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst()
        if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) return 'taken' as const
        if (audit) await insertAudit(trx, audit)
        return 'inserted' as const
      })
    }
    return this.db.transaction().execute(async (trx) => {
      // PostgreSQL: sign-ups with a limit take turns (SQLite has one writer already).
      if (this.concurrentWriters) await sql`select pg_advisory_xact_lock(${sql.lit(USERS_LOCK_KEY)})`.execute(trx)
      if (await trx.selectFrom('users').select('name').where('name', '=', row.name).executeTakeFirst()) return 'taken' as const
      const c = await trx.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
      if (Number(c.n) >= maxUsers) return 'full' as const
      await trx.insertInto('users').values(row).execute()
      if (audit) await insertAudit(trx, audit)
      return 'inserted' as const
    })
  }

  async updateUser(name: string, fields: Partial<Pick<UserRow, 'email' | 'password_hash' | 'updated' | 'admin'>>): Promise<void> {
    await this.db.updateTable('users').set(fields).where('name', '=', name).execute()
  }

  async getToken(key: string): Promise<TokenRow | undefined> {
    return this.db.selectFrom('tokens').selectAll().where('key', '=', key).executeTakeFirst()
  }

  async getTokenAndUser(key: string): Promise<{ token: TokenRow; user: UserRow | undefined } | undefined> {
    const r = await this.db
      .selectFrom('tokens')
      .leftJoin('users', 'users.name', 'tokens.user_name')
      // The columns by name (not `*`): the statement stays prepared (PREPARED_MARK); it runs for
      // every request that carries a token.
      .select(TOKEN_COLUMNS.map((c) => `tokens.${c}` as const))
      .select(['users.name as u_name', 'users.email as u_email', 'users.password_hash as u_password_hash', 'users.admin as u_admin', 'users.created as u_created', 'users.updated as u_updated'])
      .where('tokens.key', '=', key)
      .modifyEnd(PREPARED)
      .executeTakeFirst()
    if (!r) return undefined
    const { u_name, u_email, u_password_hash, u_admin, u_created, u_updated, ...token } = r
    const user = u_name === null || u_email === null || u_password_hash === null || u_admin === null || u_created === null || u_updated === null ? undefined : { name: u_name, email: u_email, password_hash: u_password_hash, admin: u_admin, created: u_created, updated: u_updated }
    return { token, user }
  }

  async insertToken(row: TokenRow, audit?: AuditEntry): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('tokens').values(row).execute()
      if (audit) await insertAudit(trx, audit)
    })
  }

  async touchTokens(lastUsed: ReadonlyMap<string, string>): Promise<void> {
    if (lastUsed.size === 0) return
    await this.db.transaction().execute(async (trx) => {
      for (const [key, at] of lastUsed) await trx.updateTable('tokens').set({ last_used: at }).where('key', '=', key).execute()
    })
  }

  async listAllTokens(): Promise<TokenRow[]> {
    return this.db.selectFrom('tokens').selectAll().orderBy('user_name').orderBy('created').orderBy('key').execute()
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    await insertAudit(this.db, entry)
  }

  async loadAccessDirectory(): Promise<AccessDirectorySnapshot> {
    const [orgs, members, teams, teamMembers, grants, access] = await Promise.all([
      this.db.selectFrom('orgs').select(['name', 'created']).orderBy('name').execute(),
      this.db.selectFrom('org_members').select(['org', 'user_name as user', 'role']).execute(),
      this.db.selectFrom('teams').select(['org', 'name', 'description']).execute(),
      this.db.selectFrom('team_members').select(['org', 'team', 'user_name as user']).execute(),
      this.db.selectFrom('team_packages').select(['org', 'team', 'package', 'permission']).execute(),
      this.db.selectFrom('package_access').select(['name', 'visibility', 'mfa']).execute(),
    ])
    const privateNames = access.filter((a) => a.visibility === 'private').map((a) => a.name)
    const maint =
      privateNames.length === 0 ? [] : await this.db.selectFrom('maintainers').select(['name', 'user_name']).where('name', 'in', privateNames).execute()
    return {
      orgs,
      members,
      teams,
      teamMembers,
      grants,
      packages: access.map((a) => ({ ...a, maintainers: maint.filter((m) => m.name === a.name).map((m) => m.user_name) })),
    }
  }

  async orgTransaction<T>(fn: (tx: OrgTx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const out = await fn(new KyselyOrgTx(trx))
      if (this.concurrentWriters) await sql`select pg_notify(${CHANGES_CHANNEL}, ${ACCESS_CHANGED})`.execute(trx)
      return out
    })
  }

  async packagesInScope(scope: string): Promise<string[]> {
    // LIKE's `_` and `%` in a scope would match more: the prefix is checked again on each row.
    const rows = await this.db.selectFrom('packages').select('name').where('name', 'like', `${scope}/%`).orderBy('name').execute()
    const names = rows.map((r) => r.name).filter((n) => n.startsWith(`${scope}/`))
    if (names.length === 0) return []
    const live = await this.db.selectFrom('versions').select('name').distinct().where('name', 'in', names).where('unpublished', 'is', null).execute()
    const keep = new Set(live.map((r) => r.name))
    return names.filter((n) => keep.has(n))
  }

  async packagesMaintainedBy(user: string): Promise<string[]> {
    const rows = await this.db.selectFrom('maintainers').select('name').where('user_name', '=', user).orderBy('name').execute()
    return rows.map((r) => r.name)
  }

  async packageExists(name: string): Promise<boolean> {
    return (await this.db.selectFrom('versions').select('name').where('name', '=', name).where('unpublished', 'is', null).limit(1).executeTakeFirst()) !== undefined
  }

  async listAudit(q: AuditQuery): Promise<AuditRecord[]> {
    let query = this.db.selectFrom('audit_log').selectAll()
    if (q.since !== undefined) query = query.where('at', '>=', q.since)
    if (q.user !== undefined) query = query.where('actor', '=', q.user)
    if (q.package !== undefined) query = query.where('package', '=', q.package)
    if (q.after !== undefined) query = query.where('seq', '>', q.after)
    const rows = await query.orderBy('seq').limit(Math.max(1, Math.min(1000, q.limit))).execute()
    return rows.map((r) => ({ ...r, seq: Number(r.seq), action: r.action as AuditAction, details: JSON.parse(r.details) as Record<string, unknown> }))
  }

  async listTokens(user: string): Promise<TokenRow[]> {
    return this.db.selectFrom('tokens').selectAll().where('user_name', '=', user).orderBy('created').orderBy('key').execute()
  }

  async deleteToken(key: string, audit?: AuditEntry): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('tokens').where('key', '=', key).executeTakeFirst()
      const n = Number(r.numDeletedRows)
      if (audit && n > 0) await insertAudit(trx, audit)
      return n
    })
  }

  async starredBy(user: string): Promise<string[]> {
    const rows = await this.db.selectFrom('stars').select('name').where('user_name', '=', user).orderBy('name').execute()
    return rows.map((r) => r.name)
  }

  async search(words: string[], page: { size: number; from: number; visible: (name: string) => boolean }): Promise<{ total: number; hits: SearchHit[] }> {
    // Every word somewhere in the name, description or keywords of the latest version: matched
    // against search_index (migration 0007), whose text is exactly that, lowercased. The trigram
    // index (migration 0008) narrows the rows for words of three characters or more; the LIKE
    // filters then decide, so the answer is the same with or without it.
    const lower = words.map((w) => w.toLowerCase())
    // A word with a NUL matches nothing, on every dialect: PostgreSQL's text cannot hold one (nor
    // take one as a parameter), and FTS5 reads its query as a C string that a NUL would cut short.
    if (lower.some((w) => w.includes('\0'))) return { total: 0, hits: [] }
    let q = this.db.selectFrom('search_index').select('name')
    const indexed = lower.filter((w) => [...w].length >= 3)
    if (this.dialect === 'sqlite' && indexed.length > 0) {
      // FTS5 query syntax (sqlite.org/fts5.html §3): a double-quoted string is one phrase, `""` a
      // quote inside it; phrases side by side must all match. On a trigram table a phrase is a
      // substring.
      const match = indexed.map((w) => `"${w.replace(/"/g, '""')}"`).join(' ')
      q = q.where(sql<boolean>`search_index.rowid in (select rowid from search_fts where search_fts match ${match})`)
    }
    for (const w of lower) {
      const like = `%${w.replace(/[%_\\]/g, (c) => '\\' + c)}%`
      // PostgreSQL's LIKE escapes with a backslash by default (served by pg_trgm's GIN index as
      // the plain `~~` operator); SQLite's has no escape character unless given one.
      q = q.where(this.dialect === 'postgres' ? sql<boolean>`text like ${like}` : sql<boolean>`text like ${like} escape '\\'`)
    }
    const matched = (await q.orderBy('name').execute()).map((r) => r.name).filter((n) => page.visible(n))
    const names = matched.slice(page.from, page.from + page.size)
    if (names.length === 0) return { total: matched.length, hits: [] }
    const rows = await this.db
      .selectFrom('dist_tags')
      .innerJoin('versions', (j) => j.onRef('versions.name', '=', 'dist_tags.name').onRef('versions.version', '=', 'dist_tags.version'))
      .innerJoin('packages', 'packages.name', 'dist_tags.name')
      .selectAll('versions')
      .select('packages.modified as pkg_modified')
      .where('dist_tags.tag', '=', 'latest')
      .where('versions.unpublished', 'is', null)
      .where('dist_tags.name', 'in', names)
      .orderBy('versions.name')
      .execute()
    // The page's maintainers in one query (one per hit cost a round trip each on PostgreSQL).
    const maint = await this.db
      .selectFrom('maintainers')
      .leftJoin('users', 'users.name', 'maintainers.user_name')
      .select(['maintainers.name as pkg', 'maintainers.user_name as name', 'users.email as email'])
      .where('maintainers.name', 'in', names)
      .orderBy('maintainers.name')
      .orderBy('maintainers.user_name')
      .execute()
    const byPackage = new Map<string, { name: string; email: string | undefined }[]>()
    for (const m of maint) {
      let list = byPackage.get(m.pkg)
      if (!list) byPackage.set(m.pkg, (list = []))
      list.push({ name: m.name, email: m.email ?? undefined })
    }
    const hits: SearchHit[] = rows.map((r) => {
      const { pkg_modified, ...latest } = r
      return { name: r.name, latest, maintainers: byPackage.get(r.name) ?? [], modified: pkg_modified }
    })
    return { total: matched.length, hits }
  }

  async recentPackages(limit: number, visible: (name: string) => boolean): Promise<{ total: number; hits: SearchHit[] }> {
    const rows = await this.db
      .selectFrom('dist_tags')
      .innerJoin('versions', (j) => j.onRef('versions.name', '=', 'dist_tags.name').onRef('versions.version', '=', 'dist_tags.version'))
      .innerJoin('packages', 'packages.name', 'dist_tags.name')
      .selectAll('versions')
      .select('packages.modified as pkg_modified')
      .where('dist_tags.tag', '=', 'latest')
      .where('versions.unpublished', 'is', null)
      .orderBy('packages.modified', 'desc')
      .orderBy('versions.name')
      .execute()
    const matched = rows.filter((r) => visible(r.name))
    const hits: SearchHit[] = []
    for (const r of matched.slice(0, limit)) {
      const maint = await this.db
        .selectFrom('maintainers')
        .leftJoin('users', 'users.name', 'maintainers.user_name')
        .select(['maintainers.user_name as name', 'users.email as email'])
        .where('maintainers.name', '=', r.name)
        .execute()
      const { pkg_modified, ...latest } = r
      hits.push({ name: r.name, latest, maintainers: maint.map((x) => ({ name: x.name, email: x.email ?? undefined })), modified: pkg_modified })
    }
    return { total: matched.length, hits }
  }

  async dependentsOf(name: string): Promise<string[]> {
    // Coarse SQL prefilter (the quoted name somewhere in the manifest), exact check in JS below.
    const like = `%${JSON.stringify(name).replace(/[%_\\]/g, (c) => '\\' + c)}%`
    const op = sql.raw(this.likeOp)
    const rows = await this.db
      .selectFrom('dist_tags')
      .innerJoin('versions', (j) => j.onRef('versions.name', '=', 'dist_tags.name').onRef('versions.version', '=', 'dist_tags.version'))
      .select(['versions.name', 'versions.manifest'])
      .where('dist_tags.tag', '=', 'latest')
      .where('versions.unpublished', 'is', null)
      .where('versions.name', '!=', name)
      .where(sql<boolean>`versions.manifest ${op} ${like} escape '\\'`)
      .orderBy('versions.name')
      .execute()
    return rows
      .filter((r) => {
        const m = JSON.parse(r.manifest) as Record<string, unknown>
        return ['dependencies', 'peerDependencies', 'optionalDependencies'].some((k) => {
          const deps = m[k]
          return typeof deps === 'object' && deps !== null && Object.prototype.hasOwnProperty.call(deps, name)
        })
      })
      .map((r) => r.name)
  }

  async lastChangeSeq(): Promise<number> {
    const top = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst()
    return Number(top?.seq ?? 0)
  }

  async changesSince(since: number, limit: number): Promise<PackageChange[]> {
    const rows = await this.db.selectFrom('changes').selectAll().where('seq', '>', since).orderBy('seq').limit(limit).execute()
    return rows.map((r) => ({ seq: r.seq, name: r.name, rev: r.rev, deleted: r.deleted !== 0 }))
  }

  async scopeHasPackages(scope: string): Promise<boolean> {
    let q = this.db.selectFrom('packages').select('name')
    if (this.dialect === 'sqlite') {
      // SQLite: a range of the primary key in its BINARY (code point) order, `@scope/` up to
      // `@scope0` ('0' follows '/'), read from the index. `LIKE` is case-insensitive on SQLite,
      // so it could not use the index and scanned every package.
      q = q.where('name', '>=', `${scope}/`).where('name', '<', `${scope}0`)
    } else {
      // PostgreSQL: a prefix LIKE, which the primary key's btree serves under the C collation
      // (a range would be wrong under a linguistic one, where '/' does not sort by code point).
      q = q.where(sql<boolean>`name like ${`${scope.replace(/[%_\\]/g, (c) => '\\' + c)}/%`}`)
    }
    return (await q.limit(1).executeTakeFirst()) !== undefined
  }

  async getCachedPackument(name: string, uplink: string): Promise<CachedPackumentRow | undefined> {
    return this.db.selectFrom('uplink_packuments').selectAll().where('name', '=', name).where('uplink', '=', uplink).executeTakeFirst()
  }

  async putCachedPackument(row: CachedPackumentRow): Promise<void> {
    const { name: _n, uplink: _u, ...changes } = row
    await this.db
      .insertInto('uplink_packuments')
      .values(row)
      .onConflict((oc) => oc.columns(['name', 'uplink']).doUpdateSet(changes))
      .execute()
  }

  async touchCachedPackument(name: string, uplink: string, fetchedAt: string): Promise<void> {
    await this.db.updateTable('uplink_packuments').set({ fetched_at: fetchedAt }).where('name', '=', name).where('uplink', '=', uplink).execute()
  }

  async deleteCachedPackument(name: string, uplink: string): Promise<void> {
    await this.db.deleteFrom('uplink_packuments').where('name', '=', name).where('uplink', '=', uplink).execute()
  }

  // ---- GitHub's answers (auth/github.ts, GithubCacheStore; migration 0005) ----

  async getGithubCache(key: string): Promise<{ value: string; expires: string } | undefined> {
    return this.db.selectFrom('github_cache').select(['value', 'expires']).where('key', '=', key).executeTakeFirst()
  }

  async putGithubCache(key: string, value: string, expires: string): Promise<void> {
    await this.db
      .insertInto('github_cache')
      .values({ key, value, expires })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value, expires }))
      .execute()
  }

  // ---- Web logins and web secrets (auth/web-login.ts, WebLoginStore; migration 0006) ----

  async insertWebLogin(row: WebLoginRecord): Promise<void> {
    await this.db.insertInto('web_logins').values(row).execute()
  }

  async getWebLogin(idHash: string): Promise<WebLoginRecord | undefined> {
    return this.db.selectFrom('web_logins').selectAll().where('id_hash', '=', idHash).executeTakeFirst()
  }

  async claimWebLogin(idHash: string, browserHash: string, now: string): Promise<boolean> {
    await this.db
      .updateTable('web_logins')
      .set({ browser_hash: browserHash })
      .where('id_hash', '=', idHash)
      .where('browser_hash', 'is', null)
      .where('user_name', 'is', null)
      .where('expires', '>', now)
      .execute()
    const row = await this.getWebLogin(idHash)
    return row?.browser_hash === browserHash
  }

  async completeWebLogin(idHash: string, browserHash: string, user: string, tokenBox: string | null, now: string): Promise<boolean> {
    const r = await this.db
      .updateTable('web_logins')
      .set({ user_name: user, token_box: tokenBox })
      .where('id_hash', '=', idHash)
      .where('browser_hash', '=', browserHash)
      .where('user_name', 'is', null)
      .where('expires', '>', now)
      .executeTakeFirst()
    return Number(r.numUpdatedRows) === 1
  }

  async findWebLoginByDone(doneHash: string): Promise<WebLoginRecord | undefined> {
    return this.db.selectFrom('web_logins').selectAll().where('done_hash', '=', doneHash).executeTakeFirst()
  }

  async takeWebLogin(doneHash: string, now: string): Promise<WebLoginRecord | undefined> {
    return this.db
      .deleteFrom('web_logins')
      .where('done_hash', '=', doneHash)
      .where('user_name', 'is not', null)
      .where('expires', '>', now)
      .returningAll()
      .executeTakeFirst()
  }

  async deleteExpiredWebLogins(now: string): Promise<number> {
    const r = await this.db.deleteFrom('web_logins').where('expires', '<=', now).executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  async webSecret(name: string, fresh: string): Promise<string> {
    await this.db.insertInto('web_secrets').values({ name, value: fresh }).onConflict((oc) => oc.column('name').doNothing()).execute()
    const row = await this.db.selectFrom('web_secrets').select('value').where('name', '=', name).executeTakeFirstOrThrow()
    return row.value
  }

  // ---- pier verify (ops/verify.ts, VerifyStore): keyset pagination, each page its own query ----

  /** Live versions (not unpublished) in (name, version) order, VERSION_PAGE rows a query. */
  async *liveVersionBlobs(): AsyncIterable<{ name: string; version: string; tarball_key: string; integrity: string; shasum: string; size: number }> {
    let last: { name: string; version: string } | undefined
    while (true) {
      const after = last
      const rows = await this.db
        .selectFrom('versions')
        .select(['name', 'version', 'tarball_key', 'integrity', 'shasum', 'size'])
        .where('unpublished', 'is', null)
        .$if(after !== undefined, (q) => q.where((eb) => eb(eb.refTuple('name', 'version'), '>', eb.tuple(after?.name ?? '', after?.version ?? ''))))
        .orderBy('name')
        .orderBy('version')
        .limit(VERSION_PAGE)
        .execute()
      yield* rows
      last = rows.at(-1)
      if (rows.length < VERSION_PAGE) break
    }
  }

  /** Every dist-tag with the state of its version (`missing`: no such row), in (name, tag) order. */
  async *distTagTargets(): AsyncIterable<{ name: string; tag: string; version: string; state: 'live' | 'unpublished' | 'missing' }> {
    let last: { name: string; tag: string } | undefined
    while (true) {
      const after = last
      const rows = await this.db
        .selectFrom('dist_tags')
        .leftJoin('versions', (j) => j.onRef('versions.name', '=', 'dist_tags.name').onRef('versions.version', '=', 'dist_tags.version'))
        .select(['dist_tags.name as name', 'dist_tags.tag as tag', 'dist_tags.version as version', 'versions.version as found', 'versions.unpublished as unpublished'])
        .$if(after !== undefined, (q) =>
          q.where((eb) => eb(eb.refTuple('dist_tags.name', 'dist_tags.tag'), '>', eb.tuple(after?.name ?? '', after?.tag ?? ''))),
        )
        .orderBy('dist_tags.name')
        .orderBy('dist_tags.tag')
        .limit(VERSION_PAGE)
        .execute()
      for (const r of rows) {
        yield { name: r.name, tag: r.tag, version: r.version, state: r.found === null ? 'missing' : r.unpublished === null ? 'live' : 'unpublished' }
      }
      last = rows.at(-1)
      if (rows.length < VERSION_PAGE) break
    }
  }

  /** Every cached uplink packument's text, in (name, uplink) order, CACHED_PAGE rows a query. */
  async *cachedPackumentTexts(): AsyncIterable<{ name: string; uplink: string; body: string }> {
    let last: { name: string; uplink: string } | undefined
    while (true) {
      const after = last
      const rows = await this.db
        .selectFrom('uplink_packuments')
        .select(['name', 'uplink', 'body'])
        .$if(after !== undefined, (q) => q.where((eb) => eb(eb.refTuple('name', 'uplink'), '>', eb.tuple(after?.name ?? '', after?.uplink ?? ''))))
        .orderBy('name')
        .orderBy('uplink')
        .limit(CACHED_PAGE)
        .execute()
      yield* rows
      last = rows.at(-1)
      if (rows.length < CACHED_PAGE) break
    }
  }

  // ---- pier backup / pier restore (issue 13): the one hook storage/meta/snapshot.ts needs ----

  /**
   * The Kysely instance, for storage/meta/snapshot.ts only: its whole-database snapshot reads and
   * bulk loads run their own transactions on it. Nothing else may use it (the gates are above it).
   */
  backupDatabase(): Kysely<Database> {
    return this.db
  }
}

/** PackageTx over a Kysely transaction. */
/** The directory writes of one `orgTransaction`. */
class KyselyOrgTx implements OrgTx {
  constructor(private readonly trx: Transaction<Database>) {}

  async insertOrg(name: string, now: string): Promise<boolean> {
    const r = await this.trx.insertInto('orgs').values({ name, created: now }).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst()
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0
  }

  async setMember(org: string, user: string, role: OrgRole): Promise<void> {
    await this.trx
      .insertInto('org_members')
      .values({ org, user_name: user, role })
      .onConflict((oc) => oc.columns(['org', 'user_name']).doUpdateSet({ role }))
      .execute()
  }

  async removeMember(org: string, user: string): Promise<number> {
    await this.trx.deleteFrom('team_members').where('org', '=', org).where('user_name', '=', user).execute()
    const r = await this.trx.deleteFrom('org_members').where('org', '=', org).where('user_name', '=', user).executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  async insertTeam(org: string, team: string, description: string | null, now: string): Promise<boolean> {
    const r = await this.trx
      .insertInto('teams')
      .values({ org, name: team, description, created: now })
      .onConflict((oc) => oc.columns(['org', 'name']).doNothing())
      .executeTakeFirst()
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0
  }

  async deleteTeam(org: string, team: string): Promise<number> {
    await this.trx.deleteFrom('team_members').where('org', '=', org).where('team', '=', team).execute()
    await this.trx.deleteFrom('team_packages').where('org', '=', org).where('team', '=', team).execute()
    const r = await this.trx.deleteFrom('teams').where('org', '=', org).where('name', '=', team).executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  async addTeamMember(org: string, team: string, user: string): Promise<void> {
    await this.trx
      .insertInto('team_members')
      .values({ org, team, user_name: user })
      .onConflict((oc) => oc.columns(['org', 'team', 'user_name']).doNothing())
      .execute()
  }

  async removeTeamMember(org: string, team: string, user: string): Promise<number> {
    const r = await this.trx.deleteFrom('team_members').where('org', '=', org).where('team', '=', team).where('user_name', '=', user).executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  async setGrant(org: string, team: string, pkg: string, permission: TeamPermission): Promise<void> {
    await this.trx
      .insertInto('team_packages')
      .values({ org, team, package: pkg, permission })
      .onConflict((oc) => oc.columns(['org', 'team', 'package']).doUpdateSet({ permission }))
      .execute()
  }

  async removeGrant(org: string, team: string, pkg: string): Promise<number> {
    const r = await this.trx.deleteFrom('team_packages').where('org', '=', org).where('team', '=', team).where('package', '=', pkg).executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  async userExists(name: string): Promise<boolean> {
    return (await this.trx.selectFrom('users').select('name').where('name', '=', name).executeTakeFirst()) !== undefined
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    await insertAudit(this.trx, entry)
  }
}

class KyselyMetaTx implements PackageTx {
  /** Change-feed rows of this transaction's `_rev` bumps, appended by `flush` before commit. */
  private pendingChanges: { name: string; rev: string; deleted: number; created: string }[] = []
  /** Audit-log entries of this transaction, inserted by `flush` (in order) before commit. */
  private pendingAudit: AuditEntry[] = []
  /**
   * Manifests this transaction wrote, by `name\0version`, while the row is known live (inserted
   * or replaced with `unpublished` null): `flush` refreshes a search row from them instead of
   * reading the `latest` manifest back.
   */
  private readonly writtenManifests = new Map<string, string>()
  /** The version this transaction tagged `latest`, per package (only when it set the tag). */
  private readonly taggedLatest = new Map<string, string>()
  /**
   * PostgreSQL: `rev_seq` of each package row this transaction locked, as its bumps leave it, so
   * that `bumpRev` knows the next one without a round trip (nobody else can change a locked row).
   */
  private readonly lockedSeq = new Map<string, number>()
  /** PostgreSQL: the `_rev` bumps not yet written, by package; `flush` writes them. */
  private readonly pendingRevs = new Map<string, PendingRev>()

  /**
   * @param locking take row and change-feed locks (several connections write at once)
   * @param dialect for the one query whose SQL differs (`lockPackage`'s aggregate)
   */
  constructor(
    private readonly trx: Transaction<Database>,
    private readonly locking: boolean,
    private readonly dialect: 'sqlite' | 'postgres' = 'sqlite',
  ) {}

  async getPackage(name: string): Promise<PackageRow | undefined> {
    const q = this.trx.selectFrom('packages').selectAll().where('name', '=', name)
    const row = await (this.locking ? q.forUpdate() : q).executeTakeFirst()
    return row && this.locked(row)
  }

  /**
   * A package row read in this transaction with its `_rev` bumps not yet written applied, and
   * (PostgreSQL, where the read locked it) its `rev_seq` remembered for the next `bumpRev`.
   */
  private locked<R extends PackageRow>(row: R): R {
    const pending = this.pendingRevs.get(row.name)
    const out = pending ? { ...row, ...pending } : row
    if (this.locking) this.lockedSeq.set(row.name, out.rev_seq)
    return out
  }

  async lockPackage(name: string): Promise<{ pkg: PackageRow; maintainers: string[] } | undefined> {
    // The maintainers as one JSON array (PostgreSQL's json, which node-postgres parses; SQLite's
    // text), sorted; `FOR UPDATE` locks the package row (the subquery's rows are not locked).
    const list =
      this.dialect === 'postgres'
        ? sql<string[] | string>`(select coalesce(json_agg(m.user_name order by m.user_name), '[]'::json) from maintainers m where m.name = packages.name)`
        : sql<string[] | string>`(select json_group_array(user_name) from (select m.user_name from maintainers m where m.name = packages.name order by m.user_name))`
    // The columns by name (not `*`), so that the statement can stay prepared (PREPARED_MARK).
    const q = this.trx
      .selectFrom('packages')
      .select(['packages.name', 'packages.rev_seq', 'packages.rev_hash', 'packages.created', 'packages.modified'])
      .select(list.as('maintainer_list'))
      .where('packages.name', '=', name)
    const row = await (this.locking ? q.forUpdate() : q).modifyEnd(PREPARED).executeTakeFirst()
    if (!row) return undefined
    const { maintainer_list, ...read } = row
    const pkg = this.locked(read)
    const maintainers = typeof maintainer_list === 'string' ? (JSON.parse(maintainer_list) as string[]) : maintainer_list
    return { pkg, maintainers }
  }

  async insertPackage(name: string, now: string): Promise<boolean> {
    // A concurrent creator of the same name makes this wait for its commit, then insert nothing.
    const r = await this.trx
      .insertInto('packages')
      .values({ name, rev_seq: 0, rev_hash: '0', created: now, modified: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst()
    if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) return true
    // Lost the race: lock the winner's row, as getPackage would have.
    if (this.locking) await this.getPackage(name)
    return false
  }

  getVersion(name: string, version: string): Promise<VersionRow | undefined> {
    return this.trx.selectFrom('versions').selectAll().where('name', '=', name).where('version', '=', version).executeTakeFirst()
  }

  listVersions(name: string): Promise<VersionRow[]> {
    return this.trx.selectFrom('versions').selectAll().where('name', '=', name).execute()
  }

  /** Remembers (or forgets) the manifest of a version row this transaction wrote. */
  private wrote(name: string, version: string, manifest: string | undefined): void {
    const key = `${name}\0${version}`
    if (manifest === undefined) this.writtenManifests.delete(key)
    else this.writtenManifests.set(key, manifest)
  }

  async insertVersion(row: VersionRow): Promise<void> {
    await this.trx.insertInto('versions').values(row).execute()
    this.wrote(row.name, row.version, row.unpublished === null ? row.manifest : undefined)
  }

  async insertVersionIfAbsent(row: VersionRow): Promise<boolean> {
    const r = await this.trx
      .insertInto('versions')
      .values(row)
      .onConflict((oc) => oc.columns(['name', 'version']).doNothing())
      .modifyEnd(PREPARED)
      .executeTakeFirst()
    if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return false
    this.wrote(row.name, row.version, row.unpublished === null ? row.manifest : undefined)
    return true
  }

  async replaceVersion(row: VersionRow): Promise<void> {
    const { name, version, ...rest } = row
    await this.trx.updateTable('versions').set(rest).where('name', '=', name).where('version', '=', version).execute()
    this.wrote(name, version, row.unpublished === null ? row.manifest : undefined)
  }

  async updateManifest(name: string, version: string, manifest: string): Promise<void> {
    await this.trx.updateTable('versions').set({ manifest }).where('name', '=', name).where('version', '=', version).execute()
    // Live only if it was known live; otherwise the row's state is not known here.
    if (this.writtenManifests.has(`${name}\0${version}`)) this.wrote(name, version, manifest)
  }

  async markUnpublished(name: string, versions: string[], now: string): Promise<void> {
    if (versions.length === 0) return
    await this.trx.updateTable('versions').set({ unpublished: now }).where('name', '=', name).where('version', 'in', versions).execute()
    for (const v of versions) this.wrote(name, v, undefined)
  }

  async getDistTags(name: string): Promise<Record<string, string>> {
    const rows = await this.trx.selectFrom('dist_tags').select(['tag', 'version']).where('name', '=', name).execute()
    return Object.fromEntries(rows.map((r) => [r.tag, r.version]))
  }

  async setDistTag(name: string, tag: string, version: string): Promise<void> {
    await this.trx
      .insertInto('dist_tags')
      .values({ name, tag, version })
      .onConflict((oc) => oc.columns(['name', 'tag']).doUpdateSet({ version }))
      .modifyEnd(PREPARED)
      .execute()
    if (tag === 'latest') this.taggedLatest.set(name, version)
  }

  async deleteDistTag(name: string, tag: string): Promise<void> {
    await this.trx.deleteFrom('dist_tags').where('name', '=', name).where('tag', '=', tag).execute()
    if (tag === 'latest') this.taggedLatest.delete(name)
  }

  async getMaintainers(name: string): Promise<string[]> {
    const rows = await this.trx.selectFrom('maintainers').select('user_name').where('name', '=', name).orderBy('user_name').execute()
    return rows.map((r) => r.user_name)
  }

  async setMaintainers(name: string, users: string[]): Promise<void> {
    await this.trx.deleteFrom('maintainers').where('name', '=', name).execute()
    if (users.length > 0) await this.trx.insertInto('maintainers').values(users.map((u) => ({ name, user_name: u }))).execute()
  }

  async getStars(name: string): Promise<string[]> {
    const rows = await this.trx.selectFrom('stars').select('user_name').where('name', '=', name).orderBy('user_name').execute()
    return rows.map((r) => r.user_name)
  }

  async setStar(name: string, user: string, starred: boolean): Promise<void> {
    if (starred) {
      await this.trx.insertInto('stars').values({ name, user_name: user }).onConflict((oc) => oc.doNothing()).execute()
    } else {
      await this.trx.deleteFrom('stars').where('name', '=', name).where('user_name', '=', user).execute()
    }
  }

  async userExists(name: string): Promise<boolean> {
    return (await this.trx.selectFrom('users').select('name').where('name', '=', name).executeTakeFirst()) !== undefined
  }

  async bumpRev(name: string, now: string, deleted = false): Promise<string> {
    const hash = randomBytes(8).toString('hex')
    const seq = this.lockedSeq.get(name)
    if (seq !== undefined) {
      // PostgreSQL, row locked by this transaction: the row is written by `flush`, in its one statement.
      this.lockedSeq.set(name, seq + 1)
      this.pendingRevs.set(name, { rev_seq: seq + 1, rev_hash: hash, modified: now })
      const rev = `${seq + 1}-${hash}`
      this.pendingChanges.push({ name, rev, deleted: deleted ? 1 : 0, created: now })
      return rev
    }
    const row = await this.trx
      .updateTable('packages')
      .set((eb) => ({ rev_seq: eb('rev_seq', '+', 1), rev_hash: hash, modified: now }))
      .where('name', '=', name)
      .returning(['rev_seq'])
      .executeTakeFirstOrThrow()
    const rev = `${row.rev_seq}-${hash}`
    this.pendingChanges.push({ name, rev, deleted: deleted ? 1 : 0, created: now })
    return rev
  }

  /**
   * The end of the transaction's work, run by `KyselyMetaStore.transaction` right before it
   * commits: refreshes the search row of every package whose `_rev` moved (once each, from its
   * final state), appends their change-feed rows in `bumpRev` order and the audit-log entries in
   * `appendAudit` order.
   *
   * On PostgreSQL the change-feed lock (`CHANGES_LOCK_KEY`) is taken only here, so it is held for
   * this append and the commit, not for the rest of the transaction: concurrent writers (other
   * nodes, or a batched load's parallel batches) serialise on the append alone, while `seq` order
   * stays commit order. The NOTIFY of each name is delivered at commit (and only then). There the
   * lock, the NOTIFYs, the audit entries and the change-feed rows are one statement (a round trip
   * each would cost more than the statement: docs/performance.md, "Publish").
   */
  async flush(): Promise<void> {
    const changes = this.pendingChanges
    const audit = this.pendingAudit
    this.pendingChanges = []
    this.pendingAudit = []
    const revs = new Map(this.pendingRevs)
    this.pendingRevs.clear()
    const names = [...new Set(changes.map((c) => c.name))]
    // Search rows whose text is known here go into PostgreSQL's one statement; the others are read.
    const search = new Map<string, string>()
    for (const name of names) {
      const latest = this.taggedLatest.get(name)
      const known = latest === undefined ? undefined : this.writtenManifests.get(`${name}\0${latest}`)
      if (this.locking && changes.length > 0 && known !== undefined) search.set(name, searchText(name, known))
      else await refreshSearchRow(this.trx, name, known)
    }
    if (this.locking && changes.length > 0) {
      await appendChangesPostgres(this.trx, changes, names, audit, revs, search)
      return
    }
    for (const e of audit) await insertAudit(this.trx, e)
    for (let i = 0; i < changes.length; i += 500) await this.trx.insertInto('changes').values(changes.slice(i, i + 500)).execute()
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    this.pendingAudit.push(entry)
  }

  async getPackageAccess(name: string): Promise<{ visibility: PackageVisibility; mfa: PackageMfa }> {
    const r = await this.trx.selectFrom('package_access').select(['visibility', 'mfa']).where('name', '=', name).executeTakeFirst()
    return r ?? { visibility: 'public', mfa: 'none' }
  }

  async setPackageAccess(name: string, visibility: PackageVisibility, mfa: PackageMfa): Promise<void> {
    await this.trx
      .insertInto('package_access')
      .values({ name, visibility, mfa })
      .onConflict((oc) => oc.column('name').doUpdateSet({ visibility, mfa }))
      .execute()
    if (this.locking) await sql`select pg_notify(${CHANGES_CHANNEL}, ${ACCESS_CHANGED})`.execute(this.trx)
  }
}
