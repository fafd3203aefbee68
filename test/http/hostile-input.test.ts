/**
 * Hostile input against a real Pier on loopback (issue 11): gzip bombs, tarballs of a million
 * entries or with paths outside the package folder, bodies beyond the route's limit (refused
 * before they are read when the caller may not write), clients that send a byte at a time, and
 * load shedding. After each, the server still answers and a normal publish still works.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { brotliDecompressSync, createGzip } from 'node:zlib'
import { Header } from 'tar'
import { addUser } from '../helpers/accounts.js'
import { raw } from '../helpers/http.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** One 512-byte tar header. */
function header(path: string, size: number, type: 'File' | 'SymbolicLink' = 'File', linkpath?: string): Buffer {
  const buf = Buffer.alloc(512)
  new Header({ path, size, type, mode: 0o644, mtime: new Date('2020-01-01T00:00:00Z'), ...(linkpath ? { linkpath } : {}) }).encode(buf, 0)
  return buf
}

/** A file entry: header, body, padding to 512 bytes. */
function fileEntry(path: string, content: string): Buffer {
  const body = Buffer.from(content)
  return Buffer.concat([header(path, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512)])
}

/** Gzips the chunks `gen` yields, as a stream (nothing the size of the inflated tar is held). */
async function gzipOf(gen: () => Generator<Buffer>): Promise<Buffer> {
  const out: Buffer[] = []
  await pipeline(Readable.from(gen()), createGzip({ level: 6 }), async function* (src: AsyncIterable<Buffer>) {
    for await (const c of src) out.push(c)
    yield* []
  })
  return Buffer.concat(out)
}

const EOF_BLOCKS = Buffer.alloc(1024)

/** npm's publish body for `name@version` carrying `tgz` as its tarball (integrity computed). */
function bodyWith(name: string, version: string, tgz: Buffer): Obj {
  const b = publishBody({ name, version }).body as Obj
  const integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`
  const shasum = createHash('sha1').update(tgz).digest('hex')
  b.versions[version].dist = { ...b.versions[version].dist, integrity, shasum }
  b._attachments = { [`${name}-${version}.tgz`]: { content_type: 'application/octet-stream', data: tgz.toString('base64'), length: tgz.length } }
  return b
}

async function put(base: string, name: string, body: unknown, token: string): Promise<{ status: number; body: Obj }> {
  const res = await fetch(new URL(name.replace('/', '%2f'), base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as Obj }
}

/** The server still works: ping answers and a fresh publish lands. */
async function stillServing(pier: TestPier, token: string, name: string): Promise<void> {
  assert.equal((await raw(pier.url, '/-/ping')).status, 200)
  const ok = await put(pier.url, name, publishBody({ name, version: '1.0.0' }).body, token)
  assert.equal(ok.status, 201, JSON.stringify(ok.body))
}

/** Opens a socket to the server and resolves once it is connected. */
function open(base: string): Promise<Socket> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => resolve(s))
    s.on('error', reject)
  })
}

/** Everything the server sends on `s` until it closes the connection. */
function untilClosed(s: Socket): Promise<string> {
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => chunks.push(c))
  return new Promise((resolve) => s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1'))))
}

void describe('hostile tarballs at publish', () => {
  let pier: TestPier
  let token: string
  before(async () => {
    pier = await startPier()
    token = await addUser(pier.url, 'alice')
  })
  after(() => pier.close())

  void test('a gzip bomb (300 MiB of zeros in ~300 KiB) is refused with 413 naming max_unpacked_size; nothing is stored', async () => {
    const pkg = fileEntry('package/package.json', JSON.stringify({ name: 'bomb', version: '1.0.0' }))
    const size = 300 * 1024 * 1024
    const tgz = await gzipOf(function* () {
      yield pkg
      yield header('package/zeros', size)
      const zeros = Buffer.alloc(1024 * 1024)
      for (let i = 0; i < size / zeros.length; i++) yield zeros
      yield EOF_BLOCKS
    })
    assert.ok(tgz.length < 1024 * 1024, `compressed ${tgz.length} bytes`)
    const r = await put(pier.url, 'bomb', bodyWith('bomb', '1.0.0', tgz), token)
    assert.equal(r.status, 413, JSON.stringify(r.body))
    assert.match(r.body.error as string, /unpacks to more than 268435456 bytes \(max_unpacked_size\)/)
    assert.equal((await raw(pier.url, '/bomb')).status, 404)
    await stillServing(pier, token, 'after-bomb')
  })

  void test('a tarball of 1,000,000 entries is refused with 413 naming max_unpacked_files', async () => {
    const pkg = fileEntry('package/package.json', JSON.stringify({ name: 'many', version: '1.0.0' }))
    const empty = header('package/f', 0)
    const block = Buffer.concat(Array.from({ length: 1000 }, () => empty))
    const tgz = await gzipOf(function* () {
      yield pkg
      for (let i = 0; i < 1000; i++) yield block
      yield EOF_BLOCKS
    })
    const r = await put(pier.url, 'many', bodyWith('many', '1.0.0', tgz), token)
    assert.equal(r.status, 413, JSON.stringify(r.body))
    assert.match(r.body.error as string, /more than 100000 entries \(max_unpacked_files\)/)
    await stillServing(pier, token, 'after-many')
  })

  for (const [what, entry] of [
    ['a `../` path', fileEntry('package/../../evil.js', 'x')],
    ['an absolute path', fileEntry('/etc/evil.js', 'x')],
    ['a symlink pointing outside', header('package/link', 0, 'SymbolicLink', '../../../etc/passwd')],
  ] as const) {
    void test(`a tarball with ${what} is refused with 400; nothing is stored`, async () => {
      const name = `unsafe-${createHash('sha1').update(what).digest('hex').slice(0, 8)}`
      const tgz = await gzipOf(function* () {
        yield fileEntry('package/package.json', JSON.stringify({ name, version: '1.0.0' }))
        yield entry
        yield EOF_BLOCKS
      })
      const r = await put(pier.url, name, bodyWith(name, '1.0.0', tgz), token)
      assert.equal(r.status, 400, JSON.stringify(r.body))
      assert.match(r.body.error as string, /outside its package folder/)
      assert.equal((await raw(pier.url, `/${name}`)).status, 404)
    })
  }
})

void describe('body limits', () => {
  let pier: TestPier
  let token: string
  before(async () => {
    pier = await startPier({ max_body_size: '1mb' })
    token = await addUser(pier.url, 'bob')
  })
  after(() => pier.close())

  void test('a publish 10× max_body_size gets 413 and the connection closes', async () => {
    const big = publishBody({ name: 'huge', version: '1.0.0' }, { files: { 'blob.bin': randomBytes(10 * 1024 * 1024) } })
    const r = await put(pier.url, 'huge', big.body, token).catch((e: Error) => ({ status: 0, body: { error: String(e) } }))
    // Either the 413 is read, or the server closed the connection while the client was still
    // sending (the body was not read): never a 2xx.
    assert.ok(r.status === 413 || r.status === 0, JSON.stringify(r))
    if (r.status === 413) assert.match(r.body.error as string, /at most 1048576 bytes \(max_body_size\)/)
    await stillServing(pier, token, 'after-huge')
  })

  void test('an anonymous publish is refused (401) before its body is read: the answer comes while the client is still sending', async () => {
    const s = await open(pier.url)
    const closed = untilClosed(s)
    const declared = 900 * 1024
    s.write(`PUT /anon-big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n{"name":"anon-big",`)
    // Only 19 bytes of 900 KiB are sent: the answer must come without the rest.
    const answer = await closed
    assert.match(answer, /^HTTP\/1\.1 401 /)
    assert.match(answer, /\r\nconnection: close\r\n/i)
    assert.match(answer, /"error":"[^"]+"/)
  })

  void test('a publish by a user who may not publish that name is refused (403) before its body is read', async () => {
    const limited = await startPier({ packages: { 'closed-*': { access: '$all', publish: 'nobody' }, '**': { access: '$all', publish: '$authenticated' } } })
    try {
      const t = await addUser(limited.url, 'carol')
      const s = await open(limited.url)
      const closed = untilClosed(s)
      s.write(`PUT /closed-x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t}\r\nContent-Type: application/json\r\nContent-Length: 500000\r\n\r\n{`)
      assert.match(await closed, /^HTTP\/1\.1 403 /)
    } finally {
      await limited.close()
    }
  })

  void test('every other JSON route takes at most 1 MiB, refused before reading (413)', async () => {
    const body = JSON.stringify({ name: 'x', password: 'p'.repeat(2 * 1024 * 1024) })
    const r = await raw(pier.url, '/-/user/org.couchdb.user:x', { 'content-type': 'application/json' }, 'PUT', body).catch(() => undefined)
    if (r) {
      assert.equal(r.status, 413, r.body.toString())
      assert.match(r.body.toString(), /at most 1048576 bytes/)
    }
    const tag = await raw(pier.url, '/-/package/after-huge/dist-tags/next', { 'content-type': 'application/json', authorization: `Bearer ${token}` }, 'PUT', JSON.stringify('9'.repeat(2 * 1024 * 1024))).catch(() => undefined)
    if (tag) assert.equal(tag.status, 413)
    assert.ok(r !== undefined || tag !== undefined, 'at least one 413 was read')
    assert.equal((await raw(pier.url, '/-/ping')).status, 200)
  })
})

void describe('slow clients (slowloris)', () => {
  let pier: TestPier
  before(async () => {
    pier = await startPier({ server: { headers_timeout: '2s', request_timeout: '3s' } })
  })
  after(() => pier.close())

  void test('headers sent a byte at a time: the connection is closed (408) after headers_timeout while others are served', async () => {
    const s = await open(pier.url)
    const closed = untilClosed(s)
    s.write('GET /-/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    let n = 0
    const drip = setInterval(() => {
      if (!s.destroyed) s.write(`X-Slow-${n++}: a\r\n`)
    }, 200)
    try {
      // Meanwhile another client is answered.
      assert.equal((await raw(pier.url, '/-/ping')).status, 200)
      const answer = await closed
      assert.ok(answer === '' || /^HTTP\/1\.1 408 /.test(answer), answer)
      assert.ok(n > 0)
    } finally {
      clearInterval(drip)
      s.destroy()
    }
  })

  void test('a body sent a byte at a time: closed after request_timeout', async () => {
    const s = await open(pier.url)
    const closed = untilClosed(s)
    s.write('PUT /-/user/org.couchdb.user:slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{')
    const drip = setInterval(() => {
      if (!s.destroyed) s.write(' ')
    }, 100)
    try {
      const answer = await closed
      assert.ok(answer === '' || /^HTTP\/1\.1 408 /.test(answer), answer)
    } finally {
      clearInterval(drip)
      s.destroy()
    }
  })
})

void describe('load shedding (server.overload)', () => {
  void test('beyond a limit every request but /-/ping gets 503 with Retry-After, the fast path included', async () => {
    // A heap limit of 1 byte: pressured from the first sample on.
    const pier = await startPier({ server: { overload: { max_heap_used: 1, sample_interval: 100, retry_after: 7 } }, auth: { type: 'none' } })
    try {
      // Polls until the first sample is taken (bounded): before it, nothing is measured yet.
      let r = await raw(pier.url, '/')
      for (let i = 0; i < 500 && r.status !== 503; i++) {
        await new Promise((res) => setTimeout(res, 10))
        r = await raw(pier.url, '/')
      }
      assert.equal(r.status, 503, r.body.toString())
      assert.equal(r.headers['retry-after'], '7')
      assert.match(JSON.parse(r.body.toString()).error as string, /overloaded/)
      assert.equal((await raw(pier.url, '/-/ping')).status, 200)
      for (const path of ['/some-package', '/-/v1/search?text=x', '/-/health']) {
        assert.equal((await raw(pier.url, path)).status, 503, path)
      }
    } finally {
      await pier.close()
    }
  })

  void test('a packument the fast path would answer is shed too', async () => {
    // Pressured from the first sample on; the package is published and its packument rendered
    // through the registry itself (no HTTP), so the fast path has everything it needs in memory.
    const pier = await startPier({ server: { overload: { max_heap_used: 1, sample_interval: 100 } } })
    try {
      const base = pier.url.replace(/\/$/, '')
      await pier.pier.registry.publish('warm', publishBody({ name: 'warm', version: '1.0.0' }).body, { name: 'dan', readonly: false })
      await pier.pier.registry.packument('warm', { name: undefined, readonly: false }, false, base)
      assert.ok(pier.pier.registry.peekPackument('warm', false, base), 'the fast path could answer it')
      let r = await raw(pier.url, '/-/whoami')
      for (let i = 0; i < 500 && r.status !== 503; i++) {
        await new Promise((res) => setTimeout(res, 10))
        r = await raw(pier.url, '/-/whoami')
      }
      assert.equal(r.status, 503)
      const hits = pier.pier.app.fastPath.hits
      const shed = await raw(pier.url, '/warm', { 'accept-encoding': 'gzip' })
      assert.equal(shed.status, 503, 'the warm packument is shed')
      assert.equal(pier.pier.app.fastPath.hits, hits, 'the fast path stepped aside')
    } finally {
      await pier.close()
    }
  })
})

void describe('brotli under concurrent publishes', () => {
  void test('every brotli answer is the document of its own ETag revision', async () => {
    const pier = await startPier()
    try {
      const token = await addUser(pier.url, 'erin')
      assert.equal((await put(pier.url, 'br-race', publishBody({ name: 'br-race', version: '1.0.0' }).body, token)).status, 201)
      const mismatches: string[] = []
      let reads = 0
      for (let v = 1; v <= 20; v++) {
        const pub = put(pier.url, 'br-race', publishBody({ name: 'br-race', version: `1.0.${v}` }).body, token)
        const gets = Array.from({ length: 8 }, async () => {
          const r = await raw(pier.url, '/br-race', { 'accept-encoding': 'br' })
          assert.equal(r.status, 200)
          assert.equal(r.headers['content-encoding'], 'br')
          const doc = JSON.parse(brotliDecompressSync(r.body).toString()) as Obj
          reads++
          // The ETag carries the revision rendered: the brotli bytes must be that revision's.
          if (!String(r.headers.etag).startsWith(`W/"${String(doc._rev)}-`)) mismatches.push(`ETag ${String(r.headers.etag)} with a body of _rev ${String(doc._rev)}`)
        })
        assert.equal((await pub).status, 201)
        await Promise.all(gets)
        const final = await raw(pier.url, '/br-race', { 'accept-encoding': 'br' })
        const doc = JSON.parse(brotliDecompressSync(final.body).toString()) as Obj
        assert.ok((doc.versions as Obj)[`1.0.${v}`], `after publish ${v} the brotli form has 1.0.${v} (_rev ${String(doc._rev)})`)
      }
      assert.deepEqual(mismatches, [])
      assert.ok(reads >= 160)
    } finally {
      await pier.close()
    }
  })
})
