/**
 * Tarball storage. Keys are content addresses (`tarballs/sha512/<2 hex>/<hex>.tgz`), so a `put`
 * of the same bytes is idempotent and a blob never changes once written.
 */
import type { Readable } from 'node:stream'

/** A stored blob, opened for reading. */
export interface BlobHandle {
  body: Readable
  /** Bytes. */
  size: number
}

/** What a listing (`BlobStore.list`) or `BlobStore.stat` tells about one stored blob. */
export interface BlobInfo {
  /** The blob's key (the store's own prefix, if any, removed): what `get` and `delete` take. */
  key: string
  /**
   * When the blob was last written. A `put` of bytes already stored refreshes it (FsBlobStore
   * touches the file, S3 rewrites the object), so it is never older than the latest `put` of the
   * key: `pier gc` relies on this to spare blobs that a publish in progress is about to reference.
   */
  modified: Date
  /** Bytes. */
  size: number
}

/** Blob storage backend: local disk (FsBlobStore) or an S3-compatible object store (S3BlobStore). */
export interface BlobStore {
  /**
   * Stores `body` under `key` durably (the bytes are on stable storage when the promise resolves),
   * so the metadata commit that references it may follow. Overwrites nothing visible until complete.
   */
  put(key: string, body: Uint8Array): Promise<void>
  /** Opens a blob; `undefined` when missing. */
  get(key: string): Promise<BlobHandle | undefined>
  /** Reads a whole blob into memory; `undefined` when missing. */
  read(key: string): Promise<Buffer | undefined>
  /** Removes a blob; a missing key is not an error (like `rm -f`). */
  delete(key: string): Promise<void>
  /**
   * Every stored blob whose key starts with `prefix` (e.g. `tarballs/`), in no particular order,
   * read lazily page by page (S3) or folder by folder (disk). Writes in progress are not listed
   * (FsBlobStore's temp files; S3 shows an object only once its PUT completed). A blob put or
   * deleted while the listing runs may or may not appear.
   * @throws Error when `prefix` would leave the store (`..`), or the backend fails
   */
  list(prefix: string): AsyncIterable<BlobInfo>
  /** The blob's size and modification time; `undefined` when missing. */
  stat(key: string): Promise<BlobInfo | undefined>
  /**
   * Checks cheaply that the backend answers (disk: the folder exists and is writable; S3: the
   * bucket is reachable with these credentials, HeadBucket). Used by `GET /-/health`, which
   * bounds it with its own timeout and aborts `signal` when that expires.
   * @throws Error describing the failure
   */
  ping(signal?: AbortSignal): Promise<void>
  /**
   * A URL from which anyone may GET the blob for the next `expiresSeconds` seconds, for stores
   * that can serve clients directly (S3's presigned URLs); absent when the store cannot.
   */
  signedUrl?(key: string, expiresSeconds: number): Promise<string>
  /** Releases connections and handles (called once, when Pier stops). */
  close?(): Promise<void>
}

/** The folder (key prefix) below which every tarball key lives; `pier gc` lists only this. */
export const TARBALL_PREFIX = 'tarballs/'

/** The content-addressed key of a tarball whose sha512 digest is `sha512Hex`. */
export function tarballKey(sha512Hex: string): string {
  return `tarballs/sha512/${sha512Hex.slice(0, 2)}/${sha512Hex}.tgz`
}
