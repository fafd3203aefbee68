/**
 * BlobStore on S3 or an S3-compatible object store (MinIO, Ceph, …). Keys are content addresses
 * below an optional prefix, so a retried put rewrites identical bytes and never changes what a
 * reader sees. A PutObject is durable once S3 answers 200 (S3 acknowledges only stored writes),
 * which is what BlobStore.put promises before the metadata commit.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import type { BlobHandle, BlobInfo, BlobStore } from '../../registry/stores.js'

/** Connection settings (`storage.s3` in the configuration). */
export interface S3BlobStoreOptions {
  bucket: string
  /** Prepended to every key, e.g. `pier/` (default none). */
  prefix?: string
  region: string
  /** Static credentials; without them the SDK's default chain applies (AWS_* variables, instance role…). */
  accessKeyId?: string
  secretAccessKey?: string
  /** Base URL of an S3-compatible store, e.g. `http://127.0.0.1:9000`; default: AWS S3 for `region`. */
  endpoint?: string
  /** `https://s3.example.com/bucket/key` instead of `https://bucket.s3.example.com/key` (most S3-compatible stores need it). */
  forcePathStyle?: boolean
  /** Keys per page of `list` (default and S3's maximum: 1000). */
  listPageSize?: number
}

/** Tarballs never change under their content address: caches may keep them for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable'

/** True for S3's answer to a GET of a key that does not exist. */
function isMissing(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } }
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata?.httpStatusCode === 404
}

/** Stores blobs as objects in one bucket. */
export class S3BlobStore implements BlobStore {
  readonly bucket: string
  readonly prefix: string
  private readonly client: S3Client
  private readonly listPageSize: number

  constructor(opts: S3BlobStoreOptions) {
    this.bucket = opts.bucket
    this.prefix = opts.prefix ?? ''
    this.listPageSize = opts.listPageSize ?? 1000
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.accessKeyId && opts.secretAccessKey ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } } : {}),
      // Checksums only where S3 requires them: many S3-compatible stores reject the CRC32
      // trailers (aws-chunked bodies) that newer SDKs add by default. Integrity of uploads is
      // covered by Content-MD5 below, which every S3 implementation understands.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  }

  private objectKey(key: string): string {
    return this.prefix + key
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: body,
        ContentLength: body.length,
        // S3 refuses the write (BadDigest) if the bytes it received differ from the bytes we sent.
        ContentMD5: createHash('md5').update(body).digest('base64'),
        ContentType: 'application/octet-stream',
        // Served as is when tarball GETs redirect to the store.
        CacheControl: IMMUTABLE,
      }),
    )
  }

  private async getObject(key: string): Promise<GetObjectCommandOutput | undefined> {
    try {
      return await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
    } catch (e) {
      if (isMissing(e)) return undefined
      throw e
    }
  }

  async get(key: string): Promise<BlobHandle | undefined> {
    const out = await this.getObject(key)
    if (!out) return undefined
    // On Node the SDK's body is the HTTP response stream itself (an IncomingMessage).
    if (!(out.Body instanceof Readable)) throw new Error(`S3 GetObject for ${key} returned no stream`)
    return { body: out.Body, size: out.ContentLength ?? 0 }
  }

  async read(key: string): Promise<Buffer | undefined> {
    const out = await this.getObject(key)
    if (!out?.Body) return undefined
    const bytes = await out.Body.transformToByteArray()
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  async delete(key: string): Promise<void> {
    // S3 answers 204 for a key that does not exist, like `rm -f`.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
  }

  /**
   * ListObjects below `prefix + prefix-argument`, `listPageSize` keys a page, each page starting
   * after the last key of the one before (the `Marker`, as S3 documents for a truncated listing
   * without a delimiter). Keys come back without the store's prefix. An object without a
   * LastModified (no real store omits it) counts as written now: `pier gc` then spares it.
   *
   * Version 1 of the call on purpose: every S3-compatible store has it, whereas ListObjectsV2's
   * continuation tokens are opaque, and s3rver (the store the tests run against) fails to make them
   * on OpenSSL 3 (it encrypts them with DES), answering 500 to any listing longer than one page.
   */
  async *list(prefix: string): AsyncIterable<BlobInfo> {
    let marker: string | undefined
    while (true) {
      const page = await this.client.send(
        new ListObjectsCommand({ Bucket: this.bucket, Prefix: this.objectKey(prefix), Marker: marker, MaxKeys: this.listPageSize }),
      )
      const contents = page.Contents ?? []
      for (const o of contents) {
        if (o.Key === undefined || !o.Key.startsWith(this.prefix)) continue
        yield { key: o.Key.slice(this.prefix.length), modified: o.LastModified ?? new Date(), size: o.Size ?? 0 }
      }
      const last = page.NextMarker ?? contents.at(-1)?.Key
      if (!page.IsTruncated || last === undefined || last === marker) return
      marker = last
    }
  }

  /** HeadObject: LastModified and ContentLength. */
  async stat(key: string): Promise<BlobInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
      return { key, modified: out.LastModified ?? new Date(), size: out.ContentLength ?? 0 }
    } catch (e) {
      if (isMissing(e)) return undefined
      throw e
    }
  }

  /** HeadBucket: the bucket exists and these credentials may use it. */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal })
  }

  /** A presigned GET URL (SigV4 query signature) valid for `expiresSeconds`. */
  signedUrl(key: string, expiresSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }), { expiresIn: expiresSeconds })
  }

  async close(): Promise<void> {
    this.client.destroy()
  }
}
