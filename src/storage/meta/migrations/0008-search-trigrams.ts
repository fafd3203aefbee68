/**
 * Migration 0008: a trigram index over `search_index.text` (migration 0007), so that search's
 * `LIKE '%word%'` for each word stops scanning one row per package.
 *
 * Why (issue 14, docs/performance.md): with 100,000 packages (1M versions) a search scanned all
 * 100,000 rows of `search_index`: 67 ms at the median and 456 ms at p99 on SQLite, against a target
 * of 50 ms at p99. A trigram index answers "which rows contain this substring" from the word's
 * three-letter pieces, for any word of at least three characters (shorter words still scan).
 *
 * - SQLite: an FTS5 table `search_fts` with the `trigram` tokenizer (SQLite ≥ 3.34, FTS5 is built
 *   into better-sqlite3), an external-content table over `search_index` keyed by its rowid and
 *   kept by three triggers, as SQLite's FTS5 documentation (§4.4.3, "external content tables")
 *   gives them. A phrase query (`MATCH '"word"'`) on a trigram table is a substring match.
 *   Rows are added by the triggers, so the write path's upsert of `search_index` needs no change;
 *   restore (which inserts `search_index` rows) fills it the same way. Should the two ever
 *   disagree (a hand edit with triggers off), `INSERT INTO search_fts(search_fts) VALUES('rebuild')`
 *   rebuilds it from `search_index`.
 * - PostgreSQL: the `pg_trgm` extension (trusted since PostgreSQL 13: a database owner may create
 *   it) and a GIN index with `gin_trgm_ops`, which serves `LIKE '%word%'` directly. Where the
 *   extension is not available or may not be created, the migration still succeeds and search
 *   keeps scanning (docs/operations.md says how to add it later).
 *
 * Frozen in time: never edit after release.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { sql, type Kysely, type Migration } from 'kysely'

async function upSqlite(db: Kysely<any>): Promise<void> {
  await sql`create virtual table search_fts using fts5(text, content='search_index', content_rowid='rowid', tokenize='trigram')`.execute(db)
  await sql`create trigger search_index_ai after insert on search_index begin
    insert into search_fts(rowid, text) values (new.rowid, new.text);
  end`.execute(db)
  await sql`create trigger search_index_ad after delete on search_index begin
    insert into search_fts(search_fts, rowid, text) values ('delete', old.rowid, old.text);
  end`.execute(db)
  await sql`create trigger search_index_au after update on search_index begin
    insert into search_fts(search_fts, rowid, text) values ('delete', old.rowid, old.text);
    insert into search_fts(rowid, text) values (new.rowid, new.text);
  end`.execute(db)
  await sql`insert into search_fts(search_fts) values ('rebuild')`.execute(db)
}

async function downSqlite(db: Kysely<any>): Promise<void> {
  for (const t of ['search_index_ai', 'search_index_ad', 'search_index_au']) await sql`drop trigger if exists ${sql.id(t)}`.execute(db)
  await sql`drop table if exists search_fts`.execute(db)
}

async function upPostgres(db: Kysely<any>): Promise<void> {
  // In a PL/pgSQL block: a refusal (no such extension, no right to create it) rolls back to the
  // block's own savepoint instead of failing the migration's transaction.
  await sql`do $$
    begin
      create extension if not exists pg_trgm;
    exception when others then
      raise notice 'pier: pg_trgm not available (%); search scans search_index', sqlerrm;
    end
  $$`.execute(db)
  await sql`do $$
    begin
      if exists (select 1 from pg_opclass where opcname = 'gin_trgm_ops') then
        create index search_index_text_trgm on search_index using gin (text gin_trgm_ops);
      end if;
    end
  $$`.execute(db)
}

async function downPostgres(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists search_index_text_trgm`.execute(db)
}

/** SQLite's 0008. */
export const sqlite: Migration = { up: upSqlite, down: downSqlite }
/** PostgreSQL's 0008. */
export const postgres: Migration = { up: upPostgres, down: downPostgres }
