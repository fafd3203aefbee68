/**
 * Migration 0001 on PostgreSQL: the same logical schema as SQLite's `../0001-init.ts`. Frozen in
 * time: never edit after release, add a new migration (a portable one may be shared by both
 * dialects' lists). Differences from SQLite, all invisible to the queries:
 * - `changes.seq` is `integer generated always as identity` (SQLite: `autoincrement`);
 * - text columns use the "C" collation, so ordering and comparison are bytewise like SQLite's
 *   BINARY whatever the database's locale.
 * Integer columns are `integer` (int4): node-postgres returns them as numbers (int8 would be strings).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { sql, type Kysely } from 'kysely'

const text = sql`text collate "C"`

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('packages')
    .addColumn('name', text, (c) => c.primaryKey())
    .addColumn('rev_seq', 'integer', (c) => c.notNull())
    .addColumn('rev_hash', text, (c) => c.notNull())
    .addColumn('created', text, (c) => c.notNull())
    .addColumn('modified', text, (c) => c.notNull())
    .execute()
  await db.schema
    .createTable('versions')
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('version', text, (c) => c.notNull())
    .addColumn('manifest', text, (c) => c.notNull())
    .addColumn('readme', text)
    .addColumn('readme_filename', text)
    .addColumn('integrity', text, (c) => c.notNull())
    .addColumn('shasum', text, (c) => c.notNull())
    .addColumn('tarball_key', text, (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('published', text, (c) => c.notNull())
    .addColumn('unpublished', text)
    .addPrimaryKeyConstraint('versions_pk', ['name', 'version'])
    .execute()
  await db.schema
    .createTable('dist_tags')
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('tag', text, (c) => c.notNull())
    .addColumn('version', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('dist_tags_pk', ['name', 'tag'])
    .execute()
  await db.schema
    .createTable('maintainers')
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('user_name', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('maintainers_pk', ['name', 'user_name'])
    .execute()
  await db.schema
    .createTable('stars')
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('user_name', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('stars_pk', ['name', 'user_name'])
    .execute()
  await db.schema.createIndex('stars_user').on('stars').column('user_name').execute()
  await db.schema
    .createTable('users')
    .addColumn('name', text, (c) => c.primaryKey())
    .addColumn('email', text, (c) => c.notNull())
    .addColumn('password_hash', text, (c) => c.notNull())
    .addColumn('created', text, (c) => c.notNull())
    .addColumn('updated', text, (c) => c.notNull())
    .execute()
  await db.schema
    .createTable('tokens')
    .addColumn('key', text, (c) => c.primaryKey())
    .addColumn('token_prefix', text, (c) => c.notNull())
    .addColumn('user_name', text, (c) => c.notNull())
    .addColumn('readonly', 'integer', (c) => c.notNull())
    .addColumn('cidr_whitelist', text)
    .addColumn('description', text)
    .addColumn('created', text, (c) => c.notNull())
    .addColumn('updated', text, (c) => c.notNull())
    .execute()
  await db.schema.createIndex('tokens_user').on('tokens').column('user_name').execute()
  await db.schema
    .createTable('changes')
    .addColumn('seq', 'integer', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('rev', text, (c) => c.notNull())
    .addColumn('deleted', 'integer', (c) => c.notNull())
    .addColumn('created', text, (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['changes', 'tokens', 'users', 'stars', 'maintainers', 'dist_tags', 'versions', 'packages']) {
    await db.schema.dropTable(t).execute()
  }
}
