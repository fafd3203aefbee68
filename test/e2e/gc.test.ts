/**
 * `pier gc` as a real process (`node dist/src/cli/main.js gc --config FILE`) beside a serving Pier,
 * over fs + SQLite and over PostgreSQL + S3 (s3rver), everything on 127.0.0.1. The Pier under test
 * holds local packages (one version unpublished) and a tarball cached from an uplink (another
 * in-process Pier); orphan blobs are put straight into its blob store. Checked: a young orphan
 * outlives the default grace period, `--dry-run` deletes nothing, a configuration naming an empty
 * database is refused, `--grace 0s` deletes the orphan and only it (every referenced blob stays,
 * every tarball downloads), and a gc running during publishes spares their blobs.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { tarballKey } from '../../src/registry/blob-keys.js'
import type { BlobStore } from '../../src/registry/stores.js'
import { FsBlobStore } from '../../src/storage/blobs/fs-blob-store.js'
import { S3BlobStore } from '../../src/storage/blobs/s3-blob-store.js'
import { run, type RunResult } from '../helpers/npm.js'
import { CLI, startPier, tempDir, type TestPier } from '../helpers/pier.js'
import { createTempDatabase } from '../helpers/postgres.js'
import { publishBody, type PublishBody } from '../helpers/publish-body.js'
import { startS3 } from '../helpers/s3.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const sha512Hex = (b: Uint8Array): string => createHash('sha512').update(b).digest('hex')
const sha512 = (b: Uint8Array): string => `sha512-${createHash('sha512').update(b).digest('base64')}`
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

/** A backend pair under test: the `storage` config section, a direct handle on its blob store. */
interface Backend {
  name: string
  open(dataDir: string): Promise<{
    storage: Record<string, unknown>
    /** The blob store Pier writes to, opened separately (call after Pier started). */
    store(): Promise<BlobStore>
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
      const s3Config = { ...s3.config, prefix: 'gc/' }
      return {
        storage: { type: 's3', s3: s3Config, meta: { type: 'postgres', url: database.url }, local: { path: dataDir } },
        store: async () => new S3BlobStore(s3Config),
        async close() {
          await s3.close()
          await database.drop()
        },
      }
    },
  },
]

/** This process's environment without `pier_*` variables (they would override the config file). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^pier_/i.test(k)) env[k] = v
  return env
}

/** Runs `pier gc --config FILE ...args` and requires exit code 0. */
async function gc(configFile: string, ...args: string[]): Promise<RunResult> {
  const r = await run(process.execPath, [CLI, 'gc', '--config', configFile, ...args], { env: childEnv(), timeoutMs: 120_000 })
  assert.equal(r.code, 0, `pier gc ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`)
  return r
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

/** An orphan: random bytes under their content address, put straight into the store. */
async function putOrphan(store: BlobStore, size: number): Promise<{ key: string; size: number }> {
  const bytes = randomBytes(size)
  const key = tarballKey(sha512Hex(bytes))
  await store.put(key, bytes)
  return { key, size }
}

void describe('pier gc', () => {
  /** The uplink: a Pier with one package, which the Pier under test caches. */
  let upstream: TestPier
  let upstreamTarball: Buffer
  before(async () => {
    upstream = await startPier({ auth: { type: 'none' } })
    const p = publishBody({ name: 'gc-upstream', version: '1.0.0' })
    upstreamTarball = p.tarball
    const r = await call(upstream.url, 'PUT', 'gc-upstream', { body: p.body })
    assert.equal(r.status, 201, JSON.stringify(r.body))
  })
  after(async () => {
    await upstream.close()
  })

  for (const backend of BACKENDS) {
    void describe(backend.name, () => {
      const dataDir = tempDir('pier-gc-')
      let env: Awaited<ReturnType<Backend['open']>>
      let pier: TestPier
      let store: BlobStore
      let token: string
      const configFile = join(dataDir, 'gc-config.json')
      /** Every published version: its body, and whether it is still live (not unpublished). */
      const published: { name: string; version: string; p: PublishBody; live: boolean }[] = []

      const publish = async (name: string, version: string): Promise<PublishBody> => {
        const p = publishBody({ name, version }, { files: { 'salt.txt': randomBytes(8).toString('hex') } })
        const r = await call(pier.url, 'PUT', name, { token, body: p.body })
        assert.equal(r.status, 201, JSON.stringify(r.body))
        published.push({ name, version, p, live: true })
        return p
      }

      /** Every referenced blob is in the store and every live tarball downloads, byte for byte. */
      const assertAllReferencedPresent = async (): Promise<void> => {
        for (const { name, version, p, live } of published) {
          assert.ok(await store.stat(tarballKey(sha512Hex(p.tarball))), `the blob of ${name}@${version} is still stored`)
          const got = await download(pier.url, name, version)
          if (live) assert.equal(typeof got === 'number' ? got : sha512(got), p.integrity, `${name}@${version} downloads`)
          else assert.equal(got, 410, `${name}@${version} stays unpublished`)
        }
        assert.ok(await store.stat(tarballKey(sha512Hex(upstreamTarball))), 'the cached uplink tarball is still stored')
        const cached = await download(pier.url, 'gc-upstream', '1.0.0')
        assert.equal(typeof cached === 'number' ? cached : sha512(cached), sha512(upstreamTarball))
      }

      before(async () => {
        env = await backend.open(dataDir)
        pier = await startPier({ storage: env.storage, uplinks: { up: { url: upstream.url } } })
        store = await env.store()
        // What gc reads: the same storage; no uplinks (gc never asks them).
        writeFileSync(configFile, JSON.stringify({ storage: env.storage, uplinks: {} }))
        const u = await call(pier.url, 'PUT', '-/user/org.couchdb.user:gcuser', {
          body: { _id: 'org.couchdb.user:gcuser', name: 'gcuser', password: 'gcuser-pass-1', email: 'gc@example.com', type: 'user', roles: [] },
        })
        assert.equal(u.status, 201, JSON.stringify(u.body))
        token = String(u.body.token)
        await publish('gc-a', '1.0.0')
        await publish('gc-a', '1.1.0')
        await publish('gc-b', '1.0.0')
        // Unpublished: its row stays, and so must its blob.
        const del = await call(pier.url, 'DELETE', 'gc-a/-/gc-a-1.1.0.tgz', { token })
        assert.equal(del.status, 200, JSON.stringify(del.body))
        ;(published[1] as { live: boolean }).live = false
        // Cached from the uplink into the blob store.
        const cached = await download(pier.url, 'gc-upstream', '1.0.0')
        assert.ok(Buffer.isBuffer(cached), `cached download: ${String(cached)}`)
        assert.ok(await store.stat(tarballKey(sha512Hex(upstreamTarball))), 'the cached tarball was stored')
      })
      after(async () => {
        await store?.close?.()
        await pier?.close()
        await env?.close()
        rmSync(dataDir, { recursive: true, force: true })
      })

      /** The orphan the first test puts, which the next ones see. */
      let orphan: { key: string; size: number }

      void test('a young orphan outlives the default grace period (24h)', async () => {
        orphan = await putOrphan(store, 1000)
        const r = await gc(configFile)
        assert.equal(r.stdout, `gc: 5 blobs, 1 unreferenced (1000 bytes), 0 deleted, 1 kept (younger than 24h)\n`)
        assert.ok(await store.stat(orphan.key), 'the orphan is still there')
      })

      void test('--dry-run reports what --grace 0s would delete and deletes nothing', async () => {
        const text = await gc(configFile, '--grace', '0s', '--dry-run')
        assert.equal(text.stdout, `gc: 5 blobs, 1 unreferenced (1000 bytes), 1 would be deleted (dry run), 0 kept (younger than 0s)\n`)
        const json = JSON.parse((await gc(configFile, '--grace', '0', '--dry-run', '--json')).stdout) as Obj
        assert.equal(json.blobs, 5)
        assert.equal(json.unreferenced, 1)
        assert.equal(json.unreferenced_bytes, 1000)
        assert.equal(json.deleted, 1)
        assert.deepEqual(json.deleted_keys, [orphan.key])
        assert.equal(json.kept, 0)
        assert.equal(json.grace_seconds, 0)
        assert.equal(json.dry_run, true)
        assert.ok(json.references >= 4, `references: ${String(json.references)}`)
        assert.ok(await store.stat(orphan.key), 'the orphan is still there')
        await assertAllReferencedPresent()
      })

      void test('a configuration naming another, empty database refuses to delete and changes nothing', async () => {
        const wrong = join(dataDir, 'wrong-config.json')
        writeFileSync(wrong, JSON.stringify({ storage: { ...env.storage, meta: { type: 'sqlite', path: join(dataDir, 'empty.sqlite') } }, uplinks: {} }))
        const r = await run(process.execPath, [CLI, 'gc', '--config', wrong, '--grace', '0s'], { env: childEnv(), timeoutMs: 120_000 })
        assert.equal(r.code, 1, r.stdout)
        assert.match(r.stderr, /^pier: the metadata store refers to no blob at all, yet the blob store holds 5 blobs: refusing/m)
        assert.equal(r.stdout, '')
        assert.ok(await store.stat(orphan.key), 'the orphan is still there')
        await assertAllReferencedPresent()
      })

      void test('--grace 0s deletes the orphan and nothing else: every referenced blob stays, every tarball downloads', async () => {
        const r = await gc(configFile, '--grace', '0s', '--json')
        const json = JSON.parse(r.stdout) as Obj
        assert.deepEqual({ blobs: json.blobs, unreferenced: json.unreferenced, deleted: json.deleted, deleted_bytes: json.deleted_bytes, kept: json.kept, dry_run: json.dry_run }, {
          blobs: 5,
          unreferenced: 1,
          deleted: 1,
          deleted_bytes: 1000,
          kept: 0,
          dry_run: false,
        })
        assert.deepEqual(json.deleted_keys, [orphan.key])
        assert.equal(await store.stat(orphan.key), undefined, 'the orphan is gone')
        await assertAllReferencedPresent()
        // Nothing left to do.
        assert.equal((await gc(configFile, '--grace', '0s')).stdout, `gc: 4 blobs, 0 unreferenced (0 bytes), 0 deleted, 0 kept (younger than 0s)\n`)
      })

      void test('gc with a grace period during publishes spares their blobs; an orphan older than the grace period goes', async () => {
        const old = await putOrphan(store, 300)
        env.backdate?.(old.key, new Date(Date.now() - 2 * 3600_000))
        const [r] = await Promise.all([gc(configFile, '--grace', '60m', '--json'), ...range(10).map((i) => publish(`gc-during-${i}`, '1.0.0'))])
        const json = JSON.parse(r.stdout) as Obj
        if (env.backdate) {
          assert.deepEqual(json.deleted_keys, [old.key], 'the backdated orphan is deleted')
          assert.equal(await store.stat(old.key), undefined)
        } else {
          // S3 sets LastModified itself: this orphan is young and stays.
          assert.deepEqual(json.deleted_keys, [])
          assert.ok(await store.stat(old.key))
        }
        assert.equal(json.grace_seconds, 3600)
        await assertAllReferencedPresent()
      })
    })
  }
})
