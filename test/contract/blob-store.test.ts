/**
 * The BlobStore contract, one body run over every backend (as Kysely runs its suite per dialect):
 * FsBlobStore in a temp folder and S3BlobStore against a real S3-compatible server (s3rver) on
 * loopback. Then what only S3BlobStore offers: key prefixes and presigned URLs.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { basename, dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { TARBALL_PREFIX, tarballKey } from '../../src/registry/blob-keys.js'
import type { BlobInfo, BlobStore } from '../../src/registry/stores.js'
import { FsBlobStore, tempFileOwner } from '../../src/storage/blobs/fs-blob-store.js'
import { S3BlobStore } from '../../src/storage/blobs/s3-blob-store.js'
import { deadPid, plantTemp, spawnSleeper, tempName } from '../helpers/blob-temp.js'
import { tempDir } from '../helpers/pier.js'
import { startS3, type TestS3 } from '../helpers/s3.js'

/** A backend under test: opens a fresh, empty store. */
interface Backend {
  name: string
  open(): Promise<{ store: BlobStore; close(): Promise<void> }>
}

const BACKENDS: Backend[] = [
  {
    name: 'FsBlobStore',
    async open() {
      const dir = tempDir('pier-blobs-')
      const store = new FsBlobStore(dir)
      await store.init()
      return { store, close: async () => rmSync(dir, { recursive: true, force: true }) }
    },
  },
  {
    name: 'S3BlobStore',
    async open() {
      const s3 = await startS3()
      const store = new S3BlobStore({ ...s3.config, prefix: 'pier/' })
      return {
        store,
        async close() {
          await store.close()
          await s3.close()
        },
      }
    },
  },
]

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of body) chunks.push(Buffer.from(c as Uint8Array))
  return Buffer.concat(chunks)
}

/** A content-addressed key for `bytes`, as Registry.publish makes it. */
function keyOf(bytes: Uint8Array): string {
  return tarballKey(createHash('sha512').update(bytes).digest('hex'))
}

/** File names in a folder, sorted. */
const readdirNames = (dir: string): string[] => readdirSync(dir).sort()

/** Everything `list(prefix)` yields, by key. */
async function listAll(store: BlobStore, prefix: string): Promise<Map<string, BlobInfo>> {
  const out = new Map<string, BlobInfo>()
  for await (const b of store.list(prefix)) {
    assert.ok(!out.has(b.key), `${b.key} listed once`)
    out.set(b.key, b)
  }
  return out
}

/** Asserts `d` lies within [from, to], widened by one second (S3 keeps whole seconds). */
function assertBetween(d: Date, from: number, to: number, what: string): void {
  assert.ok(d instanceof Date, `${what}: a Date`)
  assert.ok(d.getTime() >= from - 1000 && d.getTime() <= to + 1000, `${what}: ${d.toISOString()} within ${new Date(from).toISOString()}..${new Date(to).toISOString()}`)
}

for (const backend of BACKENDS) {
  void describe(`BlobStore contract: ${backend.name}`, () => {
    let store: BlobStore
    let close: () => Promise<void>
    before(async () => {
      ;({ store, close } = await backend.open())
    })
    after(async () => {
      await close()
    })

    void test('put, then get streams the bytes with their size and read returns them whole', async () => {
      const bytes = randomBytes(3000)
      const key = keyOf(bytes)
      await store.put(key, bytes)
      const h = await store.get(key)
      assert.ok(h, 'get finds the blob')
      assert.equal(h.size, bytes.length)
      assert.deepEqual(await drain(h.body), bytes)
      assert.deepEqual(await store.read(key), bytes)
    })

    void test('a missing key: get and read give undefined, delete succeeds', async () => {
      const key = keyOf(randomBytes(16))
      assert.equal(await store.get(key), undefined)
      assert.equal(await store.read(key), undefined)
      await store.delete(key)
    })

    void test('put is idempotent: repeated and concurrent puts of the same bytes succeed and leave them intact', async () => {
      const bytes = randomBytes(10_000)
      const key = keyOf(bytes)
      await store.put(key, bytes)
      await store.put(key, bytes)
      await Promise.all([store.put(key, bytes), store.put(key, bytes), store.put(key, bytes)])
      assert.deepEqual(await store.read(key), bytes)
    })

    void test('delete removes the blob', async () => {
      const bytes = randomBytes(100)
      const key = keyOf(bytes)
      await store.put(key, bytes)
      await store.delete(key)
      assert.equal(await store.get(key), undefined)
      assert.equal(await store.read(key), undefined)
    })

    void test('an empty blob', async () => {
      const bytes = new Uint8Array(0)
      const key = keyOf(bytes)
      await store.put(key, bytes)
      const h = await store.get(key)
      assert.ok(h)
      assert.equal(h.size, 0)
      assert.equal((await drain(h.body)).length, 0)
      assert.equal((await store.read(key))?.length, 0)
    })

    void test('a large (5 MB) blob round-trips byte for byte', async () => {
      const bytes = randomBytes(5 * 1024 * 1024)
      const key = keyOf(bytes)
      await store.put(key, bytes)
      const h = await store.get(key)
      assert.ok(h)
      assert.equal(h.size, bytes.length)
      const streamed = await drain(h.body)
      assert.equal(createHash('sha512').update(streamed).digest('hex'), createHash('sha512').update(bytes).digest('hex'))
      assert.ok(bytes.equals(streamed))
      const whole = await store.read(key)
      assert.ok(whole && bytes.equals(whole))
    })

    void test('distinct keys hold distinct blobs', async () => {
      const a = randomBytes(64)
      const b = randomBytes(64)
      await Promise.all([store.put(keyOf(a), a), store.put(keyOf(b), b)])
      assert.deepEqual(await store.read(keyOf(a)), a)
      assert.deepEqual(await store.read(keyOf(b)), b)
      await store.delete(keyOf(a))
      assert.deepEqual(await store.read(keyOf(b)), b, 'deleting one leaves the other')
    })

    void test('list: every blob below the prefix with its size and modification time; deleted ones gone', async () => {
      const before = Date.now()
      const blobs = [randomBytes(10), randomBytes(2000), new Uint8Array(0)].map((b) => ({ bytes: b, key: keyOf(b) }))
      await Promise.all(blobs.map((b) => store.put(b.key, b.bytes)))
      const after = Date.now()
      const all = await listAll(store, TARBALL_PREFIX)
      for (const b of blobs) {
        const info = all.get(b.key)
        assert.ok(info, `${b.key} is listed`)
        assert.equal(info.size, b.bytes.length)
        assertBetween(info.modified, before, after, b.key)
      }
      for (const k of all.keys()) assert.ok(k.startsWith(TARBALL_PREFIX), `${k} is below the prefix`)
      await store.delete(blobs[0]!.key)
      assert.equal((await listAll(store, TARBALL_PREFIX)).has(blobs[0]!.key), false, 'a deleted blob is not listed')
    })

    void test('list: a narrower prefix (one fan-out folder, or part of its name) yields only its blobs; an empty one nothing', async () => {
      const bytes = randomBytes(100)
      const key = keyOf(bytes)
      await store.put(key, bytes)
      const folder = key.slice(0, key.lastIndexOf('/') + 1) // tarballs/sha512/<2 hex>/
      const inFolder = await listAll(store, folder)
      assert.ok(inFolder.has(key))
      for (const k of inFolder.keys()) assert.ok(k.startsWith(folder), `${k} starts with ${folder}`)
      const partial = folder.slice(0, -2) // tarballs/sha512/<1 hex>
      const inPartial = await listAll(store, partial)
      assert.ok(inPartial.has(key))
      for (const k of inPartial.keys()) assert.ok(k.startsWith(partial), `${k} starts with ${partial}`)
      assert.equal((await listAll(store, key)).size, 1, 'the exact key as prefix')
      assert.equal((await listAll(store, 'tarballs/none/')).size, 0)
      assert.equal((await listAll(store, 'nothing-here/')).size, 0)
    })

    void test('list: keys outside `tarballs/` are listed only under their own prefix (or the empty one)', async () => {
      const bytes = randomBytes(50)
      const key = `other/${createHash('sha256').update(bytes).digest('hex')}`
      await store.put(key, bytes)
      assert.equal((await listAll(store, TARBALL_PREFIX)).has(key), false)
      assert.equal((await listAll(store, 'other/')).get(key)?.size, 50)
      assert.ok((await listAll(store, '')).has(key))
      await store.delete(key)
    })

    void test('list: a prefix that climbs out of the store is refused', async () => {
      if (backend.name === 'S3BlobStore') {
        // S3 keys are names, not paths: `../` is just characters below the store's prefix.
        assert.equal((await listAll(store, '../')).size, 0)
        return
      }
      await assert.rejects(listAll(store, '../x/'), /escapes the store/)
    })

    void test('stat: size and modification time of a blob; undefined when missing', async () => {
      const bytes = randomBytes(321)
      const key = keyOf(bytes)
      const before = Date.now()
      await store.put(key, bytes)
      const info = await store.stat(key)
      assert.ok(info)
      assert.equal(info.key, key)
      assert.equal(info.size, 321)
      assertBetween(info.modified, before, Date.now(), key)
      assert.equal(await store.stat(keyOf(randomBytes(8))), undefined)
    })

    void test('ping answers', async () => {
      await store.ping()
    })
  })
}

void describe('FsBlobStore: temp files (sweep, failed puts), mtimes, ping failure', () => {
  let dir: string
  let store: FsBlobStore
  before(async () => {
    dir = tempDir('pier-blobs-fs-')
    store = new FsBlobStore(dir)
    await store.init()
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  void test('list skips temp files (writes in progress); init() removes none of them', async () => {
    const part = join(dir, '.tmp', 'abc.part')
    writeFileSync(part, 'half a tarball')
    const bytes = randomBytes(10)
    await store.put(keyOf(bytes), bytes)
    const all = await listAll(store, '')
    assert.deepEqual([...all.keys()], [keyOf(bytes)])
    await new FsBlobStore(dir).init()
    await new FsBlobStore(dir).init({ clearTemp: false })
    assert.equal((await listAll(new FsBlobStore(dir), '')).size, 1)
    assert.ok(readdirNames(join(dir, '.tmp')).includes('abc.part'), 'a second store opened on the folder leaves the temp file alone')
    rmSync(part)
  })

  void test('temp-file names record the writer: host (percent-encoded, dots allowed) and PID', () => {
    assert.deepEqual(tempFileOwner('node-1.4242.0123456789abcdef.part'), { host: 'node-1', pid: 4242 })
    assert.deepEqual(tempFileOwner('node-1.corp.example.7.ab.part'), { host: 'node-1.corp.example', pid: 7 })
    assert.deepEqual(tempFileOwner(`${encodeURIComponent('odd/host name')}.12.ff.part`), { host: 'odd/host name', pid: 12 })
    assert.deepEqual(tempFileOwner(tempName(99)), { host: hostname(), pid: 99 })
    // Names of an older Pier (`<hex>.part`) and anything else: no known writer.
    for (const bad of ['0123456789abcdef.part', 'abc.part', 'h.12.ff', 'h.0.ff.part', 'h.-1.ff.part', 'h.012.ff.part', 'h.12.xyz.part', '.12.ff.part', 'h.99999999999.ff.part', '%E0%A4%A.12.ff.part']) {
      assert.equal(tempFileOwner(bad), undefined, bad)
    }
  })

  void test('sweepTemp removes the files of dead processes of this host and old ones, and keeps live writes here and young ones of other hosts', async () => {
    const tmp = join(dir, '.tmp')
    const sleeper = await spawnSleeper()
    try {
      const dead = deadPid()
      const names = {
        mine: plantTemp(tmp, tempName(process.pid)),
        liveOther: plantTemp(tmp, tempName(sleeper.pid)),
        deadHere: plantTemp(tmp, tempName(dead)),
        deadHereOld: plantTemp(tmp, tempName(dead), 48 * 3600_000),
        otherHost: plantTemp(tmp, tempName(dead, 'other-host.example')),
        otherHostOld: plantTemp(tmp, tempName(sleeper.pid, 'other-host.example'), 25 * 3600_000),
        ownerless: plantTemp(tmp, 'abcdef0123456789.part'),
        ownerlessOld: plantTemp(tmp, 'fedcba9876543210.part', 25 * 3600_000),
        liveOld: plantTemp(tmp, tempName(sleeper.pid), 25 * 3600_000),
      }
      const base = Object.fromEntries(Object.entries(names).map(([k, p]) => [k, basename(p)])) as Record<keyof typeof names, string>
      mkdirSync(join(tmp, 'a-folder'))
      const swept = await store.sweepTemp()
      assert.deepEqual(swept.deadOwner, [base.deadHere, base.deadHereOld].sort())
      assert.deepEqual(swept.expired, [base.otherHostOld, base.ownerlessOld, base.liveOld].sort())
      assert.deepEqual(swept.kept, [base.mine, base.liveOther, base.otherHost, base.ownerless].sort())
      assert.deepEqual(readdirNames(tmp), [...swept.kept, 'a-folder'].sort(), 'what is kept is on disk, nothing else (folders untouched)')

      // A smaller age bound; and once the sleeper has exited its file is a dead process's.
      await sleeper.stop()
      const again = await store.sweepTemp({ maxAgeMs: 3_600_000 })
      assert.deepEqual(again.deadOwner, [base.liveOther])
      assert.deepEqual(again.expired, [])
      assert.deepEqual(readdirNames(tmp), [base.mine, base.otherHost, base.ownerless, 'a-folder'].sort())
      // init({ clearTemp: true }) is the same sweep.
      utimesSync(names.otherHost, new Date(0), new Date(0))
      await new FsBlobStore(dir).init({ clearTemp: true })
      assert.deepEqual(readdirNames(tmp), [base.mine, base.ownerless, 'a-folder'].sort())
    } finally {
      await sleeper.stop()
      for (const f of readdirSync(join(dir, '.tmp'))) rmSync(join(dir, '.tmp', f), { recursive: true, force: true })
    }
  })

  void test('a put that fails removes its temp file at once: its folder blocked by a file (mkdir fails), its folder removed under it (rename fails)', async () => {
    const tmp = join(dir, '.tmp')
    const bytes = randomBytes(300 * 1024) // above the synchronous-write size: the async write path
    const key = keyOf(bytes)
    // A file sits where the key's last folder must go: mkdir fails (EEXIST / ENOTDIR).
    const folder = join(dir, dirname(key))
    mkdirSync(dirname(folder), { recursive: true })
    writeFileSync(folder, 'in the way')
    await assert.rejects(store.put(key, bytes), (e: NodeJS.ErrnoException) => e.code === 'EEXIST' || e.code === 'ENOTDIR')
    assert.deepEqual(readdirNames(tmp), [], 'no temp file after the failed mkdir')
    assert.equal(await store.stat(key), undefined)
    rmSync(folder)

    // The key's folder, made by an earlier put (so known to this store), is removed behind its
    // back: the rename fails (ENOENT).
    const first = randomBytes(20)
    await store.put(keyOf(first), first)
    // The store takes any key; this one sits in the first blob's folder.
    const small = randomBytes(20)
    const smallKey = `${dirname(keyOf(first))}/${createHash('sha512').update(small).digest('hex')}.tgz`
    rmSync(join(dir, dirname(keyOf(first))), { recursive: true })
    await assert.rejects(store.put(smallKey, small), (e: NodeJS.ErrnoException) => e.code === 'ENOENT')
    assert.deepEqual(readdirNames(tmp), [], 'no temp file after the failed rename')

    // Once the way is clear the same store writes both: a folder a failed put was to use is made again.
    await store.put(key, bytes)
    await store.put(smallKey, small)
    assert.deepEqual(await store.read(key), bytes)
    assert.deepEqual(await store.read(smallKey), small)
    assert.deepEqual(readdirNames(tmp), [])
  })

  void test('a put of bytes already stored refreshes the modification time (gc then sees a young blob)', async () => {
    const bytes = randomBytes(64)
    const key = keyOf(bytes)
    await store.put(key, bytes)
    const old = new Date(Date.now() - 48 * 3600_000)
    utimesSync(join(dir, key), old, old)
    assert.equal((await store.stat(key))?.modified.getTime(), old.getTime())
    const before = Date.now()
    await store.put(key, bytes)
    assertBetween((await store.stat(key))!.modified, before, Date.now(), 'after the second put')
    assert.deepEqual(await store.read(key), bytes)
  })

  void test('ping fails when the folder is gone, or is not a folder', async () => {
    const gone = tempDir('pier-blobs-gone-')
    const s = new FsBlobStore(gone)
    await s.init()
    await s.ping()
    rmSync(gone, { recursive: true, force: true })
    await assert.rejects(s.ping(), /ENOENT/)
    const fileRoot = tempDir('pier-blobs-file-')
    rmSync(fileRoot, { recursive: true })
    writeFileSync(fileRoot, 'not a folder')
    await assert.rejects(new FsBlobStore(fileRoot).ping(), /not a folder/)
    rmSync(fileRoot)
  })
})

void describe('S3BlobStore: prefixes and presigned URLs', () => {
  let s3: TestS3
  let a: S3BlobStore
  let b: S3BlobStore
  before(async () => {
    s3 = await startS3()
    a = new S3BlobStore({ ...s3.config, prefix: 'team-a/' })
    b = new S3BlobStore({ ...s3.config, prefix: 'team-b/' })
  })
  after(async () => {
    await a.close()
    await b.close()
    await s3.close()
  })

  void test('keys live under the prefix: stores with other prefixes do not see them', async () => {
    const bytes = randomBytes(500)
    const key = keyOf(bytes)
    await a.put(key, bytes)
    assert.deepEqual(await a.read(key), bytes)
    assert.equal(await b.read(key), undefined)
    const plain = new S3BlobStore(s3.config)
    try {
      assert.equal(await plain.read(key), undefined)
      assert.deepEqual(await plain.read(`team-a/${key}`), bytes, 'the object key is prefix + key')
    } finally {
      await plain.close()
    }
  })

  void test('list yields keys without the store prefix, and only the store’s own', async () => {
    const bytes = randomBytes(700)
    const key = keyOf(bytes)
    await a.put(key, bytes)
    assert.equal((await listAll(a, TARBALL_PREFIX)).get(key)?.size, 700)
    assert.equal((await listAll(b, TARBALL_PREFIX)).has(key), false, 'another prefix does not see it')
    const plain = new S3BlobStore(s3.config)
    try {
      assert.equal((await listAll(plain, TARBALL_PREFIX)).has(key), false)
      assert.ok((await listAll(plain, 'team-a/')).has(`team-a/${key}`), 'without a prefix, the object key')
      assert.equal((await plain.stat(`team-a/${key}`))?.size, 700)
    } finally {
      await plain.close()
    }
  })

  void test('list follows pages to the end (here 7 keys a page; S3 gives at most 1000)', async () => {
    const paged = new S3BlobStore({ ...s3.config, prefix: 'paged/', listPageSize: 7 })
    try {
      const keys = range(30).map((i) => `tarballs/n/${String(i).padStart(4, '0')}`)
      await Promise.all(keys.map((k) => paged.put(k, Buffer.from(k))))
      const all = await listAll(paged, TARBALL_PREFIX)
      assert.deepEqual([...all.keys()].sort(), keys)
      for (const k of keys) assert.equal(all.get(k)?.size, k.length, k)
      assert.equal((await listAll(paged, 'tarballs/n/001')).size, 10, 'a prefix inside the pages')
    } finally {
      await paged.close()
    }
  })

  void test('ping fails for a bucket that does not exist, and when its signal aborts', async () => {
    const missing = new S3BlobStore({ ...s3.config, bucket: 'no-such-bucket' })
    try {
      await assert.rejects(missing.ping())
    } finally {
      await missing.close()
    }
    await assert.rejects(a.ping(AbortSignal.abort()))
  })

  void test('signedUrl: a plain GET of the URL returns the bytes; the URL carries the requested lifetime', async () => {
    const bytes = randomBytes(2000)
    const key = keyOf(bytes)
    await a.put(key, bytes)
    const url = new URL(await a.signedUrl(key, 120))
    assert.equal(url.origin, s3.endpoint)
    assert.equal(url.pathname, `/${s3.bucket}/team-a/${key}`)
    assert.equal(url.searchParams.get('X-Amz-Expires'), '120')
    assert.equal(url.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256')
    const res = await fetch(url)
    assert.equal(res.status, 200)
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes)
  })
})
