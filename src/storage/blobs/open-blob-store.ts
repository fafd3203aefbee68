/**
 * Chooses the blob store from `storage.type`: tarballs under `<storage.local.path>/blobs` on
 * local disk, or in the bucket of `storage.s3`. Also the start-up sweep of the disk store's temp
 * files (`sweepBlobTemp`), which only `pier start` runs.
 */
import { join } from 'node:path'
import type { Config } from '../../config/schema.js'
import type { BlobStore } from '../../registry/stores.js'
import { FsBlobStore, type TempSweep } from './fs-blob-store.js'

/**
 * Opens the configured blob store, ready for use. Never removes anything: the disk store's temp
 * files may be writes in progress of other processes sharing the folder (`sweepBlobTemp` removes
 * the ones that are not).
 * @param dataDir the resolved `storage.local.path`
 * @throws Error when `storage.type` is s3 without an `s3` section; the disk store's mkdir error
 */
export async function openBlobStore(storage: Config['storage'], dataDir: string): Promise<BlobStore> {
  if (storage.type === 's3') {
    // The schema refuses `type: s3` without an `s3` section; this only narrows the type.
    if (!storage.s3) throw new Error('storage.s3.bucket: required when storage.type is s3')
    // Loaded only when configured: the AWS SDK costs memory that a disk-backed Pier does not need.
    const { S3BlobStore } = await import('./s3-blob-store.js')
    const { bucket, prefix, region, accessKeyId, secretAccessKey, endpoint, forcePathStyle } = storage.s3
    return new S3BlobStore({ bucket, prefix, region, accessKeyId, secretAccessKey, endpoint, forcePathStyle })
  }
  const fs = new FsBlobStore(join(dataDir, 'blobs'))
  await fs.init()
  return fs
}

/**
 * Removes the temp files of interrupted blob writes under `<dataDir>/blobs/.tmp`: those of
 * processes of this host that have exited, and any older than 24 h (FsBlobStore.sweepTemp). For
 * `pier start`, before it serves; one-shot commands never call it. S3 has no temp files (an object
 * appears only once its PUT completed).
 * @param dataDir the resolved `storage.local.path`
 * @returns what was removed and kept; undefined for `storage.type: s3`
 * @throws the file system's error
 */
export async function sweepBlobTemp(storage: Config['storage'], dataDir: string): Promise<TempSweep | undefined> {
  if (storage.type === 's3') return undefined
  return new FsBlobStore(join(dataDir, 'blobs')).sweepTemp()
}

/** Seconds a presigned tarball URL lives when tarball GETs redirect to the store; else undefined. */
export function tarballRedirectSeconds(storage: Config['storage']): number | undefined {
  return storage.type === 's3' && storage.s3?.redirect ? storage.s3.expires : undefined
}
