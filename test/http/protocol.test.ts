/**
 * The npm registry wire protocol (docs/protocol.md §0–§4) over real HTTP against an in-process
 * Pier: accounts and tokens, publish and its refusals, packuments (full, abbreviated, ETag,
 * compression), manifests, tarballs, unpublish, dist-tags and search.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { request, type IncomingHttpHeaders } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'

type Json = Record<string, unknown>
type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const CORGI_ACCEPT = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
const CORGI_VERSION_FIELDS = new Set([
  'name', 'version', 'deprecated', 'dependencies', 'optionalDependencies', 'devDependencies', 'bundleDependencies',
  'peerDependencies', 'peerDependenciesMeta', 'acceptDependencies', 'bin', 'directories', 'dist', 'engines',
  '_hasShrinkwrap', 'hasInstallScript', 'funding', 'cpu', 'os', 'libc',
])

/** `@s/n` → `@s%2fn`, as npm writes names in URLs. */
const esc = (name: string): string => name.replace('/', '%2f')

/** One HTTP exchange with raw bytes (no transparent decompression, unlike fetch). */
interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

function raw(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const url = new URL(path.replace(/^\//, ''), base)
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** A JSON exchange through fetch. */
interface JsonResponse {
  status: number
  headers: Headers
  body: Obj
}

async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  let body: string | undefined
  if (opts.rawBody !== undefined) body = opts.rawBody
  else if (opts.body !== undefined) body = JSON.stringify(opts.body)
  if (body !== undefined) headers['content-type'] ??= 'application/json'
  const res = await fetch(new URL(path.replace(/^\//, ''), base), { method, headers, body })
  const text = await res.text()
  let parsed: Obj = {}
  if (text !== '') {
    try {
      parsed = JSON.parse(text) as Obj
    } catch {
      assert.fail(`${method} ${path} answered ${res.status} with a non-JSON body: ${text.slice(0, 200)}`)
    }
  }
  return { status: res.status, headers: res.headers, body: parsed }
}

/** Creates (or logs in) a user with the legacy CouchDB call; returns its token. */
async function adduser(base: string, name: string, password = `pw-${name}-1`): Promise<string> {
  const r = await call(base, 'PUT', `/-/user/org.couchdb.user:${name}`, {
    body: { _id: `org.couchdb.user:${name}`, name, password, email: `${name}@example.com`, type: 'user', roles: [], date: new Date().toISOString() },
  })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  assert.equal(typeof r.body.token, 'string')
  return r.body.token as string
}

/** PUT /<name> with a publish body. */
function publish(base: string, body: Json, token?: string, path = `/${esc(String(body.name))}`): Promise<JsonResponse> {
  return call(base, 'PUT', path, { token, body })
}

/** Asserts an error status with npm's `{error}` body. */
function assertError(r: JsonResponse, status: number, re?: RegExp): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`)
  assert.equal(typeof r.body.error, 'string', `error body: ${JSON.stringify(r.body)}`)
  if (re) assert.match(r.body.error as string, re)
}

const sha512 = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`

void describe('registry protocol over HTTP', () => {
  let pier: TestPier
  let base: string
  let alice: string
  let bob: string

  before(async () => {
    pier = await startPier()
    base = pier.url
    alice = await adduser(base, 'alice')
    bob = await adduser(base, 'bob')
  })
  after(async () => {
    await pier.close()
  })

  void describe('accounts and tokens', () => {
    void test('PUT /-/user/org.couchdb.user:NAME creates a user and logs in an existing one', async () => {
      const create = await call(base, 'PUT', '/-/user/org.couchdb.user:carol', {
        body: { _id: 'org.couchdb.user:carol', name: 'carol', password: 'carol-pw', email: 'carol@example.com', type: 'user', roles: [] },
      })
      assert.equal(create.status, 201)
      assert.equal(create.body.ok, true)
      assert.equal(create.body.id, 'org.couchdb.user:carol')
      assert.match(create.body.token as string, /^pier_/)
      const again = await adduser(base, 'carol', 'carol-pw')
      assert.notEqual(again, create.body.token, 'each login issues a new token')
      const who = await call(base, 'GET', '/-/whoami', { token: again })
      assert.deepEqual(who.body, { username: 'carol' })
      const wrong = await call(base, 'PUT', '/-/user/org.couchdb.user:carol', { body: { name: 'carol', password: 'nope' } })
      assertError(wrong, 401)
      assert.match(wrong.headers.get('www-authenticate') ?? '', /Basic/)
      const doc = await call(base, 'GET', '/-/user/org.couchdb.user:carol')
      assert.equal(doc.status, 200)
      assert.equal(doc.body.name, 'carol')
      assert.equal(doc.body.email, 'carol@example.com')
    })

    void test('GET /-/whoami', async () => {
      const r = await call(base, 'GET', '/-/whoami', { token: alice })
      assert.equal(r.status, 200)
      assert.deepEqual(r.body, { username: 'alice' })
      assertError(await call(base, 'GET', '/-/whoami'), 401)
      const bad = await call(base, 'GET', '/-/whoami', { token: 'pier_not-a-token' })
      assertError(bad, 401)
      assert.match(bad.headers.get('www-authenticate') ?? '', /Bearer/)
      const basic = await call(base, 'GET', '/-/whoami', { headers: { authorization: `Basic ${Buffer.from('bob:pw-bob-1').toString('base64')}` } })
      assert.deepEqual(basic.body, { username: 'bob' })
    })

    void test('logout: DELETE /-/user/token/<token> revokes it', async () => {
      const token = await adduser(base, 'alice')
      assert.equal((await call(base, 'GET', '/-/whoami', { token })).status, 200)
      const out = await call(base, 'DELETE', `/-/user/token/${encodeURIComponent(token)}`, { token })
      assert.ok(out.status >= 200 && out.status < 300, `logout answered ${out.status}`)
      const after = await call(base, 'GET', '/-/whoami', { token })
      assertError(after, 401)
      // Other tokens of the same user still work.
      assert.equal((await call(base, 'GET', '/-/whoami', { token: alice })).status, 200)
    })

    void test('POST /-/v1/login answers loginUrl and doneUrl (web login: test/http/web-login.test.ts)', async () => {
      const r = await call(base, 'POST', '/-/v1/login', { body: {} })
      assert.equal(r.status, 200)
      assert.match(String(r.body.loginUrl), /^http:\/\/.+\/-\/web\/login\?session=/)
      assert.match(String(r.body.doneUrl), /^http:\/\/.+\/-\/v1\/done\?sessionId=/)
    })

    void test('a read-only token can read but not publish (403)', async () => {
      const created = await call(base, 'POST', '/-/npm/v1/tokens', { token: alice, body: { password: 'pw-alice-1', readonly: true, cidr_whitelist: [] } })
      assert.ok(created.status === 200 || created.status === 201, JSON.stringify(created.body))
      assert.equal(created.body.readonly, true)
      const ro = created.body.token as string
      assert.equal((await call(base, 'GET', '/-/whoami', { token: ro })).body.username, 'alice')
      const r = await publish(base, publishBody({ name: 'ro-pkg', version: '1.0.0' }).body, ro)
      assertError(r, 403, /read-only/)
      assertError(await call(base, 'GET', '/ro-pkg'), 404)
      // A token with the wrong password is refused.
      assertError(await call(base, 'POST', '/-/npm/v1/tokens', { token: alice, body: { password: 'wrong', readonly: true } }), 401)
    })

    void test('a CIDR-restricted token used from elsewhere → 401 with www-authenticate ipaddress', async () => {
      const outside = await call(base, 'POST', '/-/npm/v1/tokens', { token: alice, body: { password: 'pw-alice-1', readonly: false, cidr_whitelist: ['10.0.0.0/8'] } })
      assert.deepEqual(outside.body.cidr_whitelist, ['10.0.0.0/8'])
      const r = await call(base, 'GET', '/-/whoami', { token: outside.body.token as string })
      assertError(r, 401)
      assert.match(r.headers.get('www-authenticate') ?? '', /ipaddress/i)
      const pub = await publish(base, publishBody({ name: 'cidr-pkg', version: '1.0.0' }).body, outside.body.token as string)
      assertError(pub, 401)
      // The same restriction naming the loopback network lets the token through.
      const inside = await call(base, 'POST', '/-/npm/v1/tokens', { token: alice, body: { password: 'pw-alice-1', cidr_whitelist: ['127.0.0.0/8'] } })
      assert.equal((await call(base, 'GET', '/-/whoami', { token: inside.body.token as string })).body.username, 'alice')
    })
  })

  void describe('publish and read', () => {
    const PKG = {
      name: 'proto-a',
      version: '1.0.0',
      description: 'A protocol test package',
      keywords: ['proto', 'kw-zebra'],
      license: 'MIT',
      author: 'Alice <alice@example.com>',
      main: 'index.js',
      scripts: { test: 'node index.js', postinstall: 'node setup.js' },
      dependencies: { 'left-pad': '^1.0.0' },
      engines: { node: '>=20' },
    }
    let pub: ReturnType<typeof publishBody>

    before(async () => {
      pub = publishBody(PKG, { files: { 'index.js': 'module.exports = 1\n' }, readme: '# proto-a\n\nReadme text.' })
      const r = await publish(base, pub.body, alice)
      assert.equal(r.status, 201, JSON.stringify(r.body))
      assert.equal(r.body.ok, true)
      assert.equal(r.body.id, 'proto-a')
      assert.match(r.body.rev as string, /^\d+-[0-9a-f]+$/)
    })

    void test('full packument', async () => {
      const r = await call(base, 'GET', '/proto-a', { headers: { accept: 'application/json' } })
      assert.equal(r.status, 200)
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/)
      const doc = r.body
      assert.equal(doc._id, 'proto-a')
      assert.equal(doc.name, 'proto-a')
      assert.match(doc._rev as string, /^\d+-[0-9a-f]+$/)
      assert.deepEqual(doc['dist-tags'], { latest: '1.0.0' })
      assert.deepEqual(Object.keys(doc.versions as Obj), ['1.0.0'])
      const v = doc.versions['1.0.0'] as Obj
      assert.equal(v.name, 'proto-a')
      assert.equal(v.version, '1.0.0')
      assert.equal(v._id, 'proto-a@1.0.0')
      assert.equal(v.dist.tarball, `${base}proto-a/-/proto-a-1.0.0.tgz`)
      assert.equal(v.dist.integrity, pub.integrity)
      assert.equal(v.dist.shasum, pub.shasum)
      assert.equal(v.dist.fileCount, 3)
      assert.equal(typeof v.dist.unpackedSize, 'number')
      assert.deepEqual(v.dependencies, PKG.dependencies)
      assert.deepEqual(v.scripts, PKG.scripts)
      assert.equal(v._npmUser.name, 'alice')
      assert.equal(v._npmUser.email, 'alice@example.com')
      assert.deepEqual(
        (v.maintainers as Obj[]).map((m) => m.name),
        ['alice'],
      )
      assert.equal(doc.readme, '# proto-a\n\nReadme text.')
      assert.equal(doc.readmeFilename, 'README.md')
      assert.equal(doc.description, PKG.description)
      assert.deepEqual(doc.keywords, PKG.keywords)
      assert.equal(doc.license, 'MIT')
      assert.deepEqual(
        (doc.maintainers as Obj[]).map((m) => [m.name, m.email]),
        [['alice', 'alice@example.com']],
      )
      const time = doc.time as Record<string, string>
      for (const k of ['created', 'modified', '1.0.0']) {
        assert.ok(time[k] && !Number.isNaN(Date.parse(time[k])), `time.${k} = ${time[k]}`)
      }
      assert.equal(doc._attachments, undefined)
    })

    void test('abbreviated packument', async () => {
      const r = await call(base, 'GET', '/proto-a', { headers: { accept: CORGI_ACCEPT } })
      assert.equal(r.status, 200)
      assert.match(r.headers.get('content-type') ?? '', /^application\/vnd\.npm\.install-v1\+json/)
      const doc = r.body
      assert.deepEqual(Object.keys(doc).sort(), ['dist-tags', 'modified', 'name', 'versions'])
      assert.equal(doc.name, 'proto-a')
      assert.ok(!Number.isNaN(Date.parse(doc.modified as string)))
      assert.deepEqual(doc['dist-tags'], { latest: '1.0.0' })
      const v = doc.versions['1.0.0'] as Obj
      for (const k of Object.keys(v)) assert.ok(CORGI_VERSION_FIELDS.has(k), `unexpected corgi field ${k}`)
      assert.equal(v.name, 'proto-a')
      assert.equal(v.version, '1.0.0')
      assert.equal(v.dist.integrity, pub.integrity)
      assert.equal(v.dist.tarball, `${base}proto-a/-/proto-a-1.0.0.tgz`)
      assert.deepEqual(v.dependencies, PKG.dependencies)
      assert.deepEqual(v.engines, PKG.engines)
      assert.equal(v.hasInstallScript, true)
      assert.equal(v._hasShrinkwrap, false)
      for (const k of ['description', 'readme', 'scripts', '_npmUser', 'maintainers', 'keywords', 'main']) assert.equal(v[k], undefined, k)
    })

    void test('ETag, If-None-Match → 304, and a new ETag after a change', async () => {
      const full = await raw(base, '/proto-a')
      const corgi = await raw(base, '/proto-a', { headers: { accept: CORGI_ACCEPT } })
      const etag = full.headers.etag
      assert.ok(etag, 'full doc has an ETag')
      assert.ok(corgi.headers.etag, 'corgi doc has an ETag')
      assert.notEqual(etag, corgi.headers.etag, 'the two representations have different ETags')
      assert.ok(full.headers['last-modified'])
      const notModified = await raw(base, '/proto-a', { headers: { 'if-none-match': etag } })
      assert.equal(notModified.status, 304)
      assert.equal(notModified.body.length, 0)
      const corgi304 = await raw(base, '/proto-a', { headers: { accept: CORGI_ACCEPT, 'if-none-match': corgi.headers.etag as string } })
      assert.equal(corgi304.status, 304)
      // The full doc's ETag does not validate the corgi one.
      assert.equal((await raw(base, '/proto-a', { headers: { accept: CORGI_ACCEPT, 'if-none-match': etag } })).status, 200)
      assert.equal((await raw(base, '/proto-a', { headers: { 'if-none-match': '"something-else"' } })).status, 200)

      const tag = await call(base, 'PUT', '/-/package/proto-a/dist-tags/etag-test', { token: alice, body: '1.0.0' })
      assert.equal(tag.status, 201)
      const changed = await raw(base, '/proto-a', { headers: { 'if-none-match': etag } })
      assert.equal(changed.status, 200)
      assert.notEqual(changed.headers.etag, etag)
      assert.equal((JSON.parse(changed.body.toString()) as Obj)['dist-tags']['etag-test'], '1.0.0')
      await call(base, 'DELETE', '/-/package/proto-a/dist-tags/etag-test', { token: alice })
    })

    void test('Vary and Cache-Control on packuments', async () => {
      for (const accept of ['application/json', CORGI_ACCEPT]) {
        const r = await raw(base, '/proto-a', { headers: { accept } })
        const vary = (r.headers.vary ?? '').toLowerCase()
        assert.match(vary, /accept(,|$)/)
        assert.match(vary, /accept-encoding/)
        assert.match(r.headers['cache-control'] ?? '', /max-age/)
      }
    })

    void test('gzip and brotli', async () => {
      for (const accept of ['application/json', CORGI_ACCEPT]) {
        const plain = await raw(base, '/proto-a', { headers: { accept } })
        assert.equal(plain.headers['content-encoding'], undefined)
        const expected = JSON.parse(plain.body.toString()) as Obj

        const gz = await raw(base, '/proto-a', { headers: { accept, 'accept-encoding': 'gzip,deflate' } })
        assert.equal(gz.status, 200)
        assert.equal(gz.headers['content-encoding'], 'gzip')
        assert.deepEqual(JSON.parse(gunzipSync(gz.body).toString()), expected)

        const br = await raw(base, '/proto-a', { headers: { accept, 'accept-encoding': 'br' } })
        assert.equal(br.status, 200)
        assert.equal(br.headers['content-encoding'], 'br')
        assert.deepEqual(JSON.parse(brotliDecompressSync(br.body).toString()), expected)
        // Served twice from the cached brotli form: same bytes.
        const br2 = await raw(base, '/proto-a', { headers: { accept, 'accept-encoding': 'br' } })
        assert.deepEqual(br2.body, br.body)
      }
    })

    void test('a packument bigger than 64 KiB (kept only gzipped) is the same document plain, gzip and brotli', async () => {
      const big = publishBody({ name: 'proto-big', version: '1.0.0', description: 'big', bigField: 'words '.repeat(20_000) })
      assert.equal((await call(base, 'PUT', '/proto-big', { token: alice, body: big.body })).status, 201)
      for (const accept of ['application/json', CORGI_ACCEPT]) {
        const gz = await raw(base, '/proto-big', { headers: { accept, 'accept-encoding': 'gzip,deflate' } })
        assert.equal(gz.headers['content-encoding'], 'gzip')
        const expected = JSON.parse(gunzipSync(gz.body).toString()) as Obj
        if (accept === 'application/json') assert.ok(gunzipSync(gz.body).length > 64 * 1024)
        for (let i = 0; i < 2; i++) {
          const plain = await raw(base, '/proto-big', { headers: { accept } })
          assert.equal(plain.headers['content-encoding'], undefined)
          assert.equal(plain.headers['content-length'], String(plain.body.length))
          assert.deepEqual(JSON.parse(plain.body.toString()), expected)
          const br = await raw(base, '/proto-big', { headers: { accept, 'accept-encoding': 'br' } })
          assert.deepEqual(JSON.parse(brotliDecompressSync(br.body).toString()), expected)
        }
      }
    })

    void test('GET /name/version and /name/dist-tag', async () => {
      const byVersion = await call(base, 'GET', '/proto-a/1.0.0')
      assert.equal(byVersion.status, 200)
      assert.equal(byVersion.body.name, 'proto-a')
      assert.equal(byVersion.body.version, '1.0.0')
      assert.equal(byVersion.body._id, 'proto-a@1.0.0')
      assert.equal(byVersion.body.dist.integrity, pub.integrity)
      assert.equal(byVersion.body.dist.tarball, `${base}proto-a/-/proto-a-1.0.0.tgz`)
      const byTag = await call(base, 'GET', '/proto-a/latest')
      assert.deepEqual(byTag.body, byVersion.body)
      assertError(await call(base, 'GET', '/proto-a/9.9.9'), 404, /9\.9\.9/)
      assertError(await call(base, 'GET', '/proto-a/nightly'), 404)
    })

    void test('unknown packages and files → 404 {error}', async () => {
      assertError(await call(base, 'GET', '/no-such-pkg'), 404)
      assertError(await call(base, 'GET', '/no-such-pkg', { headers: { accept: CORGI_ACCEPT } }), 404)
      assertError(await call(base, 'GET', '/@nope%2fno-such-pkg'), 404)
      assertError(await call(base, 'GET', '/no-such-pkg/1.0.0'), 404)
      assertError(await call(base, 'GET', '/no-such-pkg/-/no-such-pkg-1.0.0.tgz'), 404)
      assertError(await call(base, 'GET', '/proto-a/-/proto-a-9.9.9.tgz'), 404)
      assertError(await call(base, 'GET', '/-/no/such/route'), 404)
    })

    void test('tarball: bytes match the integrity, immutable caching, no content-encoding', async () => {
      const r = await raw(base, '/proto-a/-/proto-a-1.0.0.tgz', { headers: { 'accept-encoding': 'gzip, deflate, br' } })
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-type'], 'application/octet-stream')
      assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable')
      assert.equal(r.headers['content-encoding'], undefined)
      assert.equal(Number(r.headers['content-length']), pub.tarball.length)
      assert.equal(sha512(r.body), pub.integrity)
      assert.deepEqual(r.body, pub.tarball)
      // Twice: the second answer comes from memory, same bytes.
      assert.deepEqual((await raw(base, '/proto-a/-/proto-a-1.0.0.tgz')).body, pub.tarball)
      const etag = r.headers.etag
      assert.ok(etag)
      assert.equal((await raw(base, '/proto-a/-/proto-a-1.0.0.tgz', { headers: { 'if-none-match': etag } })).status, 304)
    })

    void test('re-publishing the identical body is a 2xx no-op (npm retries PUT)', async () => {
      const before = await call(base, 'GET', '/proto-a')
      const r = await publish(base, pub.body, alice)
      assert.ok(r.status >= 200 && r.status < 300, `got ${r.status}: ${JSON.stringify(r.body)}`)
      const afterDoc = await call(base, 'GET', '/proto-a')
      assert.equal(afterDoc.body._rev, before.body._rev)
      assert.equal(afterDoc.body.time.modified, before.body.time.modified)
    })

    void test('same version, different content → 409 naming the version; nothing changes', async () => {
      const other = publishBody({ ...PKG, description: 'changed' }, { files: { 'index.js': 'module.exports = 2\n' } })
      assert.notEqual(other.integrity, pub.integrity)
      const r = await publish(base, other.body, alice)
      assertError(r, 409, /1\.0\.0/)
      const doc = await call(base, 'GET', '/proto-a')
      assert.equal(doc.body.versions['1.0.0'].dist.integrity, pub.integrity)
      assert.equal(sha512((await raw(base, '/proto-a/-/proto-a-1.0.0.tgz')).body), pub.integrity)
    })

    void test('a second version moves latest; --tag beta does not', async () => {
      const v2 = publishBody({ ...PKG, version: '1.1.0' })
      assert.equal((await publish(base, v2.body, alice)).status, 201)
      const beta = publishBody({ ...PKG, version: '2.0.0-beta.1' }, { tag: 'beta' })
      assert.equal((await publish(base, beta.body, alice)).status, 201)
      const doc = await call(base, 'GET', '/proto-a')
      assert.deepEqual(doc.body['dist-tags'], { latest: '1.1.0', beta: '2.0.0-beta.1' })
      assert.deepEqual(Object.keys(doc.body.versions as Obj), ['1.0.0', '1.1.0', '2.0.0-beta.1'])
      for (const v of ['1.0.0', '1.1.0', '2.0.0-beta.1']) assert.ok(doc.body.time[v], `time.${v}`)
      assert.ok(Date.parse(doc.body.time.modified as string) >= Date.parse(doc.body.time['1.1.0'] as string))
    })

    void test('publish without credentials → 401 with WWW-Authenticate', async () => {
      const r = await publish(base, publishBody({ name: 'anon-pkg', version: '1.0.0' }).body)
      assertError(r, 401)
      assert.ok(r.headers.get('www-authenticate'), 'WWW-Authenticate header present')
      assertError(await call(base, 'GET', '/anon-pkg'), 404)
    })

    void test('another user cannot publish a new version of someone else’s package (403)', async () => {
      const r = await publish(base, publishBody({ ...PKG, version: '1.2.0' }).body, bob)
      assertError(r, 403, /not a maintainer/)
      assertError(await call(base, 'GET', '/proto-a/1.2.0'), 404)
      // Nor change its dist-tags.
      assertError(await call(base, 'PUT', '/-/package/proto-a/dist-tags/bobs', { token: bob, body: '1.0.0' }), 403)
    })

    void test('publish checks surface as 400 {error}', async () => {
      const confused = publishBody({ name: 'confused-pkg', version: '1.0.0' }, { tamper: { tarballPackageJson: { name: 'confused-pkg', version: '6.6.6' } } })
      assertError(await publish(base, confused.body, alice), 400, /Manifest confusion/)
      const badSum = publishBody({ name: 'badsum-pkg', version: '1.0.0' }, { tamper: { shasum: '0'.repeat(40) } })
      assertError(await publish(base, badSum.body, alice), 400, /shasum/)
      const urlMismatch = publishBody({ name: 'url-pkg', version: '1.0.0' })
      assertError(await publish(base, urlMismatch.body, alice, '/other-url-pkg'), 400, /does not match the URL/)
      const rangeTag = publishBody({ name: 'range-tag-pkg', version: '1.0.0' }, { tag: '1.x' })
      assertError(await publish(base, rangeTag.body, alice), 400, /semver range/)
      assertError(await call(base, 'GET', '/confused-pkg'), 404)
      assertError(await call(base, 'GET', '/range-tag-pkg'), 404)
    })

    void test('malformed JSON → 400 {error}', async () => {
      assertError(await call(base, 'PUT', '/proto-json', { token: alice, rawBody: '{"name": "proto-json",' }), 400, /JSON/)
      assertError(await call(base, 'PUT', '/proto-json', { token: alice, body: ['an', 'array'] }), 400)
    })
  })

  void describe('scoped packages', () => {
    let pub: ReturnType<typeof publishBody>
    before(async () => {
      pub = publishBody({ name: '@team/proto-s', version: '0.1.0', description: 'scoped one' }, { access: 'public' })
      const r = await publish(base, pub.body, alice, '/@team%2fproto-s')
      assert.equal(r.status, 201, JSON.stringify(r.body))
    })

    void test('packument in every URL spelling', async () => {
      for (const path of ['/@team%2fproto-s', '/@team%2Fproto-s', '/@team/proto-s', '/%40team%2fproto-s']) {
        for (const accept of ['application/json', CORGI_ACCEPT]) {
          const r = await call(base, 'GET', path, { headers: { accept } })
          assert.equal(r.status, 200, `${path} (${accept})`)
          assert.equal(r.body.name, '@team/proto-s')
          assert.equal(r.body.versions['0.1.0'].dist.tarball, `${base}@team/proto-s/-/proto-s-0.1.0.tgz`)
        }
      }
      assert.equal((await call(base, 'GET', '/@team/proto-s/0.1.0')).body.version, '0.1.0')
      assert.equal((await call(base, 'GET', '/@team%2fproto-s/latest')).body.version, '0.1.0')
    })

    void test('tarball with a literal slash and with %2f', async () => {
      for (const path of ['/@team/proto-s/-/proto-s-0.1.0.tgz', '/@team%2fproto-s/-/proto-s-0.1.0.tgz', '/@team%2Fproto-s/-/proto-s-0.1.0.tgz']) {
        const r = await raw(base, path)
        assert.equal(r.status, 200, path)
        assert.equal(sha512(r.body), pub.integrity, path)
      }
    })

    void test('publish with bun’s literal-slash URL', async () => {
      const r = await publish(base, publishBody({ name: '@team/proto-s', version: '0.2.0' }).body, alice, '/@team/proto-s')
      assert.equal(r.status, 201, JSON.stringify(r.body))
      assert.equal((await call(base, 'GET', '/@team%2fproto-s')).body['dist-tags'].latest, '0.2.0')
    })

    void test('dist-tags with a scoped name', async () => {
      const put = await call(base, 'PUT', '/-/package/@team%2fproto-s/dist-tags/old', { token: alice, body: '0.1.0' })
      assert.equal(put.status, 201)
      const tags = await call(base, 'GET', '/-/package/@team%2fproto-s/dist-tags')
      assert.equal(tags.body.old, '0.1.0')
      assert.equal((await call(base, 'GET', '/-/package/@team/proto-s/dist-tags')).body.old, '0.1.0')
      assert.equal((await call(base, 'DELETE', '/-/package/@team%2fproto-s/dist-tags/old', { token: alice })).status, 200)
      assert.equal((await call(base, 'GET', '/-/package/@team%2fproto-s/dist-tags')).body.old, undefined)
    })
  })

  void describe('dist-tags', () => {
    before(async () => {
      assert.equal((await publish(base, publishBody({ name: 'tags-pkg', version: '1.0.0' }).body, alice)).status, 201)
      assert.equal((await publish(base, publishBody({ name: 'tags-pkg', version: '1.1.0' }).body, alice)).status, 201)
    })

    void test('GET, PUT (JSON string body), DELETE', async () => {
      const list = await call(base, 'GET', '/-/package/tags-pkg/dist-tags')
      assert.equal(list.status, 200)
      assert.deepEqual(list.body, { latest: '1.1.0' })

      const put = await call(base, 'PUT', '/-/package/tags-pkg/dist-tags/beta', { token: alice, body: '1.0.0' })
      assert.equal(put.status, 201)
      assert.deepEqual((await call(base, 'GET', '/-/package/tags-pkg/dist-tags')).body, { latest: '1.1.0', beta: '1.0.0' })
      assert.equal((await call(base, 'GET', '/tags-pkg')).body['dist-tags'].beta, '1.0.0')
      assert.equal((await call(base, 'GET', '/tags-pkg/beta')).body.version, '1.0.0')

      const del = await call(base, 'DELETE', '/-/package/tags-pkg/dist-tags/beta', { token: alice })
      assert.equal(del.status, 200)
      assert.deepEqual((await call(base, 'GET', '/-/package/tags-pkg/dist-tags')).body, { latest: '1.1.0' })
      assertError(await call(base, 'DELETE', '/-/package/tags-pkg/dist-tags/beta', { token: alice }), 404)
    })

    void test('moving latest works; deleting it is refused (400)', async () => {
      assert.equal((await call(base, 'PUT', '/-/package/tags-pkg/dist-tags/latest', { token: alice, body: '1.0.0' })).status, 201)
      assert.equal((await call(base, 'GET', '/tags-pkg/latest')).body.version, '1.0.0')
      assertError(await call(base, 'DELETE', '/-/package/tags-pkg/dist-tags/latest', { token: alice }), 400, /latest/)
      assert.equal((await call(base, 'PUT', '/-/package/tags-pkg/dist-tags/latest', { token: alice, body: '1.1.0' })).status, 201)
    })

    void test('a first publish with --tag beta also sets latest', async () => {
      const r = await publish(base, publishBody({ name: 'first-beta-pkg', version: '0.1.0-beta.0' }, { tag: 'beta' }).body, alice)
      assert.equal(r.status, 201)
      assert.deepEqual((await call(base, 'GET', '/-/package/first-beta-pkg/dist-tags')).body, { beta: '0.1.0-beta.0', latest: '0.1.0-beta.0' })
    })

    void test('refusals: semver-range tag, unknown version, non-string body, no credentials', async () => {
      assertError(await call(base, 'PUT', '/-/package/tags-pkg/dist-tags/1.x', { token: alice, body: '1.0.0' }), 400, /semver range/)
      assertError(await call(base, 'PUT', '/-/package/tags-pkg/dist-tags/next', { token: alice, body: '9.9.9' }), 404)
      assertError(await call(base, 'PUT', '/-/package/tags-pkg/dist-tags/next', { token: alice, body: { version: '1.0.0' } }), 400)
      assertError(await call(base, 'PUT', '/-/package/tags-pkg/dist-tags/next', { body: '1.0.0' }), 401)
      assertError(await call(base, 'GET', '/-/package/no-such-pkg/dist-tags'), 404)
    })
  })

  void describe('document writes and unpublish', () => {
    before(async () => {
      for (const v of ['1.0.0', '1.1.0']) {
        assert.equal((await publish(base, publishBody({ name: 'unpub-pkg', version: v }).body, alice)).status, 201)
      }
    })

    void test('_rev mismatch on PUT /name/-rev/WRONG → 409', async () => {
      const doc = (await call(base, 'GET', '/unpub-pkg?write=true')).body
      const r = await call(base, 'PUT', '/unpub-pkg/-rev/1-0000wrong', {
        token: alice,
        body: { _id: 'unpub-pkg', _rev: '1-0000wrong', maintainers: [{ name: 'alice', email: 'alice@example.com' }, { name: 'bob' }] },
      })
      assertError(r, 409)
      const after = (await call(base, 'GET', '/unpub-pkg?write=true')).body
      assert.equal(after._rev, doc._rev)
      assert.deepEqual(after.maintainers, doc.maintainers)
    })

    void test('unpublishing one version the way npm does: 410 afterwards, re-publish refused', async () => {
      // npm: GET ?write=true, PUT /name/-rev/REV with the version removed, GET again, DELETE tarball/-rev/REV.
      const doc = (await call(base, 'GET', '/unpub-pkg?write=true', { headers: { accept: CORGI_ACCEPT } })).body
      assert.ok(doc._rev, 'the write doc carries _rev even with the corgi Accept')
      assert.ok(doc.versions['1.1.0'])
      const tarballPath = new URL(doc.versions['1.1.0'].dist.tarball as string).pathname
      delete doc.versions['1.1.0']
      doc['dist-tags'] = { latest: '1.0.0' }
      const put = await call(base, 'PUT', `/unpub-pkg/-rev/${doc._rev}`, { token: alice, body: doc })
      assert.ok(put.status >= 200 && put.status < 300, `PUT answered ${put.status}: ${JSON.stringify(put.body)}`)
      const again = (await call(base, 'GET', '/unpub-pkg?write=true')).body
      assert.notEqual(again._rev, doc._rev)
      const del = await call(base, 'DELETE', `${tarballPath}/-rev/${again._rev}`, { token: alice })
      assert.ok(del.status >= 200 && del.status < 300, `DELETE answered ${del.status}: ${JSON.stringify(del.body)}`)

      assertError(await call(base, 'GET', '/unpub-pkg/1.1.0'), 410)
      assertError(await call(base, 'GET', '/unpub-pkg/-/unpub-pkg-1.1.0.tgz'), 410)
      const full = (await call(base, 'GET', '/unpub-pkg')).body
      assert.deepEqual(Object.keys(full.versions as Obj), ['1.0.0'])
      assert.deepEqual(full['dist-tags'], { latest: '1.0.0' })
      assert.ok(full.time['1.1.0'], 'time keeps the unpublished version')
      assert.equal((await call(base, 'GET', '/unpub-pkg/1.0.0')).status, 200)

      const republish = await publish(base, publishBody({ name: 'unpub-pkg', version: '1.1.0' }).body, alice)
      assertError(republish, 410, /1\.1\.0/)
    })

    void test('another user cannot unpublish (403)', async () => {
      const doc = (await call(base, 'GET', '/unpub-pkg?write=true')).body
      delete doc.versions['1.0.0']
      // Removing every live version is refused too, but permission is checked first.
      const r = await call(base, 'PUT', `/unpub-pkg/-rev/${doc._rev}`, { token: bob, body: doc })
      assertError(r, 403)
      assert.equal((await call(base, 'GET', '/unpub-pkg/1.0.0')).status, 200)
    })
  })

  void describe('search', () => {
    before(async () => {
      const body = publishBody({ name: 'find-me-pkg', version: '3.0.0', description: 'An unmistakable narwhal parser', keywords: ['kw-quokka', 'parsing'] }).body
      assert.equal((await publish(base, body, alice)).status, 201)
    })

    async function search(text: string): Promise<Obj> {
      const r = await call(base, 'GET', `/-/v1/search?text=${encodeURIComponent(text).replace(/%20/g, '+')}&size=20&from=0&quality=0.65&popularity=0.98&maintenance=0.5`)
      assert.equal(r.status, 200)
      assert.ok(Array.isArray(r.body.objects))
      assert.equal(typeof r.body.total, 'number')
      return r.body
    }

    void test('finds by name, description and keyword', async () => {
      for (const text of ['find-me-pkg', 'narwhal', 'kw-quokka', 'NARWHAL parser']) {
        const res = await search(text)
        const names = (res.objects as Obj[]).map((o) => o.package.name)
        assert.deepEqual(names, ['find-me-pkg'], `search "${text}"`)
      }
      const hit = ((await search('narwhal')).objects as Obj[])[0] as Obj
      assert.equal(hit.package.version, '3.0.0')
      assert.equal(hit.package.description, 'An unmistakable narwhal parser')
      assert.deepEqual(hit.package.keywords, ['kw-quokka', 'parsing'])
      assert.ok(!Number.isNaN(Date.parse(hit.package.date as string)))
      assert.ok(Array.isArray(hit.package.maintainers))
      assert.deepEqual(hit.package.maintainers, [{ username: 'alice', email: 'alice@example.com' }])
      assert.equal(typeof hit.score.final, 'number')
      assert.equal(typeof hit.searchScore, 'number')
    })

    void test('no match → empty result', async () => {
      const res = await search('zzz-nothing-like-this')
      assert.deepEqual(res.objects, [])
      assert.equal(res.total, 0)
    })
  })
})

void describe('settings.allow_previous_version: true', () => {
  let pier: TestPier
  let token: string
  before(async () => {
    pier = await startPier({ settings: { allow_previous_version: true } })
    token = await adduser(pier.url, 'alice')
  })
  after(async () => {
    await pier.close()
  })

  void test('a different tarball replaces an existing version', async () => {
    const first = publishBody({ name: 'replace-me', version: '1.0.0' }, { files: { 'index.js': '1' } })
    const second = publishBody({ name: 'replace-me', version: '1.0.0' }, { files: { 'index.js': '2' } })
    assert.equal((await publish(pier.url, first.body, token)).status, 201)
    const r = await publish(pier.url, second.body, token)
    assert.ok(r.status >= 200 && r.status < 300, `got ${r.status}: ${JSON.stringify(r.body)}`)
    const doc = await call(pier.url, 'GET', '/replace-me')
    assert.equal(doc.body.versions['1.0.0'].dist.integrity, second.integrity)
    assert.equal(sha512((await raw(pier.url, '/replace-me/-/replace-me-1.0.0.tgz')).body), second.integrity)
  })

  void test('an unpublished version can be published again', async () => {
    for (const v of ['1.0.0', '1.1.0']) assert.equal((await publish(pier.url, publishBody({ name: 'revive-me', version: v }).body, token)).status, 201)
    const doc = (await call(pier.url, 'GET', '/revive-me?write=true')).body
    delete doc.versions['1.1.0']
    assert.equal((await call(pier.url, 'PUT', `/revive-me/-rev/${doc._rev}`, { token, body: doc })).status, 201)
    assertError(await call(pier.url, 'GET', '/revive-me/1.1.0'), 410)
    const again = publishBody({ name: 'revive-me', version: '1.1.0' }, { files: { 'index.js': 'again' } })
    const r = await publish(pier.url, again.body, token)
    assert.ok(r.status >= 200 && r.status < 300, `got ${r.status}: ${JSON.stringify(r.body)}`)
    const m = await call(pier.url, 'GET', '/revive-me/1.1.0')
    assert.equal(m.status, 200)
    assert.equal(m.body.dist.integrity, again.integrity)
    assert.equal(sha512((await raw(pier.url, '/revive-me/-/revive-me-1.1.0.tgz')).body), again.integrity)
  })
})

void describe('max_body_size', () => {
  let pier: TestPier
  let token: string
  before(async () => {
    pier = await startPier({ max_body_size: '4kb' })
    token = await adduser(pier.url, 'alice')
  })
  after(async () => {
    await pier.close()
  })

  void test('a body over the limit → 413 {error}; one under it is accepted', async () => {
    const small = publishBody({ name: 'small-pkg', version: '1.0.0' })
    assert.ok(JSON.stringify(small.body).length < 4096)
    assert.equal((await publish(pier.url, small.body, token)).status, 201)
    // Random bytes do not compress: the tarball alone is far over 4 KB.
    const big = publishBody({ name: 'big-pkg', version: '1.0.0' }, { files: { 'blob.bin': randomBytes(8192) } })
    const bigBody = JSON.stringify(big.body)
    assert.ok(bigBody.length > 4096, `test body is only ${bigBody.length} bytes`)
    const r = await call(pier.url, 'PUT', '/big-pkg', { token, rawBody: bigBody })
    assertError(r, 413, /max_body_size|too large/i)
    assertError(await call(pier.url, 'GET', '/big-pkg'), 404)
  })
})

void describe('auth.type: none', () => {
  let pier: TestPier
  before(async () => {
    pier = await startPier({ auth: { type: 'none' } })
  })
  after(async () => {
    await pier.close()
  })

  void test('anonymous publish, dist-tag and read', async () => {
    const pub = publishBody({ name: 'open-pkg', version: '1.0.0' })
    const r = await publish(pier.url, pub.body)
    assert.equal(r.status, 201, JSON.stringify(r.body))
    const doc = await call(pier.url, 'GET', '/open-pkg')
    assert.equal(doc.status, 200)
    assert.equal(doc.body.versions['1.0.0'].dist.integrity, pub.integrity)
    assert.equal(doc.body.versions['1.0.0']._npmUser.name, 'anonymous')
    assert.equal((await call(pier.url, 'PUT', '/-/package/open-pkg/dist-tags/next', { body: '1.0.0' })).status, 201)
    assert.equal((await publish(pier.url, publishBody({ name: 'open-pkg', version: '1.0.1' }).body)).status, 201)
  })
})
