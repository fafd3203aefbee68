/**
 * The BlobStore contract, one body run over every backend (as Kysely runs its suite per dialect):
 * FsBlobStore in a temp folder and S3BlobStore against a real S3-compatible server (s3rver) on
 * loopback. Then what only S3BlobStore offers: key prefixes and presigned URLs.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { tarballKey, type BlobStore } from '../../src/storage/blobs/blob-store.js'
import { FsBlobStore } from '../../src/storage/blobs/fs-blob-store.js'
import { S3BlobStore } from '../../src/storage/blobs/s3-blob-store.js'
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

async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of body) chunks.push(Buffer.from(c as Uint8Array))
  return Buffer.concat(chunks)
}

/** A content-addressed key for `bytes`, as Registry.publish makes it. */
function keyOf(bytes: Uint8Array): string {
  return tarballKey(createHash('sha512').update(bytes).digest('hex'))
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
  })
}

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
