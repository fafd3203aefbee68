/**
 * `pier backup` / `pier restore` (docs/backup.md), each run as the real `pier` process
 * (dist/src/cli/main.js), on SQLite with blobs on local disk, on PostgreSQL (a fresh database per
 * place on 127.0.0.1:5432) with blobs on local disk, and on PostgreSQL with blobs in S3 (s3rver,
 * a prefix per place), every Pier in-process on a random loopback port:
 * - round trip: a registry with scoped and unscoped packages, several versions, dist-tags, a
 *   deprecation, a star, a private package, users, tokens and an org with a team is backed up
 *   while it serves and restored into an empty data folder / database; the restored Pier answers
 *   every packument (full and abbreviated) byte for byte as the original, every tarball's bytes,
 *   an old token still authenticates, and a backup of the restored state holds exactly the same
 *   rows and blobs (PostgreSQL → SQLite and local disk too);
 * - a backup taken during a stream of publishes restores to exactly the first k of them;
 * - `-`: a backup piped to stdout and restored from stdin (SQLite);
 * - a damaged archive (a byte flipped in a blob, or in a row chunk, or cut short) is refused,
 *   target unchanged (SQLite, PostgreSQL);
 * - incremental: full backup, more writes, `--since` backup; full then incremental restored equal
 *   the live registry's state (SQLite, PostgreSQL).
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { extract } from 'tar-stream'
import { runBackupCommand } from '../../src/cli/backup.js'
import { addUser } from '../helpers/accounts.js'
import { raw } from '../helpers/http.js'
import { run, type RunResult } from '../helpers/npm.js'
import { CLI, startPier, tempDir, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'
import { publishBody } from '../helpers/publish-body.js'
import { startS3, type TestS3 } from '../helpers/s3.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** The Host every request sends, so tarball URLs in packuments are the same on every Pier. */
const HOST = 'registry.test'

/** A place a Pier keeps its state: a data folder, and for PostgreSQL a database of its own. */
interface Place {
  dir: string
  storage: Record<string, unknown>
  /** The `--config` file of the CLI for this place. */
  config: string
}

interface Backend {
  name: string
  place(): Promise<Place>
}

const dirs: string[] = []
const databases: TempDatabase[] = []

function newDir(): string {
  const d = tempDir('pier-backup-')
  dirs.push(d)
  return d
}

function placeWith(dir: string, meta?: Record<string, unknown>): Place {
  const storage = { local: { path: join(dir, 'data') }, ...(meta ? { meta } : {}) }
  const config = join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ storage, uplinks: {}, logger: { level: 'warn' } }))
  return { dir, storage, config }
}

const SQLITE: Backend = { name: 'SQLite', place: async () => placeWith(newDir()) }
const POSTGRES: Backend = {
  name: 'PostgreSQL',
  async place() {
    const db = await createTempDatabase()
    databases.push(db)
    return placeWith(newDir(), { type: 'postgres', url: db.url })
  },
}

/** One s3rver for the file, each place its own prefix in its bucket. */
let s3: TestS3 | undefined
let prefixes = 0
const POSTGRES_S3: Backend = {
  name: 'PostgreSQL and S3',
  async place() {
    s3 ??= await startS3()
    const db = await createTempDatabase()
    databases.push(db)
    const dir = newDir()
    const storage = { type: 's3', s3: { ...s3.config, prefix: `place-${++prefixes}/` }, local: { path: join(dir, 'data') }, meta: { type: 'postgres', url: db.url } }
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ storage, uplinks: {}, logger: { level: 'warn' } }))
    return { dir, storage, config }
  },
}

after(async () => {
  await s3?.close()
  for (const d of databases.splice(0)) await d.drop()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** Runs `pier <args>` with the place's configuration (HOME inside the temp folder: no rc file of this machine). */
function pier(place: Place, args: string[]): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args, '--config', place.config], { env: { ...process.env, HOME: place.dir } })
}

/**
 * `pier backup` / `pier restore` run in this process (`runBackupCommand`, what the process runs),
 * for the steps around the ones under test: a process start costs a second of CPU on this
 * machine. The steps under test (the backups taken while Pier serves, the restores compared)
 * run as the real `pier` process.
 */
async function pierHere(place: Place, args: string[]): Promise<RunResult> {
  let stdout = ''
  let stderr = ''
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      stdout += chunk.toString()
      cb()
    },
  })
  const [cmd, ...rest] = args as ['backup' | 'restore', ...string[]]
  const code = await runBackupCommand(cmd, [...rest, '--config', place.config], { cwd: place.dir, env: { HOME: place.dir }, stdout: out, stderr: (s) => (stderr += s) })
  return { code, stdout, stderr }
}

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`)
  return r
}

function startOn(place: Place): Promise<TestPier> {
  return startPier({ storage: place.storage as never })
}

/** Every entry of a backup archive (gzipped or not), by name, in archive order. */
async function entries(file: string): Promise<Map<string, Buffer>> {
  const read = readFileSync(file)
  const bytes = read[0] === 0x1f && read[1] === 0x8b ? gunzipSync(read) : read
  const out = new Map<string, Buffer>()
  const ex = extract()
  const done = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = []
      for await (const c of e as unknown as AsyncIterable<Buffer>) chunks.push(c)
      out.set(e.header.name, Buffer.concat(chunks))
    }
  })()
  ex.end(bytes)
  await done
  return out
}

/** The rows and blobs of an archive: every entry but the manifest (its time differs) and the checksums. */
async function content(file: string): Promise<{ names: string[]; data: Map<string, Buffer>; manifest: Obj }> {
  const all = await entries(file)
  const manifest = JSON.parse((all.get('pier-backup.json') as Buffer).toString()) as Obj
  const data = new Map([...all].filter(([n]) => n !== 'pier-backup.json' && n !== 'checksums.sha256'))
  return { names: [...data.keys()], data, manifest }
}

function assertSameContent(a: Awaited<ReturnType<typeof content>>, b: Awaited<ReturnType<typeof content>>, what: string): void {
  assert.deepEqual(b.names, a.names, `${what}: the same entries`)
  for (const [n, bytes] of a.data) assert.ok(bytes.equals(b.data.get(n) as Buffer), `${what}: ${n} byte for byte`)
  assert.deepEqual(b.manifest.tables, a.manifest.tables, `${what}: the same row counts`)
  assert.equal(b.manifest.seq, a.manifest.seq, `${what}: the same seq`)
}

/** Publishes over HTTP; returns the tarball bytes. */
async function publish(base: string, token: string, pkg: Obj, tag?: string): Promise<Buffer> {
  const p = publishBody(pkg, tag ? { tag } : {})
  const res = await fetch(new URL(String(pkg.name).replace('/', '%2f'), base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, host: HOST },
    body: JSON.stringify(p.body),
  })
  assert.equal(res.status, 201, `publish ${String(pkg.name)}@${String(pkg.version)}: ${await res.text()}`)
  return p.tarball
}

async function getJson(base: string, path: string, token?: string): Promise<Obj> {
  const r = await raw(base, path, { host: HOST, accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) })
  assert.equal(r.status, 200, `GET ${path}: ${r.body.toString()}`)
  return JSON.parse(r.body.toString()) as Obj
}

async function put(base: string, path: string, token: string, body: unknown, expect = 201): Promise<void> {
  const r = await raw(base, path, { host: HOST, 'content-type': 'application/json', authorization: `Bearer ${token}` }, 'PUT', JSON.stringify(body))
  assert.equal(r.status, expect, `PUT ${path}: ${r.body.toString()}`)
}

/** What a populated registry holds, for the comparisons. */
interface Fixture {
  names: string[]
  tarballs: Map<string, Buffer>
  aliceToken: string
  cliToken: string
}

const esc = (name: string): string => name.replace('/', '%2f')

/**
 * Users (alice, an org owner made with the CLI, and bob), a CLI token, an org with its team,
 * scoped and unscoped packages with several versions, a beta dist-tag, an extra tag, a
 * deprecation, a star and a private package.
 */
async function populate(place: Place): Promise<{ live: TestPier; fx: Fixture }> {
  ok(await pier(place, ['user', 'add', 'alice', '--password', 'alice-pass-1']), 'pier user add')
  ok(await pier(place, ['org', 'create', 'acme', '--owner', 'alice']), 'pier org create')
  const cliToken = ok(await pier(place, ['token', 'create', 'alice', '--read-only']), 'pier token create').stdout.trim()
  const live = await startOn(place)
  try {
    return { live, fx: await fill(live, cliToken) }
  } catch (e) {
    await live.close()
    throw e
  }
}

async function fill(live: TestPier, cliToken: string): Promise<Fixture> {
  const aliceToken = await addUser(live.url, 'alice')
  const bobToken = await addUser(live.url, 'bob')
  const tarballs = new Map<string, Buffer>()
  const pub = async (token: string, name: string, version: string, tag?: string): Promise<void> => {
    tarballs.set(`${name}@${version}`, await publish(live.url, token, { name, version, description: `${name} ${version}` }, tag))
  }
  await pub(aliceToken, 'plain', '1.0.0')
  await pub(aliceToken, 'plain', '1.1.0')
  await pub(aliceToken, 'plain', '2.0.0-beta.1', 'beta')
  await pub(aliceToken, '@acme/lib', '1.0.0')
  await pub(aliceToken, '@acme/lib', '1.0.1')
  await pub(bobToken, 'bobs', '0.1.0')
  await pub(aliceToken, '@acme/secret', '1.0.0')
  await put(live.url, `/-/package/plain/dist-tags/stable`, aliceToken, '1.0.0')
  // npm deprecate: the whole packument back with the message on a version.
  const doc = await getJson(live.url, '/plain', aliceToken)
  doc.versions['1.0.0'].deprecated = 'use 1.1.0'
  await put(live.url, '/plain', aliceToken, doc)
  // npm star: the users map of the packument.
  const starred = await getJson(live.url, '/plain', bobToken)
  await put(live.url, '/plain', bobToken, { _id: 'plain', _rev: starred._rev, users: { bob: true } })
  // npm access set status=private; npm access grant read-only acme:developers @acme/lib.
  const priv = await raw(live.url, `/-/package/${esc('@acme/secret')}/access`, { host: HOST, 'content-type': 'application/json', authorization: `Bearer ${aliceToken}` }, 'POST', JSON.stringify({ access: 'restricted' }))
  assert.equal(priv.status, 200, priv.body.toString())
  await put(live.url, '/-/team/acme/developers/package', aliceToken, { package: '@acme/lib', permissions: 'read-only' })
  return { names: ['plain', '@acme/lib', 'bobs', '@acme/secret'], tarballs, aliceToken, cliToken }
}

/** Compares every packument (full, abbreviated) and every tarball of two Piers, byte for byte. */
async function assertSameRegistry(a: TestPier, b: TestPier, fx: Fixture): Promise<void> {
  for (const name of fx.names) {
    for (const accept of ['application/json', 'application/vnd.npm.install-v1+json']) {
      const headers = { host: HOST, accept, authorization: `Bearer ${fx.aliceToken}` }
      const [x, y] = await Promise.all([raw(a.url, `/${esc(name)}`, headers), raw(b.url, `/${esc(name)}`, headers)])
      assert.equal(x.status, 200, `${name} (${accept}) on the original`)
      assert.equal(y.status, x.status, `${name} (${accept}) status`)
      assert.ok(y.body.equals(x.body), `${name} (${accept}) byte for byte:\n${x.body.toString()}\n${y.body.toString()}`)
      for (const h of ['etag', 'last-modified', 'content-type']) assert.equal(y.headers[h], x.headers[h], `${name} (${accept}) ${h}`)
    }
  }
  for (const [id, bytes] of fx.tarballs) {
    const at = id.lastIndexOf('@')
    const name = id.slice(0, at)
    const version = id.slice(at + 1)
    const file = `${name.split('/').pop() ?? name}-${version}.tgz`
    const r = await raw(b.url, `/${esc(name)}/-/${file}`, { host: HOST, authorization: `Bearer ${fx.aliceToken}` })
    assert.equal(r.status, 200, `tarball ${id}`)
    assert.ok(r.body.equals(bytes), `tarball ${id} byte for byte`)
  }
  // Search answers the same (on SQLite the restore's search_index rows rebuild search_fts).
  for (const text of ['plain', 'acme', 'bobs']) {
    const hits = async (p: TestPier): Promise<unknown> => ((await getJson(p.url, `/-/v1/search?text=${text}`, fx.aliceToken)).objects as { package: { name: string } }[]).map((o) => o.package.name)
    const want = await hits(a)
    assert.ok(Array.isArray(want) && want.length > 0, `search ${text} finds something on the original`)
    assert.deepEqual(await hits(b), want, `search ${text}`)
  }
  for (const token of [fx.aliceToken, fx.cliToken]) {
    const who = await getJson(b.url, '/-/whoami', token)
    assert.equal(who.username, 'alice', 'an old token authenticates on the restored Pier')
  }
  // The private package stays private on the restored Pier: anonymous gets 404 as for an unknown name.
  const anon = await raw(b.url, `/${esc('@acme/secret')}`, { host: HOST })
  const unknown = await raw(b.url, `/${esc('@acme/nope')}`, { host: HOST })
  assert.equal(anon.status, unknown.status)
}

for (const backend of [SQLITE, POSTGRES, POSTGRES_S3]) {
  void describe(`pier backup and restore on ${backend.name}`, () => {
    let source: Place
    let live: TestPier
    let fx: Fixture
    let full: string

    before(async () => {
      source = await backend.place()
      ;({ live, fx } = await populate(source))
      full = join(source.dir, 'full.tar.gz')
      // While it serves.
      const r = ok(await pier(source, ['backup', full, '--json']), 'pier backup')
      const summary = JSON.parse(r.stdout) as Obj
      assert.equal(summary.kind, 'full')
      assert.equal(summary.blobs, fx.tarballs.size)
      assert.ok(summary.rows > 0 && summary.entries > summary.blobs)
      assert.equal(summary.tables.versions, fx.tarballs.size)
    })
    after(() => live?.close())

    void test('round trip: the restored registry answers byte for byte', async () => {
      const target = await backend.place()
      const r = ok(await pier(target, ['restore', full]), 'pier restore')
      assert.match(r.stdout, new RegExp(`restored ${full.replace(/[.]/g, '\\.')}: \\d+ entries, \\d+ rows, ${fx.tarballs.size} blobs`))
      // A backup of the restored state holds exactly the same rows and blobs (taken before any
      // request: a token's use updates its last_used).
      const again = join(target.dir, 'again.tar')
      ok(await pierHere(target, ['backup', again]), 'pier backup of the restored state')
      assertSameContent(await content(full), await content(again), 'backup of the restore')
      const restored = await startOn(target)
      try {
        await assertSameRegistry(live, restored, fx)
        // Writes go on after the restored ones: the change feed's and the audit log's sequences
        // continue past the restored rows (a reused number would fail the publish).
        await publish(restored.url, fx.aliceToken, { name: 'plain', version: '3.0.0' })
        const after = JSON.parse((await pierHere(target, ['backup', join(target.dir, 'after.tar'), '--json'])).stdout) as Obj
        assert.equal(after.seq, ((await content(full)).manifest.seq as number) + 1)
      } finally {
        await restored.close()
      }
      // A second restore into the now full target is refused.
      const twice = await pierHere(target, ['restore', full])
      assert.equal(twice.code, 1)
      assert.match(twice.stderr, /the target is not empty/)
    })

    if (backend !== SQLITE) {
      void test(`${backend.name} backup restored into SQLite and local disk`, async () => {
        const target = await SQLITE.place()
        ok(await pier(target, ['restore', full]), 'pier restore into SQLite')
        const again = join(target.dir, 'again.tar')
        ok(await pierHere(target, ['backup', again]), 'pier backup of the SQLite copy')
        assertSameContent(await content(full), await content(again), 'SQLite copy of a PostgreSQL backup')
        const restored = await startOn(target)
        try {
          await assertSameRegistry(live, restored, fx)
        } finally {
          await restored.close()
        }
      })
    }

    if (backend === SQLITE) {
      void test("'-': pier backup - | pier restore -", async () => {
        const target = await backend.place()
        const env = { ...process.env, HOME: target.dir }
        const r = ok(await run('/bin/sh', ['-c', `"${process.execPath}" "${CLI}" backup - --json --config "${source.config}" | "${process.execPath}" "${CLI}" restore - --config "${target.config}"`], { env }), 'backup | restore')
        assert.match(r.stdout, /^restored -: \d+ entries, \d+ rows, \d+ blobs/)
        assert.equal((JSON.parse(r.stderr) as Obj).file, '-', 'the backup summary goes to stderr')
        const again = join(target.dir, 'again.tar')
        ok(await pierHere(target, ['backup', again]), 'backup of the restored state')
        assertSameContent(await content(full), await content(again), 'piped through stdout and stdin')
      })
    }

    void test('a backup taken during a stream of publishes restores to a prefix of them', async (t) => {
      const token = fx.aliceToken
      const versions: string[] = []
      const tarballs = new Map<string, Buffer>()
      let started = 0
      let stop = false
      let startedAtExit = -1
      const publishOne = async (): Promise<void> => {
        const version = `1.0.${started++}`
        versions.push(version)
        tarballs.set(version, await publish(live.url, token, { name: 'streamed', version }))
      }
      for (let i = 0; i < 3; i++) await publishOne()
      const before = started
      const publisher = (async () => {
        while (!stop) await publishOne()
      })()
      const file = join(source.dir, 'during.tar')
      const r = await pier(source, ['backup', file])
      startedAtExit = started
      stop = true
      await publisher
      for (let i = 0; i < 2; i++) await publishOne()
      ok(r, 'pier backup during publishes')

      const target = await backend.place()
      ok(await pierHere(target, ['restore', file]), 'pier restore')
      const restored = await startOn(target)
      try {
        const doc = await getJson(restored.url, '/streamed')
        const got = Object.keys(doc.versions as Obj)
        const k = got.length
        assert.ok(k >= before && k <= startedAtExit, `k = ${k}: at least the ${before} published before the backup, at most the ${startedAtExit} begun before it ended`)
        assert.deepEqual(got, versions.slice(0, k), 'exactly the first k versions, no gaps')
        assert.equal(doc['dist-tags'].latest, versions[k - 1])
        for (const v of got) {
          const t = await raw(restored.url, `/streamed/-/streamed-${v}.tgz`, { host: HOST })
          assert.equal(t.status, 200)
          assert.ok(t.body.equals(tarballs.get(v) as Buffer), `streamed@${v} tarball intact`)
        }
        t.diagnostic(`${backend.name}: ${k} of ${versions.length} versions in the backup (${before} published before it began, ${startedAtExit} begun before it ended)`)
      } finally {
        await restored.close()
      }
    })

    // The checks of an archive and the incremental logic do not depend on where blobs live: run
    // on the two metadata backends with blobs on disk (S3 reads and writes are the tests above).
    if (backend !== POSTGRES_S3) {
      void test('a damaged backup is refused and the target left as it was', async () => {
        const plain = join(source.dir, 'plain.tar')
        ok(await pierHere(source, ['backup', plain]), 'pier backup (plain tar)')
        const bytes = readFileSync(plain)
        const tarball = fx.tarballs.get('@acme/lib@1.0.1') as Buffer
        const at = bytes.indexOf(tarball)
        assert.ok(at > 0, 'the blob is stored as is')
        const target = await backend.place()

        const blobFlipped = Buffer.from(bytes)
        const mid = at + (tarball.length >> 1)
        blobFlipped[mid] = (blobFlipped[mid] as number) ^ 0x01
        writeFileSync(join(target.dir, 'bad-blob.tar'), blobFlipped)
        const r1 = await pierHere(target, ['restore', join(target.dir, 'bad-blob.tar')])
        assert.equal(r1.code, 1, r1.stderr)
        assert.match(r1.stderr, /pier: restore failed: blob tarballs\/sha512\/.* does not match its content address: the backup is damaged; nothing was restored/)

        const rowFlipped = Buffer.from(bytes)
        const row = rowFlipped.indexOf('bobs 0.1.0')
        assert.ok(row > 0)
        rowFlipped[row] = 'B'.charCodeAt(0)
        writeFileSync(join(target.dir, 'bad-row.tar'), rowFlipped)
        const r2 = await pierHere(target, ['restore', join(target.dir, 'bad-row.tar')])
        assert.equal(r2.code, 1, r2.stderr)
        assert.match(r2.stderr, /does not match checksums\.sha256 \(meta\/versions\/000001\.jsonl\)/)

        const cut = join(target.dir, 'cut.tar')
        writeFileSync(cut, bytes.subarray(0, at + 100))
        const r3 = await pierHere(target, ['restore', cut])
        assert.equal(r3.code, 1, r3.stderr)
        assert.match(r3.stderr, /damaged or cut short|ends before checksums/)

        // Nothing was restored: the good archive still restores into this target, and completely.
        ok(await pier(target, ['restore', plain]), 'restore after the refusals')
        const restored = await startOn(target)
        try {
          await assertSameRegistry(live, restored, fx)
        } finally {
          await restored.close()
        }
      })

      void test('incremental: full then --since restores the live state', async () => {
        const base = join(source.dir, 'base.tar')
        const first = JSON.parse(ok(await pierHere(source, ['backup', base, '--json']), 'full backup').stdout) as Obj
        // More writes of every kind: new versions, a new package, a dist-tag, a deprecation, a user and its token.
        await publish(live.url, fx.aliceToken, { name: 'plain', version: '2.0.0' })
        await publish(live.url, fx.aliceToken, { name: 'fresh', version: '1.0.0' })
        await put(live.url, `/-/package/${esc('@acme/lib')}/dist-tags/old`, fx.aliceToken, '1.0.0')
        const doc = await getJson(live.url, `/${esc('@acme/lib')}`, fx.aliceToken)
        doc.versions['1.0.0'].deprecated = 'old'
        await put(live.url, `/${esc('@acme/lib')}`, fx.aliceToken, doc)
        await addUser(live.url, 'carol')
        // The live state is read once it stops changing: tokens' last use is flushed at close.
        await live.close()
        const inc = join(source.dir, 'inc.tar.gz')
        const second = JSON.parse(ok(await pier(source, ['backup', inc, '--since', String(first.seq), '--json']), 'incremental backup').stdout) as Obj
        assert.equal(second.kind, 'incremental')
        assert.equal(second.since, first.seq)
        assert.equal(second.blobs, 2, 'only the new blobs')
        assert.equal(second.tables.packages, 3, 'only the packages changed since')
        const now = join(source.dir, 'now.tar')
        ok(await pierHere(source, ['backup', now]), 'full backup of the live state')
        live = await startOn(source)

        const target = await backend.place()
        // In the wrong order: refused, nothing changed.
        const early = await pierHere(target, ['restore', inc])
        assert.equal(early.code, 1)
        assert.match(early.stderr, /restore the backups in order/)
        ok(await pierHere(target, ['restore', base]), 'restore the full backup')
        const r = ok(await pier(target, ['restore', inc]), 'restore the incremental backup')
        assert.match(r.stdout, /restored incremental \(since \d+\)/)
        const again = join(target.dir, 'again.tar')
        ok(await pierHere(target, ['backup', again]), 'backup of the restored state')
        assertSameContent(await content(now), await content(again), 'full + incremental = live')
      })
    }
  })
}

void describe('pier backup and restore: usage', () => {
  void test('usage errors exit 2; a missing file, or one that is no backup, 1', async () => {
    const place = await SQLITE.place()
    const call = async (cmd: 'backup' | 'restore', args: string[]): Promise<{ code: number; err: string }> => {
      let err = ''
      const code = await runBackupCommand(cmd, [...args, '--config', place.config], { cwd: place.dir, env: { HOME: place.dir }, stderr: (s) => (err += s) })
      return { code, err }
    }
    const none = await call('backup', [])
    assert.equal(none.code, 2)
    assert.match(none.err, /takes one FILE/)
    const since = await call('backup', ['x.tar', '--since', 'abc'])
    assert.equal(since.code, 2)
    assert.match(since.err, /--since must be a change sequence number/)
    assert.equal((await call('restore', ['x.tar', '--since', '3'])).code, 2)
    const missing = await call('restore', ['nope.tar'])
    assert.equal(missing.code, 1)
    assert.match(missing.err, /pier: restore failed: nope\.tar: no such file/)
    writeFileSync(join(place.dir, 'other.tar'), Buffer.alloc(2048))
    const other = await call('restore', ['other.tar'])
    assert.equal(other.code, 1)
    assert.match(other.err, /not a Pier backup/)
    const beyond = await call('backup', ['x.tar', '--since', '5'])
    assert.equal(beyond.code, 1)
    assert.match(beyond.err, /--since 5 is beyond the change sequence's high-water mark \(0\)/)
    assert.ok(!existsSync(join(place.dir, 'x.tar')) && !existsSync(join(place.dir, 'x.tar.part')), 'a failed backup leaves no file')
  })
})
