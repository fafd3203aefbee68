/**
 * Chooses the blob store from `storage.type`: tarballs under `<storage.local.path>/blobs` on
 * local disk, or in the bucket of `storage.s3`.
 */
import { join } from 'node:path'
import type { Config } from '../../config/schema.js'
import type { BlobStore } from '../../registry/stores.js'
import { FsBlobStore } from './fs-blob-store.js'

/**
 * Opens the configured blob store, ready for use.
 * @param dataDir the resolved `storage.local.path`
 * @param opts.clearTemp remove the disk store's leftover temp files (default true, for a node
 *   starting); false from a tool that runs beside serving nodes (`pier gc`)
 */
export async function openBlobStore(storage: Config['storage'], dataDir: string, opts: { clearTemp?: boolean } = {}): Promise<BlobStore> {
  if (storage.type === 's3') {
    // The schema refuses `type: s3` without an `s3` section; this only narrows the type.
    if (!storage.s3) throw new Error('storage.s3.bucket: required when storage.type is s3')
    // Loaded only when configured: the AWS SDK costs memory that a disk-backed Pier does not need.
    const { S3BlobStore } = await import('./s3-blob-store.js')
    const { bucket, prefix, region, accessKeyId, secretAccessKey, endpoint, forcePathStyle } = storage.s3
    return new S3BlobStore({ bucket, prefix, region, accessKeyId, secretAccessKey, endpoint, forcePathStyle })
  }
  const fs = new FsBlobStore(join(dataDir, 'blobs'))
  await fs.init({ clearTemp: opts.clearTemp })
  return fs
}

/** Seconds a presigned tarball URL lives when tarball GETs redirect to the store; else undefined. */
export function tarballRedirectSeconds(storage: Config['storage']): number | undefined {
  return storage.type === 's3' && storage.s3?.redirect ? storage.s3.expires : undefined
}
