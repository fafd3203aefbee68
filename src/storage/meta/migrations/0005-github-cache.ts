/**
 * Migration 0005: GitHub's answers (`auth.type: github`, src/auth/github.ts), kept where every
 * node reads them: the user of a token and a token's permission on a repository, each under a key
 * built from the token's sha512 (never the token), with the time it stops being trusted. Rows
 * outlive `expires`: an expired answer is still served while GitHub rate-limits or fails. Frozen
 * in time: never edit after release. Portable column types: PostgreSQL runs the same migration.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('github_cache')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('expires', 'text', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('github_cache').execute()
}
