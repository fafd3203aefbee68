/**
 * The uplink building blocks without a second Pier: configuration, package rules, packument
 * rewriting, the verifying tee (and its shared keep budget), HttpUplink (conditional requests,
 * gzip, 404, the circuit breaker and its probes, the size caps, auth scope) against small loopback
 * servers, and UplinkCache (coalescing, the bounded negative cache, durable reload) over a real
 * SQLite store.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { after, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { parseByteSize, parseDuration } from '../../src/config/uplinks.js'
import { PackageRules } from '../../src/registry/package-rules.js'
import { SqliteMetaStore } from '../../src/storage/meta/sqlite-meta-store.js'
import { HttpUplink, probeDelay } from '../../src/uplink/http-uplink.js'
import { isOwnUrl, openUplinks } from '../../src/uplink/open-uplinks.js'
import { parseUplinkPackument, rewritePackument, tarballIndex } from '../../src/uplink/rewrite.js'
import { UplinkCache } from '../../src/uplink/uplink-cache.js'
import { UplinkError } from '../../src/uplink/uplink.js'
import { expectedDigest } from '../../src/registry/integrity.js'
import { IntegrityError, KeepBudget, VerifyingTee } from '../../src/uplink/verifying-tee.js'
import { captureLog } from '../helpers/log-capture.js'
import { tempDir } from '../helpers/pier.js'

const dirs: string[] = []
const dir = (): string => {
  const d = tempDir('pier-uplink-unit-')
  dirs.push(d)
  return d
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A loopback server answering with `handler`; counts requests. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; seen: IncomingMessage[]; server: Server }> {
  const seen: IncomingMessage[] = []
  const server = createServer((req, res) => {
    seen.push(req)
    handler(req, res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen, server }
}
const stop = (s: { server: Server }) => new Promise<void>((r) => s.server.close(() => r()))

const uplink = (url: string, extra: Partial<ConstructorParameters<typeof HttpUplink>[0]> = {}) =>
  new HttpUplink({
    name: 'up',
    url,
    timeout: 2000,
    maxage: 60_000,
    failTimeout: 60_000,
    maxFails: 2,
    cache: true,
    maxPackumentSize: 1024 * 1024,
    maxTarballSize: 1024 * 1024,
    ...extra,
  })

/** Resolves with the next request `s` receives whose URL is `url`. */
const nextRequest = (s: { server: Server }, url: string): Promise<IncomingMessage> =>
  new Promise((resolve) => {
    const on = (req: IncomingMessage) => {
      if (req.url !== url) return
      s.server.off('request', on)
      resolve(req)
    }
    s.server.on('request', on)
  })

const doc = (name: string, versions: string[]) =>
  JSON.stringify({
    name,
    'dist-tags': { latest: versions.at(-1) },
    versions: Object.fromEntries(versions.map((v) => [v, { name, version: v, dist: { tarball: `http://elsewhere.example/${name}-${v}.tgz`, integrity: 'sha512-AAAA', shasum: 'ab' } }])),
    time: { modified: '2024-01-02T03:04:05.000Z' },
    _attachments: { x: 1 },
  })

describe('uplink configuration', () => {
  test('durations: milliseconds or a number with a unit', () => {
    assert.equal(parseDuration(1500), 1500)
    assert.equal(parseDuration('1500'), 1500)
    assert.equal(parseDuration('30s'), 30_000)
    assert.equal(parseDuration('2m'), 120_000)
    assert.equal(parseDuration('1h'), 3_600_000)
    assert.throws(() => parseDuration('soon'), /invalid duration/)
  })

  test('sizes: bytes or a number with a 1024-based unit', () => {
    assert.equal(parseByteSize(4096), 4096)
    assert.equal(parseByteSize('4096'), 4096)
    assert.equal(parseByteSize('512kb'), 512 * 1024)
    assert.equal(parseByteSize('200MB'), 200 * 1024 * 1024)
    assert.equal(parseByteSize('1g'), 1024 * 1024 * 1024)
    assert.equal(parseByteSize('1.5k'), 1536)
    assert.throws(() => parseByteSize('-1mb'), /invalid size "-1mb"/)
    assert.throws(() => parseByteSize('1tb'), /invalid size/)
  })

  test('uplinks, packages and private_scopes load with defaults; errors name the key', () => {
    const d = dir()
    writeFileSync(
      join(d, 'c.yaml'),
      [
        'uplinks:',
        '  up: { url: "http://127.0.0.1:9/", maxage: 2m, auth: { type: bearer, token_env: UP_TOKEN } }',
        'private_scopes: ["@corp"]',
        'packages:',
        '  "@corp/*": { access: $authenticated, publish: $authenticated }',
        '  "**": { access: $all, publish: $authenticated, proxy: up }',
        '',
      ].join('\n'),
    )
    const { config } = loadConfig({ file: 'c.yaml', cwd: d, env: {}, home: '', etc: '/nonexistent-etc' })
    assert.deepEqual(config.uplinks?.up, {
      url: 'http://127.0.0.1:9/',
      timeout: 30_000,
      maxage: 120_000,
      fail_timeout: 300_000,
      max_fails: 2,
      cache: true,
      max_packument_size: 200 * 1024 * 1024,
      max_tarball_size: 1024 * 1024 * 1024,
      auth: { type: 'bearer', token_env: 'UP_TOKEN' },
    })
    assert.deepEqual(config.packages?.['**'], { access: ['$all'], publish: ['$authenticated'], proxy: ['up'], proxy_mode: 'proxy' })
    assert.deepEqual(config.packages?.['@corp/*']?.proxy, [])
    assert.deepEqual(config.private_scopes, ['@corp'])
    assert.equal(loadConfig({ cwd: dir(), env: {}, home: '', etc: '/nonexistent-etc' }).config.uplinks, undefined, 'absent: the default uplink is decided at start')
    const bad = dir()
    writeFileSync(join(bad, 'c.json'), JSON.stringify({ uplinks: { up: { url: 'http://127.0.0.1:9/', maxage: 'soon' } } }))
    assert.throws(() => loadConfig({ file: 'c.json', cwd: bad, env: {}, home: '', etc: '/nonexistent-etc' }), (e: unknown) => e instanceof ConfigError && /uplinks\.up\.maxage/.test(e.message))
    writeFileSync(join(bad, 'c.json'), JSON.stringify({ uplinks: { up: { url: 'http://127.0.0.1:9/', auth: { type: 'bearer' } } } }))
    assert.throws(() => loadConfig({ file: 'c.json', cwd: bad, env: {}, home: '', etc: '/nonexistent-etc' }), /exactly one of token and token_env/)
    writeFileSync(join(bad, 'c.json'), JSON.stringify({ uplinks: { up: { url: 'http://127.0.0.1:9/', max_tarball_size: 'huge' } } }))
    assert.throws(
      () => loadConfig({ file: 'c.json', cwd: bad, env: {}, home: '', etc: '/nonexistent-etc' }),
      (e: unknown) => e instanceof ConfigError && /uplinks\.up\.max_tarball_size/.test(e.message) && /invalid size "huge"/.test(e.message),
    )
    writeFileSync(join(bad, 'c.json'), JSON.stringify({ uplinks: { up: { url: 'http://127.0.0.1:9/', max_packument_size: '0kb' } } }))
    assert.throws(() => loadConfig({ file: 'c.json', cwd: bad, env: {}, home: '', etc: '/nonexistent-etc' }), /uplinks\.up\.max_packument_size/)
    writeFileSync(join(bad, 'c.yaml'), 'uplinks:\n  up: { url: "http://127.0.0.1:9/", max_packument_size: 64kb, max_tarball_size: 2g }\n')
    const sized = loadConfig({ file: 'c.yaml', cwd: bad, env: {}, home: '', etc: '/nonexistent-etc' }).config.uplinks?.up
    assert.equal(sized?.max_packument_size, 64 * 1024)
    assert.equal(sized?.max_tarball_size, 2 * 1024 * 1024 * 1024)
  })

  test('the default uplink comes from npm, unless npm points at this Pier; {} turns proxying off', async () => {
    const log = captureLog()
    const base = loadConfig({ cwd: dir(), env: {}, home: '', etc: '/nonexistent-etc' }).config
    const fromNpm = await openUplinks(base, log.logger, async () => 'http://127.0.0.1:4873/')
    assert.deepEqual([...fromNpm.keys()], ['default'])
    const self = await openUplinks({ ...base, server: { ...base.server, port: 4873 } }, log.logger, async () => 'http://localhost:4873/')
    assert.equal(self.size, 0)
    assert.equal((await openUplinks({ ...base, uplinks: {} }, log.logger, async () => 'http://127.0.0.1:4873/')).size, 0)
    assert.equal((await openUplinks(base, log.logger, async () => undefined)).size, 0)
    for (const u of fromNpm.values()) await u.close()
  })

  test('isOwnUrl: the configured url or the listening address', () => {
    const server = { host: '127.0.0.1', port: 4873, trust_proxy: false }
    assert.equal(isOwnUrl('http://127.0.0.1:4873/', { server, url: undefined }), true)
    assert.equal(isOwnUrl('http://localhost:4873', { server, url: undefined }), true)
    assert.equal(isOwnUrl('http://127.0.0.1:4874/', { server, url: undefined }), false)
    assert.equal(isOwnUrl('https://npm.example.com/', { server, url: 'https://npm.example.com' }), true)
    assert.equal(isOwnUrl('https://npm.example.com/other/', { server, url: 'https://npm.example.com/' }), false)
  })
})

describe('package rules', () => {
  const rules = PackageRules.fromConfig(
    {
      '@corp/*': { access: ['$authenticated'], publish: ['alice'], proxy: [] },
      'only-*': { access: ['$all'], publish: ['$authenticated'], proxy: ['second'] },
      '**': { access: ['$all'], publish: ['$authenticated'], proxy: ['up', 'second'] },
    },
    ['up', 'second'],
    ['@secret'],
  )
  const anon = { name: undefined, readonly: false }
  const alice = { name: 'alice', readonly: false }
  const bob = { name: 'bob', readonly: false }

  test('first match wins; ** matches scoped names too', () => {
    assert.equal(rules.match('@corp/x').pattern, '@corp/*')
    assert.equal(rules.match('only-this').pattern, 'only-*')
    assert.equal(rules.match('lodash').pattern, '**')
    assert.equal(rules.match('@other/x').pattern, '**')
    assert.deepEqual(rules.uplinksFor('only-this'), ['second'])
    assert.deepEqual(rules.uplinksFor('@other/x'), ['up', 'second'])
  })

  test('a rule without proxy and a private scope never proxy', () => {
    assert.deepEqual(rules.uplinksFor('@corp/x'), [])
    assert.deepEqual(rules.uplinksFor('@secret/x'), [])
  })

  test('access and publish lists: $all, $authenticated, $anonymous, user names', () => {
    assert.equal(rules.canRead('@corp/x', anon), false)
    assert.equal(rules.canRead('@corp/x', bob), true)
    assert.equal(rules.canPublish('@corp/x', bob), false)
    assert.equal(rules.canPublish('@corp/x', alice), true)
    assert.equal(rules.readableByAll('@corp/x'), false)
    assert.equal(rules.readableByAll('lodash'), true)
    const anonOnly = new PackageRules([{ pattern: '**', access: ['$anonymous'], publish: [], proxy: [] }])
    assert.equal(anonOnly.canRead('x', anon), true)
    assert.equal(anonOnly.canRead('x', bob), false)
    assert.equal(anonOnly.canPublish('x', bob), false)
  })

  test('without packages: everything proxies to every uplink; unknown uplinks are reported', () => {
    const d = PackageRules.fromConfig(undefined, ['a', 'b'])
    assert.deepEqual(d.uplinksFor('@s/n'), ['a', 'b'])
    assert.deepEqual(rules.unknownUplinks(['up']), [
      { pattern: 'only-*', uplink: 'second' },
      { pattern: '**', uplink: 'second' },
    ])
  })
})

describe('packument rewriting', () => {
  test('tarball URLs point at Pier; the uplink URL stays in the index; attachments are dropped', () => {
    const parsed = parseUplinkPackument('@s/n', doc('@s/n', ['1.0.0', '1.1.0']))
    assert.ok('doc' in parsed)
    const out = rewritePackument('@s/n', parsed.doc, 'http://127.0.0.1:3000', '0-abc', '2024-01-01T00:00:00.000Z')
    assert.equal(out.versions['1.1.0']?.dist.tarball, 'http://127.0.0.1:3000/@s/n/-/n-1.1.0.tgz')
    assert.equal(out._rev, '0-abc')
    assert.equal(out.time.modified, '2024-01-02T03:04:05.000Z')
    assert.equal('_attachments' in out, false)
    const index = tarballIndex('@s/n', parsed.doc)
    assert.equal(index.get('n-1.0.0.tgz')?.url, 'http://elsewhere.example/@s/n-1.0.0.tgz')
  })

  test('a packument of another name, or not JSON, is refused', () => {
    assert.match((parseUplinkPackument('a', doc('b', ['1.0.0'])) as { problem: string }).problem, /named "b"/)
    assert.match((parseUplinkPackument('a', '<html>') as { problem: string }).problem, /not valid JSON/)
  })
})

describe('VerifyingTee', () => {
  const bytes = Buffer.from('a tarball, in three chunks')
  const chunks = [bytes.subarray(0, 5), bytes.subarray(5, 12), bytes.subarray(12)]
  const sri = `sha512-${createHash('sha512').update(bytes).digest('base64')}`

  test('a matching body passes whole, and is committed before its last chunk goes out', async () => {
    const events: string[] = []
    const tee = new VerifyingTee(expectedDigest(sri, undefined)!, 1024, undefined, async (b) => {
      events.push(`committed ${b?.length}`)
    })
    tee.on('data', (c: Buffer) => events.push(`out ${c.length}`))
    Readable.from(chunks).pipe(tee)
    await new Promise((r) => tee.on('end', r))
    assert.deepEqual(events, ['out 5', 'out 7', `committed ${bytes.length}`, `out ${chunks[2]?.length}`])
  })

  test('a mismatch fails the stream before the last chunk and commits nothing', async () => {
    let committed = false
    const tee = new VerifyingTee(expectedDigest(sri, undefined)!, 1024, undefined, async () => {
      committed = true
    })
    const out: Buffer[] = []
    tee.on('data', (c: Buffer) => out.push(c))
    // Chunks arrive one event-loop turn apart, as from a socket.
    async function* arriving(parts: (Buffer | undefined)[]) {
      for (const p of parts) {
        yield p
        await new Promise(setImmediate)
      }
    }
    Readable.from(arriving([chunks[0], chunks[1]])).pipe(tee)
    await assert.rejects(buffer(tee), IntegrityError)
    assert.equal(committed, false)
    assert.equal(Buffer.concat(out).length, 5, 'the last chunk received was held back')
  })

  test('a shared budget: a tee keeps its copy only while the budget has room, and gives it back', async () => {
    const budget = new KeepBudget(bytes.length + 4)
    const kept: (number | undefined)[] = []
    const run = async (tee: VerifyingTee) => {
      const done = buffer(tee)
      Readable.from(chunks).pipe(tee)
      return done
    }
    const first = new VerifyingTee(expectedDigest(sri, undefined)!, 1024, budget, async (b) => {
      kept.push(b?.length)
      // While the first copy is held, a second tee finds no room: verified and passed on, not kept.
      const second = new VerifyingTee(expectedDigest(sri, undefined)!, 1024, budget, async (b2) => void kept.push(b2?.length))
      assert.deepEqual(await run(second), bytes)
    })
    assert.deepEqual(await run(first), bytes)
    assert.deepEqual(kept, [bytes.length, undefined])
    assert.equal(budget.used, 0, 'every byte taken was given back')
    const failed = new VerifyingTee(expectedDigest(sri, undefined)!, 1024, budget, async () => assert.fail('a mismatch commits nothing'))
    const bad = buffer(failed)
    Readable.from([Buffer.from('not the tarball')]).pipe(failed)
    await assert.rejects(bad, IntegrityError)
    assert.equal(budget.used, 0, 'a failed tee gives its bytes back too')
  })

  test('shasum when there is no integrity; nothing to check without either', () => {
    const sha1 = createHash('sha1').update(bytes).digest('hex')
    assert.deepEqual(expectedDigest(undefined, sha1), { algorithm: 'sha1', digests: [createHash('sha1').update(bytes).digest('base64')] })
    assert.equal(expectedDigest(undefined, undefined), undefined)
  })
})

describe('HttpUplink', () => {
  test('conditional requests, gzip bodies, 304 and 404', async () => {
    const body = doc('pkg', ['1.0.0'])
    const s = await serve((req, res) => {
      if (req.url !== '/pkg') return void res.writeHead(404).end('{}')
      if (req.headers['if-none-match'] === '"e1"') return void res.writeHead(304).end()
      res.writeHead(200, { etag: '"e1"', 'content-encoding': 'gzip', 'last-modified': 'Tue, 02 Jan 2024 03:04:05 GMT' }).end(gzipSync(body))
    })
    const up = uplink(s.url)
    try {
      const first = await up.fetchPackument('pkg', {})
      assert.deepEqual(first, { kind: 'ok', text: body, etag: '"e1"', lastModified: 'Tue, 02 Jan 2024 03:04:05 GMT' })
      assert.equal(s.seen[0]?.headers['accept-encoding'], 'gzip')
      assert.deepEqual(await up.fetchPackument('pkg', { etag: '"e1"', lastModified: 'Tue, 02 Jan 2024 03:04:05 GMT' }), { kind: 'not-modified' })
      assert.equal(s.seen[1]?.headers['if-modified-since'], 'Tue, 02 Jan 2024 03:04:05 GMT')
      assert.deepEqual(await up.fetchPackument('nope', {}), { kind: 'not-found' })
    } finally {
      await up.close()
      await stop(s)
    }
  })

  test('scoped names are requested as @scope%2fname; credentials go to the uplink origin only', async () => {
    const s = await serve((_req, res) => res.writeHead(404).end())
    const other = await serve((_req, res) => res.writeHead(200, { 'content-length': '2' }).end('ok'))
    const up = uplink(s.url, { authorization: 'Bearer sekrit' })
    try {
      await up.fetchPackument('@s/n', {})
      assert.equal(s.seen[0]?.url, '/@s%2fn')
      assert.equal(s.seen[0]?.headers.authorization, 'Bearer sekrit')
      const t = await up.fetchTarball(`${other.url}n-1.0.0.tgz`)
      assert.equal(t?.size, 2)
      assert.equal((await buffer(t!.body)).toString(), 'ok')
      assert.equal(other.seen[0]?.headers.authorization, undefined)
      assert.equal(await up.fetchTarball(`${s.url}n-1.0.0.tgz`), undefined)
      assert.equal(s.seen[1]?.headers.authorization, 'Bearer sekrit')
    } finally {
      await up.close()
      await stop(s)
      await stop(other)
    }
  })

  test('probe backoff: 1 s, then doubling, never more than fail_timeout (nor less than 100 ms)', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 8, 9].map((step) => probeDelay(step, 1000, 300_000)), [1000, 2000, 4000, 8000, 16_000, 256_000, 300_000])
    assert.equal(probeDelay(60, 1000, 300_000), 300_000)
    assert.equal(probeDelay(0, 1000, 500), 500)
    assert.equal(probeDelay(3, 1000, 0), 100, 'fail_timeout 0 does not probe in a busy loop')
  })

  test('circuit breaker: opens after max_fails, fails fast, probes GET -/ping in the background; the first success closes it', async () => {
    let status = 503
    const s = await serve((req, res) => res.writeHead(status).end(status === 200 && req.url === '/pkg' ? doc('pkg', ['1.0.0']) : '{}'))
    // fail_timeout is an hour: only the probes can close the circuit within this test.
    const up = uplink(s.url, { maxFails: 2, failTimeout: 3_600_000, firstProbeMs: 20 })
    const failure = (f: string) => (e: unknown) => e instanceof UplinkError && e.failure === f
    try {
      assert.equal(up.breaker.state, 'closed')
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      assert.equal(up.breaker.state, 'failing')
      const firstProbe = nextRequest(s, '/-/ping')
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      const open = up.breaker
      assert.equal(open.state, 'open')
      assert.equal(open.failures, 2)
      assert.ok(open.nextProbeAt !== undefined && open.openUntil !== undefined && open.nextProbeAt < open.openUntil, 'the next probe is due long before fail_timeout')
      await assert.rejects(up.fetchPackument('pkg', {}), (e: unknown) => failure('circuit-open')(e) && /failed 2 times in a row/.test((e as Error).message))
      await assert.rejects(up.fetchTarball(`${s.url}pkg-1.0.0.tgz`), failure('circuit-open'))
      assert.equal(s.seen.filter((r) => r.url !== '/-/ping').length, 2, 'nothing is sent while the circuit is open')
      // The uplink probes itself: a 503 keeps the circuit open and schedules the next probe.
      assert.equal((await firstProbe).headers['user-agent'], 'pier (npm registry uplink)')
      const secondProbe = nextRequest(s, '/-/ping')
      await secondProbe
      assert.ok(up.breaker.failures >= 3, 'a failed probe counts as a failure')
      status = 200
      // A request while a probe is in flight waits for it; once one succeeded, requests go out again.
      const third = nextRequest(s, '/-/ping')
      await third
      assert.equal((await up.fetchPackument('pkg', {})).kind, 'ok')
      assert.deepEqual(up.breaker, { state: 'closed', failures: 0, openUntil: undefined, nextProbeAt: undefined })
      status = 503
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      assert.equal(up.breaker.state, 'failing', 'closed again: requests go out until max_fails')
    } finally {
      await up.close()
      await stop(s)
    }
  })

  test('circuit breaker: a request sends a probe that is due (never one that is not), and waits for a probe in flight up to its timeout', async () => {
    let pings: 'hang' | 'ok' = 'ok'
    let pkg = 500
    const hung: ServerResponse[] = []
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.url === '/-/ping' && pings === 'hang') return void hung.push(res)
      if (req.url === '/-/ping') return void res.writeHead(200).end('{}')
      res.writeHead(pkg).end(pkg === 200 ? doc('pkg', ['1.0.0']) : '{}')
    }
    const failure = (f: string) => (e: unknown) => e instanceof UplinkError && e.failure === f
    const pingsSeen = (s: { seen: IncomingMessage[] }) => s.seen.filter((r) => r.url === '/-/ping').length
    // The first probe is due in 10 minutes: a request does not send it sooner.
    const s = await serve(handler)
    const late = uplink(s.url, { maxFails: 1, failTimeout: 3_600_000, firstProbeMs: 600_000 })
    try {
      await assert.rejects(late.fetchPackument('pkg', {}), failure('status'))
      await assert.rejects(late.fetchPackument('pkg', {}), failure('circuit-open'))
      assert.equal(s.seen.length, 1, 'no probe, no request')
    } finally {
      await late.close()
    }
    const up = uplink(s.url, { maxFails: 1, failTimeout: 3_600_000, firstProbeMs: 50, timeout: 300 })
    try {
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      const due = up.breaker.nextProbeAt ?? 0
      // The event loop stays busy past the due time, so the probe's timer cannot have fired yet
      // (a late timer): the next request finds the probe due, sends it, and waits for its answer.
      while (Date.now() <= due) {
        /* busy */
      }
      pkg = 200
      assert.equal((await up.fetchPackument('pkg', {})).kind, 'ok')
      assert.equal(pingsSeen(s), 1, 'the request sent the one probe')
      assert.equal(up.breaker.state, 'closed')
      // A probe that hangs: a request joins it and fails when the probe's own timeout ends it.
      pkg = 500
      pings = 'hang'
      const probe = nextRequest(s, '/-/ping')
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      await probe
      assert.equal(up.breaker.state, 'half-open')
      await assert.rejects(up.fetchPackument('pkg', {}), failure('circuit-open'))
      assert.equal(up.breaker.state, 'open')
      assert.equal(up.breaker.failures, 2, 'the probe that timed out counts')
    } finally {
      await up.close()
      for (const r of hung) r.destroy()
      await stop(s)
    }
  })

  test('size caps: a packument or forwarded answer over max_packument_size (announced, or once gunzipped) and a tarball over max_tarball_size fail as too-large', async () => {
    const big = JSON.stringify({ name: 'big', versions: {}, pad: ' '.repeat(8 * 1024) })
    const s = await serve((req, res) => {
      if (req.url === '/big') return void res.writeHead(200, { 'content-type': 'application/json' }).end(big)
      if (req.url === '/bomb') return void res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(big))
      if (req.url === '/small') return void res.writeHead(200).end(doc('small', ['1.0.0']))
      if (req.url === '/big.tgz') return void res.writeHead(200, { 'content-length': String(8192) }).end(Buffer.alloc(8192))
      if (req.url === '/chunked-big.tgz') {
        res.writeHead(200)
        res.write(Buffer.alloc(3000))
        res.write(Buffer.alloc(3000))
        return void res.end(Buffer.alloc(3000))
      }
      if (req.url === '/chunked-small.tgz') {
        res.writeHead(200)
        return void res.end(Buffer.alloc(1000))
      }
      res.writeHead(404).end()
    })
    const up = uplink(s.url, { maxPackumentSize: 4096, maxTarballSize: 4096, maxFails: 1 })
    const tooLarge = (cap: RegExp) => (e: unknown) => e instanceof UplinkError && e.failure === 'too-large' && cap.test(e.message)
    try {
      await assert.rejects(up.fetchPackument('big', {}), tooLarge(/larger than max_packument_size \(4096 bytes \(4 KiB\)\)/))
      await assert.rejects(up.fetchPackument('bomb', {}), tooLarge(/max_packument_size/))
      assert.equal(up.breaker.state, 'closed', 'the uplink answered: a body too large is not a failure of the uplink')
      assert.equal((await up.fetchPackument('small', {})).kind, 'ok')
      await assert.rejects(up.forward('big', { method: 'POST', headers: {} }), tooLarge(/sent an answer larger than max_packument_size/))
      assert.equal((await up.forward('small', { method: 'POST', headers: {} })).status, 200)
      await assert.rejects(up.fetchTarball(`${s.url}big.tgz`), tooLarge(/of 8192 bytes \(8 KiB\), more than max_tarball_size/))
      // Without Content-Length the size is not known up front: the stream fails once past the cap.
      const chunked = await up.fetchTarball(`${s.url}chunked-big.tgz`)
      assert.equal(chunked?.size, undefined)
      await assert.rejects(buffer(chunked!.body), tooLarge(/larger than max_tarball_size/))
      const small = await up.fetchTarball(`${s.url}chunked-small.tgz`)
      assert.equal((await buffer(small!.body)).length, 1000)
    } finally {
      await up.close()
      await stop(s)
    }
  })

  test('a refused connection is "unreachable"; other 4xx do not count towards the breaker', async () => {
    const s = await serve((_req, res) => res.writeHead(403).end())
    const up = uplink(s.url, { maxFails: 1 })
    try {
      for (let i = 0; i < 3; i++) await assert.rejects(up.fetchPackument('pkg', {}), (e: unknown) => e instanceof UplinkError && /answered 403/.test(e.message))
      assert.equal(s.seen.length, 3)
    } finally {
      await up.close()
      await stop(s)
    }
    const dead = uplink(s.url)
    await assert.rejects(dead.fetchPackument('pkg', {}), (e: unknown) => e instanceof UplinkError && e.failure === 'unreachable')
    await dead.close()
  })
})

describe('UplinkCache', () => {
  test('concurrent misses share one request; 404s are remembered; a new cache reloads from the store', async () => {
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    const s = await serve((req, res) => {
      if (req.url !== '/pkg') return void res.writeHead(404).end('{}')
      void gate.then(() => res.writeHead(200, { etag: '"v1"' }).end(doc('pkg', ['1.0.0'])))
    })
    const meta = new SqliteMetaStore({ file: join(dir(), 'pier.sqlite') })
    await meta.migrate()
    const log = captureLog()
    const up = uplink(s.url)
    try {
      const cache = new UplinkCache(meta, log.logger)
      const lookups = Array.from({ length: 20 }, () => cache.packument('pkg', up))
      // All 20 are waiting on the one request the server holds.
      await new Promise<void>((r) => (s.seen.length > 0 ? r() : s.server.once('request', () => r())))
      release()
      const results = await Promise.all(lookups)
      assert.equal(s.seen.length, 1)
      for (const r of results) assert.equal(r.kind, 'ok')
      assert.equal((await cache.packument('missing', up)).kind, 'not-found')
      assert.equal((await cache.packument('missing', up)).kind, 'not-found')
      assert.equal(s.seen.length, 2)
      const row = await meta.getCachedPackument('pkg', 'up')
      assert.equal(row?.etag, '"v1"')
      const restarted = new UplinkCache(meta, log.logger)
      const again = await restarted.packument('pkg', up)
      assert.equal(again.kind, 'ok')
      assert.equal(s.seen.length, 2, 'fresh in the store: no request')
      assert.equal(again.kind === 'ok' && again.entry.rev, results[0]?.kind === 'ok' && results[0].entry.rev)
    } finally {
      await up.close()
      await meta.close()
      await stop(s)
    }
  })

  test('the negative cache is bounded by entries: the oldest 404 is forgotten, and asked again', async () => {
    const s = await serve((_req, res) => res.writeHead(404).end('{}'))
    const meta = new SqliteMetaStore({ file: join(dir(), 'pier.sqlite') })
    await meta.migrate()
    const up = uplink(s.url)
    try {
      const cache = new UplinkCache(meta, captureLog().logger, { maxNotFound: 2 })
      for (const n of ['a', 'b', 'c']) assert.equal((await cache.packument(n, up)).kind, 'not-found')
      assert.deepEqual(cache.sizes().uplink_not_found, { entries: 2, max: 2 })
      assert.equal(cache.sizes().uplink_packuments.entries, 0, 'a 404 takes no packument slot')
      assert.equal((await cache.packument('c', up)).kind, 'not-found')
      assert.equal(s.seen.length, 3, '"c" is remembered')
      assert.equal((await cache.packument('a', up)).kind, 'not-found')
      assert.equal(s.seen.length, 4, '"a" was evicted: asked again')
    } finally {
      await up.close()
      await meta.close()
      await stop(s)
    }
  })
})
