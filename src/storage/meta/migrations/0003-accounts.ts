/**
 * Migration 0003: administrators, granular tokens and the audit log (issue "Who may do what").
 * Frozen in time: never edit after release. One module for both dialects: only the audit log's
 * sequence column differs (SQLite `autoincrement`, PostgreSQL an identity column), so `up` takes
 * the dialect from the exported objects below.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Kysely, Migration } from 'kysely'

async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  await db.schema.alterTable('users').addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0)).execute()
  for (const col of ['name', 'expires', 'last_used', 'grants']) {
    await db.schema.alterTable('tokens').addColumn(col, 'text').execute()
  }
  await db.schema
    .createTable('audit_log')
    .addColumn('seq', 'integer', (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey().generatedAlwaysAsIdentity()))
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('actor', 'text')
    .addColumn('token', 'text')
    .addColumn('ip', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('package', 'text')
    .addColumn('details', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute()
  await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor', 'seq']).execute()
  await db.schema.createIndex('audit_log_package').on('audit_log').columns(['package', 'seq']).execute()
}

async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_log').execute()
  for (const col of ['grants', 'last_used', 'expires', 'name']) await db.schema.alterTable('tokens').dropColumn(col).execute()
  await db.schema.alterTable('users').dropColumn('admin').execute()
}

/** SQLite's 0003. */
export const sqlite: Migration = { up: (db) => up(db, 'sqlite'), down }
/** PostgreSQL's 0003. */
export const postgres: Migration = { up: (db) => up(db, 'postgres'), down }
