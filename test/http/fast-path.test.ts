/**
 * The fast path (src/http/fast-path.ts) over real HTTP: a warm GET answered in front of Fastify
 * gets the same status, headers and bytes as the Fastify route, and every case it must leave to
 * the route (credentials, a cold cache, no gzip, If-None-Match on a tarball, an unpublished
 * version, HEAD) still gets the route's answer. The Pier under test proxies a second in-process
 * Pier on loopback, so local and proxied names are both covered.
 *
 * The route's answer is fetched with a query string (`?via=route`): the fast path never takes a
 * URL with a query, and the package route ignores unknown query parameters.
 */
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { addUser } from '../helpers/accounts.js'
import { raw, type RawResponse } from '../helpers/http.js'
import { captureLog, type LogLine } from '../helpers/log-capture.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'

const CORGI = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
/** What npm sends with a packument GET. */
const NPM_HEADERS = { accept: 'application/json', 'accept-encoding': 'gzip,deflate', 'npm-command': 'install' }


/** Headers that differ per response by nature. */
const PER_RESPONSE = new Set(['date', 'x-request-id'])
const stable = (h: IncomingHttpHeaders): Record<string, unknown> =>
  Object.fromEntries(Object.entries(h).filter(([k]) => !PER_RESPONSE.has(k)).sort(([a], [b]) => a.localeCompare(b)))

async function publish(base: string, token: string, pkg: Record<string, unknown>): Promise<void> {
  const { body } = publishBody(pkg)
  const res = await fetch(new URL(String(pkg.name).replace('/', '%2f'), base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  })
  assert.equal(res.status, 201, await res.text())
}

void describe('fast path', () => {
  let upstream: TestPier
  let pier: TestPier
  let base: string
  let token: string
  const hits = (): number => pier.pier.app.fastPath?.hits ?? NaN

  /**
   * GETs `path` twice (the first warms the caches), then once more through the route; asserts the
   * second took the fast path and answered exactly as the route does. Returns the fast answer.
   */
  async function sameAsRoute(path: string, headers: Record<string, string>): Promise<RawResponse> {
    await raw(base, path, headers)
    const before = hits()
    const fast = await raw(base, path, headers)
    assert.equal(hits(), before + 1, `GET ${path} should take the fast path`)
    const route = await raw(base, `${path}?via=route`, headers)
    assert.equal(hits(), before + 1, 'a URL with a query string goes to the route')
    assert.equal(fast.status, route.status)
    assert.deepEqual(stable(fast.headers), stable(route.headers))
    assert.ok(fast.body.equals(route.body), 'same bytes')
    assert.match(String(fast.headers['x-request-id']), /^[0-9a-f]{8}-[0-9a-z]+$/)
    assert.notEqual(fast.headers['x-request-id'], route.headers['x-request-id'])
    return fast
  }

  before(async () => {
    upstream = await startPier()
    const upToken = await addUser(upstream.url, 'up')
    await publish(upstream.url, upToken, { name: 'fp-remote', version: '1.0.0' })
    await publish(upstream.url, upToken, { name: '@ext/fp-remote', version: '2.0.0' })
    pier = await startPier({
      uplinks: { up: { url: upstream.url, maxage: '1h' } },
      packages: {
        '@closed/*': { access: '$authenticated', publish: '$authenticated' },
        '**': { access: '$all', publish: '$authenticated', proxy: 'up' },
      },
    })
    base = pier.url
    token = await addUser(base, 'alice')
    await publish(base, token, { name: 'fp-local', version: '1.0.0' })
    await publish(base, token, { name: '@closed/fp-secret', version: '1.0.0' })
    assert.ok(pier.pier.app.fastPath, 'the fast path is on')
  })
  after(async () => {
    await pier?.close()
    await upstream?.close()
  })

  void test('a local packument, full and abbreviated, as the route sends it', async () => {
    const full = await sameAsRoute('/fp-local', NPM_HEADERS)
    assert.equal(full.status, 200)
    assert.equal(full.headers['content-encoding'], 'gzip')
    assert.equal(JSON.parse(gunzipSync(full.body).toString()).name, 'fp-local')
    const abbr = await sameAsRoute('/fp-local', { ...NPM_HEADERS, accept: CORGI })
    assert.equal(abbr.headers['content-type'], 'application/vnd.npm.install-v1+json')
    assert.ok(!('time' in JSON.parse(gunzipSync(abbr.body).toString())), 'the abbreviated document')
  })

  void test('If-None-Match on a packument: the same 304 as the route', async () => {
    const first = await raw(base, '/fp-local', NPM_HEADERS)
    const etag = String(first.headers.etag)
    const r = await sameAsRoute('/fp-local', { ...NPM_HEADERS, 'if-none-match': etag })
    assert.equal(r.status, 304)
    assert.equal(r.body.length, 0)
  })

  void test('a local tarball, as the route sends it', async () => {
    const r = await sameAsRoute('/fp-local/-/fp-local-1.0.0.tgz', { 'accept-encoding': 'gzip,deflate' })
    assert.equal(r.status, 200)
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable')
    assert.equal(Number(r.headers['content-length']), r.body.length)
  })

  void test('a proxied packument and tarball, unscoped and scoped, as the route sends them', async () => {
    for (const [path, tgz] of [
      ['/fp-remote', '/fp-remote/-/fp-remote-1.0.0.tgz'],
      ['/@ext%2ffp-remote', '/@ext/fp-remote/-/fp-remote-2.0.0.tgz'],
    ] as const) {
      const doc = await sameAsRoute(path, NPM_HEADERS)
      const json = JSON.parse(gunzipSync(doc.body).toString()) as { versions: Record<string, { dist: { tarball: string } }> }
      const [v] = Object.values(json.versions)
      assert.equal(new URL(v?.dist.tarball ?? '').pathname, tgz, 'tarball URLs point at this Pier')
      const t = await sameAsRoute(tgz, {})
      assert.equal(t.status, 200)
    }
  })

  void test('a publish is served by the fast path at once', async () => {
    await sameAsRoute('/fp-local', NPM_HEADERS)
    await publish(base, token, { name: 'fp-local', version: '1.1.0' })
    const r = await sameAsRoute('/fp-local', NPM_HEADERS)
    const doc = JSON.parse(gunzipSync(r.body).toString()) as { 'dist-tags': Record<string, string> }
    assert.equal(doc['dist-tags'].latest, '1.1.0')
  })

  void test('a name that needs credentials never takes it: 401 anonymous, 200 with a token', async () => {
    const before = hits()
    for (let i = 0; i < 3; i++) {
      assert.equal((await raw(base, '/@closed%2ffp-secret', NPM_HEADERS)).status, 401)
      assert.equal((await raw(base, '/@closed/fp-secret/-/fp-secret-1.0.0.tgz')).status, 401)
    }
    const authed = { ...NPM_HEADERS, authorization: `Bearer ${token}` }
    assert.equal((await raw(base, '/@closed%2ffp-secret', authed)).status, 200)
    assert.equal((await raw(base, '/@closed%2ffp-secret', authed)).status, 200)
    assert.equal(hits(), before)
  })

  void test('left to the route: no gzip, HEAD, If-None-Match on a tarball', async () => {
    await raw(base, '/fp-local', NPM_HEADERS)
    await raw(base, '/fp-local/-/fp-local-1.0.0.tgz')
    const before = hits()
    const plain = await raw(base, '/fp-local', { accept: 'application/json' })
    assert.equal(plain.status, 200)
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(JSON.parse(plain.body.toString()).name, 'fp-local')
    const head = await raw(base, '/fp-local', NPM_HEADERS, 'HEAD')
    assert.equal(head.status, 200)
    const t = await raw(base, '/fp-local/-/fp-local-1.0.0.tgz')
    const cond = await raw(base, '/fp-local/-/fp-local-1.0.0.tgz', { 'if-none-match': String(t.headers.etag) })
    assert.equal(cond.status, 304)
    assert.equal(hits(), before + 1, 'only the plain tarball GET took the fast path')
  })

  void test('If-None-Match on a packument without gzip: the same 304 as the route', async () => {
    const first = await raw(base, '/fp-local', NPM_HEADERS)
    const r = await sameAsRoute('/fp-local', { accept: 'application/json', 'if-none-match': String(first.headers.etag) })
    assert.equal(r.status, 304)
    assert.equal(r.body.length, 0)
  })

  void test('a name known to be absent (here and upstream): the route\'s 404, byte for byte', async () => {
    for (const path of ['/fp-nowhere-at-all', '/@ext%2ffp-nowhere']) {
      const r = await sameAsRoute(path, NPM_HEADERS)
      assert.equal(r.status, 404)
      assert.deepEqual(JSON.parse(r.body.toString()), { error: 'Not found', message: 'Not found' })
      assert.equal((await sameAsRoute(path, { ...NPM_HEADERS, accept: CORGI })).status, 404)
    }
  })

  void test('an absent name becomes present at once when it is published', async () => {
    assert.equal((await sameAsRoute('/fp-later', NPM_HEADERS)).status, 404)
    await publish(base, token, { name: 'fp-later', version: '1.0.0' })
    const r = await sameAsRoute('/fp-later', NPM_HEADERS)
    assert.equal(r.status, 200)
    assert.equal(JSON.parse(gunzipSync(r.body).toString()).name, 'fp-later')
  })

  void test('version manifests, by version and by dist-tag, unscoped and scoped, as the route sends them', async () => {
    await publish(base, token, { name: '@loc/fp-scoped', version: '3.0.0' })
    for (const [path, version] of [
      ['/fp-local/1.0.0', '1.0.0'],
      ['/@loc%2ffp-scoped/3.0.0', '3.0.0'],
      ['/@loc/fp-scoped/latest', '3.0.0'],
    ] as const) {
      const r = await sameAsRoute(path, NPM_HEADERS)
      assert.equal(r.status, 200)
      const m = JSON.parse(r.body.toString()) as { version: string; dist: { tarball: string } }
      assert.equal(m.version, version)
      assert.ok(m.dist.tarball.startsWith(base.replace(/\/$/, '')), 'tarball URL under this Pier')
    }
    // A dist-tag move changes `_rev`: the fast path serves the new target at once.
    await publish(base, token, { name: '@loc/fp-scoped', version: '3.1.0' })
    const moved = await sameAsRoute('/@loc/fp-scoped/latest', NPM_HEADERS)
    assert.equal((JSON.parse(moved.body.toString()) as { version: string }).version, '3.1.0')
  })

  void test('manifests left to the route: unknown version or tag, a proxied name', async () => {
    await raw(base, '/fp-local', NPM_HEADERS)
    const before = hits()
    for (let i = 0; i < 2; i++) {
      assert.equal((await raw(base, '/fp-local/9.9.9')).status, 404)
      assert.equal((await raw(base, '/fp-local/no-such-tag')).status, 404)
      assert.equal((await raw(base, '/fp-remote/1.0.0')).status, 200)
    }
    assert.equal(hits(), before)
  })

  void test('names that need credentials or are private never take it, present or absent', async () => {
    // A package whose status is private: readable by its maintainers only, like an unknown name to others.
    await publish(base, token, { name: 'fp-private', version: '1.0.0' })
    const authed = { ...NPM_HEADERS, authorization: `Bearer ${token}` }
    const set = await fetch(new URL('-/package/fp-private/access', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ access: 'restricted' }),
    })
    assert.ok(set.ok, `access answered ${set.status}`)
    // The access directory reloads after the write: wait until it reports the package private.
    for (;;) {
      const v = await fetch(new URL('-/package/fp-private/visibility', base), { headers: { authorization: `Bearer ${token}` } })
      if (((await v.json()) as { public?: boolean }).public === false) break
    }
    const before = hits()
    for (let i = 0; i < 3; i++) {
      for (const path of ['/fp-private', '/fp-private/1.0.0', '/fp-private/latest', '/fp-private/-/fp-private-1.0.0.tgz']) {
        const anon = await raw(base, path, NPM_HEADERS)
        assert.ok(anon.status === 404 || anon.status === 401, `${path}: ${anon.status}`)
        assert.equal((await raw(base, path, authed)).status, 200, path)
      }
      assert.equal((await raw(base, '/@closed%2ffp-absent', NPM_HEADERS)).status, 401)
      assert.equal((await raw(base, '/@closed/fp-secret/1.0.0', NPM_HEADERS)).status, 401)
    }
    assert.equal(hits(), before, 'no answer came from the fast path')
  })

  void test('an unpublished version stays 410 however often it is asked', async () => {
    await publish(base, token, { name: 'fp-gone', version: '1.0.0' })
    await publish(base, token, { name: 'fp-gone', version: '1.1.0' })
    const tgz = '/fp-gone/-/fp-gone-1.1.0.tgz'
    assert.equal((await raw(base, tgz)).status, 200)
    assert.equal((await raw(base, tgz)).status, 200)
    // npm's unpublish of one version: PUT the document without it, then DELETE its tarball.
    const doc = (await (await fetch(new URL('fp-gone?write=true', base))).json()) as Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
    delete doc.versions['1.1.0']
    doc['dist-tags'] = { latest: '1.0.0' }
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${token}` }
    const put = await fetch(new URL(`fp-gone/-rev/${doc._rev}`, base), { method: 'PUT', headers: auth, body: JSON.stringify(doc) })
    assert.ok(put.ok, `PUT answered ${put.status}`)
    const again = (await (await fetch(new URL('fp-gone?write=true', base))).json()) as { _rev: string }
    const del = await fetch(new URL(`${tgz.slice(1)}/-rev/${again._rev}`, base), { method: 'DELETE', headers: auth })
    assert.ok(del.ok, `DELETE answered ${del.status}`)
    const before = hits()
    for (let i = 0; i < 3; i++) assert.equal((await raw(base, tgz)).status, 410)
    assert.equal(hits(), before)
  })
})

void describe('fast path with request logging on (logger.level info, the default)', () => {
  let pier: TestPier
  const log = captureLog('info')
  const hits = (): number => pier.pier.app.fastPath.hits
  /** The request line logged for the response with this request id. */
  const lineOf = (id: string): Promise<LogLine> => log.waitFor((l) => l.msg === 'request' && l.reqId === id)

  before(async () => {
    pier = await startPier({}, { logger: log.logger })
    const token = await addUser(pier.url, 'logger')
    await publish(pier.url, token, { name: 'fp-logged', version: '1.0.0' })
  })
  after(async () => {
    await pier?.close()
  })

  void test('a fast-path answer is logged with the same fields as a routed one', async () => {
    const headers = { ...NPM_HEADERS, 'npm-scope': '@acme', 'user-agent': 'npm/11.19.1 node/v20.20.2 linux x64 workspaces/false ci/github-actions' }
    for (const path of ['/fp-logged', '/fp-logged/-/fp-logged-1.0.0.tgz', '/fp-logged/1.0.0']) {
      await raw(pier.url, path, headers)
      const before = hits()
      const fast = await raw(pier.url, path, headers)
      assert.equal(hits(), before + 1, `GET ${path} takes the fast path at level info`)
      const routed = await raw(pier.url, `${path}?via=route`, headers)
      assert.equal(hits(), before + 1)
      const a = await lineOf(String(fast.headers['x-request-id']))
      const b = await lineOf(String(routed.headers['x-request-id']))
      const fields = (l: LogLine): Record<string, unknown> => {
        const { time: _t, ms: _ms, reqId: _r, url: _u, pid: _p, hostname: _h, ...rest } = l
        return rest
      }
      assert.deepEqual(fields(a), fields(b))
      assert.deepEqual(fields(a), { level: 30, msg: 'request', method: 'GET', status: 200, npmCommand: 'install', npmScope: '@acme', ci: 'github-actions', ip: '127.0.0.1' })
      assert.equal(a.url, path)
      assert.equal(typeof a.ms, 'number')
    }
  })

  void test('without uplinks, an unknown name gets the route\'s 404 from the fast path', async () => {
    await raw(pier.url, '/fp-unknown', NPM_HEADERS)
    const before = hits()
    const fast = await raw(pier.url, '/fp-unknown', NPM_HEADERS)
    assert.equal(hits(), before + 1, 'the second 404 takes the fast path')
    const routed = await raw(pier.url, '/fp-unknown?via=route', NPM_HEADERS)
    assert.equal(fast.status, 404)
    assert.equal(routed.status, 404)
    assert.deepEqual(stable(fast.headers), stable(routed.headers))
    assert.ok(fast.body.equals(routed.body), 'same bytes')
  })
})
