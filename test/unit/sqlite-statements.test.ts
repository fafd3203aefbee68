/**
 * The SQLite store's statement cache (`cachingDatabase`, sqlite-meta-store.ts) on a real
 * better-sqlite3 database in a temp folder: statements are reused by SQL text, a statement still
 * iterating is not handed out twice, and the cache stays bounded.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import SQLite from 'better-sqlite3'
import { cachingDatabase } from '../../src/storage/meta/sqlite-meta-store.js'

const dir = mkdtempSync(join(tmpdir(), 'pier-stmt-'))
after(() => rmSync(dir, { recursive: true, force: true }))

void test('statements are reused by SQL text, never while one still iterates, and the cache is bounded', () => {
  const raw = new SQLite(join(dir, 'a.sqlite'))
  const db = cachingDatabase(raw, 2)
  raw.exec('create table t (n integer)')
  const insert = db.prepare('insert into t (n) values (?)')
  for (let i = 0; i < 5; i++) db.prepare('insert into t (n) values (?)').run(i)
  assert.equal(db.prepare('insert into t (n) values (?)'), insert, 'the same SQL gives the same statement')
  const sel = 'select n from t order by n'
  const iter = db.prepare(sel).iterate() as IterableIterator<{ n: number }>
  assert.equal(iter.next().value?.n, 0)
  // The cached statement is busy: a second one is prepared, and both answer.
  const again = db.prepare(sel)
  assert.deepEqual(
    (again.all() as { n: number }[]).map((r) => r.n),
    [0, 1, 2, 3, 4],
  )
  assert.equal(iter.next().value?.n, 1)
  iter.return?.()
  // Two more texts push the least recently used ones out (max 2).
  db.prepare('select count(*) from t').get()
  db.prepare('select max(n) from t').get()
  assert.notEqual(db.prepare('insert into t (n) values (?)'), insert, 'evicted, so prepared again')
  db.close()
  assert.equal(raw.open, false)
})
