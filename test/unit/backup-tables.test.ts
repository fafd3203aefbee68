/**
 * `pier backup` carries every table (storage/meta/snapshot.ts, `BACKUP_TABLES`): the list is
 * compared with the tables a migrated database really has, on SQLite and on PostgreSQL
 * (a database this file creates on 127.0.0.1:5432 and drops), so a migration that adds a table
 * the backup does not list fails here. `BACKUP_TABLES` is also typed against schema.ts's
 * `Database`, so a table declared there and not listed does not compile. On SQLite the keys
 * the backup pages by are checked to be each table's primary key, in order.
 */
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { PostgresMetaStore } from '../../src/storage/meta/postgres-meta-store.js'
import { BACKUP_TABLES, liveTables, TABLE_NAMES } from '../../src/storage/meta/snapshot.js'
import { SqliteMetaStore } from '../../src/storage/meta/sqlite-meta-store.js'
import { tempDir } from '../helpers/pier.js'
import { createTempDatabase } from '../helpers/postgres.js'

void describe('backup table list', () => {
  const dir = tempDir()
  after(() => rmSync(dir, { recursive: true, force: true }))

  void test('SQLite: every table of a migrated database is listed, keyed by its primary key', async () => {
    const file = join(dir, 'pier.sqlite')
    const store = new SqliteMetaStore({ file })
    try {
      await store.migrate()
      assert.deepEqual(await liveTables(store), [...TABLE_NAMES].sort())
    } finally {
      await store.close()
    }
    const db = new Database(file, { readonly: true })
    try {
      for (const t of TABLE_NAMES) {
        const cols = db.pragma(`table_info(${t})`) as { name: string; pk: number }[]
        const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)
        assert.deepEqual(pk, [...BACKUP_TABLES[t].key], `${t}: keyset columns are the primary key`)
      }
    } finally {
      db.close()
    }
  })

  void test('PostgreSQL: every table of a migrated database is listed', async () => {
    const database = await createTempDatabase()
    const store = new PostgresMetaStore({ url: database.url })
    try {
      await store.migrate()
      assert.deepEqual(await liveTables(store), [...TABLE_NAMES].sort())
    } finally {
      await store.close()
      await database.drop()
    }
  })
})
