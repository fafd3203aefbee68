/**
 * One HTTP representation (src/http/representation.ts) over real HTTP, through the Fastify route
 * and the fast path alike: content negotiation of the packument's encoding and form
 * (`Accept-Encoding: gzip;q=0` means no gzip; corgi only when `Accept` prefers it), conditional
 * requests (`If-None-Match` lists, `*`, weak comparison, `If-Modified-Since`, and the
 * `Cache-Control: no-cache` that fetch adds to conditional requests), and request bodies through
 * Fastify's JSON parser (prototype poisoning refused; empty DELETE bodies allowed).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { addUser } from '../helpers/accounts.js'
import { raw, type RawResponse } from '../helpers/http.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'


const CORGI = 'application/vnd.npm.install-v1+json'

void describe('one HTTP representation', () => {
  let pier: TestPier
  let token: string
  const hits = (): number => pier.pier.app.fastPath.hits

  /** GETs `path` through the route (a query string) and through the fast path (warm); both answers. */
  async function both(path: string, headers: Record<string, string>): Promise<[RawResponse, RawResponse]> {
    const routed = await raw(pier.url, `${path}?via=route`, headers)
    await raw(pier.url, path, headers)
    const fast = await raw(pier.url, path, headers)
    return [routed, fast]
  }

  before(async () => {
    pier = await startPier()
    token = await addUser(pier.url, 'rep')
    const res = await fetch(new URL('rep-pkg', pier.url), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(publishBody({ name: 'rep-pkg', version: '1.0.0' }).body),
    })
    assert.equal(res.status, 201)
  })
  after(async () => {
    await pier.close()
  })

  void test('Accept-Encoding: each form of refusing or preferring an encoding', async () => {
    const cases: [string | undefined, string | undefined][] = [
      ['gzip,deflate', 'gzip'],
      ['gzip;q=0', undefined],
      ['gzip;q=0, br', 'br'],
      ['br;q=1, gzip;q=0.5', 'br'],
      ['br, gzip', 'gzip'],
      ['*', 'gzip'],
      ['identity', undefined],
      [undefined, undefined],
    ]
    for (const [ae, want] of cases) {
      const headers: Record<string, string> = ae === undefined ? {} : { 'accept-encoding': ae }
      const [routed, fast] = await both('/rep-pkg', headers)
      for (const r of [routed, fast]) {
        assert.equal(r.status, 200)
        assert.equal(r.headers['content-encoding'], want, `Accept-Encoding: ${String(ae)}`)
        const text = want === 'gzip' ? gunzipSync(r.body) : want === 'br' ? brotliDecompressSync(r.body) : r.body
        assert.equal((JSON.parse(text.toString()) as { name: string }).name, 'rep-pkg')
      }
    }
  })

  void test('the fast path answers the gzip case only, and exactly like the route', async () => {
    const before = hits()
    const [routed, fast] = await both('/rep-pkg', { 'accept-encoding': 'gzip' })
    assert.equal(hits(), before + 2, 'the warm-up and the second GET')
    assert.ok(routed.body.equals(fast.body))
    const again = hits()
    await both('/rep-pkg', { 'accept-encoding': 'gzip;q=0' })
    assert.equal(hits(), again, 'no gzip: the route answers')
  })

  void test('Accept: the abbreviated document only when asked for and preferred', async () => {
    const cases: [string, boolean][] = [
      [`${CORGI}; q=1.0, application/json; q=0.8, */*`, true],
      [CORGI, true],
      ['application/json', false],
      ['*/*', false],
      [`application/json; q=1.0, ${CORGI}; q=0.5`, false],
      [`${CORGI}; q=0, application/json`, false],
    ]
    for (const [accept, corgi] of cases) {
      const [routed, fast] = await both('/rep-pkg', { accept, 'accept-encoding': 'gzip' })
      for (const r of [routed, fast]) {
        assert.equal(r.headers['content-type'], corgi ? CORGI : 'application/json', accept)
        assert.equal('readme' in (JSON.parse(gunzipSync(r.body).toString()) as object), !corgi, accept)
      }
      assert.equal(routed.headers.etag, fast.headers.etag)
    }
    const full = await raw(pier.url, '/rep-pkg', { accept: 'application/json' })
    const abbr = await raw(pier.url, '/rep-pkg', { accept: CORGI })
    assert.notEqual(full.headers.etag, abbr.headers.etag, 'one ETag per representation')
  })

  void test('If-None-Match and If-Modified-Since on a packument', async () => {
    const first = await raw(pier.url, '/rep-pkg', { 'accept-encoding': 'gzip' })
    const etag = String(first.headers.etag)
    const lastModified = String(first.headers['last-modified'])
    const cases: [Record<string, string>, number][] = [
      [{ 'if-none-match': etag }, 304],
      [{ 'if-none-match': `W/"0-other", ${etag}` }, 304],
      [{ 'if-none-match': '*' }, 304],
      [{ 'if-none-match': etag.replace(/^W\//, '') }, 304],
      [{ 'if-none-match': 'W/"0-other"' }, 200],
      [{ 'if-none-match': etag, 'cache-control': 'no-cache', pragma: 'no-cache' }, 304],
      [{ 'if-modified-since': lastModified }, 304],
      [{ 'if-modified-since': new Date(Date.parse(lastModified) - 60_000).toUTCString() }, 200],
      [{ 'if-none-match': 'W/"0-other"', 'if-modified-since': lastModified }, 200],
    ]
    for (const [h, status] of cases) {
      const [routed, fast] = await both('/rep-pkg', { 'accept-encoding': 'gzip', ...h })
      for (const r of [routed, fast]) {
        assert.equal(r.status, status, JSON.stringify(h))
        if (status === 304) {
          assert.equal(r.body.length, 0)
          assert.equal(r.headers.etag, etag)
        }
      }
    }
  })

  void test('If-None-Match on a tarball: lists and * too', async () => {
    const t = await raw(pier.url, '/rep-pkg/-/rep-pkg-1.0.0.tgz')
    const etag = String(t.headers.etag)
    assert.match(etag, /^"sha512-/)
    for (const [inm, status] of [
      [etag, 304],
      [`"sha512-other", ${etag}`, 304],
      ['*', 304],
      ['"sha512-other"', 200],
    ] as const) {
      const r = await raw(pier.url, '/rep-pkg/-/rep-pkg-1.0.0.tgz', { 'if-none-match': inm })
      assert.equal(r.status, status, inm)
    }
  })

  void test("request bodies: Fastify's JSON parser refuses prototype poisoning; a DELETE may have an empty JSON body", async () => {
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${token}` }
    const poisoned = await raw(pier.url, '/rep-pkg', auth, 'PUT', '{"_id":"rep-pkg","__proto__":{"admin":true}}')
    assert.equal(poisoned.status, 400)
    assert.match((JSON.parse(poisoned.body.toString()) as { error: string }).error, /not valid JSON/)
    const ctor = await raw(pier.url, '/rep-pkg', auth, 'PUT', '{"_id":"rep-pkg","constructor":{"prototype":{"admin":true}}}')
    assert.equal(ctor.status, 400)
    const bad = await raw(pier.url, '/rep-pkg', auth, 'PUT', '{not json')
    assert.equal(bad.status, 400)
    // dist-tag rm and unpublish: npm sends no body; a client that still says application/json is fine.
    const tag = await raw(pier.url, '/-/package/rep-pkg/dist-tags/beta', auth, 'PUT', '"1.0.0"')
    assert.equal(tag.status, 201)
    const rm = await raw(pier.url, '/-/package/rep-pkg/dist-tags/beta', { ...auth, 'content-length': '0' }, 'DELETE', '')
    assert.equal(rm.status, 200, rm.body.toString())
    const doc = (await (await fetch(new URL('rep-pkg?write=true', pier.url))).json()) as { _rev: string }
    const gone = await raw(pier.url, `/rep-pkg/-rev/${doc._rev}`, { ...auth, 'content-length': '0' }, 'DELETE', '')
    assert.equal(gone.status, 200, gone.body.toString())
    assert.equal((await raw(pier.url, '/rep-pkg')).status, 404)
  })
})
