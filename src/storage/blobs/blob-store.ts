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
  delete(key: string): Promise<void>
  /**
   * A URL from which anyone may GET the blob for the next `expiresSeconds` seconds, for stores
   * that can serve clients directly (S3's presigned URLs); absent when the store cannot.
   */
  signedUrl?(key: string, expiresSeconds: number): Promise<string>
  /** Releases connections and handles (called once, when Pier stops). */
  close?(): Promise<void>
}

/** The content-addressed key of a tarball whose sha512 digest is `sha512Hex`. */
export function tarballKey(sha512Hex: string): string {
  return `tarballs/sha512/${sha512Hex.slice(0, 2)}/${sha512Hex}.tgz`
}
