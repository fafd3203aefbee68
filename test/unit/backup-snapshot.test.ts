/**
 * storage/meta/snapshot.ts on SQLite (a temp file) and PostgreSQL (a database this file creates on
 * 127.0.0.1:5432 and drops), each with two stores on one database as a serving Pier and
 * `pier backup` are:
 * - `withSnapshot` sees one state: writes another connection commits while it runs are not seen,
 *   in counts, rows, the high-water mark or the blob keys (seen once it ended);
 * - rows are paged by primary key: more rows than a page come back whole and in key order;
 * - `withBulkLoad` rolls back on a throw (nothing of it remains), and after a committed load the
 *   change feed's next `seq` follows the restored ones.
 */
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import type { MetaStore } from '../../src/storage/meta/meta-store.js'
import { PostgresMetaStore } from '../../src/storage/meta/postgres-meta-store.js'
import { withBulkLoad, withSnapshot } from '../../src/storage/meta/snapshot.js'
import { SqliteMetaStore } from '../../src/storage/meta/sqlite-meta-store.js'
import { tempDir } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'

const user = (name: string) => ({ name, email: `${name}@example.com`, password_hash: 'scrypt$test', admin: 0, created: '2026-01-01T00:00:00.000Z', updated: '2026-01-01T00:00:00.000Z' })

/** Publishes-like write: a package row, a version row and its change (what the write path commits). */
async function write(store: MetaStore, name: string, version: string): Promise<void> {
  await store.transaction(async (tx) => {
    const now = new Date().toISOString()
    await tx.insertPackage(name, now)
    await tx.insertVersion({
      name,
      version,
      manifest: '{}',
      readme: null,
      readme_filename: null,
      integrity: 'sha512-AAAA',
      shasum: '0'.repeat(40),
      tarball_key: `tarballs/sha512/00/00${name}${version}.tgz`,
      size: 1,
      published: now,
      unpublished: null,
    })
    await tx.bumpRev(name, now)
  })
}

const dirs: string[] = []
const databases: TempDatabase[] = []
after(async () => {
  for (const d of databases.splice(0)) await d.drop()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const BACKENDS: { name: string; open(): Promise<() => MetaStore> }[] = [
  {
    name: 'SQLite',
    async open() {
      const dir = tempDir()
      dirs.push(dir)
      return () => new SqliteMetaStore({ file: join(dir, 'pier.sqlite') })
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const db = await createTempDatabase()
      databases.push(db)
      return () => new PostgresMetaStore({ url: db.url })
    },
  },
]

for (const backend of BACKENDS) {
  void describe(`backup snapshot on ${backend.name}`, () => {
    void test('a snapshot does not see what commits while it runs', async () => {
      const open = await backend.open()
      const serving = open()
      const backup = open()
      try {
        await serving.migrate()
        await write(serving, 'a', '1.0.0')
        const seen = await withSnapshot(backup, async (s) => {
          const before = { users: await s.count('users'), versions: await s.count('versions'), seq: await s.highWater() }
          // Another connection commits while the snapshot is open.
          await serving.insertUser(user('late'))
          await write(serving, 'b', '1.0.0')
          await write(serving, 'a', '1.1.0')
          const rows: unknown[] = []
          for await (const r of s.rows('versions')) rows.push(r)
          const keys: string[] = []
          for await (const k of s.blobKeys()) keys.push(k)
          return { before, users: await s.count('users'), versions: rows.length, seq: await s.highWater(), keys, changed: await s.count('packages', 0) }
        })
        assert.deepEqual(seen.before, { users: 0, versions: 1, seq: 1 })
        assert.equal(seen.users, 0)
        assert.equal(seen.versions, 1)
        assert.equal(seen.seq, 1)
        assert.deepEqual(seen.keys, ['tarballs/sha512/00/00a1.0.0.tgz'])
        assert.equal(seen.changed, 1)
        // A new snapshot sees everything, and the incremental selection after seq 1.
        await withSnapshot(backup, async (s) => {
          assert.equal(await s.count('users'), 1)
          assert.equal(await s.highWater(), 3)
          assert.equal(await s.count('packages', 1), 2, 'both packages changed after seq 1')
          assert.equal(await s.count('changes', 1), 2)
          assert.equal(await s.countBlobKeys(1), 2, 'only the versions written after seq 1')
        })
      } finally {
        await serving.close()
        await backup.close()
      }
    })

    void test('rows come back whole and in key order across pages; a failed load leaves nothing; sequences continue', async () => {
      const open = await backend.open()
      const store = open()
      try {
        await store.migrate()
        // More rows than a page (1000), inserted out of key order.
        const names = Array.from({ length: 2345 }, (_, i) => `u${String((i * 7919) % 2345).padStart(5, '0')}`)
        const rows = names.map(user)
        await assert.rejects(
          withBulkLoad(store, async (l) => {
            for (let i = 0; i < rows.length; i += 500) await l.insert('users', rows.slice(i, i + 500))
            await l.insert('changes', [{ seq: 41, name: 'x', rev: '1-a', deleted: 0, created: '2026-01-01T00:00:00.000Z' }])
            throw new Error('checks failed')
          }),
          /checks failed/,
        )
        assert.equal(await store.countUsers(), 0, 'rolled back')
        await withBulkLoad(store, async (l) => {
          for (let i = 0; i < rows.length; i += 500) await l.insert('users', rows.slice(i, i + 500))
          await l.insert('changes', [{ seq: 41, name: 'x', rev: '1-a', deleted: 0, created: '2026-01-01T00:00:00.000Z' }])
          // An overlapping change row is skipped, not an error (incremental backups may overlap).
          await l.insert('changes', [{ seq: 41, name: 'x', rev: '1-a', deleted: 0, created: '2026-01-01T00:00:00.000Z' }])
          await l.finish()
        })
        const read = await withSnapshot(store, async (s) => {
          const out: string[] = []
          for await (const r of s.rows('users')) out.push(String(r.name))
          return out
        })
        assert.deepEqual(read, [...names].sort())
        await write(store, 'after', '1.0.0')
        const changes = await store.changesSince(0, 10)
        assert.deepEqual(
          changes.map((c) => c.seq),
          [41, 42],
          'the next change follows the restored ones',
        )
      } finally {
        await store.close()
      }
    })
  })
}
