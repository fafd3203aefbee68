/**
 * Named prepared statements on PostgreSQL (`preparedStatements`, postgres-meta-store.ts, and the
 * `PREPARED_MARK` that kysely-meta-store.ts ends its hot statements with), on a real server
 * (127.0.0.1:5432, a throwaway database): a marked statement is parsed once per connection and
 * kept (`pg_prepared_statements` lists it), an unmarked one is not, and the store's hot
 * statements are marked.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import { PREPARED_MARK } from '../../src/storage/meta/kysely-meta-store.js'
import { MAX_PREPARED_TEXTS, PostgresMetaStore, preparedStatements } from '../../src/storage/meta/postgres-meta-store.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'

let db: TempDatabase
before(async () => {
  db = await createTempDatabase()
})
after(async () => {
  await db?.drop()
})

/** The texts of the statements prepared on the connection `q` runs on. */
async function preparedTexts(q: (text: string) => Promise<{ rows: unknown[] }>): Promise<string[]> {
  const { rows } = await q('select statement from pg_prepared_statements order by statement')
  return (rows as { statement: string }[]).map((r) => r.statement)
}

void test('a statement ending with the mark is sent as a named prepared statement, parsed once; others are not kept', async () => {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  try {
    preparedStatements(client as unknown as pg.PoolClient)
    const marked = `select $1::integer + 1 as n${PREPARED_MARK}`
    for (let i = 0; i < 3; i++) assert.deepEqual((await client.query(marked, [i])).rows, [{ n: i + 1 }])
    assert.deepEqual((await client.query('select $1::text as t', ['plain'])).rows, [{ t: 'plain' }])
    // A config object and a statement without parameters pass through as before.
    assert.deepEqual((await client.query({ text: 'select 2 as n' })).rows, [{ n: 2 }])
    assert.deepEqual(await preparedTexts((t) => client.query(t)), [marked])
  } finally {
    await client.end()
  }
})

void test("the store's hot statements are prepared: package read, stamp, token lookup, and a publish's lock, version, dist-tag and change-feed statements", async () => {
  // One connection (the pool's minimum is 2; used one request at a time, the pool hands out the same idle one).
  const store = new PostgresMetaStore({ url: db.url, poolSize: 2 })
  try {
    await store.migrate()
    const now = new Date().toISOString()
    await store.insertUser({ name: 'alice', email: 'alice@example.com', password_hash: 'x', admin: 0, created: now, updated: now })
    await store.insertToken({ key: 'k1', token_prefix: 'p', user_name: 'alice', readonly: 0, cidr_whitelist: null, description: null, name: null, expires: null, last_used: null, grants: null, created: now, updated: now })
    await store.transaction(async (tx) => {
      await tx.insertPackage('prep', now)
      return tx.bumpRev('prep', now)
    })
    await store.transaction(async (tx) => {
      assert.ok(await tx.lockPackage('prep'))
      const row = { name: 'prep', version: '1.0.0', manifest: '{}', readme: null, readme_filename: null, integrity: 'sha512-x', shasum: 'y', tarball_key: 'k', size: 1, published: now, unpublished: null }
      assert.equal(await tx.insertVersionIfAbsent(row), true)
      await tx.setDistTag('prep', 'latest', '1.0.0')
      return tx.bumpRev('prep', now)
    })
    assert.equal((await store.readPackage('prep'))?.versions.length, 1)
    assert.equal((await store.readPackage('prep', { readmes: 'latest' }))?.readmes, 'latest')
    assert.ok(await store.packageStamp('prep'))
    assert.equal((await store.getTokenAndUser('k1'))?.user?.name, 'alice')
    const kept = await preparedTexts(async (t) => sql.raw(t).execute(store.backupDatabase()))
    const has = (what: string, fragment: RegExp): void => assert.ok(kept.some((t) => fragment.test(t)), `${what} is prepared; prepared: ${kept.join('\n---\n')}`)
    has('readPackage (whole)', /union all[\s\S]*v\.readme,/)
    has("readPackage (readmes 'latest')", /union all[\s\S]*then v\.readme end/)
    has('packageStamp', /select "rev_seq", "rev_hash"/)
    has('the token lookup', /from "tokens" left join "users"/)
    has('lockPackage', /for update/)
    has('the version insert', /insert into "versions"[\s\S]*do nothing/)
    has('the dist-tag upsert', /insert into "dist_tags"/)
    has('the change-feed statement', /pg_advisory_xact_lock/)
    assert.ok(kept.every((t) => t.endsWith(PREPARED_MARK)), 'only marked statements are kept')
  } finally {
    await store.close()
  }
})

void test('storage.meta.prepared_statements off: the store prepares nothing', async () => {
  const store = new PostgresMetaStore({ url: db.url, poolSize: 2, preparedStatements: false })
  try {
    await store.migrate()
    const now = new Date().toISOString()
    await store.transaction(async (tx) => {
      await tx.insertPackage('unprepared', now)
      return tx.bumpRev('unprepared', now)
    })
    assert.ok(await store.readPackage('unprepared'))
    assert.deepEqual(await preparedTexts(async (t) => sql.raw(t).execute(store.backupDatabase())), [])
  } finally {
    await store.close()
  }
})

// Last: it uses up this process's names.
void test('beyond MAX_PREPARED_TEXTS distinct marked texts, a marked statement still runs, unnamed', async () => {
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  try {
    preparedStatements(client as unknown as pg.PoolClient)
    for (let i = 0; i < MAX_PREPARED_TEXTS + 5; i++) {
      assert.deepEqual((await client.query(`select ${i} as n, $1::text as t${PREPARED_MARK}`, ['x'])).rows, [{ n: i, t: 'x' }])
    }
    // The names are counted per process: the earlier tests took a few of them.
    const kept = await preparedTexts((t) => client.query(t))
    assert.ok(kept.length > 0 && kept.length <= MAX_PREPARED_TEXTS, `${kept.length} prepared`)
    assert.ok(kept.some((t) => t.startsWith('select 0 as n')), 'the first text is prepared')
    assert.ok(!kept.some((t) => t.startsWith(`select ${MAX_PREPARED_TEXTS + 4} as n`)), 'the last texts ran unnamed')
  } finally {
    await client.end()
  }
})
