/**
 * Migration 0002: packuments cached from uplinks. Frozen in time: never edit after release.
 * Portable column types, so PostgreSQL runs the same migration.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('uplink_packuments')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('uplink', 'text', (c) => c.notNull())
    .addColumn('etag', 'text')
    .addColumn('last_modified', 'text')
    .addColumn('fetched_at', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('uplink_packuments_pk', ['name', 'uplink'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('uplink_packuments').execute()
}
