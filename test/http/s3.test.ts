/**
 * Pier with `storage.type: s3` against a real S3-compatible server (s3rver) on loopback: publish
 * over HTTP lands the tarball in the bucket; tarball GETs stream it, or with `redirect: true`
 * answer 302 to a presigned URL of the store; the real npm CLI installs through the redirect.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { tarballKey } from '../../src/registry/blob-keys.js'
import { S3BlobStore } from '../../src/storage/blobs/s3-blob-store.js'
import { NpmClient } from '../helpers/npm.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody, type PublishBody } from '../helpers/publish-body.js'
import { startS3, type TestS3 } from '../helpers/s3.js'

const sha512 = (b: Uint8Array): string => `sha512-${createHash('sha512').update(b).digest('base64')}`
const sha512Hex = (b: Uint8Array): string => createHash('sha512').update(b).digest('hex')

/** Creates a user with the legacy CouchDB call; returns its token. */
async function adduser(base: string, name: string): Promise<string> {
  const res = await fetch(new URL(`-/user/org.couchdb.user:${name}`, base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password: `pw-${name}-1`, email: `${name}@example.com`, type: 'user', roles: [] }),
  })
  const body = (await res.json()) as { token?: string }
  assert.equal(res.status, 201, JSON.stringify(body))
  assert.equal(typeof body.token, 'string')
  return body.token as string
}

/** PUT /<name> with npm's publish body. */
async function publish(base: string, p: PublishBody, token: string): Promise<void> {
  const res = await fetch(new URL(String(p.body.name).replace('/', '%2f'), base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(p.body),
  })
  assert.equal(res.status, 201, await res.text())
}

/** GET without following redirects. */
function get(base: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(new URL(path, base), { redirect: 'manual', headers })
}

/** Unpublishes one version the short way (DELETE of its tarball, as npm's last step does). */
async function unpublishVersion(base: string, name: string, version: string, token: string): Promise<void> {
  const res = await fetch(new URL(`${name}/-/${name}-${version}.tgz`, base), { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
  assert.equal(res.status, 200, await res.text())
}

void describe('storage.type s3', () => {
  let s3: TestS3
  /** Reads the bucket directly, to see what Pier stored. */
  let bucket: S3BlobStore

  before(async () => {
    s3 = await startS3()
    bucket = new S3BlobStore(s3.config)
  })
  after(async () => {
    await bucket.close()
    await s3.close()
  })

  void describe('streaming through Pier (redirect off)', () => {
    let pier: TestPier
    let token: string
    before(async () => {
      pier = await startPier({ storage: { type: 's3', s3: { ...s3.config, prefix: 'streamed/' } } })
      token = await adduser(pier.url, 'alice')
    })
    after(async () => {
      await pier.close()
    })

    void test('publish stores the tarball in the bucket under the prefix; GET streams it back', async () => {
      const p = publishBody({ name: 's3-streamed', version: '1.0.0' })
      await publish(pier.url, p, token)
      const stored = await bucket.read(`streamed/${tarballKey(sha512Hex(p.tarball))}`)
      assert.ok(stored, 'the object is in the bucket, content-addressed under the prefix')
      assert.ok(stored.equals(p.tarball))

      const res = await get(pier.url, 's3-streamed/-/s3-streamed-1.0.0.tgz')
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('content-length'), String(p.tarball.length))
      const bytes = Buffer.from(await res.arrayBuffer())
      assert.equal(sha512(bytes), p.integrity)
      const doc = (await (await get(pier.url, 's3-streamed')).json()) as { versions: Record<string, { dist: { integrity: string } }> }
      assert.equal(doc.versions['1.0.0']?.dist.integrity, p.integrity)
    })

    void test('a tarball over 1 MiB is streamed from the store', async () => {
      // Random bytes do not compress: the tarball stays above the in-memory cache limit.
      const p = publishBody({ name: 's3-big', version: '1.0.0' }, { files: { 'blob.bin': randomBytes(1_200_000) } })
      assert.ok(p.tarball.length > 1024 * 1024, `tarball is ${p.tarball.length} bytes`)
      await publish(pier.url, p, token)
      const res = await get(pier.url, 's3-big/-/s3-big-1.0.0.tgz')
      assert.equal(res.status, 200)
      assert.equal(sha512(Buffer.from(await res.arrayBuffer())), p.integrity)
    })

    void test('unknown tarballs are 404', async () => {
      assert.equal((await get(pier.url, 's3-streamed/-/s3-streamed-9.9.9.tgz')).status, 404)
      assert.equal((await get(pier.url, 'no-such-pkg/-/no-such-pkg-1.0.0.tgz')).status, 404)
    })
  })

  void describe('redirect: true', () => {
    let pier: TestPier
    let token: string
    let p: PublishBody
    /** Pier's request log lines (method, url, status), to see what Pier answered npm. */
    const requests: { method: string; url: string; status: number }[] = []
    before(async () => {
      const logger = pino({ level: 'info' }, { write: (line: string) => void requests.push(JSON.parse(line) as (typeof requests)[number]) })
      pier = await startPier({ storage: { type: 's3', s3: { ...s3.config, prefix: 'redirected/', redirect: true, expires: 120 } } }, { logger })
      token = await adduser(pier.url, 'alice')
      p = publishBody({ name: 's3-redirected', version: '1.0.0' })
      await publish(pier.url, p, token)
      await publish(pier.url, publishBody({ name: 's3-redirected', version: '1.1.0' }), token)
    })
    after(async () => {
      await pier.close()
    })

    void test('a tarball GET is a 302 to a presigned URL of the store valid `expires` seconds; following it yields the bytes', async () => {
      const res = await get(pier.url, 's3-redirected/-/s3-redirected-1.0.0.tgz')
      assert.equal(res.status, 302)
      assert.equal(res.headers.get('cache-control'), 'no-store', 'the signed URL expires: the redirect must not be cached')
      const location = new URL(res.headers.get('location') ?? '')
      assert.equal(location.origin, s3.endpoint)
      assert.equal(location.pathname, `/${s3.bucket}/redirected/${tarballKey(sha512Hex(p.tarball))}`)
      assert.equal(location.searchParams.get('X-Amz-Expires'), '120')
      const direct = await fetch(location)
      assert.equal(direct.status, 200)
      assert.equal(sha512(Buffer.from(await direct.arrayBuffer())), p.integrity)
      // fetch's default (follow) gets the same bytes through Pier's URL.
      const followed = await fetch(new URL('s3-redirected/-/s3-redirected-1.0.0.tgz', pier.url))
      assert.equal(followed.status, 200)
      assert.equal(sha512(Buffer.from(await followed.arrayBuffer())), p.integrity)
    })

    void test('404 and 410 are answered by Pier before any redirect; a matching If-None-Match is 304', async () => {
      assert.equal((await get(pier.url, 's3-redirected/-/s3-redirected-9.9.9.tgz')).status, 404)
      assert.equal((await get(pier.url, 'no-such-pkg/-/no-such-pkg-1.0.0.tgz')).status, 404)
      const cond = await get(pier.url, 's3-redirected/-/s3-redirected-1.0.0.tgz', { 'if-none-match': `"${p.integrity}"` })
      assert.equal(cond.status, 304)
      await unpublishVersion(pier.url, 's3-redirected', '1.1.0', token)
      const gone = await get(pier.url, 's3-redirected/-/s3-redirected-1.1.0.tgz')
      assert.equal(gone.status, 410)
      assert.equal(gone.headers.get('location'), null)
    })

    // The installing client has no token: npm keeps its Authorization header on a redirect to the
    // same host name (here 127.0.0.1, another port), and S3 refuses a request that carries both a
    // header and a query signature. Real deployments put the store on its own host name (README).
    void test('the npm CLI publishes to and installs from an S3-backed Pier, following the redirect', async () => {
      const publisher = new NpmClient(pier.url)
      publisher.setToken(token)
      const pub = await publisher.npm(['publish'], { cwd: publisher.makePackage({ name: 's3-npm-pkg', version: '2.0.0' }) })
      assert.equal(pub.code, 0, `publish failed:\n${pub.stdout}\n${pub.stderr}`)
      const consumer = new NpmClient(pier.url)
      const proj = consumer.project({ 's3-npm-pkg': '^2.0.0', 's3-redirected': '1.0.0' })
      const inst = await consumer.npm(['install'], { cwd: proj })
      assert.equal(inst.code, 0, `install failed:\n${inst.stdout}\n${inst.stderr}`)
      const tarballGets = requests.filter((r) => r.method === 'GET' && r.url.endsWith('.tgz')).map((r) => `${r.status} ${r.url}`)
      assert.ok(tarballGets.includes('302 /s3-npm-pkg/-/s3-npm-pkg-2.0.0.tgz'), `Pier redirected npm's tarball GET: ${tarballGets.join(', ')}`)
      assert.ok(tarballGets.includes('302 /s3-redirected/-/s3-redirected-1.0.0.tgz'), `Pier redirected npm's tarball GET: ${tarballGets.join(', ')}`)
      const installed = JSON.parse(readFileSync(join(proj, 'node_modules/s3-npm-pkg/package.json'), 'utf8')) as { version: string }
      assert.equal(installed.version, '2.0.0')
      assert.equal(readFileSync(join(proj, 'node_modules/s3-npm-pkg/index.js'), 'utf8'), 'module.exports = "s3-npm-pkg@2.0.0"\n')
      const lock = JSON.parse(readFileSync(join(proj, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string; integrity?: string }> }
      assert.equal(lock.packages['node_modules/s3-npm-pkg']?.resolved, `${pier.url}s3-npm-pkg/-/s3-npm-pkg-2.0.0.tgz`, 'the lockfile keeps Pier\'s URL, not the signed one')
      assert.equal(lock.packages['node_modules/s3-redirected']?.integrity, p.integrity)
    })
  })
})
