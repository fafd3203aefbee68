/**
 * Uplinks end to end: two Piers on loopback. The upstream is a Pier process seeded over HTTP; the
 * proxy Pier asks it through a small fixture server that counts requests and breaks on demand
 * (500, hang, a tarball cut short or corrupted). Installs use the real npm CLI. Nothing leaves
 * 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { addUser } from '../helpers/accounts.js'
import { captureLog, type LogCapture } from '../helpers/log-capture.js'
import { NpmClient } from '../helpers/npm.js'
import { spawnPier, startPier, tempDir, type PierProcess, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'
import { esc, startUplinkFixture, type UplinkFixture } from '../helpers/uplink-fixture.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const CORGI = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
const sha512 = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`
const ok = (r: { code: number; stdout: string; stderr: string }, what: string) =>
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)

/** Publishes `pkg` over HTTP as npm does; returns the tarball's integrity. */
async function publish(base: string, pkg: Record<string, unknown>, token?: string): Promise<string> {
  const { body, integrity } = publishBody(pkg)
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(new URL(esc(String(pkg.name)), base), { method: 'PUT', headers, body: JSON.stringify(body) })
  assert.equal(res.status, 201, await res.text())
  return integrity
}

async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Obj }> {
  const res = await fetch(new URL(path, base), { headers })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Obj) : {} }
}

/** GETs a tarball; `undefined` when the transfer failed (error status or broken body). */
async function tarball(base: string, path: string): Promise<Buffer | undefined> {
  try {
    const res = await fetch(new URL(path, base))
    if (res.status !== 200) return undefined
    return Buffer.from(await res.arrayBuffer())
  } catch {
    return undefined
  }
}

const isTarball = (url: string) => url.endsWith('.tgz')

describe('uplinks: a Pier proxying another Pier', { timeout: 300_000 }, () => {
  let upstream: PierProcess
  let fixture: UplinkFixture
  let proxy: TestPier
  let proxyData: string
  let log: LogCapture
  const integrity: Record<string, string> = {}
  const proxyConfig = () => ({
    storage: { local: { path: proxyData } },
    uplinks: { up: { url: fixture.url, timeout: 2000, max_fails: 1000 } },
    private_scopes: ['@corp'],
  })

  before(async () => {
    upstream = await spawnPier({ auth: { type: 'none' } })
    const seed: Record<string, unknown>[] = [
      { name: 'up-b', version: '1.0.0' },
      { name: 'up-b', version: '1.1.0' },
      { name: 'up-a', version: '1.0.0', dependencies: { 'up-b': '^1.0.0' } },
      { name: '@pub/up-c', version: '2.0.0' },
      { name: '@corp/secret', version: '1.0.0' },
      { name: '@mine/other', version: '1.0.0' },
      { name: 'shared-name', version: '1.0.0' },
      { name: 'shared-name', version: '2.0.0' },
      { name: 'up-many', version: '1.0.0' },
      { name: 'up-many-tgz', version: '1.0.0' },
      { name: 'up-many-bad', version: '1.0.0' },
      { name: 'up-fault', version: '1.0.0' },
      { name: 'up-slow', version: '1.0.0' },
      { name: 'up-trunc', version: '1.0.0' },
      { name: 'up-corrupt', version: '1.0.0' },
      { name: 'up-stale', version: '1.0.0' },
      { name: 'up-default', version: '1.0.0' },
    ]
    for (const pkg of seed) integrity[`${String(pkg.name)}@${String(pkg.version)}`] = await publish(upstream.url, pkg)
    fixture = await startUplinkFixture(upstream.url)
    proxyData = tempDir('pier-proxy-')
    log = captureLog()
    proxy = await startPier(proxyConfig(), { logger: log.logger })
  })

  after(async () => {
    await proxy.close()
    await fixture.close()
    if (upstream.child.exitCode === null && upstream.child.signalCode === null) await upstream.stop()
    rmSync(proxyData, { recursive: true, force: true })
  })

  test('cold npm install through the proxy fetches packuments and tarballs from the uplink', async () => {
    const npm = new NpmClient(proxy.url)
    const dir = npm.project({ 'up-a': '^1.0.0', '@pub/up-c': '^2.0.0' })
    ok(await npm.npm(['install'], { cwd: dir }), 'npm install (cold)')
    const installed = (p: string) => JSON.parse(readFileSync(join(dir, 'node_modules', p, 'package.json'), 'utf8')) as Obj
    assert.equal(installed('up-a').version, '1.0.0')
    assert.equal(installed('up-b').version, '1.1.0')
    assert.equal(installed('@pub/up-c').version, '2.0.0')
    const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as Obj
    assert.equal(lock.packages['node_modules/up-b'].resolved, `${proxy.url}up-b/-/up-b-1.1.0.tgz`)
    assert.equal(lock.packages['node_modules/@pub/up-c'].resolved, `${proxy.url}@pub/up-c/-/up-c-2.0.0.tgz`)
    assert.equal(lock.packages['node_modules/up-b'].integrity, integrity['up-b@1.1.0'])
    const packuments = fixture.requests.filter((r) => !isTarball(r.url)).map((r) => r.url)
    assert.deepEqual(packuments.sort(), ['/@pub%2fup-c', '/up-a', '/up-b'])
    assert.equal(fixture.requests.filter((r) => isTarball(r.url)).length, 3)
  })

  test('warm install with a fresh npm cache sends no request upstream while the cache is fresh', async () => {
    const before = fixture.requests.length
    const npm = new NpmClient(proxy.url)
    const dir = npm.project({ 'up-a': '^1.0.0', '@pub/up-c': '^2.0.0' })
    ok(await npm.npm(['install'], { cwd: dir }), 'npm install (warm)')
    assert.equal(fixture.requests.length, before, fixture.requests.slice(before).map((r) => r.url).join(', '))
  })

  test('the proxied packument: tarball URLs rewritten to the proxy, ETag revalidation, corgi, manifests', async () => {
    const full = await get(proxy.url, 'up-b')
    assert.equal(full.status, 200)
    assert.deepEqual(Object.keys(full.body.versions), ['1.0.0', '1.1.0'])
    assert.equal(full.body['dist-tags'].latest, '1.1.0')
    assert.equal(full.body.versions['1.1.0'].dist.tarball, `${proxy.url}up-b/-/up-b-1.1.0.tgz`)
    assert.equal(full.body.versions['1.1.0'].dist.integrity, integrity['up-b@1.1.0'])
    assert.equal(full.headers.get('warning'), null)
    const etag = full.headers.get('etag') ?? ''
    assert.match(etag, /^W\/"/)
    const again = await fetch(new URL('up-b', proxy.url), { headers: { 'if-none-match': etag } })
    assert.equal(again.status, 304)
    const corgi = await get(proxy.url, 'up-b', { accept: CORGI })
    assert.equal(corgi.headers.get('content-type'), 'application/vnd.npm.install-v1+json')
    assert.deepEqual(Object.keys(corgi.body).sort(), ['dist-tags', 'modified', 'name', 'versions'])
    assert.equal(corgi.body.versions['1.0.0'].dist.tarball, `${proxy.url}up-b/-/up-b-1.0.0.tgz`)
    const manifest = await get(proxy.url, 'up-b/latest')
    assert.equal(manifest.status, 200)
    assert.equal(manifest.body.version, '1.1.0')
    assert.equal(manifest.body.dist.tarball, `${proxy.url}up-b/-/up-b-1.1.0.tgz`)
    assert.equal((await get(proxy.url, 'up-b/9.9.9')).status, 404)
    const scoped = await get(proxy.url, esc('@pub/up-c'))
    assert.equal(scoped.body.versions['2.0.0'].dist.tarball, `${proxy.url}@pub/up-c/-/up-c-2.0.0.tgz`)
  })

  test('50 concurrent GETs of a cold name make one upstream request', async () => {
    const all = await Promise.all(Array.from({ length: 50 }, () => get(proxy.url, 'up-many')))
    for (const r of all) assert.equal(r.status, 200)
    assert.equal(fixture.countFor('up-many'), 1)
  })

  test('30 concurrent GETs of one uncached tarball make one upstream tarball request', async () => {
    const path = 'up-many-tgz/-/up-many-tgz-1.0.0.tgz'
    assert.equal((await get(proxy.url, 'up-many-tgz')).status, 200)
    const bodies = await Promise.all(Array.from({ length: 30 }, () => tarball(proxy.url, path)))
    for (const b of bodies) {
      assert.ok(b, 'every client gets the tarball')
      assert.equal(sha512(b), integrity['up-many-tgz@1.0.0'])
    }
    assert.equal(fixture.countFor(path), 1)
  })

  test('30 concurrent GETs of a tarball corrupted upstream all fail, and nothing is cached', async () => {
    const path = 'up-many-bad/-/up-many-bad-1.0.0.tgz'
    assert.equal((await get(proxy.url, 'up-many-bad')).status, 200)
    fixture.fault = (_m, url) => (url === `/${path}` ? 'corrupt' : undefined)
    try {
      const bodies = await Promise.all(Array.from({ length: 30 }, () => tarball(proxy.url, path)))
      for (const b of bodies) assert.equal(b, undefined, 'no client may get the corrupt bytes')
      assert.equal(fixture.countFor(path), 1, 'the waiters share the one failed download')
    } finally {
      fixture.fault = () => undefined
    }
    const good = await tarball(proxy.url, path)
    assert.ok(good)
    assert.equal(sha512(good), integrity['up-many-bad@1.0.0'])
    assert.equal(fixture.countFor(path), 2)
  })

  test('an unknown name is 404 and the answer is remembered for a while', async () => {
    assert.equal((await get(proxy.url, 'no-such-package')).status, 404)
    assert.equal((await get(proxy.url, 'no-such-package')).status, 404)
    assert.equal(fixture.countFor('no-such-package'), 1)
  })

  test('a private scope is never requested upstream', async () => {
    assert.equal((await get(proxy.url, esc('@corp/secret'))).status, 404)
    assert.equal((await tarball(proxy.url, '@corp/secret/-/secret-1.0.0.tgz')), undefined)
    assert.equal(fixture.requests.filter((r) => decodeURIComponent(r.url).includes('@corp')).length, 0)
  })

  test('a scope with a local package never proxies, and a local name never takes upstream versions', async () => {
    const token = await addUser(proxy.url, 'alice')
    await publish(proxy.url, { name: '@mine/local', version: '1.0.0' }, token)
    assert.equal((await get(proxy.url, esc('@mine/other'))).status, 404)
    assert.equal(fixture.requests.filter((r) => decodeURIComponent(r.url).includes('@mine')).length, 0)
    await publish(proxy.url, { name: 'shared-name', version: '0.5.0' }, token)
    const doc = await get(proxy.url, 'shared-name')
    assert.deepEqual(Object.keys(doc.body.versions), ['0.5.0'])
    assert.equal(fixture.countFor('shared-name'), 0)
  })

  test('upstream 500: 502 with a clear error, and nothing is cached', async () => {
    fixture.fault = (_m, url) => (url.startsWith('/up-fault') ? 'status-500' : undefined)
    const r = await get(proxy.url, 'up-fault')
    assert.equal(r.status, 502)
    assert.match(r.body.error, /uplink "up" answered 500.*nothing is cached for "up-fault"/)
    fixture.fault = () => undefined
    const healed = await get(proxy.url, 'up-fault')
    assert.equal(healed.status, 200)
    assert.deepEqual(Object.keys(healed.body.versions), ['1.0.0'])
  })

  test('upstream hanging: 504 after the timeout, and nothing is cached', async () => {
    fixture.fault = (_m, url) => (url.startsWith('/up-slow') ? 'hang' : undefined)
    const r = await get(proxy.url, 'up-slow')
    assert.equal(r.status, 504)
    assert.match(r.body.error, /uplink "up" did not answer within 2000 ms/)
    fixture.fault = () => undefined
    assert.equal((await get(proxy.url, 'up-slow')).status, 200)
  })

  for (const fault of ['truncate', 'corrupt'] as const) {
    const name = fault === 'truncate' ? 'up-trunc' : 'up-corrupt'
    test(`a tarball ${fault === 'truncate' ? 'cut short' : 'corrupted'} upstream fails the download and is not cached`, async () => {
      const path = `${name}/-/${name}-1.0.0.tgz`
      assert.equal((await get(proxy.url, name)).status, 200)
      fixture.fault = (_m, url) => (url === `/${path}` ? fault : undefined)
      assert.equal(await tarball(proxy.url, path), undefined, 'the client must not get the tarball')
      fixture.fault = () => undefined
      const good = await tarball(proxy.url, path)
      assert.ok(good)
      assert.equal(sha512(good), integrity[`${name}@1.0.0`])
      assert.equal(fixture.countFor(path), 2, 'the bad body was not cached: fetched again')
      const local = await tarball(proxy.url, path)
      assert.ok(local)
      assert.equal(sha512(local), integrity[`${name}@1.0.0`])
      assert.equal(fixture.countFor(path), 2, 'the verified body is served locally')
    })
  }

  test('the circuit breaker stops asking a failing uplink, and its probe (not fail_timeout) lets it in again', async () => {
    const breaker = await startPier({ uplinks: { up: { url: fixture.url, max_fails: 2, fail_timeout: '1h' } } })
    try {
      fixture.fault = () => 'status-500'
      assert.equal((await get(breaker.url, 'cb-one')).status, 502)
      assert.equal((await get(breaker.url, 'cb-two')).status, 502)
      const third = await get(breaker.url, 'cb-three')
      assert.equal(third.status, 502)
      assert.match(third.body.error, /failed 2 times in a row/)
      assert.equal(fixture.countFor('cb-three'), 0)
      // The uplink probes itself (`GET /-/ping`, first after about a second): it comes back up,
      // and the first probe that succeeds closes the circuit, an hour before fail_timeout.
      const seen = fixture.requests.length
      await fixture.waitFor((r) => r.url === '/-/ping' && r.status === 500)
      fixture.fault = () => undefined
      await fixture.waitFor((r) => fixture.requests.indexOf(r) >= seen && r.url === '/-/ping' && r.status === 200)
      const back = await get(breaker.url, 'up-b')
      assert.equal(back.status, 200)
      assert.deepEqual(Object.keys(back.body.versions), ['1.0.0', '1.1.0'])
    } finally {
      fixture.fault = () => undefined
      await breaker.close()
    }
  })

  test('without `uplinks`, the default uplink is the registry `npm config get registry` names', async () => {
    const p = await spawnPier({ uplinks: undefined }, { env: { npm_config_registry: fixture.url } })
    try {
      const doc = await get(p.url, 'up-default')
      assert.equal(doc.status, 200)
      assert.equal(doc.body.versions['1.0.0'].dist.tarball, `${p.url}up-default/-/up-default-1.0.0.tgz`)
      assert.match(p.output(), /default uplink from `npm config get registry`/)
    } finally {
      await p.stop()
      rmSync(p.dataDir, { recursive: true, force: true })
    }
  })

  test('proxy_mode redirect: 302 to the uplink (npm follows it); local names stay local', async () => {
    const r = await startPier({
      uplinks: { up: { url: fixture.url } },
      packages: { '**': { access: '$all', publish: '$authenticated', proxy: 'up', proxy_mode: 'redirect' } },
    })
    try {
      const before = fixture.requests.length
      const doc = await fetch(new URL('up-b', r.url), { redirect: 'manual' })
      assert.equal(doc.status, 302)
      assert.equal(doc.headers.get('location'), `${fixture.url}up-b`)
      const tgz = await fetch(new URL('@pub/up-c/-/up-c-2.0.0.tgz', r.url), { redirect: 'manual' })
      assert.equal(tgz.headers.get('location'), `${fixture.url}@pub/up-c/-/up-c-2.0.0.tgz`)
      assert.equal(fixture.requests.length, before, 'Pier itself asks nothing upstream')
      const token = await addUser(r.url, 'dora')
      await publish(r.url, { name: 'redirect-local', version: '1.0.0' }, token)
      assert.equal((await fetch(new URL('redirect-local', r.url), { redirect: 'manual' })).status, 200)
      const npm = new NpmClient(r.url)
      ok(await npm.npm(['install'], { cwd: npm.project({ 'up-b': '1.0.0', 'redirect-local': '1.0.0' }) }), 'npm install through redirects')
    } finally {
      await r.close()
    }
  })

  describe('stale copies (maxage 0)', () => {
    let stale: TestPier
    let staleLog: LogCapture
    before(async () => {
      staleLog = captureLog()
      stale = await startPier({ uplinks: { up: { url: fixture.url, maxage: 0, max_fails: 1000 } } }, { logger: staleLog.logger })
    })
    after(async () => {
      await stale.close()
    })
    const fetched = (result: string, conditional: boolean) => (l: Obj) =>
      l.msg === 'uplink packument fetched' && l.pkg === 'up-stale' && l.result === result && l.conditional === conditional

    test('are served at once and revalidated in the background: 304 when unchanged, 200 when changed', async () => {
      assert.equal((await get(stale.url, 'up-stale')).status, 200)
      await staleLog.waitFor(fetched('ok', false))
      assert.equal((await get(stale.url, 'up-stale')).status, 200)
      await staleLog.waitFor(fetched('not-modified', true))
      const revalidation = fixture.requests.find((r) => r.url === '/up-stale' && r.status === 304)
      assert.ok(revalidation?.headers['if-none-match'], 'a conditional request answered 304')
      integrity['up-stale@1.1.0'] = await publish(upstream.url, { name: 'up-stale', version: '1.1.0' })
      await get(stale.url, 'up-stale')
      await staleLog.waitFor(fetched('ok', true))
      const doc = await get(stale.url, 'up-stale')
      assert.deepEqual(Object.keys(doc.body.versions), ['1.0.0', '1.1.0'])
    })

    test('upstream killed: cached installs pass, stale copies carry a Warning, uncached names are 502', async () => {
      upstream.child.kill('SIGKILL')
      await upstream.exited
      // The fresh proxy serves everything it cached without asking.
      const npm = new NpmClient(proxy.url)
      ok(await npm.npm(['install'], { cwd: npm.project({ 'up-a': '^1.0.0', '@pub/up-c': '^2.0.0' }) }), 'npm install with the upstream down')
      const missing = await get(proxy.url, 'never-fetched')
      assert.equal(missing.status, 502)
      assert.match(missing.body.error, /uplink "up" is unreachable.*nothing is cached for "never-fetched"/)
      // The maxage-0 proxy serves its stale copy; once a refresh failed it says so.
      assert.equal((await get(stale.url, 'up-stale')).status, 200)
      await staleLog.waitFor((l) => l.msg === 'uplink failed: serving the cached packument' && l.pkg === 'up-stale')
      const warned = await get(stale.url, 'up-stale')
      assert.equal(warned.status, 200)
      assert.equal(warned.headers.get('warning'), '110 - "Response is Stale"')
      assert.deepEqual(Object.keys(warned.body.versions), ['1.0.0', '1.1.0'])
    })

    test('a restarted proxy serves its durable cache with the upstream still down', async () => {
      await proxy.close()
      await fixture.close()
      proxy = await startPier(proxyConfig(), { logger: log.logger })
      const npm = new NpmClient(proxy.url)
      ok(await npm.npm(['install'], { cwd: npm.project({ 'up-a': '^1.0.0', '@pub/up-c': '^2.0.0' }) }), 'npm install after a restart')
    })
  })
})
