/**
 * The uplink under faults, and against an upstream that sends too much. Nothing leaves 127.0.0.1.
 *
 * Fault matrix: an upstream Pier (in this process) behind the loopback fixture, and for each fault
 * a fresh proxy Pier (`timeout: 1s`, `maxage: 0`, `max_fails: 2`, `fail_timeout: 5m`) whose cache
 * was warmed first. Faults: the upstream answers 500, hangs, refuses connections (nothing
 * listening), resets them mid-answer, cuts bodies short, corrupts them, or trickles them slower
 * than the timeout. For each:
 *
 * - a warm (cached) name keeps answering, with its tarball, and is marked stale (`Warning: 110`)
 *   once a refresh failed; during the refused-connection outage the real npm CLI installs it;
 * - uncached names answer 5xx (502/504), never 404, and the circuit opens;
 * - a tarball downloaded during the fault never reaches the client whole, and is not stored:
 *   after the fault, the right bytes come from the upstream again;
 * - once the upstream is back, an uncached name answers 200 within 10 s: the breaker's probe lets
 *   requests through again, long before `fail_timeout` (5 minutes) would have.
 *
 * Size caps (`max_packument_size`, `max_tarball_size`) against a small hostile upstream: an
 * oversized packument (announced, or a gzip bomb) or tarball (by Content-Length, or counted while
 * it streams) is a 502 or an aborted download and is never cached; a tarball without
 * Content-Length under the cap is streamed to the client (not read whole first) and then stored.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { captureLog } from '../helpers/log-capture.js'
import { NpmClient } from '../helpers/npm.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'
import { startUplinkFixture, type Fault } from '../helpers/uplink-fixture.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const sha512 = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`
const STALE = '110 - "Response is Stale"'
/** How long an uncached name may take to answer 200 once the upstream is back, ms. */
const RECOVERY_MS = 10_000

/** A GET's status, headers and JSON body (`{}` when the body is not JSON). */
async function get(base: string, path: string): Promise<{ status: number; headers: Headers; body: Obj }> {
  const res = await fetch(new URL(path, base))
  const text = await res.text()
  let body: Obj = {}
  try {
    body = JSON.parse(text) as Obj
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body }
}

/** A download as the client saw it: `complete` only when the whole body arrived (not aborted). */
interface Download {
  status: number
  body: Buffer
  complete: boolean
}

/**
 * GETs `path` below `base` with node:http (no retries, no decompression).
 * @param onData hears each chunk as it arrives
 */
function download(base: string, path: string, onData?: (chunk: Buffer) => void): Promise<Download> {
  return new Promise((resolve) => {
    const req = request(new URL(path, base), (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => {
        chunks.push(c)
        onData?.(c)
      })
      res.on('error', () => undefined)
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), complete: res.complete }))
    })
    req.on('error', () => resolve({ status: 0, body: Buffer.alloc(0), complete: false }))
    req.end()
  })
}

/** Publishes `pkg` to a Pier with `auth.type: none`; returns the tarball's integrity. */
async function publish(base: string, pkg: Record<string, unknown>): Promise<string> {
  const { body, integrity } = publishBody(pkg)
  const res = await fetch(new URL(String(pkg.name), base), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  assert.equal(res.status, 201, await res.text())
  return integrity
}

/** The faults of the matrix: the fixture's, and `refuse` (nothing listening on its port). */
type MatrixFault = Exclude<Fault, undefined> | 'refuse'
const FAULTS: MatrixFault[] = ['status-500', 'hang', 'refuse', 'reset', 'truncate', 'corrupt', 'trickle']
/** Faults under which no refresh can succeed (a 304 still can when only bodies are damaged). */
const NOTHING_ANSWERS = new Set<MatrixFault>(['status-500', 'hang', 'refuse'])

void describe('uplink fault matrix', { timeout: 120_000 }, () => {
  let upstream: TestPier
  const integrity: Record<string, string> = {}

  before(async () => {
    upstream = await startPier({ auth: { type: 'none' } })
    for (const name of ['warm-a', 'cold-tgz', 'cold-1', 'cold-2', 'cold-3', 'after']) integrity[name] = await publish(upstream.url, { name, version: '1.0.0' })
  })

  after(async () => {
    await upstream.close()
  })

  for (const fault of FAULTS) {
    void test(`${fault}: warm names answer, uncached ones are 5xx, nothing damaged is kept, and a probe recovers within ${RECOVERY_MS / 1000} s`, async (t) => {
      const fixture = await startUplinkFixture(upstream.url)
      // Slower than the proxy's 1 s timeout: each wait for the next byte times out.
      fixture.trickleMs = 1500
      const log = captureLog()
      const proxy = await startPier({ uplinks: { up: { url: fixture.url, timeout: '1s', maxage: 0, max_fails: 2, fail_timeout: '5m' } } }, { logger: log.logger })
      const warmTgz = 'warm-a/-/warm-a-1.0.0.tgz'
      const coldTgz = 'cold-tgz/-/cold-tgz-1.0.0.tgz'
      try {
        // Warm: warm-a with its tarball; cold-tgz's packument only.
        assert.equal((await get(proxy.url, 'warm-a')).status, 200)
        const warm = await download(proxy.url, warmTgz)
        assert.equal(sha512(warm.body), integrity['warm-a'])
        assert.equal((await get(proxy.url, 'cold-tgz')).status, 200)

        if (fault === 'refuse') await fixture.refuse()
        else fixture.fault = () => fault

        // A tarball fetched during the fault never reaches the client whole.
        const bad = await download(proxy.url, coldTgz)
        assert.ok(!bad.complete || bad.status >= 500, `the damaged tarball must not be served (status ${bad.status}, ${bad.body.length} bytes)`)
        assert.notEqual(bad.status, 404)

        // Uncached names: 5xx, never 404; two failures open the circuit.
        for (const r of await Promise.all(['cold-1', 'cold-2'].map((n) => get(proxy.url, n)))) {
          assert.ok(r.status === 502 || r.status === 504, `uncached name during ${fault}: ${r.status} ${JSON.stringify(r.body)}`)
        }
        assert.ok(
          log.lines.some((l) => l.msg === 'uplink circuit opened: probing it'),
          'the circuit is open',
        )
        const third = await get(proxy.url, 'cold-3')
        assert.ok(third.status === 502 || third.status === 504, `${third.status}`)

        // Warm names keep answering, from the cache.
        const during = await get(proxy.url, 'warm-a')
        assert.equal(during.status, 200)
        assert.deepEqual(Object.keys(during.body.versions), ['1.0.0'])
        if (NOTHING_ANSWERS.has(fault)) {
          await log.waitFor((l) => l.pkg === 'warm-a' && /serving the cached packument/.test(String(l.msg)))
          const stale = await get(proxy.url, 'warm-a')
          assert.equal(stale.status, 200)
          assert.equal(stale.headers.get('warning'), STALE)
        }
        const warmAgain = await download(proxy.url, warmTgz)
        assert.ok(warmAgain.complete)
        assert.equal(sha512(warmAgain.body), integrity['warm-a'])
        if (fault === 'refuse') {
          const npm = new NpmClient(proxy.url)
          const r = await npm.npm(['install'], { cwd: npm.project({ 'warm-a': '1.0.0' }) })
          assert.equal(r.code, 0, `npm install with the upstream refusing connections:\n${r.stdout}\n${r.stderr}`)
        }

        // The upstream comes back: an uncached name answers 200 once a probe found it up.
        const tgzAsked = fixture.countFor(coldTgz)
        const cleared = performance.now()
        if (fault === 'refuse') await fixture.accept()
        else fixture.fault = () => undefined
        let deadline: NodeJS.Timeout | undefined
        const expired = new Promise<'expired'>((res) => (deadline = setTimeout(() => res('expired'), RECOVERY_MS)))
        try {
          for (;;) {
            const seen = fixture.requests.length
            const r = await get(proxy.url, 'after')
            if (r.status === 200) break
            assert.ok(r.status >= 500, `while recovering: ${r.status}`)
            // Ask again once the next probe has come and gone (or give up at the deadline).
            const probed = fixture.waitFor((q) => q.url === '/-/ping' && fixture.requests.indexOf(q) >= seen)
            assert.notEqual(await Promise.race([probed, expired]), 'expired', `no 200 within ${RECOVERY_MS} ms of the upstream coming back`)
          }
        } finally {
          clearTimeout(deadline)
        }
        const seconds = (performance.now() - cleared) / 1000
        assert.ok(
          fixture.requests.some((q) => q.url === '/-/ping' && q.status === 200),
          'a probe found the upstream up',
        )
        t.diagnostic(`${fault}: an uncached name answered 200 ${seconds.toFixed(2)} s after the upstream came back (fail_timeout 5 min)`)

        // Nothing damaged was kept: the right bytes, fetched from the upstream again.
        const good = await download(proxy.url, coldTgz)
        assert.ok(good.complete)
        assert.equal(good.status, 200)
        assert.equal(sha512(good.body), integrity['cold-tgz'])
        assert.equal(fixture.countFor(coldTgz), tgzAsked + 1, 'the tarball was not stored during the fault')
        const cold = await get(proxy.url, 'cold-1')
        assert.equal(cold.status, 200)
        assert.deepEqual(Object.keys(cold.body.versions), ['1.0.0'])
        assert.equal(cold.body.versions['1.0.0'].dist.integrity, integrity['cold-1'])
      } finally {
        fixture.fault = () => undefined
        await proxy.close()
        await fixture.close()
      }
    })
  }

})

/** What the hostile upstream serves: packuments by name, tarballs by path. */
interface Hostile {
  url: string
  hits: Map<string, number>
  /** Resolves the streaming tarball's wait: the client has its first bytes. */
  release(): void
  close(): Promise<void>
}

const PACKUMENT_CAP = 64 * 1024
const TARBALL_CAP = 1024 * 1024

/** A packument of `name@1.0.0` whose tarball is at `<url>files/<name>.tgz` with these bytes. */
function packumentOf(url: string, name: string, bytes: Buffer): string {
  const shasum = createHash('sha1').update(bytes).digest('hex')
  return JSON.stringify({
    name,
    'dist-tags': { latest: '1.0.0' },
    versions: { '1.0.0': { name, version: '1.0.0', dist: { tarball: `${url}files/${name}.tgz`, integrity: sha512(bytes), shasum } } },
  })
}

/** The upstream: oversized packuments, oversized tarballs (with and without Content-Length), a streamed one. */
async function startHostile(tarballs: Record<string, Buffer>): Promise<Hostile> {
  const hits = new Map<string, number>()
  let release!: () => void
  const released = new Promise<void>((res) => (release = res))
  const big = JSON.stringify({ name: 'big-doc', versions: {}, padding: 'x'.repeat(2 * PACKUMENT_CAP) })
  const bomb = JSON.stringify({ name: 'bomb-doc', versions: {}, padding: ' '.repeat(64 * PACKUMENT_CAP) })
  let url = ''
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? '/'
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (path === '/big-doc') return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(big)) }).end(big)
    // Less than 1 KiB on the wire, 4 MiB once gunzipped.
    if (path === '/bomb-doc') return void res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(bomb))
    const name = path.slice(1)
    const tgz = tarballs[name]
    if (tgz) return void res.writeHead(200, { 'content-type': 'application/json' }).end(packumentOf(url, name, tgz))
    const file = /^\/files\/(.+)\.tgz$/.exec(path)?.[1]
    const bytes = file === undefined ? undefined : tarballs[file]
    if (!bytes) return void res.writeHead(404).end('{}')
    if (file === 'tgz-length') return void res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes)
    // No Content-Length from here on: chunked.
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const half = Math.floor(bytes.length / 2)
    for (let at = 0; at < half; at += 16 * 1024) {
      if (!res.write(bytes.subarray(at, Math.min(at + 16 * 1024, half)))) await new Promise((r) => res.once('drain', r))
    }
    // The streamed one waits until the client has bytes: a proxy that read the whole body first
    // would never send any, and its idle timeout would end the download (the test then fails).
    if (file === 'tgz-stream') await released
    res.end(bytes.subarray(half))
  }
  const server: Server = createServer((req, res) => void handle(req, res))
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  return {
    url,
    hits,
    release,
    close: async () => {
      release()
      server.closeAllConnections()
      await new Promise<void>((res) => server.close(() => res()))
    },
  }
}

void describe('uplink size caps (max_packument_size 64 KiB, max_tarball_size 1 MiB)', { timeout: 60_000 }, () => {
  let hostile: Hostile
  let proxy: TestPier
  const tarballs = {
    'tgz-length': randomBytes(2 * TARBALL_CAP),
    'tgz-chunked': randomBytes(2 * TARBALL_CAP),
    'tgz-stream': randomBytes(TARBALL_CAP - 4096),
  }

  before(async () => {
    hostile = await startHostile(tarballs)
    proxy = await startPier({ uplinks: { up: { url: hostile.url, timeout: '2s', max_packument_size: '64kb', max_tarball_size: '1mb' } } })
  })

  after(async () => {
    await proxy.close()
    await hostile.close()
  })

  for (const name of ['big-doc', 'bomb-doc']) {
    void test(`a packument over the cap (${name === 'big-doc' ? 'by its Content-Length' : 'once gunzipped'}) is a 502 naming the cap, and is not cached`, async () => {
      const r = await get(proxy.url, name)
      assert.equal(r.status, 502)
      assert.match(r.body.error, /larger than max_packument_size \(65536 bytes \(64 KiB\)\)/)
      assert.equal((await get(proxy.url, name)).status, 502)
      assert.equal(hostile.hits.get(`/${name}`), 2, 'asked again: nothing was cached')
    })
  }

  void test('a tarball whose Content-Length is over the cap is a 502 naming the cap, and is not stored', async () => {
    assert.equal((await get(proxy.url, 'tgz-length')).status, 200)
    const r = await download(proxy.url, 'tgz-length/-/tgz-length-1.0.0.tgz')
    assert.equal(r.status, 502)
    assert.match(r.body.toString(), /more than max_tarball_size \(1048576 bytes \(1 MiB\)\)/)
    assert.equal((await download(proxy.url, 'tgz-length/-/tgz-length-1.0.0.tgz')).status, 502)
    assert.equal(hostile.hits.get('/files/tgz-length.tgz'), 2)
  })

  void test('a tarball without Content-Length that goes over the cap is cut off (never a complete 200), and is not stored', async () => {
    assert.equal((await get(proxy.url, 'tgz-chunked')).status, 200)
    const r = await download(proxy.url, 'tgz-chunked/-/tgz-chunked-1.0.0.tgz')
    assert.equal(r.complete && r.status === 200, false, `status ${r.status}, ${r.body.length} bytes, complete ${String(r.complete)}`)
    assert.ok(r.body.length <= TARBALL_CAP, 'no more than the cap went through')
    const again = await download(proxy.url, 'tgz-chunked/-/tgz-chunked-1.0.0.tgz')
    assert.equal(again.complete && again.status === 200, false)
    assert.equal(hostile.hits.get('/files/tgz-chunked.tgz'), 2)
  })

  void test('a tarball without Content-Length under the cap is streamed to the client, verified, then stored', async () => {
    assert.equal((await get(proxy.url, 'tgz-stream')).status, 200)
    const path = 'tgz-stream/-/tgz-stream-1.0.0.tgz'
    // The upstream sends its second half only once the client has received bytes.
    const r = await download(proxy.url, path, () => hostile.release())
    assert.equal(r.status, 200)
    assert.ok(r.complete)
    assert.equal(sha512(r.body), sha512(tarballs['tgz-stream']))
    const stored = await download(proxy.url, path)
    assert.equal(sha512(stored.body), sha512(tarballs['tgz-stream']))
    assert.equal(stored.body.length, tarballs['tgz-stream'].length)
    assert.equal(hostile.hits.get('/files/tgz-stream.tgz'), 1, 'served from the blob store the second time')
  })
})
