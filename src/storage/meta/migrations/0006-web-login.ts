/**
 * Migration 0006: the web login of `npm login` (src/auth/web-login.ts) and the installation's web
 * secrets (src/auth/sessions.ts), kept where every node behind a load balancer reads them:
 * - `web_logins`: one row per login in progress, found by the sha256 of the secret in `loginUrl`
 *   (`id_hash`) or of the one in `doneUrl` (`done_hash`, unique); deleted when npm takes its
 *   token, and after `expires`;
 * - `web_secrets`: named random secrets created by the first node to start (the cookie-signing key).
 * Frozen in time: never edit after release. Portable column types: PostgreSQL runs the same migration.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('web_logins')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('done_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created', 'text', (c) => c.notNull())
    .addColumn('expires', 'text', (c) => c.notNull())
    .addColumn('signup', 'integer', (c) => c.notNull())
    .addColumn('browser_hash', 'text')
    .addColumn('token_box', 'text')
    .addColumn('user_name', 'text')
    .execute()
  await db.schema.createIndex('web_logins_expires').on('web_logins').column('expires').execute()
  await db.schema
    .createTable('web_secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('web_secrets').execute()
  await db.schema.dropTable('web_logins').execute()
}
