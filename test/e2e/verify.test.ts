/**
 * `pier verify` over fs + SQLite and over PostgreSQL + S3 (s3rver), everything on 127.0.0.1. The
 * Pier under test holds local packages (one version unpublished) and a tarball cached from an
 * uplink (another in-process Pier). The test then damages the stores the way an operator's
 * accident would: it deletes one live version's blob (and the unpublished one's, which must not
 * be reported), overwrites another's bytes (same length), points dist-tags at a version that does
 * not exist and at an unpublished one (straight SQL: the API refuses both), plants an orphan blob
 * older than the grace period (on disk its mtime is set back; S3 sets LastModified itself, so
 * there the runs use `--grace 0s`) and overwrites the cached tarball. Checked: each is reported
 * with its kind and names, text and `--json`, exit 1; `--repair` deletes the orphan and the cached
 * tarball, reports the rest, still exit 1; a restarted Pier fetches the cached tarball again and
 * verifies it; once the damage is undone, exit 0. The command runs in this process
 * (`runVerifyCommand`) and once as the real `pier verify` process.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import pg from 'pg'
import { runVerifyCommand, VERIFY_HELP } from '../../src/cli/verify.js'
import { tarballKey } from '../../src/registry/blob-keys.js'
import type { BlobStore } from '../../src/registry/stores.js'
import { FsBlobStore } from '../../src/storage/blobs/fs-blob-store.js'
import { S3BlobStore } from '../../src/storage/blobs/s3-blob-store.js'
import { run } from '../helpers/npm.js'
import { CLI, startPier, tempDir, type TestPier } from '../helpers/pier.js'
import { createTempDatabase } from '../helpers/postgres.js'
import { publishBody, type PublishBody } from '../helpers/publish-body.js'
import { startS3 } from '../helpers/s3.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const sha512Hex = (b: Uint8Array): string => createHash('sha512').update(b).digest('hex')
const sha512 = (b: Uint8Array): string => `sha512-${createHash('sha512').update(b).digest('base64')}`
/** The same length, every byte different. */
const flipped = (b: Buffer): Buffer => Buffer.from(b.map((x) => x ^ 0xff))

/** A backend pair under test. */
interface Backend {
  name: string
  open(dataDir: string): Promise<{
    storage: Record<string, unknown>
    /** The blob store Pier writes to, opened separately. */
    store(): Promise<BlobStore>
    /** Replaces a stored blob's bytes (FsBlobStore.put would keep the existing file). */
    overwrite(store: BlobStore, key: string, bytes: Buffer): Promise<void>
    /** Runs one SQL statement on the metadata database. */
    sql(statement: string): Promise<void>
    /** Sets a blob's modification time into the past, where the store allows it (disk only). */
    backdate?(key: string, to: Date): void
    close(): Promise<void>
  }>
}

const BACKENDS: Backend[] = [
  {
    name: 'fs + SQLite',
    async open(dataDir) {
      return {
        storage: { local: { path: dataDir } },
        async store() {
          const s = new FsBlobStore(join(dataDir, 'blobs'))
          await s.init({ clearTemp: false })
          return s
        },
        overwrite: async (_store, key, bytes) => writeFileSync(join(dataDir, 'blobs', key), bytes),
        async sql(statement) {
          const db = new Database(join(dataDir, 'pier.sqlite'))
          try {
            db.pragma('busy_timeout = 5000')
            db.exec(statement)
          } finally {
            db.close()
          }
        },
        backdate: (key, to) => utimesSync(join(dataDir, 'blobs', key), to, to),
        close: async () => undefined,
      }
    },
  },
  {
    name: 'PostgreSQL + S3 (s3rver)',
    async open(dataDir) {
      const database = await createTempDatabase()
      const s3 = await startS3()
      const s3Config = { ...s3.config, prefix: 'verify/' }
      return {
        storage: { type: 's3', s3: s3Config, meta: { type: 'postgres', url: database.url }, local: { path: dataDir } },
        store: async () => new S3BlobStore(s3Config),
        overwrite: (store, key, bytes) => store.put(key, bytes),
        async sql(statement) {
          const c = new pg.Client({ connectionString: database.url })
          await c.connect()
          try {
            await c.query(statement)
          } finally {
            await c.end()
          }
        },
        async close() {
          await s3.close()
          await database.drop()
        },
      }
    },
  },
]

/** This process's environment without `pier_*` variables (they would override the config file). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^pier_/i.test(k)) env[k] = v
  return env
}

/** `pier verify ...args` in this process. */
async function verify(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runVerifyCommand(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env: cleanEnv() })
  return { code, stdout, stderr }
}

async function call(base: string, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: Obj }> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(new URL(path, base), { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Obj) }
}

/** The tarball bytes over HTTP, or the status when it is not 200. */
async function download(base: string, name: string, version: string): Promise<Buffer | number> {
  const res = await fetch(new URL(`${name}/-/${name}-${version}.tgz`, base))
  if (res.status !== 200) return res.status
  return Buffer.from(await res.arrayBuffer())
}

/** The problems of a `--json` report, reduced to what names them. */
const names = (json: Obj): Obj[] =>
  (json.problems as Obj[]).map((p) => ({ kind: p.kind, package: p.package, version: p.version, tag: p.tag, key: p.key, repaired: p.repaired }))

void describe('pier verify: arguments', () => {
  void test('--help prints the usage; a bad duration, an unknown option or a stray argument is a usage error (exit 2)', async () => {
    const help = await verify('--help')
    assert.equal(help.code, 0)
    assert.equal(help.stdout, VERIFY_HELP)
    for (const args of [['--grace', 'soon'], ['--bogus'], ['extra'], ['--grace']]) {
      const r = await verify(...args)
      assert.equal(r.code, 2, args.join(' '))
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /^pier: .+ \(see pier verify --help\)\n$/, args.join(' '))
    }
    assert.match((await verify('--grace', 'soon')).stderr, /--grace: invalid duration "soon"/)
  })
})

void describe('pier verify', () => {
  /** The uplink: a Pier with one package, which the Pier under test caches. */
  let upstream: TestPier
  let upstreamTarball: Buffer
  before(async () => {
    upstream = await startPier({ auth: { type: 'none' } })
    const p = publishBody({ name: 'vf-upstream', version: '1.0.0' })
    upstreamTarball = p.tarball
    const r = await call(upstream.url, 'PUT', 'vf-upstream', { body: p.body })
    assert.equal(r.status, 201, JSON.stringify(r.body))
  })
  after(async () => {
    await upstream.close()
  })

  for (const backend of BACKENDS) {
    void describe(backend.name, () => {
      const dataDir = tempDir('pier-verify-')
      let env: Awaited<ReturnType<Backend['open']>>
      let pier: TestPier
      let store: BlobStore
      let token: string
      const configFile = join(dataDir, 'verify-config.json')
      const published = new Map<string, PublishBody>()
      /** `--grace 0s` where orphans cannot be made old (S3); the default 24h on disk. */
      let grace: string[]
      let orphan: { key: string; size: number }
      /** On disk only: an orphan younger than the grace period, never reported. */
      let young: string | undefined

      const key = (id: string): string => tarballKey(sha512Hex((published.get(id) as PublishBody).tarball))
      const tarball = (id: string): Buffer => (published.get(id) as PublishBody).tarball
      const upstreamKey = (): string => tarballKey(sha512Hex(upstreamTarball))
      const startTestPier = (): Promise<TestPier> => startPier({ storage: env.storage, uplinks: { up: { url: upstream.url } } })

      const publish = async (name: string, version: string): Promise<void> => {
        const p = publishBody({ name, version }, { files: { 'salt.txt': randomBytes(8).toString('hex') } })
        const r = await call(pier.url, 'PUT', name, { token, body: p.body })
        assert.equal(r.status, 201, JSON.stringify(r.body))
        published.set(`${name}@${version}`, p)
      }

      before(async () => {
        env = await backend.open(dataDir)
        grace = env.backdate ? [] : ['--grace', '0s']
        pier = await startTestPier()
        store = await env.store()
        writeFileSync(configFile, JSON.stringify({ storage: env.storage, uplinks: {} }))
        const u = await call(pier.url, 'PUT', '-/user/org.couchdb.user:vfuser', {
          body: { _id: 'org.couchdb.user:vfuser', name: 'vfuser', password: 'vfuser-pass-1', email: 'vf@example.com', type: 'user', roles: [] },
        })
        assert.equal(u.status, 201, JSON.stringify(u.body))
        token = String(u.body.token)
        await publish('vf-a', '1.0.0')
        await publish('vf-a', '1.1.0')
        await publish('vf-b', '1.0.0')
        await publish('vf-c', '1.0.0')
        const del = await call(pier.url, 'DELETE', 'vf-a/-/vf-a-1.1.0.tgz', { token })
        assert.equal(del.status, 200, JSON.stringify(del.body))
        const cached = await download(pier.url, 'vf-upstream', '1.0.0')
        assert.ok(Buffer.isBuffer(cached), `cached download: ${String(cached)}`)
        assert.ok(await store.stat(upstreamKey()), 'the cached tarball was stored')
      })
      after(async () => {
        await store?.close?.()
        await pier?.close()
        await env?.close()
        rmSync(dataDir, { recursive: true, force: true })
      })

      /** Bytes of the blobs a clean run reads: the three live versions and the cached tarball. */
      const cleanBytes = (): number => tarball('vf-a@1.0.0').length + tarball('vf-b@1.0.0').length + tarball('vf-c@1.0.0').length + upstreamTarball.length

      void test('a clean store: exit 0, every live version and the stored cached tarball read', async () => {
        const r = await verify('--config', configFile, ...grace)
        assert.equal(r.code, 0, r.stdout + r.stderr)
        assert.equal(r.stdout, `verify: 3 versions, 4 blobs (${cleanBytes()} bytes) checked; 0 problems\n`)
        const json = JSON.parse((await verify('--config', configFile, ...grace, '--json')).stdout) as Obj
        assert.deepEqual(
          { ok: json.ok, versions: json.versions, blobs: json.blobs, dist_tags: json.dist_tags, cached_packuments: json.cached_packuments, cached_tarballs: json.cached_tarballs, cached_stored: json.cached_stored, problems: json.problems },
          { ok: true, versions: 3, blobs: 4, dist_tags: 3, cached_packuments: 1, cached_tarballs: 1, cached_stored: 1, problems: [] },
        )
      })

      void test('finds a deleted blob, a corrupted blob, dangling dist-tags, an old orphan and a damaged cached tarball: exit 1', async () => {
        await store.delete(key('vf-a@1.0.0'))
        // Unpublished: not checked, although gc keeps its blob.
        await store.delete(key('vf-a@1.1.0'))
        await env.overwrite(store, key('vf-b@1.0.0'), flipped(tarball('vf-b@1.0.0')))
        await env.sql(`insert into dist_tags (name, tag, version) values ('vf-c', 'beta', '9.9.9'), ('vf-a', 'old', '1.1.0')`)
        const bytes = randomBytes(700)
        orphan = { key: tarballKey(sha512Hex(bytes)), size: bytes.length }
        await store.put(orphan.key, bytes)
        if (env.backdate) {
          env.backdate(orphan.key, new Date(Date.now() - 2 * 86_400_000))
          const y = randomBytes(300)
          young = tarballKey(sha512Hex(y))
          await store.put(young, y)
        }
        await env.overwrite(store, upstreamKey(), flipped(upstreamTarball))

        const r = await verify('--config', configFile, ...grace)
        assert.equal(r.code, 1, r.stderr)
        assert.equal(r.stderr, '')
        const lines = r.stdout.trimEnd().split('\n')
        assert.equal(lines.length, 7, r.stdout)
        assert.ok(lines[0]?.startsWith(`missing-blob vf-a@1.0.0 ${key('vf-a@1.0.0')}: the tarball is not in the blob store; not repaired`), lines[0])
        assert.ok(
          lines[1]?.startsWith(`integrity-mismatch vf-b@1.0.0 ${key('vf-b@1.0.0')}: the stored bytes (${tarball('vf-b@1.0.0').length} bytes, ${tarball('vf-b@1.0.0').length} expected) hash to ${sha512(flipped(tarball('vf-b@1.0.0')))}, not to the version's integrity ${sha512(tarball('vf-b@1.0.0'))}; not repaired`),
          lines[1],
        )
        assert.ok(lines[2]?.startsWith(`dangling-dist-tag vf-a old -> 1.1.0: the tag names version 1.1.0, which is unpublished; not repaired`), lines[2])
        assert.ok(lines[3]?.startsWith(`dangling-dist-tag vf-c beta -> 9.9.9: the tag names version 9.9.9, which does not exist; not repaired`), lines[3])
        assert.ok(lines[4]?.startsWith(`orphan-blob ${orphan.key} (700 bytes): no version and no cached packument refers to it`), lines[4])
        assert.ok(lines[4]?.endsWith('; pier verify --repair or pier gc deletes it'), lines[4])
        assert.ok(lines[5]?.startsWith(`cached-mismatch vf-upstream@1.0.0 (uplink up) ${upstreamKey()}: the stored bytes (${upstreamTarball.length} bytes) hash to ${sha512(flipped(upstreamTarball))}`), lines[5])
        assert.ok(lines[5]?.endsWith('; pier verify --repair removes it (fetched again on next request)'), lines[5])
        // vf-a@1.0.0 was not read; vf-b@1.0.0 (damaged), vf-c@1.0.0 and the cached tarball were.
        const read = tarball('vf-b@1.0.0').length + tarball('vf-c@1.0.0').length + upstreamTarball.length
        assert.equal(lines[6], `verify: 3 versions, 3 blobs (${read} bytes) checked; 6 problems`)
        for (const k of [orphan.key, upstreamKey(), key('vf-b@1.0.0'), ...(young ? [young] : [])]) assert.ok(await store.stat(k), `${k} is still stored: verify without --repair changes nothing`)
      })

      void test('--json: the same problems with their names, digests and what was done', async () => {
        const r = await verify('--config', configFile, ...grace, '--json')
        assert.equal(r.code, 1, r.stderr)
        const json = JSON.parse(r.stdout) as Obj
        assert.equal(json.ok, false)
        assert.equal(json.remaining, 6)
        assert.equal(json.repair, false)
        assert.equal(json.grace_seconds, env.backdate ? 86_400 : 0)
        assert.equal(json.young_unreferenced, env.backdate ? 1 : 0)
        assert.deepEqual(names(json), [
          { kind: 'missing-blob', package: 'vf-a', version: '1.0.0', tag: null, key: key('vf-a@1.0.0'), repaired: false },
          { kind: 'integrity-mismatch', package: 'vf-b', version: '1.0.0', tag: null, key: key('vf-b@1.0.0'), repaired: false },
          { kind: 'dangling-dist-tag', package: 'vf-a', version: '1.1.0', tag: 'old', key: null, repaired: false },
          { kind: 'dangling-dist-tag', package: 'vf-c', version: '9.9.9', tag: 'beta', key: null, repaired: false },
          { kind: 'orphan-blob', package: null, version: null, tag: null, key: orphan.key, repaired: false },
          { kind: 'cached-mismatch', package: 'vf-upstream', version: '1.0.0', tag: null, key: upstreamKey(), repaired: false },
        ])
        const [, mismatch, , , orphanP, cached] = json.problems as Obj[]
        assert.deepEqual([mismatch?.expected, mismatch?.actual, mismatch?.size], [sha512(tarball('vf-b@1.0.0')), sha512(flipped(tarball('vf-b@1.0.0'))), tarball('vf-b@1.0.0').length])
        assert.equal(orphanP?.size, 700)
        assert.deepEqual([cached?.uplink, cached?.expected, cached?.actual], ['up', sha512(upstreamTarball), sha512(flipped(upstreamTarball))])
      })

      void test('--repair deletes the orphan and the damaged cached tarball, reports the rest: exit 1', async () => {
        const r = await verify('--config', configFile, ...grace, '--repair', '--json')
        assert.equal(r.code, 1, r.stderr)
        const json = JSON.parse(r.stdout) as Obj
        assert.equal(json.repair, true)
        assert.equal(json.remaining, 4)
        assert.deepEqual(
          names(json).map((p) => [p.kind, p.repaired]),
          [
            ['missing-blob', false],
            ['integrity-mismatch', false],
            ['dangling-dist-tag', false],
            ['dangling-dist-tag', false],
            ['orphan-blob', true],
            ['cached-mismatch', true],
          ],
        )
        const actions = (json.problems as Obj[]).map((p) => String(p.action))
        assert.equal(actions[4], 'deleted (as pier gc does)')
        assert.equal(actions[5], 'removed, fetched again on next request')
        assert.match(actions[0] as string, /^not repaired: .*restore the blob from a backup$/)
        assert.match(actions[2] as string, /^not repaired \(which version it should name needs a human\)/)
        assert.equal(await store.stat(orphan.key), undefined, 'the orphan is gone')
        assert.equal(await store.stat(upstreamKey()), undefined, 'the damaged cached tarball is gone')
        if (young) assert.ok(await store.stat(young), 'the young orphan is kept')
        assert.ok(await store.stat(key('vf-b@1.0.0')), 'a damaged local tarball is kept')

        // What remains, in text: the summary says so.
        const again = await verify('--config', configFile, ...grace, '--repair')
        assert.equal(again.code, 1)
        assert.equal(again.stdout.trimEnd().split('\n').at(-1), `verify: 3 versions, 2 blobs (${tarball('vf-b@1.0.0').length + tarball('vf-c@1.0.0').length} bytes) checked; 4 problems, 0 repaired, 4 remaining`)
      })

      void test('the removed cached tarball is fetched from the uplink again, verified, and stored', async () => {
        // A new Pier: the old one holds the (verified) bytes in memory and would serve those.
        await pier.close()
        pier = await startTestPier()
        const got = await download(pier.url, 'vf-upstream', '1.0.0')
        assert.ok(Buffer.isBuffer(got), `download: ${String(got)}`)
        assert.equal(sha512(got), sha512(upstreamTarball))
        const stored = await store.read(upstreamKey())
        assert.ok(stored, 'stored again')
        assert.equal(sha512(stored), sha512(upstreamTarball))
        const json = JSON.parse((await verify('--config', configFile, ...grace, '--json')).stdout) as Obj
        assert.equal(json.cached_stored, 1)
        assert.deepEqual(names(json).map((p) => p.kind), ['missing-blob', 'integrity-mismatch', 'dangling-dist-tag', 'dangling-dist-tag'])
      })

      void test('the pier CLI: pier verify --config FILE exits 1 with the same report', async () => {
        const r = await run(process.execPath, [CLI, 'verify', '--config', configFile, ...grace, '--json'], { env: cleanEnv(), timeoutMs: 120_000 })
        assert.ok(r.stdout.startsWith('{'), `pier verify printed no report (is it wired into src/cli/main.ts?):\n${r.stdout}\n${r.stderr}`)
        assert.equal(r.code, 1, r.stdout + r.stderr)
        const json = JSON.parse(r.stdout) as Obj
        assert.equal(json.remaining, 4)
        assert.deepEqual(names(json).map((p) => `${p.kind} ${p.package}`), ['missing-blob vf-a', 'integrity-mismatch vf-b', 'dangling-dist-tag vf-a', 'dangling-dist-tag vf-c'])
      })

      void test('a configuration naming another, empty database is refused (exit 1), nothing deleted', async () => {
        const wrong = join(dataDir, 'wrong-config.json')
        writeFileSync(wrong, JSON.stringify({ storage: { ...env.storage, meta: { type: 'sqlite', path: join(dataDir, 'empty.sqlite') } }, uplinks: {} }))
        const r = await verify('--config', wrong, '--grace', '0s', '--repair')
        assert.equal(r.code, 1)
        assert.equal(r.stdout, '')
        assert.match(r.stderr, /^pier: the metadata store refers to no blob at all, yet the blob store holds \d+ blobs: refusing/)
        assert.ok(await store.stat(key('vf-c@1.0.0')), 'nothing was deleted')
      })

      void test('once the damage is undone: exit 0', async () => {
        await store.put(key('vf-a@1.0.0'), tarball('vf-a@1.0.0'))
        await env.overwrite(store, key('vf-b@1.0.0'), tarball('vf-b@1.0.0'))
        await env.sql(`delete from dist_tags where (name = 'vf-c' and tag = 'beta') or (name = 'vf-a' and tag = 'old')`)
        const r = await verify('--config', configFile, ...grace)
        assert.equal(r.code, 0, r.stdout + r.stderr)
        // The unpublished version's blob is still gone: not a problem. So is the young orphan (disk).
        assert.equal(r.stdout, `verify: 3 versions, 4 blobs (${cleanBytes()} bytes) checked; 0 problems\n`)
      })
    })
  }
})
