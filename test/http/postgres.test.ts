/**
 * Pier on PostgreSQL over real HTTP: two in-process nodes sharing one database this file creates
 * on 127.0.0.1:5432 (started at once, so they also migrate at once) and one tarball folder. Publish, packument, an
 * install-like read (abbreviated packument, then the tarball), 30 concurrent publishes of distinct
 * versions spread over both nodes, two users racing to create one package, and the same version with different tarballs published 30 times
 * at once (new package and existing package): exactly one 201, the rest 409. Then `pier migrate`
 * run as two processes at once against a new database. Last, change notifications: with
 * max_staleness at an hour, writes on one node reach the other at once (LISTEN/NOTIFY), also after
 * the listening connections were cut.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { execFile } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { POSTGRES_MIGRATIONS } from '../../src/storage/meta/postgres-meta-store.js'
import { CLI, startPier, tempDir, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'
import { publishBody } from '../helpers/publish-body.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const CORGI_ACCEPT = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
const sha512 = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`

async function call(base: string, method: string, path: string, opts: { token?: string; body?: unknown; accept?: string } = {}): Promise<{ status: number; body: Obj }> {
  const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(new URL(path.replace(/^\//, ''), base), {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Obj) }
}

/** A publish body whose tarball differs from every other one (a random file inside). */
const uniqueBody = (name: string, version: string) => publishBody({ name, version, description: `${name} ${version}` }, { files: { 'salt.txt': randomBytes(16).toString('hex') } })

/** Two in-process nodes on a new database, sharing one tarball folder, with one user signed up. */
interface TwoNodes {
  database: TempDatabase
  nodes: TestPier[]
  /** The user's token. */
  token: string
  /** Base URL of node `i % 2`. */
  base(i: number): string
}

/**
 * Registers before/after hooks (in the calling describe) that start two nodes on a new database
 * (`storage.meta` extras in `meta`) and sign `user` up on the first; the returned object is filled
 * in by the before hook.
 */
function twoNodes(user: string, meta: Record<string, unknown> = {}): TwoNodes {
  /** Both nodes keep tarballs in one folder (the shared blob store a real deployment has). */
  const dataDir = tempDir('pier-pg-http-')
  const env: TwoNodes = {
    database: undefined as unknown as TempDatabase,
    nodes: [],
    token: '',
    base: (i) => (env.nodes[i % env.nodes.length] as TestPier).url,
  }
  before(async () => {
    env.database = await createTempDatabase()
    env.nodes = await Promise.all(range(2).map(() => startPier({ storage: { local: { path: dataDir }, meta: { type: 'postgres', url: env.database.url, ...meta } } })))
    const r = await call(env.base(0), 'PUT', `/-/user/org.couchdb.user:${user}`, {
      body: { _id: `org.couchdb.user:${user}`, name: user, password: `${user}-password-1`, email: `${user}@example.com`, type: 'user', roles: [] },
    })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    env.token = r.body.token as string
  })
  after(async () => {
    await Promise.all(env.nodes.map((n) => n.close()))
    await env.database?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return env
}

void describe('Pier on PostgreSQL over HTTP (two nodes, one database)', () => {
  const env = twoNodes('pat')
  const base = env.base
  let token: string
  before(() => {
    token = env.token
  })

  void test('publish, GET the packument on the other node, install-like reads', async () => {
    const p = uniqueBody('pg-first', '1.0.0')
    const put = await call(base(0), 'PUT', '/pg-first', { token, body: p.body })
    assert.equal(put.status, 201, JSON.stringify(put.body))
    assert.match(String(put.body.rev), /^1-/)

    // The token was created on node 0; node 1 reads it from the shared database.
    const who = await call(base(1), 'GET', '/-/whoami', { token })
    assert.equal(who.body.username, 'pat')

    const doc = await call(base(1), 'GET', '/pg-first')
    assert.equal(doc.status, 200)
    assert.equal(doc.body._rev, put.body.rev)
    assert.deepEqual(doc.body['dist-tags'], { latest: '1.0.0' })
    assert.equal(doc.body.versions['1.0.0'].dist.integrity, p.integrity)
    assert.deepEqual(doc.body.maintainers, [{ name: 'pat', email: 'pat@example.com' }])

    const corgi = await call(base(1), 'GET', '/pg-first', { accept: CORGI_ACCEPT })
    assert.equal(corgi.status, 200)
    const tarballUrl = String(corgi.body.versions['1.0.0'].dist.tarball)
    assert.ok(tarballUrl.startsWith(base(1)), tarballUrl)
    const res = await fetch(tarballUrl)
    assert.equal(res.status, 200)
    const bytes = Buffer.from(await res.arrayBuffer())
    assert.equal(sha512(bytes), p.integrity)
    assert.ok(bytes.equals(p.tarball))
  })

  void test('a publish on one node becomes visible on a node that had the packument cached (storage.meta.max_staleness)', async () => {
    const name = 'pg-coherent'
    assert.equal((await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '1.0.0').body })).status, 201)
    // Node 1 caches the packument at revision 1.
    assert.deepEqual(Object.keys((await call(base(1), 'GET', `/${name}`)).body.versions), ['1.0.0'])
    const put = await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '1.0.1').body })
    assert.equal(put.status, 201)
    // Without a bound node 1 would serve revision 1 forever; with max_staleness (1 s) it converges.
    const deadline = Date.now() + 10_000
    let seen: Obj = {}
    while (Date.now() < deadline) {
      seen = (await call(base(1), 'GET', `/${name}`)).body
      if (seen._rev === put.body.rev) break
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.equal(seen._rev, put.body.rev)
    assert.deepEqual(Object.keys(seen.versions).sort(), ['1.0.0', '1.0.1'])
  })

  void test('30 concurrent publishes of distinct versions over both nodes all land', async () => {
    const name = 'pg-many'
    const first = await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '0.0.1').body })
    assert.equal(first.status, 201)
    const bodies = range(30).map((i) => uniqueBody(name, `1.0.${i}`))
    const results = await Promise.all(bodies.map((b, i) => call(base(i), 'PUT', `/${name}`, { token, body: b.body })))
    assert.deepEqual(
      results.map((r) => r.status),
      range(30).map(() => 201),
      JSON.stringify(results.filter((r) => r.status !== 201)),
    )
    // Every publish got its own revision.
    assert.equal(new Set(results.map((r) => r.body.rev)).size, 30)
    for (const n of range(2)) {
      const doc = await call(base(n), 'GET', `/${name}`)
      assert.equal(doc.status, 200)
      assert.equal(Object.keys(doc.body.versions).length, 31)
      assert.match(String(doc.body._rev), /^31-/)
      for (const [i, b] of bodies.entries()) assert.equal(doc.body.versions[`1.0.${i}`].dist.integrity, b.integrity)
      assert.ok(String(doc.body['dist-tags'].latest).startsWith('1.0.'))
    }
  })

  void test('two users racing to create one package: the first owns it, the other is refused every time', async () => {
    const r = await call(base(1), 'PUT', '/-/user/org.couchdb.user:sam', {
      body: { _id: 'org.couchdb.user:sam', name: 'sam', password: 'sam-password-1', email: 'sam@example.com', type: 'user', roles: [] },
    })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    const users = [token, r.body.token as string]
    const name = 'pg-contested'
    const results = await Promise.all(
      range(30).map((i) => call(base(i), 'PUT', `/${name}`, { token: users[i % 2], body: uniqueBody(name, `3.0.${i}`).body })),
    )
    const doc = await call(base(0), 'GET', `/${name}`)
    assert.equal(doc.status, 200)
    assert.equal(doc.body.maintainers.length, 1, JSON.stringify(doc.body.maintainers))
    const owner = doc.body.maintainers[0].name === 'pat' ? 0 : 1
    for (const [i, res] of results.entries()) assert.equal(res.status, i % 2 === owner ? 201 : 403, `publish ${i}: ${JSON.stringify(res.body)}`)
    assert.equal(Object.keys(doc.body.versions).length, 15)
  })

  for (const kind of ['new', 'existing'] as const) {
    void test(`the same version with 30 different tarballs at once (${kind} package): one 201, 29 409`, async () => {
      const name = `pg-same-${kind}`
      if (kind === 'existing') assert.equal((await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '0.0.1').body })).status, 201)
      const bodies = range(30).map(() => uniqueBody(name, '2.0.0'))
      const results = await Promise.all(bodies.map((b, i) => call(base(i), 'PUT', `/${name}`, { token, body: b.body })))
      const statuses = results.map((r) => r.status)
      assert.equal(statuses.filter((s) => s === 201).length, 1, JSON.stringify(statuses))
      assert.equal(statuses.filter((s) => s === 409).length, 29, JSON.stringify(statuses))
      const winner = bodies[statuses.indexOf(201)]
      for (const n of range(2)) {
        const doc = await call(base(n), 'GET', `/${name}`)
        assert.equal(doc.body.versions['2.0.0'].dist.integrity, winner?.integrity)
        assert.deepEqual(doc.body.maintainers, [{ name: 'pat', email: 'pat@example.com' }])
        const res = await fetch(String(doc.body.versions['2.0.0'].dist.tarball))
        assert.equal(sha512(Buffer.from(await res.arrayBuffer())), winner?.integrity)
      }
    })
  }
})

void describe('pier migrate on PostgreSQL', () => {
  void test('two `pier migrate` processes at once on a new database: both exit 0, schema applied once', async () => {
    const database = await createTempDatabase()
    const dir = tempDir('pier-pg-migrate-')
    try {
      const file = join(dir, 'pier.json')
      writeFileSync(file, JSON.stringify({ storage: { local: { path: join(dir, 'data') }, meta: { type: 'postgres', url: database.url } } }))
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^pier_/i.test(k)))
      const runs = await Promise.all(range(2).map(() => promisify(execFile)(process.execPath, [CLI, 'migrate', '--config', file], { env })))
      for (const r of runs) assert.equal(r.stdout, 'migrations applied\n')
      const client = new pg.Client({ connectionString: database.url })
      await client.connect()
      try {
        const migrations = await client.query<{ name: string }>('select name from kysely_migration order by name')
        assert.deepEqual(
          migrations.rows.map((r) => r.name),
          Object.keys(POSTGRES_MIGRATIONS).sort(),
        )
        const tables = await client.query<{ t: string }>(`select table_name as t from information_schema.tables where table_schema = 'public'`)
        const names = tables.rows.map((r) => r.t)
        for (const t of ['changes', 'dist_tags', 'maintainers', 'packages', 'stars', 'tokens', 'users', 'versions']) assert.ok(names.includes(t), t)
      } finally {
        await client.end()
      }
    } finally {
      await database.drop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

void describe('change notifications between nodes (PostgreSQL LISTEN/NOTIFY)', () => {
  /** An hour: any convergence seen below comes from the notifications, not from the bound. */
  const HOUR = 3_600_000
  const env = twoNodes('nia', { max_staleness: HOUR })
  const base = env.base
  let token: string
  before(() => {
    token = env.token
  })

  /** Polls node `i` for `name` at revision `rev`; fails after `withinMs`. */
  async function seenAt(i: number, name: string, rev: string, withinMs = 5000): Promise<Obj> {
    const deadline = Date.now() + withinMs
    let doc: Obj = {}
    for (;;) {
      doc = (await call(base(i), 'GET', `/${name}`)).body
      if (doc._rev === rev || Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.equal(doc._rev, rev, `node ${i} serves ${name} at ${rev} within ${withinMs} ms`)
    return doc
  }

  /** Number of connections listening on Pier's channel in this database. */
  async function listeners(): Promise<number> {
    const c = new pg.Client({ connectionString: env.database.url })
    await c.connect()
    try {
      const r = await c.query<{ n: string }>(`select count(*) as n from pg_stat_activity where datname = $1 and query ilike 'listen %'`, [env.database.name])
      return Number(r.rows[0]?.n)
    } finally {
      await c.end()
    }
  }

  void test('with max_staleness at an hour, a publish and a dist-tag change on one node reach the other node at once', async () => {
    const name = 'pg-notified'
    const first = await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '1.0.0').body })
    assert.equal(first.status, 201)
    await seenAt(1, name, String(first.body.rev)) // node 1 caches revision 1
    const second = await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '1.1.0').body })
    assert.equal(second.status, 201)
    const doc = await seenAt(1, name, String(second.body.rev))
    assert.deepEqual(Object.keys(doc.versions).sort(), ['1.0.0', '1.1.0'])
    const tag = await call(base(1), 'PUT', `/-/package/${name}/dist-tags/stable`, { token, body: '1.0.0' })
    assert.equal(tag.status, 201, JSON.stringify(tag.body))
    const deadline = Date.now() + 5000
    let tags: Obj = {}
    while (Date.now() < deadline) {
      tags = (await call(base(0), 'GET', `/${name}`)).body['dist-tags'] as Obj
      if (tags.stable === '1.0.0') break
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.deepEqual(tags, { latest: '1.1.0', stable: '1.0.0' })
  })

  void test('a node whose listening connection is cut reconnects, and drops what it cached meanwhile', async () => {
    const name = 'pg-relisten'
    const first = await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '1.0.0').body })
    assert.equal(first.status, 201)
    await seenAt(1, name, String(first.body.rev))
    assert.equal(await listeners(), 2)
    // Cut every listening connection (both nodes), publish while nobody listens, then wait until both listen again.
    const admin = new pg.Client({ connectionString: env.database.url })
    await admin.connect()
    try {
      const cut = await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query ilike 'listen %'`, [env.database.name])
      assert.equal(cut.rowCount, 2)
    } finally {
      await admin.end()
    }
    const missed = await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '1.1.0').body })
    assert.equal(missed.status, 201)
    const deadline = Date.now() + 10_000
    while ((await listeners()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.equal(await listeners(), 2, 'both nodes listen again')
    // The write made while node 1 was not listening is served (its cache was dropped on reconnect)...
    await seenAt(1, name, String(missed.body.rev))
    // ...and later writes arrive as notifications again.
    const after = await call(base(0), 'PUT', `/${name}`, { token, body: uniqueBody(name, '1.2.0').body })
    assert.equal(after.status, 201)
    await seenAt(1, name, String(after.body.rev))
  })
})
