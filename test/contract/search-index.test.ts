/**
 * The search index (migration 0007, src/storage/meta/migrations/0007-search-index.ts) on SQLite
 * and PostgreSQL: the migration fills it from the packages already stored, and every write's
 * `_rev` bump keeps it equal to the live `latest` version's name, description and keywords (a
 * dist-tag move, a publish, an unpublish of the latest version, of the whole package).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import SQLite from 'better-sqlite3'
import { Kysely, Migrator, SqliteDialect, type Migration } from 'kysely'
import { SQLITE_MIGRATIONS } from '../../src/storage/meta/kysely-meta-store.js'
import type { MetaStore } from '../../src/storage/meta/meta-store.js'
import { PostgresMetaStore } from '../../src/storage/meta/postgres-meta-store.js'
import { SqliteMetaStore } from '../../src/storage/meta/sqlite-meta-store.js'
import type { VersionRow } from '../../src/storage/meta/schema.js'
import { tempDir } from '../helpers/pier.js'
import { createTempDatabase } from '../helpers/postgres.js'

const all = (): boolean => true
let clock = Date.parse('2024-01-01T00:00:00.000Z')
const tick = (): string => new Date(clock++).toISOString()

function versionRow(name: string, version: string, description: string, keywords: string[] = []): VersionRow {
  return {
    name,
    version,
    manifest: JSON.stringify({ name, version, description, keywords }),
    readme: null,
    readme_filename: null,
    integrity: `sha512-${randomBytes(64).toString('base64')}`,
    shasum: randomBytes(20).toString('hex'),
    tarball_key: `tarballs/sha512/${randomBytes(64).toString('hex')}`,
    size: 10,
    published: tick(),
    unpublished: null,
  }
}

const names = async (store: MetaStore, words: string[]): Promise<string[]> => (await store.search(words, { size: 50, from: 0, visible: all })).hits.map((h) => h.name)

void describe('search index: the migration fills it from what is stored (SQLite)', () => {
  const dir = tempDir()
  after(() => rmSync(dir, { recursive: true, force: true }))

  void test('packages stored before migration 0007 are found after it', async () => {
    const file = join(dir, 'pier.sqlite')
    // The schema as it was before 0007, with two packages written straight into its tables.
    const before: Record<string, Migration> = Object.fromEntries(Object.entries(SQLITE_MIGRATIONS).filter(([k]) => k < '0007'))
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(file) }) }) // eslint-disable-line @typescript-eslint/no-explicit-any
    const { error } = await new Migrator({ db, provider: { getMigrations: async () => before } }).migrateToLatest()
    assert.equal(error, undefined)
    for (const [name, description, keywords] of [
      ['old-alpha', 'Parses QUUXWORD files', ['tools']],
      ['old-beta', 'unrelated', ['quuxword']],
      ['old-gamma', 'also unrelated', []],
    ] as const) {
      await db.insertInto('packages').values({ name, rev_seq: 1, rev_hash: 'ab', created: tick(), modified: tick() }).execute()
      await db.insertInto('versions').values(versionRow(name, '1.0.0', description, [...keywords])).execute()
      await db.insertInto('dist_tags').values({ name, tag: 'latest', version: '1.0.0' }).execute()
    }
    await db.destroy()
    const store = new SqliteMetaStore({ file })
    try {
      await store.migrate()
      assert.deepEqual(await names(store, ['quuxword']), ['old-alpha', 'old-beta'])
      assert.deepEqual(await names(store, ['Parses', 'QuuxWord']), ['old-alpha'])
    } finally {
      await store.close()
    }
  })
})

for (const dialect of ['sqlite', 'postgres'] as const) {
  void describe(`search index follows every write: ${dialect}`, () => {
    let store: MetaStore
    let cleanup: () => Promise<void>

    before(async () => {
      if (dialect === 'sqlite') {
        const dir = tempDir()
        const s = new SqliteMetaStore({ file: join(dir, 'pier.sqlite') })
        store = s
        cleanup = async () => {
          await s.close()
          rmSync(dir, { recursive: true, force: true })
        }
      } else {
        const db = await createTempDatabase()
        const s = new PostgresMetaStore({ url: db.url })
        store = s
        cleanup = async () => {
          await s.close()
          await db.drop()
        }
      }
      await store.migrate()
    })
    after(async () => cleanup?.())

    void test('publish, dist-tag move, unpublish of latest and of the package', async () => {
      const w = `zx${randomBytes(3).toString('hex')}`
      const name = `${w}-pkg`
      await store.transaction(async (tx) => {
        await tx.insertPackage(name, tick())
        await tx.insertVersion(versionRow(name, '1.0.0', `first ${w}one`))
        await tx.setDistTag(name, 'latest', '1.0.0')
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [`${w}one`]), [name])
      // A publish of 2.0.0 as latest: only the latest version's words are matched.
      await store.transaction(async (tx) => {
        await tx.insertVersion(versionRow(name, '2.0.0', 'second', [`${w}two`]))
        await tx.setDistTag(name, 'latest', '2.0.0')
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [`${w}one`]), [])
      assert.deepEqual(await names(store, [`${w}TWO`]), [name])
      // The tag moved back.
      await store.transaction(async (tx) => {
        await tx.setDistTag(name, 'latest', '1.0.0')
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [`${w}one`]), [name])
      assert.deepEqual(await names(store, [`${w}two`]), [])
      // Its latest version unpublished: no live latest, no hit (the name alone matches nothing either).
      await store.transaction(async (tx) => {
        await tx.markUnpublished(name, ['1.0.0'], tick())
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [w]), [])
      // A rolled-back write leaves the index as it was.
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.setDistTag(name, 'latest', '2.0.0')
          await tx.bumpRev(name, tick())
          throw new Error('rolled back')
        }),
        /rolled back/,
      )
      assert.deepEqual(await names(store, [w]), [])
      await store.transaction(async (tx) => {
        await tx.setDistTag(name, 'latest', '2.0.0')
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [w]), [name])
    })
  })
}
