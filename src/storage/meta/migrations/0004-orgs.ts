/**
 * Migration 0004: organisations, their members and teams, team grants on packages, and each
 * package's status and mfa setting (`npm org`, `npm team`, `npm access`). Frozen in time: never
 * edit after release. Portable column types: PostgreSQL runs the same migration.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('orgs')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('created', 'text', (c) => c.notNull())
    .execute()
  await db.schema
    .createTable('org_members')
    .addColumn('org', 'text', (c) => c.notNull())
    .addColumn('user_name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('org_members_pk', ['org', 'user_name'])
    .execute()
  await db.schema
    .createTable('teams')
    .addColumn('org', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('teams_pk', ['org', 'name'])
    .execute()
  await db.schema
    .createTable('team_members')
    .addColumn('org', 'text', (c) => c.notNull())
    .addColumn('team', 'text', (c) => c.notNull())
    .addColumn('user_name', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('team_members_pk', ['org', 'team', 'user_name'])
    .execute()
  await db.schema
    .createTable('team_packages')
    .addColumn('org', 'text', (c) => c.notNull())
    .addColumn('team', 'text', (c) => c.notNull())
    .addColumn('package', 'text', (c) => c.notNull())
    .addColumn('permission', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('team_packages_pk', ['org', 'team', 'package'])
    .execute()
  await db.schema
    .createTable('package_access')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('visibility', 'text', (c) => c.notNull())
    .addColumn('mfa', 'text', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['package_access', 'team_packages', 'team_members', 'teams', 'org_members', 'orgs']) await db.schema.dropTable(t).execute()
}
