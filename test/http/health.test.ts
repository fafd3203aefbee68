/**
 * `GET /-/health` over real HTTP on 127.0.0.1, without credentials (and without info-level request
 * log lines): ok over SQLite + fs and over
 * PostgreSQL + S3 (s3rver); 503 with `blobs.status: "error"` once s3rver is closed, and with
 * `meta.status: "error"` once the database is dropped; 503 within the timeout when the S3 endpoint
 * accepts connections and never answers (the hung request is aborted); an uplink on a dead
 * loopback port shows its open circuit (`degraded`, still 200), its URL without credentials.
 */
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { HEALTH_TIMEOUT_MS } from '../../src/ops/health.js'
import { addUser } from '../helpers/accounts.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'
import { startS3, type TestS3 } from '../helpers/s3.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

async function health(base: string): Promise<{ status: number; cacheControl: string | null; body: Obj }> {
  const res = await fetch(new URL('-/health', base))
  return { status: res.status, cacheControl: res.headers.get('cache-control'), body: (await res.json()) as Obj }
}

/** Asserts one backend's entry: its type, `ok`, a latency in ms and no error. */
function assertOk(b: Obj, type: string): void {
  assert.equal(b.type, type)
  assert.equal(b.status, 'ok')
  assert.equal(typeof b.latency_ms, 'number')
  assert.ok(b.latency_ms >= 0 && b.latency_ms < HEALTH_TIMEOUT_MS, `latency_ms ${String(b.latency_ms)}`)
  assert.equal(b.error, undefined)
}

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()))
  const { port } = s.address() as { port: number }
  await new Promise<void>((res) => s.close(() => res()))
  return port
}

void describe('GET /-/health', () => {
  void test('details only for admins (and loopback when configured): anyone else gets {status}, even from loopback', async () => {
    const dead = await deadPort()
    const pier = await startPier({
      auth: { admins: ['ops'] },
      uplinks: { up: { url: `http://pier:secret-password@127.0.0.1:${dead}/npm/`, max_fails: 1 } },
      packages: { '**': { access: '$all', publish: '$authenticated', proxy: 'up' } },
    })
    try {
      const admin = await addUser(pier.url, 'ops')
      const user = await addUser(pier.url, 'dev')
      // An uplink failure: its URL and error are what an anonymous client must not learn.
      assert.equal((await fetch(new URL('some-package', pier.url))).status, 502)
      for (const [who, headers] of [
        ['anonymous', {}],
        ['a user who is not an admin', { authorization: `Bearer ${user}` }],
        ['bad credentials', { authorization: 'Bearer not-a-token' }],
      ] as const) {
        const res = await fetch(new URL('-/health', pier.url), { headers })
        assert.equal(res.status, 200, who)
        assert.deepEqual(await res.json(), { status: 'degraded' }, who)
      }
      const res = await fetch(new URL('-/health', pier.url), { headers: { authorization: `Bearer ${admin}` } })
      const body = (await res.json()) as Obj
      assert.equal(body.status, 'degraded')
      assert.equal(body.uplinks.up.url, `http://127.0.0.1:${dead}/npm/`)
      assert.doesNotMatch(JSON.stringify(body), /secret-password/)
      // Every bounded cache reports its size against its bound; memory in bytes.
      for (const name of ['packument_states', 'packument_bodies', 'tarball_bytes']) {
        const c = body.caches[name] as Obj
        assert.ok(Number.isInteger(c.entries) && Number.isInteger(c.max) && c.max > 0, `${name}: ${JSON.stringify(c)}`)
      }
      assert.ok(body.memory.rss_bytes > 0 && body.memory.heap_used_bytes > 0 && body.memory.heap_limit_bytes > body.memory.heap_used_bytes)
    } finally {
      await pier.close()
    }
  })

  void test('SQLite + fs: 200 ok, no credentials needed, never cached, not in the info-level request log', async () => {
    const lines: { msg?: string; url?: string }[] = []
    let pingLogged!: () => void
    const pingLine = new Promise<void>((res) => (pingLogged = res))
    const write = (line: string): void => {
      const entry = JSON.parse(line) as (typeof lines)[number]
      lines.push(entry)
      if (entry.msg === 'request' && entry.url === '/-/ping') pingLogged()
    }
    const pier = await startPier({ server: { health_details: 'loopback' } }, { logger: pino({ level: 'info' }, { write }) })
    try {
      const h = await health(pier.url)
      assert.equal(h.status, 200)
      assert.equal(h.cacheControl, 'no-store')
      assert.equal(h.body.status, 'ok')
      assertOk(h.body.meta, 'sqlite')
      assertOk(h.body.blobs, 'fs')
      assert.deepEqual(h.body.uplinks, {})
      assert.equal((await fetch(new URL('-/ping', pier.url))).status, 200)
      // Logged once the response went out: wait for the ping's line, which follows any health line.
      await pingLine
      const logged = lines.filter((l) => l.msg === 'request').map((l) => l.url)
      assert.deepEqual(logged, ['/-/ping'], 'monitors poll /-/health: its requests are not logged at info')
    } finally {
      await pier.close()
    }
  })

  void describe('PostgreSQL + S3 (s3rver)', () => {
    let database: TempDatabase
    let s3: TestS3
    let pier: TestPier
    let s3Closed = false
    before(async () => {
      database = await createTempDatabase()
      s3 = await startS3()
      pier = await startPier({ server: { health_details: 'loopback' }, storage: { type: 's3', s3: { ...s3.config, prefix: 'health/' }, meta: { type: 'postgres', url: database.url } } })
    })
    after(async () => {
      await pier.close()
      if (!s3Closed) await s3.close()
      await database.drop()
    })

    void test('200 ok while both answer', async () => {
      const h = await health(pier.url)
      assert.equal(h.status, 200, JSON.stringify(h.body))
      assert.equal(h.body.status, 'ok')
      assertOk(h.body.meta, 'postgres')
      assertOk(h.body.blobs, 's3')
    })

    void test('503 down with blobs.status "error" once s3rver is closed; the database still ok', async () => {
      await s3.close()
      s3Closed = true
      const h = await health(pier.url)
      assert.equal(h.status, 503, JSON.stringify(h.body))
      assert.equal(h.body.status, 'down')
      assert.equal(h.body.blobs.type, 's3')
      assert.equal(h.body.blobs.status, 'error')
      assert.equal(typeof h.body.blobs.error, 'string')
      assert.ok(h.body.blobs.error.length > 0)
      assertOk(h.body.meta, 'postgres')
    })

    void test('503 with meta.status "error" once the database is dropped', async () => {
      await database.drop()
      const h = await health(pier.url)
      assert.equal(h.status, 503, JSON.stringify(h.body))
      assert.equal(h.body.status, 'down')
      assert.equal(h.body.meta.type, 'postgres')
      assert.equal(h.body.meta.status, 'error')
      assert.match(h.body.meta.error, /database .* does not exist|terminat|connect/i)
    })
  })

  void test('an S3 endpoint that accepts connections and never answers: 503 after the timeout, the request aborted', async () => {
    const sockets = new Set<Socket>()
    const closed: Promise<void>[] = []
    const server: Server = createServer((socket) => {
      sockets.add(socket)
      closed.push(new Promise((res) => socket.on('close', () => res())))
      // Read (and ignore) the request, so the client's FIN is seen when it gives up.
      socket.resume()
    })
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()))
    const { port } = server.address() as { port: number }
    const endpoint = `http://127.0.0.1:${port}`
    const pier = await startPier({
      server: { health_details: 'loopback' },
      storage: { type: 's3', s3: { bucket: 'hung', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', endpoint, forcePathStyle: true } },
    })
    try {
      const h = await health(pier.url)
      assert.equal(h.status, 503, JSON.stringify(h.body))
      assert.equal(h.body.blobs.status, 'error')
      assert.equal(h.body.blobs.error, `no answer within ${HEALTH_TIMEOUT_MS} ms`)
      // Timers run on libuv's millisecond loop clock, so the deadline may fire up to 1 ms before
      // performance.now() says 2000 ms have passed (seen: 1999.87).
      assert.ok(h.body.blobs.latency_ms >= HEALTH_TIMEOUT_MS - 1, `latency_ms ${String(h.body.blobs.latency_ms)}`)
      assertOk(h.body.meta, 'sqlite')
      // The abandoned HeadBucket was aborted: Pier closed its connection.
      assert.ok(sockets.size >= 1)
      await Promise.all(closed)
    } finally {
      await pier.close()
      for (const s of sockets) s.destroy()
      await new Promise<void>((res) => server.close(() => res()))
    }
  })

  void test('an uplink on a dead loopback port: ok until asked, then its open circuit makes the registry degraded (200)', async () => {
    const port = await deadPort()
    const other = await deadPort()
    const pier = await startPier({
      server: { health_details: 'loopback' },
      uplinks: {
        dead: { url: `http://127.0.0.1:${port}/`, max_fails: 1, fail_timeout: '10m', timeout: '2s' },
        spare: { url: `http://pier:secret-password@127.0.0.1:${other}/npm/` },
      },
      // Only `dead` is asked; `spare` stays untouched.
      packages: { '**': { access: '$all', publish: '$authenticated', proxy: 'dead' } },
    })
    try {
      const first = await health(pier.url)
      assert.equal(first.status, 200)
      assert.equal(first.body.status, 'ok')
      assert.deepEqual(first.body.uplinks, {
        dead: { url: `http://127.0.0.1:${port}/`, status: 'ok', consecutive_failures: 0 },
        spare: { url: `http://127.0.0.1:${other}/npm/`, status: 'ok', consecutive_failures: 0 },
      })

      const asked = await fetch(new URL('some-package', pier.url))
      assert.equal(asked.status, 502, await asked.text())

      const before = Date.now()
      const h = await health(pier.url)
      assert.equal(h.status, 200, 'uplinks down: still 200, cached and local packages are served')
      assert.equal(h.body.status, 'degraded')
      assertOk(h.body.meta, 'sqlite')
      assertOk(h.body.blobs, 'fs')
      const dead = h.body.uplinks.dead as Obj
      assert.equal(dead.url, `http://127.0.0.1:${port}/`)
      assert.equal(dead.status, 'circuit-open')
      assert.equal(dead.consecutive_failures, 1)
      const openUntil = Date.parse(String(dead.open_until))
      assert.ok(openUntil > before + 9 * 60_000 && openUntil <= Date.now() + 10 * 60_000, `open_until ${String(dead.open_until)}`)
      assert.deepEqual(h.body.uplinks.spare, { url: `http://127.0.0.1:${other}/npm/`, status: 'ok', consecutive_failures: 0 })
      assert.doesNotMatch(JSON.stringify(h.body), /secret-password/)
    } finally {
      await pier.close()
    }
  })
})
