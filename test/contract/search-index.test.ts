/**
 * The search index (migration 0007, src/storage/meta/migrations/0007-search-index.ts) on SQLite
 * and PostgreSQL: the migration fills it from the packages already stored, and every write's
 * `_rev` bump keeps it equal to the live `latest` version's name, description and keywords (a
 * dist-tag move, a publish, an unpublish of the latest version, of the whole package). The
 * trigram index over it (migration 0008: SQLite's FTS5 `search_fts`, PostgreSQL's pg_trgm GIN
 * index) is kept with it and gives the same answers as the scan, for short words and for words
 * with quotes, LIKE wildcards and non-ASCII letters too.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import SQLite from 'better-sqlite3'
import pg from 'pg'
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

/** The search plan on PostgreSQL with sequential scans off: whether it can use the trigram index. */
async function pgPlan(url: string, word: string): Promise<string> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query('set enable_seqscan = off')
    const r = await c.query<{ 'QUERY PLAN': string }>(`explain select name from search_index where text like $1`, [`%${word}%`])
    return r.rows.map((x) => x['QUERY PLAN']).join('\n')
  } finally {
    await c.end()
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
    let sqliteFile = ''
    let pgUrl = ''

    before(async () => {
      if (dialect === 'sqlite') {
        const dir = tempDir()
        sqliteFile = join(dir, 'pier.sqlite')
        const s = new SqliteMetaStore({ file: sqliteFile })
        store = s
        cleanup = async () => {
          await s.close()
          rmSync(dir, { recursive: true, force: true })
        }
      } else {
        const db = await createTempDatabase()
        pgUrl = db.url
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

    void test('a transaction that writes its latest manifest and changes it again is indexed from its final state', async () => {
      // The write path hands the search row the manifest it wrote instead of reading it back;
      // these are the cases where that manifest changes or stops being live before the commit.
      const w = `zy${randomBytes(3).toString('hex')}`
      const name = `${w}-pkg`
      await store.transaction(async (tx) => {
        await tx.insertPackage(name, tick())
        await tx.insertVersion(versionRow(name, '1.0.0', `${w}one`))
        await tx.setDistTag(name, 'latest', '1.0.0')
        await tx.updateManifest(name, '1.0.0', versionRow(name, '1.0.0', `${w}deprecated`).manifest)
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [`${w}one`]), [])
      assert.deepEqual(await names(store, [`${w}deprecated`]), [name])
      // Published as latest and unpublished in the same transaction: no live latest.
      await store.transaction(async (tx) => {
        await tx.insertVersion(versionRow(name, '2.0.0', `${w}two`))
        await tx.setDistTag(name, 'latest', '2.0.0')
        await tx.markUnpublished(name, ['2.0.0'], tick())
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [w]), [])
      // Tagged latest, then the tag removed and set to a version this transaction did not write.
      await store.transaction(async (tx) => {
        await tx.insertVersion(versionRow(name, '3.0.0', `${w}three`))
        await tx.setDistTag(name, 'latest', '3.0.0')
        await tx.deleteDistTag(name, 'latest')
        await tx.setDistTag(name, 'latest', '1.0.0')
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [`${w}three`]), [])
      assert.deepEqual(await names(store, [`${w}deprecated`]), [name])
      // A publish whose text is the same as the row's (no rewrite of the row) is still found.
      await store.transaction(async (tx) => {
        await tx.insertVersion(versionRow(name, '4.0.0', `${w}deprecated`))
        await tx.setDistTag(name, 'latest', '4.0.0')
        return tx.bumpRev(name, tick())
      })
      assert.deepEqual(await names(store, [`${w}deprecated`]), [name])
    })

    void test('the trigram index answers as the scan does: short words, quotes, wildcards, non-ASCII', async () => {
      const w = `zq${randomBytes(3).toString('hex')}`
      const publish = async (name: string, description: string, keywords: string[]): Promise<void> => {
        await store.transaction(async (tx) => {
          await tx.insertPackage(name, tick())
          await tx.insertVersion(versionRow(name, '1.0.0', description, keywords))
          await tx.setDistTag(name, 'latest', '1.0.0')
          return tx.bumpRev(name, tick())
        })
      }
      const a = `${w}-a`
      const b = `${w}-b`
      await publish(a, `${w} 50% "quoted" off_sale`, ['Ünïcodé', 'x'])
      await publish(b, `${w} 50 offxsale`, ['unicode'])
      assert.deepEqual(await names(store, [w]), [a, b])
      assert.deepEqual(await names(store, [w, '50%']), [a])
      assert.deepEqual(await names(store, [w, '"quoted"']), [a])
      assert.deepEqual(await names(store, [w, 'quoted"']), [a])
      assert.deepEqual(await names(store, [w, 'off_sale']), [a])
      assert.deepEqual(await names(store, [w, 'offxsale']), [b])
      assert.deepEqual(await names(store, [w, 'ÜNÏCODÉ']), [a])
      assert.deepEqual(await names(store, [w, 'unicode']), [b])
      // A NUL inside a word matches nothing, and is no error (PostgreSQL's text cannot hold one;
      // FTS5 reads its query as a C string).
      assert.deepEqual(await names(store, [w, 'quo\0ted']), [])
      // Shorter than a trigram: answered by the scan alone.
      assert.deepEqual(await names(store, [w, 'x']), [a, b])
      assert.deepEqual(await names(store, [w, '%']), [a])
      assert.deepEqual(await names(store, [`${w}-`, 'q']), [a, b])
      assert.deepEqual(await names(store, [`${w}-b`]), [b])
      if (dialect === 'sqlite') {
        // search_fts follows search_index through its triggers: insert, update (a new latest), delete.
        const count = (word: string): number => {
          const db = new SQLite(sqliteFile, { readonly: true })
          try {
            return (db.prepare('select count(*) as n from search_fts where search_fts match ?').get(`"${word}"`) as { n: number }).n
          } finally {
            db.close()
          }
        }
        assert.equal(count(w), 2)
        assert.equal(count('offxsale'), 1)
        await store.transaction(async (tx) => {
          await tx.insertVersion(versionRow(b, '2.0.0', 'renamed entirely'))
          await tx.setDistTag(b, 'latest', '2.0.0')
          return tx.bumpRev(b, tick())
        })
        assert.equal(count('offxsale'), 0)
        assert.equal(count('renamed entirely'), 1)
        await store.transaction(async (tx) => {
          await tx.markUnpublished(a, ['1.0.0'], tick())
          return tx.bumpRev(a, tick())
        })
        assert.equal(count('off_sale'), 0)
        assert.equal(count(w), 1)
        assert.deepEqual(await names(store, ['renamed', 'entirely']), [b])
      } else {
        assert.match(await pgPlan(pgUrl, w), /search_index_text_trgm/)
      }
    })
  })
}
