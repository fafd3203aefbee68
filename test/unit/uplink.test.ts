/**
 * The uplink building blocks without a second Pier: configuration, package rules, packument
 * rewriting, the verifying tee, HttpUplink (conditional requests, gzip, 404, circuit breaker, auth
 * scope) against small loopback servers, and UplinkCache (coalescing, negative cache, durable
 * reload) over a real SQLite store.
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
import { parseDuration } from '../../src/config/uplinks.js'
import { PackageRules } from '../../src/registry/package-rules.js'
import { SqliteMetaStore } from '../../src/storage/meta/sqlite-meta-store.js'
import { HttpUplink } from '../../src/uplink/http-uplink.js'
import { isOwnUrl, openUplinks } from '../../src/uplink/open-uplinks.js'
import { parseUplinkPackument, rewritePackument, tarballIndex } from '../../src/uplink/rewrite.js'
import { UplinkCache } from '../../src/uplink/uplink-cache.js'
import { UplinkError } from '../../src/uplink/uplink.js'
import { expectedDigest } from '../../src/registry/integrity.js'
import { IntegrityError, VerifyingTee } from '../../src/uplink/verifying-tee.js'
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
  new HttpUplink({ name: 'up', url, timeout: 2000, maxage: 60_000, failTimeout: 60_000, maxFails: 2, cache: true, ...extra })

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
    const tee = new VerifyingTee(expectedDigest(sri, undefined)!, 1024, async (b) => {
      events.push(`committed ${b?.length}`)
    })
    tee.on('data', (c: Buffer) => events.push(`out ${c.length}`))
    Readable.from(chunks).pipe(tee)
    await new Promise((r) => tee.on('end', r))
    assert.deepEqual(events, ['out 5', 'out 7', `committed ${bytes.length}`, `out ${chunks[2]?.length}`])
  })

  test('a mismatch fails the stream before the last chunk and commits nothing', async () => {
    let committed = false
    const tee = new VerifyingTee(expectedDigest(sri, undefined)!, 1024, async () => {
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

  test('circuit breaker: opens after max_fails, fails fast, probes once after fail_timeout', async () => {
    let status = 503
    const s = await serve((_req, res) => res.writeHead(status).end(status === 200 ? doc('pkg', ['1.0.0']) : '{}'))
    let clock = 1_000_000
    const up = uplink(s.url, { maxFails: 2, failTimeout: 10_000, now: () => clock })
    const failure = (f: string) => (e: unknown) => e instanceof UplinkError && e.failure === f
    try {
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      await assert.rejects(up.fetchPackument('pkg', {}), failure('circuit-open'))
      assert.equal(s.seen.length, 2)
      clock += 10_001
      status = 200
      assert.equal((await up.fetchPackument('pkg', {})).kind, 'ok', 'the probe goes out and closes the circuit')
      assert.equal(s.seen.length, 3)
      status = 503
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      await assert.rejects(up.fetchPackument('pkg', {}), failure('status'))
      assert.equal(s.seen.length, 5, 'closed again: requests go out until max_fails')
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
})
