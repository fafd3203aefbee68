/**
 * The MetaStore contract, one body of tests run against every backend (SQLite on a temp file,
 * PostgreSQL on a database this file creates on 127.0.0.1:5432 and drops afterwards): packages,
 * versions, dist-tags, maintainers, stars, users, tokens, revisions and the change feed, search,
 * scopes, the uplink packument cache, rollback, and concurrent write transactions. PostgreSQL also gets tests of what only it has:
 * several nodes migrating at once, the row lock and the change-feed lock, observed in `pg_locks`.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { sql } from 'kysely'
import type { MetaStore } from '../../src/storage/meta/meta-store.js'
import type { StoredPackument } from '../../src/registry/types.js'
import type { PackageTx as MetaTx } from '../../src/registry/stores.js'
import { CHANGES_LOCK_KEY, SQLITE_MIGRATIONS } from '../../src/storage/meta/kysely-meta-store.js'
import { POSTGRES_MIGRATIONS, PostgresMetaStore } from '../../src/storage/meta/postgres-meta-store.js'
import type { CachedPackumentRow, TokenRow, UserRow, VersionRow } from '../../src/storage/meta/schema.js'
import { SqliteMetaStore } from '../../src/storage/meta/sqlite-meta-store.js'
import { createTempDatabase } from '../helpers/postgres.js'
import { tempDir } from '../helpers/pier.js'

/** An empty database of one backend. */
interface TestDb {
  /** A new, unmigrated store on this database (each its own connection or pool). */
  open(): MetaStore
  destroy(): Promise<void>
  /** Connection string, PostgreSQL only: for the lock tests. */
  pgUrl?: string
}

interface Backend {
  name: string
  create(): Promise<TestDb>
}

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    async create() {
      const dir = tempDir('pier-contract-')
      const file = join(dir, 'pier.sqlite')
      return {
        open: () => new SqliteMetaStore({ file }),
        async destroy() {
          rmSync(dir, { recursive: true, force: true })
        },
      }
    },
  },
  {
    name: 'postgres',
    async create() {
      const db = await createTempDatabase()
      return { open: () => new PostgresMetaStore({ url: db.url }), destroy: () => db.drop(), pgUrl: db.url }
    },
  },
]

let counter = 0
/** A package name no other test uses. */
const uniqueName = (prefix: string): string => `${prefix}-${++counter}-${randomBytes(3).toString('hex')}`
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
/** A search predicate that lets every name through. */
const all = (): boolean => true
/** ISO timestamps that sort in call order (one millisecond apart). */
let clock = Date.parse('2024-01-01T00:00:00.000Z')
const tick = (): string => new Date(clock++).toISOString()

function versionRow(name: string, version: string, extra: Partial<VersionRow> & { manifest?: string } = {}): VersionRow {
  return {
    name,
    version,
    manifest: JSON.stringify({ name, version, description: `${name} ${version}` }),
    readme: `# ${name}`,
    readme_filename: 'README.md',
    integrity: `sha512-${randomBytes(64).toString('base64')}`,
    shasum: randomBytes(20).toString('hex'),
    tarball_key: `tarballs/sha512/${randomBytes(64).toString('hex')}`,
    size: 1234,
    published: tick(),
    unpublished: null,
    ...extra,
  }
}

function userRow(name: string): UserRow {
  const now = tick()
  return { name, email: `${name}@example.com`, password_hash: `scrypt$test$${name}`, admin: 0, created: now, updated: now }
}

/** Creates `name` with the given versions (the last one `latest`) in one transaction. */
async function createPackage(store: MetaStore, name: string, versions: VersionRow[], maintainers: string[] = []): Promise<string> {
  return store.transaction(async (tx) => {
    assert.equal(await tx.insertPackage(name, tick()), true)
    for (const v of versions) await tx.insertVersion(v)
    const last = versions.at(-1)
    if (last) await tx.setDistTag(name, 'latest', last.version)
    if (maintainers.length > 0) await tx.setMaintainers(name, maintainers)
    return tx.bumpRev(name, tick())
  })
}

async function lastSeq(store: MetaStore): Promise<number> {
  const all = await store.changesSince(0, 1_000_000)
  return all.at(-1)?.seq ?? 0
}

/**
 * Resolves once some session of the database waits for a lock; fails if `other` settles first
 * (it did not wait) or nothing waits within 10 s. Polls `pg_locks`, a real condition, not a timer.
 */
async function waitUntilBlocked(client: pg.Client, other: Promise<unknown>, what: string): Promise<void> {
  let settled = false
  other.then(
    () => (settled = true),
    () => (settled = true),
  )
  const deadline = Date.now() + 10_000
  while (true) {
    const r = await client.query<{ n: number }>(
      `select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
       where not l.granted and a.datname = current_database()`,
    )
    if ((r.rows[0]?.n ?? 0) > 0) return
    assert.ok(!settled, `${what} finished instead of waiting for the lock`)
    assert.ok(Date.now() < deadline, `${what} never waited for the lock`)
  }
}

/** A promise and its resolver. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

void test('every dialect has the same migrations, by name', () => {
  assert.deepEqual(Object.keys(POSTGRES_MIGRATIONS).sort(), Object.keys(SQLITE_MIGRATIONS).sort())
})

for (const backend of BACKENDS) {
  void describe(`MetaStore contract: ${backend.name}`, () => {
    let db: TestDb
    let store: MetaStore

    before(async () => {
      db = await backend.create()
      store = db.open()
      await store.migrate()
    })
    after(async () => {
      await store?.close()
      await db?.destroy()
    })

    void test('migrate is idempotent and a second store sees the same data', async () => {
      await store.insertUser(userRow('migrate-check'))
      const other = db.open()
      try {
        await other.migrate()
        assert.equal((await other.getUser('migrate-check'))?.email, 'migrate-check@example.com')
      } finally {
        await other.close()
      }
      await store.migrate()
    })

    void test('insertPackage creates once; getPackage reads the row with number-typed integers', async () => {
      const name = uniqueName('pkg')
      const created = tick()
      const r = await store.transaction(async (tx) => {
        assert.equal(await tx.getPackage(name), undefined)
        const first = await tx.insertPackage(name, created)
        const second = await tx.insertPackage(name, tick())
        return { first, second, row: await tx.getPackage(name) }
      })
      assert.equal(r.first, true)
      assert.equal(r.second, false)
      assert.deepEqual(r.row, { name, rev_seq: 0, rev_hash: '0', created, modified: created })
      const state = await store.readPackage(name)
      assert.ok(state)
      assert.equal(typeof state.pkg.rev_seq, 'number')
      assert.deepEqual(state.versions, [])
      assert.deepEqual(state.distTags, {})
      assert.equal(await store.readPackage(uniqueName('absent')), undefined)
    })

    void test("readPackage with readmes 'latest': only the latest dist-tag's readme, all of them when it names no live version", async () => {
      const name = uniqueName('readmes')
      await createPackage(store, name, [versionRow(name, '1.0.0', { readme: 'one' }), versionRow(name, '2.0.0', { readme: 'two' }), versionRow(name, '1.5.0', { readme: 'one and a half' })])
      await store.transaction(async (tx) => {
        await tx.setDistTag(name, 'latest', '2.0.0')
        return tx.bumpRev(name, tick())
      })
      const readmes = (s: StoredPackument | undefined): Record<string, string | null> => Object.fromEntries((s?.versions ?? []).map((v) => [v.version, v.readme]))
      const all = await store.readPackage(name)
      assert.deepEqual(readmes(all), { '1.0.0': 'one', '2.0.0': 'two', '1.5.0': 'one and a half' })
      assert.equal(all?.readmes, undefined)
      const latest = await store.readPackage(name, { readmes: 'latest' })
      assert.deepEqual(readmes(latest), { '1.0.0': null, '2.0.0': 'two', '1.5.0': null })
      assert.equal(latest?.readmes, 'latest')
      // Everything else is the same as the whole read.
      assert.deepEqual({ ...latest, readmes: undefined, versions: latest?.versions.map((v) => ({ ...v, readme: null })) }, { ...all, readmes: undefined, versions: all?.versions.map((v) => ({ ...v, readme: null })) })
      assert.equal((await store.getVersion(name, '1.0.0'))?.readme, 'one')
      // `latest` unpublished: which readme the packument shows is decided by semver, so all are read.
      await store.transaction(async (tx) => {
        await tx.markUnpublished(name, ['2.0.0'], tick())
        return tx.bumpRev(name, tick())
      })
      const fallback = await store.readPackage(name, { readmes: 'latest' })
      assert.deepEqual(readmes(fallback), { '1.0.0': 'one', '2.0.0': 'two', '1.5.0': 'one and a half' })
      assert.equal(fallback?.readmes, undefined)
    })

    void test('readPackage: the whole state, each part in its order (versions by publish time then version, dist-tags, maintainers with their e-mails, stars)', async () => {
      const name = uniqueName('whole')
      const at = tick()
      // Inserted out of order: two at one instant (then ordered by version), one later and unpublished.
      const later = versionRow(name, '0.9.0', { published: tick(), unpublished: tick() })
      const two = versionRow(name, '2.0.0', { published: at, readme: null, readme_filename: null, size: 99 })
      const beta = versionRow(name, '1.0.0-beta', { published: at })
      // Letters only, so the database's collation and JavaScript agree on the order.
      const suffix = randomBytes(4).toString('hex').replace(/[0-9]/g, 'x')
      const [withUser, withoutUser] = [`a${suffix}`, `b${suffix}`]
      await store.insertUser(userRow(withUser))
      await createPackage(store, name, [later, two, beta], [withoutUser, withUser])
      await store.transaction(async (tx) => {
        await tx.setDistTag(name, 'next', '2.0.0')
        await tx.setDistTag(name, 'beta', '1.0.0-beta')
        await tx.setStar(name, `z${suffix}`, true)
        await tx.setStar(name, `c${suffix}`, true)
        return tx.bumpRev(name, tick())
      })
      const pkg = await store.transaction((tx) => tx.getPackage(name))
      assert.equal(pkg?.rev_seq, 2)
      assert.deepEqual(await store.readPackage(name), {
        pkg,
        versions: [beta, two, later],
        distTags: { beta: '1.0.0-beta', latest: '1.0.0-beta', next: '2.0.0' },
        maintainers: [{ name: withUser, email: `${withUser}@example.com` }, { name: withoutUser }],
        stars: [`c${suffix}`, `z${suffix}`],
      })
      const latest = await store.readPackage(name, { readmes: 'latest' })
      assert.deepEqual(
        latest?.versions.map((v) => [v.version, v.readme]),
        [
          ['1.0.0-beta', beta.readme],
          ['2.0.0', null],
          ['0.9.0', null],
        ],
      )
    })

    void test('a transaction that throws leaves nothing behind', async () => {
      const name = uniqueName('rollback')
      const seq = await lastSeq(store)
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.insertPackage(name, tick())
          await tx.insertVersion(versionRow(name, '1.0.0'))
          await tx.setDistTag(name, 'latest', '1.0.0')
          await tx.bumpRev(name, tick())
          throw new Error('boom')
        }),
        /boom/,
      )
      assert.equal(await store.readPackage(name), undefined)
      assert.equal(await store.getVersion(name, '1.0.0'), undefined)
      assert.deepEqual(
        (await store.changesSince(seq, 100)).filter((c) => c.name === name),
        [],
      )
      // The connection is usable afterwards.
      await createPackage(store, name, [versionRow(name, '1.0.0')])
      assert.ok(await store.getVersion(name, '1.0.0'))
    })

    void test('versions: insert, duplicate refused, get, list, replace, manifest update, unpublish, snapshot order', async () => {
      const name = uniqueName('ver')
      const v1 = versionRow(name, '1.0.0')
      const v2 = versionRow(name, '1.1.0', { readme: null, readme_filename: null, size: 2_000_000_000 })
      const v0 = versionRow(name, '0.9.0')
      await createPackage(store, name, [v1, v2, v0])
      await assert.rejects(store.transaction((tx) => tx.insertVersion(versionRow(name, '1.0.0'))))
      assert.deepEqual(await store.getVersion(name, '1.0.0'), v1)
      assert.deepEqual(await store.getVersion(name, '1.1.0'), v2)
      assert.equal(await store.getVersion(name, '9.9.9'), undefined)

      const replacement = versionRow(name, '1.0.0', { manifest: JSON.stringify({ name, version: '1.0.0', replaced: true }) })
      await store.transaction(async (tx) => {
        assert.deepEqual(await tx.getVersion(name, '1.1.0'), v2)
        assert.deepEqual(
          (await tx.listVersions(name)).map((v) => v.version).sort(),
          ['0.9.0', '1.0.0', '1.1.0'],
        )
        await tx.replaceVersion(replacement)
        await tx.updateManifest(name, '1.1.0', JSON.stringify({ name, version: '1.1.0', deprecated: 'old' }))
        await tx.markUnpublished(name, ['0.9.0'], '2030-01-01T00:00:00.000Z')
        await tx.markUnpublished(name, [], '2030-01-01T00:00:00.000Z')
        await tx.bumpRev(name, tick())
      })
      const state = await store.readPackage(name)
      assert.ok(state)
      // Publish order (published, then version), unpublished rows included.
      assert.deepEqual(
        state.versions.map((v) => v.version),
        ['1.1.0', '0.9.0', '1.0.0'],
      )
      assert.deepEqual(state.versions[2], replacement)
      assert.equal(JSON.parse(state.versions[0]?.manifest ?? '{}').deprecated, 'old')
      assert.equal(state.versions[0]?.size, 2_000_000_000)
      assert.equal(state.versions[1]?.unpublished, '2030-01-01T00:00:00.000Z')
      assert.equal(state.versions[2]?.unpublished, null)
    })

    void test('dist-tags: set, move, delete', async () => {
      const name = uniqueName('tags')
      await createPackage(store, name, [versionRow(name, '1.0.0'), versionRow(name, '2.0.0-beta.1')])
      await store.transaction(async (tx) => {
        await tx.setDistTag(name, 'beta', '2.0.0-beta.1')
        await tx.setDistTag(name, 'next', '1.0.0')
        await tx.setDistTag(name, 'next', '2.0.0-beta.1')
        assert.deepEqual(await tx.getDistTags(name), { latest: '2.0.0-beta.1', beta: '2.0.0-beta.1', next: '2.0.0-beta.1' })
        await tx.setDistTag(name, 'latest', '1.0.0')
        await tx.deleteDistTag(name, 'beta')
        await tx.deleteDistTag(name, 'no-such-tag')
        await tx.bumpRev(name, tick())
      })
      assert.deepEqual((await store.readPackage(name))?.distTags, { latest: '1.0.0', next: '2.0.0-beta.1' })
    })

    void test('packageStamp: the _rev and the maintainers readPackage gives, e-mail changes included', async () => {
      const name = uniqueName('stamp')
      assert.equal(await store.packageStamp(name), undefined)
      const withMail = uniqueName('stamp-m')
      await store.insertUser(userRow(withMail))
      await createPackage(store, name, [versionRow(name, '1.0.0')], ['zz-no-account', withMail])
      const stampOf = async (): Promise<unknown> => {
        const s = await store.readPackage(name)
        return s && { rev: `${s.pkg.rev_seq}-${s.pkg.rev_hash}`, maintainers: s.maintainers }
      }
      assert.deepEqual(await store.packageStamp(name), await stampOf())
      // A maintainer's new e-mail changes the stamp without a write of the package.
      const before = await store.packageStamp(name)
      await store.updateUser(withMail, { email: `new-${withMail}@example.com`, updated: tick() })
      const after = await store.packageStamp(name)
      assert.equal(after?.rev, before?.rev)
      assert.notDeepEqual(after?.maintainers, before?.maintainers)
      assert.deepEqual(after, await stampOf())
      await store.transaction(async (tx) => {
        await tx.setDistTag(name, 'next', '1.0.0')
        return tx.bumpRev(name, tick())
      })
      assert.notEqual((await store.packageStamp(name))?.rev, after?.rev)
      assert.deepEqual(await store.packageStamp(name), await stampOf())
    })

    void test('insertVersionIfAbsent inserts a new version and leaves an existing one as it was', async () => {
      const name = uniqueName('ifabsent')
      await createPackage(store, name, [versionRow(name, '1.0.0')])
      const before = await store.getVersion(name, '1.0.0')
      await store.transaction(async (tx) => {
        assert.equal(await tx.insertVersionIfAbsent({ ...versionRow(name, '1.0.0'), manifest: '{"other":true}' }), false)
        assert.equal(await tx.insertVersionIfAbsent(versionRow(name, '1.1.0')), true)
        await tx.bumpRev(name, tick())
      })
      assert.deepEqual(await store.getVersion(name, '1.0.0'), before)
      assert.equal((await store.getVersion(name, '1.1.0'))?.version, '1.1.0')
    })

    void test('maintainers: replaced as a set, sorted bytewise, with e-mails from users', async () => {
      const name = uniqueName('maint')
      const users = ['Zed', 'b_c', 'b-c', 'a'].map((u) => `${u}-${counter}`)
      await store.insertUser(userRow(users[3] as string))
      await createPackage(store, name, [versionRow(name, '1.0.0')], ['nobody'])
      await store.transaction(async (tx) => {
        assert.deepEqual(await tx.getMaintainers(name), ['nobody'])
        await tx.setMaintainers(name, users)
        assert.deepEqual(await tx.getMaintainers(name), [...users].sort())
        // lockPackage answers the row and the same sorted list in one query.
        const locked = await tx.lockPackage(name)
        assert.deepEqual(locked?.maintainers, [...users].sort())
        assert.deepEqual(locked?.pkg, await tx.getPackage(name))
        await tx.setMaintainers(name, [])
        assert.deepEqual((await tx.lockPackage(name))?.maintainers, [])
        assert.equal(await tx.lockPackage(`${name}-absent`), undefined)
        await tx.setMaintainers(name, users)
        assert.equal(await tx.userExists(users[3] as string), true)
        assert.equal(await tx.userExists(users[0] as string), false)
        await tx.bumpRev(name, tick())
      })
      const state = await store.readPackage(name)
      // Bytewise (SQLite BINARY, PostgreSQL "C"): uppercase before lowercase, '-' before '_'.
      assert.deepEqual(state?.maintainers, [
        { name: users[0] },
        { name: users[3], email: `${users[3]}@example.com` },
        { name: users[2] },
        { name: users[1] },
      ])
      await store.transaction((tx) => tx.setMaintainers(name, []))
      assert.deepEqual((await store.readPackage(name))?.maintainers, [])
    })

    void test('stars: set and unset idempotently; starredBy', async () => {
      const a = uniqueName('star-a')
      const b = uniqueName('star-b')
      const fan = uniqueName('fan')
      await createPackage(store, a, [versionRow(a, '1.0.0')])
      await createPackage(store, b, [versionRow(b, '1.0.0')])
      await store.transaction(async (tx) => {
        await tx.setStar(a, fan, true)
        await tx.setStar(a, fan, true)
        await tx.setStar(a, 'other', true)
        await tx.setStar(b, fan, true)
        await tx.setStar(b, 'never-starred', false)
      })
      assert.deepEqual((await store.readPackage(a))?.stars, ['other', fan].sort())
      assert.deepEqual(await store.starredBy(fan), [a, b].sort())
      await store.transaction((tx) => tx.setStar(a, fan, false))
      assert.deepEqual(await store.starredBy(fan), [b])
      assert.deepEqual((await store.readPackage(a))?.stars, ['other'])
    })

    void test('users: insert, get, count, update, a taken name refused without a write', async () => {
      const name = uniqueName('user')
      const before = await store.countUsers()
      assert.equal(typeof before, 'number')
      const row = userRow(name)
      assert.equal(await store.insertUser(row), 'inserted')
      assert.deepEqual(await store.getUser(name), row)
      assert.equal(await store.countUsers(), before + 1)
      assert.equal(await store.insertUser({ ...userRow(name), email: 'second@example.com' }), 'taken', 'a taken name is refused')
      assert.deepEqual(await store.getUser(name), row, 'and the first row is kept')
      const count = await store.countUsers()
      assert.equal(await store.insertUser(userRow(uniqueName('over')), count), 'full', 'max_users reached')
      assert.equal(await store.insertUser(row, count + 1), 'taken')
      const under = userRow(uniqueName('under'))
      assert.equal(await store.insertUser(under, count + 1), 'inserted')
      assert.equal(await store.countUsers(), count + 1)
      await store.updateUser(name, { email: 'new@example.com', updated: '2031-01-01T00:00:00.000Z' })
      assert.deepEqual(await store.getUser(name), { ...row, email: 'new@example.com', updated: '2031-01-01T00:00:00.000Z' })
      await store.updateUser(name, { password_hash: 'scrypt$other' })
      assert.equal((await store.getUser(name))?.password_hash, 'scrypt$other')
      assert.equal(await store.getUser(uniqueName('nobody')), undefined)
    })

    void test('tokens: insert, get, list in creation order, delete', async () => {
      const user = uniqueName('tokuser')
      const token = (n: number, extra: Partial<TokenRow> = {}): TokenRow => {
        const now = tick()
        return {
          key: randomBytes(64).toString('hex'),
          token_prefix: `npm_${n}`,
          user_name: user,
          readonly: 0,
          cidr_whitelist: null,
          description: null,
          name: null,
          expires: null,
          last_used: null,
          grants: null,
          created: now,
          updated: now,
          ...extra,
        }
      }
      const t1 = token(1, { readonly: 1, cidr_whitelist: JSON.stringify(['10.0.0.0/8']), description: 'ci' })
      const t2 = token(2)
      await store.insertToken(t2)
      await store.insertToken(t1)
      await store.insertToken(token(3, { user_name: uniqueName('someone-else') }))
      assert.deepEqual(await store.getToken(t1.key), t1)
      assert.equal(typeof (await store.getToken(t1.key))?.readonly, 'number')
      // With its owner in one query; a token whose owner has no account answers no user.
      await store.insertUser(userRow(user))
      const owner = await store.getUser(user)
      assert.ok(owner)
      assert.deepEqual(await store.getTokenAndUser(t1.key), { token: t1, user: owner })
      assert.equal(typeof (await store.getTokenAndUser(t1.key))?.user?.admin, 'number')
      const orphan = [...(await store.listAllTokens())].find((t) => t.user_name.startsWith('someone-else'))
      assert.ok(orphan)
      assert.deepEqual(await store.getTokenAndUser(orphan.key), { token: orphan, user: undefined })
      assert.equal(await store.getTokenAndUser('no-such-key'), undefined)
      assert.deepEqual(await store.listTokens(user), [t1, t2].sort((x, y) => (x.created < y.created ? -1 : 1)))
      await assert.rejects(store.insertToken(t1))
      assert.equal(await store.deleteToken(t1.key), 1)
      assert.equal(await store.deleteToken(t1.key), 0)
      assert.equal(await store.getToken(t1.key), undefined)
      assert.deepEqual(await store.listTokens(user), [t2])
    })

    void test('bumpRev: revision counter, hash and modified; the change feed in order, paged', async () => {
      const name = uniqueName('rev')
      const since = await lastSeq(store)
      const r1 = await createPackage(store, name, [versionRow(name, '1.0.0')])
      const modified = tick()
      const [r2, r3] = await store.transaction(async (tx) => [await tx.bumpRev(name, tick()), await tx.bumpRev(name, modified, true)])
      assert.match(r1, /^1-[0-9a-f]{16}$/)
      assert.match(r2 as string, /^2-[0-9a-f]{16}$/)
      assert.match(r3 as string, /^3-[0-9a-f]{16}$/)
      const pkg = await store.transaction((tx) => tx.getPackage(name))
      assert.equal(`${pkg?.rev_seq}-${pkg?.rev_hash}`, r3)
      assert.equal(pkg?.modified, modified)

      const changes = await store.changesSince(since, 100)
      assert.deepEqual(
        changes.map((c) => [c.name, c.rev, c.deleted]),
        [
          [name, r1, false],
          [name, r2, false],
          [name, r3, true],
        ],
      )
      for (const c of changes) assert.equal(typeof c.seq, 'number')
      assert.ok((changes[0]?.seq ?? 0) > since)
      assert.ok(changes.every((c, i) => i === 0 || c.seq > (changes[i - 1]?.seq ?? 0)))
      assert.deepEqual(await store.changesSince(since, 2), changes.slice(0, 2))
      assert.deepEqual(await store.changesSince(changes[1]?.seq ?? 0, 100), changes.slice(2))
      assert.deepEqual(await store.changesSince(changes[2]?.seq ?? 0, 100), [])
    })

    void test('bumpRev after lockPackage: later reads in the transaction see the bump, the row holds the last at commit', async () => {
      const name = uniqueName('revlock')
      const since = await lastSeq(store)
      const r1 = await createPackage(store, name, [versionRow(name, '1.0.0')])
      const m1 = tick()
      const m2 = tick()
      const seen = await store.transaction(async (tx) => {
        const before = await tx.lockPackage(name)
        const r2 = await tx.bumpRev(name, m1)
        const locked = await tx.lockPackage(name)
        const got = await tx.getPackage(name)
        const r3 = await tx.bumpRev(name, m2)
        return { before: before?.pkg.rev_seq, r2, locked: locked?.pkg, got, r3, after: await tx.getPackage(name) }
      })
      assert.equal(seen.before, 1)
      assert.match(seen.r2, /^2-[0-9a-f]{16}$/)
      assert.match(seen.r3, /^3-[0-9a-f]{16}$/)
      assert.equal(`${seen.locked?.rev_seq}-${seen.locked?.rev_hash}`, seen.r2)
      assert.equal(seen.locked?.modified, m1)
      assert.deepEqual(seen.got, seen.locked)
      assert.equal(`${seen.after?.rev_seq}-${seen.after?.rev_hash}`, seen.r3)
      const pkg = await store.transaction((tx) => tx.getPackage(name))
      assert.equal(`${pkg?.rev_seq}-${pkg?.rev_hash}`, seen.r3)
      assert.equal(pkg?.modified, m2)
      assert.equal((await store.packageStamp(name))?.rev, seen.r3)
      assert.deepEqual(
        (await store.changesSince(since, 100)).filter((c) => c.name === name).map((c) => c.rev),
        [r1, seen.r2, seen.r3],
      )
      // A transaction that fails after a bump leaves the row as it was.
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.lockPackage(name)
          await tx.bumpRev(name, tick())
          throw new Error('abandoned')
        }),
        /abandoned/,
      )
      const still = await store.transaction((tx) => tx.getPackage(name))
      assert.equal(`${still?.rev_seq}-${still?.rev_hash}`, seen.r3)
      assert.equal((await store.changesSince(since, 100)).filter((c) => c.name === name).length, 3)
    })

    void test('search: name, description and keywords of latest, any case; unpublished excluded; paging', async () => {
      const w = `zq${randomBytes(4).toString('hex')}`
      const id = counter++
      const manifest = (name: string, m: Record<string, unknown>) => JSON.stringify({ name, version: '1.0.0', ...m })
      const one = `${w}-one`
      const two = `plain-two-${id}`
      const three = `plain-three-${id}`
      const gone = `${w}-gone`
      const other = `plain-five-${id}`
      await store.insertUser(userRow(`searcher-${id}`))
      await createPackage(store, one, [versionRow(one, '1.0.0', { manifest: manifest(one, { description: 'first' }) })], [`searcher-${id}`])
      await createPackage(store, two, [versionRow(two, '1.0.0', { manifest: manifest(two, { description: `The ${w.toUpperCase()} helper, 50%_off` }) })])
      await createPackage(store, three, [versionRow(three, '1.0.0', { manifest: manifest(three, { keywords: ['x', w] }) })], ['anon'])
      await createPackage(store, gone, [versionRow(gone, '1.0.0', { unpublished: tick() })])
      await createPackage(store, other, [versionRow(other, '1.0.0', { manifest: manifest(other, { description: 'unrelated' }) })])

      const everything = await store.search([w], { size: 20, from: 0, visible: all })
      assert.equal(everything.total, 3)
      assert.deepEqual(
        everything.hits.map((h) => h.name),
        [one, two, three].sort(),
      )
      const hitOne = everything.hits.find((h) => h.name === one)
      assert.equal(hitOne?.latest.version, '1.0.0')
      assert.equal(hitOne?.latest.size, 1234)
      assert.deepEqual(hitOne?.maintainers, [{ name: `searcher-${id}`, email: `searcher-${id}@example.com` }])
      assert.deepEqual(everything.hits.find((h) => h.name === three)?.maintainers, [{ name: 'anon', email: undefined }])
      assert.equal(typeof hitOne?.modified, 'string')

      assert.deepEqual(
        (await store.search([w.toUpperCase()], { size: 20, from: 0, visible: all })).hits.map((h) => h.name),
        [one, two, three].sort(),
      )
      const page = await store.search([w], { size: 1, from: 1, visible: all })
      assert.equal(page.total, 3)
      assert.deepEqual(
        page.hits.map((h) => h.name),
        [[one, two, three].sort()[1]],
      )
      assert.deepEqual(
        (await store.search([w, 'HELPER'], { size: 20, from: 0, visible: all })).hits.map((h) => h.name),
        [two],
      )
      assert.deepEqual(
        (await store.search([w, '50%_off'], { size: 20, from: 0, visible: all })).hits.map((h) => h.name),
        [two],
      )
      assert.equal((await store.search([`${w}%`], { size: 20, from: 0, visible: all })).total, 0)
      // The read gate's predicate filters before paging: total and pages count only visible hits.
      const visible = await store.search([w], { size: 1, from: 0, visible: (n) => n !== [one, two, three].sort()[0] })
      assert.equal(visible.total, 2)
      assert.deepEqual(
        visible.hits.map((h) => h.name),
        [[one, two, three].sort()[1]],
      )
    })

    void test('scopeHasPackages: any package of the scope, unpublished included; wildcards are literal', async () => {
      const scope = `@sc_${randomBytes(3).toString('hex')}`
      assert.equal(await store.scopeHasPackages(scope), false)
      const name = `${scope}/pkg`
      await createPackage(store, name, [versionRow(name, '1.0.0', { unpublished: tick() })])
      assert.equal(await store.scopeHasPackages(scope), true)
      assert.equal(await store.scopeHasPackages(scope.slice(0, -1)), false)
      assert.equal(await store.scopeHasPackages(scope.replace('_', '%')), false)
      assert.equal(await store.scopeHasPackages(scope.replace('_', 'x')), false)
    })

    void test('uplink packument cache: put, replace, touch, delete', async () => {
      const name = uniqueName('cached')
      const row: CachedPackumentRow = { name, uplink: 'npmjs', etag: 'W/"1"', last_modified: null, fetched_at: tick(), body: '{"name":"x"}' }
      assert.equal(await store.getCachedPackument(name, 'npmjs'), undefined)
      await store.putCachedPackument(row)
      await store.putCachedPackument({ ...row, uplink: 'other', body: '{}' })
      assert.deepEqual(await store.getCachedPackument(name, 'npmjs'), row)
      const replaced = { ...row, etag: null, last_modified: 'Tue, 01 Jan 2030 00:00:00 GMT', body: '{"name":"y"}' }
      await store.putCachedPackument(replaced)
      assert.deepEqual(await store.getCachedPackument(name, 'npmjs'), replaced)
      await store.touchCachedPackument(name, 'npmjs', '2031-01-01T00:00:00.000Z')
      assert.deepEqual(await store.getCachedPackument(name, 'npmjs'), { ...replaced, fetched_at: '2031-01-01T00:00:00.000Z' })
      await store.deleteCachedPackument(name, 'npmjs')
      assert.equal(await store.getCachedPackument(name, 'npmjs'), undefined)
      assert.equal((await store.getCachedPackument(name, 'other'))?.body, '{}')
    })

    void test('ping answers while open and fails once the store is closed', async () => {
      await store.ping()
      const other = db.open()
      await other.ping()
      await other.close()
      await assert.rejects(other.ping())
    })

    void test('referencedBlobKeys: every version row (unpublished and replaced ones included) across page boundaries, once each', async () => {
      // 3 × 700 rows: the 1000-row pages end in the middle of a package.
      const names = range(3).map(() => uniqueName('refs'))
      const expected = new Map<string, number>()
      for (const name of names) {
        const rows = range(700).map((i) => versionRow(name, `1.0.${i}`, i % 7 === 0 ? { unpublished: tick() } : {}))
        await createPackage(store, name, rows)
        for (const r of rows) expected.set(r.tarball_key, 0)
      }
      // A replaced version (allow_previous_version) refers to its new tarball only.
      const replaced = (await store.getVersion(names[0] as string, '1.0.1')) as VersionRow
      const newer = { ...replaced, tarball_key: `tarballs/sha512/${randomBytes(64).toString('hex')}` }
      await store.transaction((tx) => tx.replaceVersion(newer))
      expected.delete(replaced.tarball_key)
      expected.set(newer.tarball_key, 0)
      const seen: string[] = []
      for await (const key of store.referencedBlobKeys()) {
        seen.push(key)
        const n = expected.get(key)
        if (n !== undefined) expected.set(key, n + 1)
      }
      assert.ok(!seen.includes(replaced.tarball_key), 'the replaced tarball is no longer referenced')
      const wrong = [...expected].filter(([, n]) => n !== 1)
      assert.deepEqual(wrong, [], 'each inserted key is yielded exactly once')
    })

    void test('referencedBlobKeys: the uplink cache’s tarball keys, derived from each cached packument’s dist', async () => {
      const b64 = (bytes: Buffer) => bytes.toString('base64')
      const sha512 = randomBytes(64)
      const sha1 = randomBytes(20)
      const sha256 = randomBytes(32)
      const other512 = randomBytes(64)
      const hexKey = (alg: string, d: Buffer) => `tarballs/${alg}/${d.toString('hex').slice(0, 2)}/${d.toString('hex')}.tgz`
      const body = JSON.stringify({
        name: 'x',
        versions: {
          // sha512 wins over the other algorithms of an integrity string; its key is the local tarball key format.
          '1.0.0': { dist: { integrity: `sha1-${b64(sha1)} sha512-${b64(sha512)}`, shasum: sha1.toString('hex'), tarball: 'http://127.0.0.1:1/x-1.0.0.tgz' } },
          // Only a shasum (old packages): a sha1 key.
          '0.1.0': { dist: { shasum: sha1.toString('hex'), tarball: 'http://127.0.0.1:1/x-0.1.0.tgz' } },
          '0.2.0': { dist: { integrity: `sha256-${b64(sha256)}` } },
          '0.3.0': { dist: { tarball: 'http://127.0.0.1:1/x-0.3.0.tgz' } },
          '0.4.0': 'not a manifest',
        },
      })
      const expected = [hexKey('sha512', sha512), hexKey('sha1', sha1), hexKey('sha256', sha256), hexKey('sha512', other512)]
      // 25 rows over two uplinks (besides other tests' rows): several pages of 10, ending anywhere.
      const base = uniqueName('cachedrefs')
      for (const i of range(12)) {
        for (const uplink of ['a-up', 'b-up']) {
          await store.putCachedPackument({ name: `${base}-${String(i).padStart(2, '0')}`, uplink, etag: null, last_modified: null, fetched_at: tick(), body: '{}' })
        }
      }
      await store.putCachedPackument({ name: `${base}-05`, uplink: 'a-up', etag: null, last_modified: null, fetched_at: tick(), body })
      await store.putCachedPackument({
        name: `${base}-11`,
        uplink: 'b-up',
        etag: null,
        last_modified: null,
        fetched_at: tick(),
        body: JSON.stringify({ versions: { '2.0.0': { dist: { integrity: `sha512-${b64(other512)}` } } } }),
      })
      await store.putCachedPackument({ name: `${base}-zz`, uplink: 'a-up', etag: null, last_modified: null, fetched_at: tick(), body: 'not json {' })
      const seen = new Set<string>()
      for await (const key of store.referencedBlobKeys()) seen.add(key)
      for (const k of expected) assert.ok(seen.has(k), `${k} is referenced`)
    })

    void test('30 concurrent transactions adding distinct versions to one package all land, serialised', async () => {
      const name = uniqueName('conc')
      await createPackage(store, name, [versionRow(name, '0.0.1')])
      const since = (await store.changesSince(0, 1_000_000)).find((c) => c.name === name)?.seq ?? 0
      const results = await Promise.all(
        range(30).map((i) =>
          store.transaction(async (tx) => {
            const pkg = await tx.getPackage(name)
            assert.ok(pkg)
            await tx.insertVersion(versionRow(name, `1.0.${i}`))
            await tx.setDistTag(name, 'latest', `1.0.${i}`)
            return { seen: pkg.rev_seq, version: `1.0.${i}`, rev: await tx.bumpRev(name, tick()) }
          }),
        ),
      )
      // Each transaction read the row after the previous one committed: no two saw the same rev.
      assert.deepEqual(
        results.map((r) => r.seen).sort((a, b) => a - b),
        range(30).map((i) => i + 1),
      )
      const state = await store.readPackage(name)
      assert.ok(state)
      assert.equal(state.versions.length, 31)
      assert.equal(state.pkg.rev_seq, 31)
      const lastWriter = results.find((r) => r.seen === 30)
      assert.equal(state.distTags.latest, lastWriter?.version)
      // The change feed holds every rev, in seq order = commit order.
      const changes = (await store.changesSince(since, 1_000_000)).filter((c) => c.name === name)
      assert.deepEqual(
        changes.map((c) => c.rev),
        results
          .slice()
          .sort((a, b) => a.seen - b.seen)
          .map((r) => r.rev),
      )
    })

    void test('concurrent creation of the same new package: one creates it, all versions land', async () => {
      const name = uniqueName('race')
      const publish = (tx: MetaTx, i: number) => async () => {
        let created = false
        if (!(await tx.getPackage(name))) created = await tx.insertPackage(name, tick())
        if (created) await tx.setMaintainers(name, [`creator-${i}`])
        assert.ok(await tx.getPackage(name))
        await tx.insertVersion(versionRow(name, `2.0.${i}`))
        await tx.bumpRev(name, tick())
        return created
      }
      const created = await Promise.all(range(10).map((i) => store.transaction((tx) => publish(tx, i)())))
      assert.equal(created.filter(Boolean).length, 1)
      const state = await store.readPackage(name)
      assert.ok(state)
      assert.equal(state.versions.length, 10)
      assert.equal(state.pkg.rev_seq, 10)
      assert.deepEqual(state.maintainers, [{ name: `creator-${created.indexOf(true)}` }])
    })

    if (backend.name === 'postgres') {
      void describe('PostgreSQL locking', () => {
        let client: pg.Client
        before(async () => {
          client = new pg.Client({ connectionString: db.pgUrl })
          await client.connect()
        })
        after(async () => {
          await client?.end()
        })

        void test('two nodes migrating a new database at once both succeed, once', async () => {
          const fresh = await createTempDatabase()
          const nodes = range(3).map(() => new PostgresMetaStore({ url: fresh.url }))
          try {
            await Promise.all(nodes.map((n) => n.migrate()))
            const c = new pg.Client({ connectionString: fresh.url })
            await c.connect()
            try {
              const r = await c.query<{ name: string }>('select name from kysely_migration order by name')
              assert.deepEqual(
                r.rows.map((x) => x.name),
                Object.keys(POSTGRES_MIGRATIONS).sort(),
              )
            } finally {
              await c.end()
            }
            await nodes[0]?.insertUser(userRow('node-user'))
            assert.equal((await nodes[2]?.getUser('node-user'))?.name, 'node-user')
          } finally {
            await Promise.all(nodes.map((n) => n.close()))
            await fresh.drop()
          }
        })

        void test('every pooled session runs with JIT and parallel workers off (POSTGRES_SESSION_SETTINGS)', async () => {
          /** Reads settings on the store's own pooled connections. */
          class Probe extends PostgresMetaStore {
            async settings(): Promise<string> {
              const r = await sql<{ jit: string; workers: string }>`select current_setting('jit') as jit, current_setting('max_parallel_workers_per_gather') as workers, pg_sleep(0.05)`.execute(this.db)
              return `${r.rows[0]?.jit}/${r.rows[0]?.workers}`
            }
          }
          const probe = new Probe({ url: db.pgUrl ?? '', poolSize: 4 })
          try {
            // Four at once: four connections, each opened by the pool.
            assert.deepEqual(await Promise.all(range(4).map(() => probe.settings())), range(4).map(() => 'off/0'))
          } finally {
            await probe.close()
          }
          // A session of its own keeps the server's defaults: the settings are Pier's sessions' only.
          const r = await client.query<{ w: string }>("select current_setting('max_parallel_workers_per_gather') as w")
          assert.notEqual(r.rows[0]?.w, '0')
        })

        void test('sign-ups with max_users on three nodes at once never pass the limit', async () => {
          const fresh = await createTempDatabase()
          const nodes = range(3).map(() => new PostgresMetaStore({ url: fresh.url }))
          try {
            await nodes[0]?.migrate()
            const results = await Promise.all(range(12).map((i) => (nodes[i % 3] as PostgresMetaStore).insertUser(userRow(`limited-${i}`), 5)))
            assert.equal(results.filter((r) => r === 'inserted').length, 5, JSON.stringify(results))
            assert.equal(results.filter((r) => r === 'full').length, 7)
            assert.equal(await nodes[1]?.countUsers(), 5)
          } finally {
            await Promise.all(nodes.map((n) => n.close()))
            await fresh.drop()
          }
        })

        void test('lockPackage locks the row as getPackage does', async () => {
          const name = uniqueName('lock2')
          await createPackage(store, name, [versionRow(name, '1.0.0')])
          const gate = deferred()
          const locked = deferred()
          const first = store.transaction(async (tx) => {
            await tx.lockPackage(name)
            locked.resolve()
            await gate.promise
            return tx.bumpRev(name, tick())
          })
          await locked.promise
          const second = store.transaction(async (tx) => (await tx.lockPackage(name))?.pkg.rev_seq)
          try {
            await waitUntilBlocked(client, second, 'the second lockPackage')
          } finally {
            gate.resolve()
          }
          assert.match(await first, /^2-/)
          assert.equal(await second, 2)
        })

        void test('getPackage locks the row: a second writer waits and then sees the first one’s commit', async () => {
          const name = uniqueName('lock')
          await createPackage(store, name, [versionRow(name, '1.0.0')])
          const gate = deferred()
          const locked = deferred()
          const first = store.transaction(async (tx) => {
            await tx.getPackage(name)
            locked.resolve()
            await gate.promise
            return tx.bumpRev(name, tick())
          })
          await locked.promise
          const second = store.transaction(async (tx) => (await tx.getPackage(name))?.rev_seq)
          try {
            await waitUntilBlocked(client, second, 'the second getPackage')
          } finally {
            gate.resolve()
          }
          const rev = await first
          assert.match(rev, /^2-/)
          assert.equal(await second, 2)
        })

        void test('the change feed is in commit order: the append waits for the change-feed lock, which an open write does not hold before it commits', async () => {
          const a = uniqueName('feed-a')
          const b = uniqueName('feed-b')
          await createPackage(store, a, [versionRow(a, '1.0.0')])
          await createPackage(store, b, [versionRow(b, '1.0.0')])
          const since = await lastSeq(store)
          const feed = async (): Promise<string[][]> => (await store.changesSince(since, 100)).map((c) => [c.name, c.rev])
          // A write that bumped a's _rev and is still working holds no change-feed lock: b's write
          // commits past it and takes the next seq.
          const gate = deferred()
          const bumped = deferred()
          const first = store.transaction(async (tx) => {
            await tx.getPackage(a)
            const rev = await tx.bumpRev(a, tick())
            bumped.resolve()
            await gate.promise
            return rev
          })
          await bumped.promise
          const revB = await store.transaction(async (tx) => {
            await tx.getPackage(b)
            return tx.bumpRev(b, tick())
          })
          assert.deepEqual(await feed(), [[b, revB]])
          // Its append waits while another node holds the lock (mid-commit), and lands after it.
          const holder = new pg.Client({ connectionString: db.pgUrl })
          await holder.connect()
          try {
            await holder.query('begin')
            await holder.query(`select pg_advisory_xact_lock(${CHANGES_LOCK_KEY})`)
            gate.resolve()
            await waitUntilBlocked(client, first, "the first write's change-feed append")
            assert.deepEqual(await feed(), [[b, revB]])
          } finally {
            gate.resolve()
            await holder.query('commit').catch(() => undefined)
            await holder.end()
          }
          const revA = await first
          assert.deepEqual(await feed(), [
            [b, revB],
            [a, revA],
          ])
        })
      })
    }
  })
}
