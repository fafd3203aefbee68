/**
 * Garbage collection of the blob store (`pier gc`): deletes tarball blobs that no metadata refers
 * to (no version row, unpublished ones included, and no cached uplink packument) once they are
 * older than a grace period. Safe to run while nodes serve, for the reasons below.
 *
 * Order of the steps, and why it is safe:
 * 1. List every blob below `tarballs/` with its modification time (`BlobStore.list`).
 * 2. THEN read every referenced key (`MetaStore.referencedBlobKeys`), so every blob that may be
 *    deleted was already stored when the references were read. A publish writes its blob before
 *    committing the version row that refers to it: if that commit came before the read, the key
 *    is seen; if it comes after, the blob looks unreferenced but was written at most one publish
 *    duration before the read, so it is younger than the grace period and kept. The one case this
 *    cannot cover is a publish that takes longer than the grace period between writing its blob
 *    and committing (the default grace is 24 hours; a publish takes seconds).
 * 3. For each unreferenced blob older than the grace period, `stat` it again and delete it only if
 *    it is still that old. A `put` of bytes already stored refreshes the blob's modification time
 *    (`BlobInfo.modified`), so a publish re-using an old orphan's bytes (a retry after a failed
 *    publish, say) makes it young again before committing, and this re-check spares it. What
 *    remains is the instant between that `stat` and the `delete`.
 *
 * Other things to know: a node may briefly (up to `storage.meta.max_staleness`) hold a cached
 * package state naming a tarball that `allow_previous_version` has since replaced and gc then
 * deleted; cached uplink tarballs that are deleted (their packument left the cache) are fetched
 * again on demand. Blobs outside `tarballs/` are never touched.
 */
import { TARBALL_PREFIX } from '../registry/blob-keys.js'
import type { BlobInfo, BlobStore, PackageStore } from '../registry/stores.js'


/** Options of `collectGarbage`. */
export interface GcOptions {
  /** Unreferenced blobs modified less than this many milliseconds before the run started are kept. */
  graceMs: number
  /** Report only: delete nothing (and skip the re-check of step 3). */
  dryRun: boolean
  /** Clock, ms since the epoch (default `Date.now`). */
  now?: () => number
}

/** What one run found and did. Sizes are bytes. */
export interface GcReport {
  /** Blobs listed below `tarballs/`, and their total size. */
  blobs: number
  bytes: number
  /** Keys the metadata referred to (with repeats: one per version row or cached version). */
  references: number
  /** Listed blobs that no reference names. */
  unreferenced: number
  unreferencedBytes: number
  /** Unreferenced blobs deleted; on a dry run, those that would have been. */
  deleted: number
  deletedBytes: number
  /** Their keys, in listing order. */
  deletedKeys: string[]
  /** Unreferenced blobs kept because younger than the grace period (when listed or re-checked). */
  kept: number
  keptBytes: number
  /** Unreferenced blobs already gone when re-checked (another gc, or an operator, removed them). */
  gone: number
  graceMs: number
  dryRun: boolean
}

/** Thrown when the run would be unsafe to carry out (nothing is deleted). */
export class GcRefusedError extends Error {
  override name = 'GcRefusedError'
}

/**
 * Runs one garbage collection; see the file comment for the steps and their safety.
 * @throws GcRefusedError when the metadata refers to no blob at all while the store holds blobs
 *   past the grace period: most likely a configuration naming the wrong database, so deleting
 *   would empty a store that belongs to another one
 * @throws Error from either store (the run stops; blobs deleted so far stay deleted, which is
 *   harmless: they were unreferenced)
 */
export async function collectGarbage(meta: Pick<PackageStore, 'referencedBlobKeys'>, blobs: BlobStore, opts: GcOptions): Promise<GcReport> {
  const now = opts.now ?? Date.now
  const cutoff = now() - opts.graceMs
  const report: GcReport = {
    blobs: 0,
    bytes: 0,
    references: 0,
    unreferenced: 0,
    unreferencedBytes: 0,
    deleted: 0,
    deletedBytes: 0,
    deletedKeys: [],
    kept: 0,
    keptBytes: 0,
    gone: 0,
    graceMs: opts.graceMs,
    dryRun: opts.dryRun,
  }
  // Step 1: list first.
  const listed = new Map<string, BlobInfo>()
  for await (const b of blobs.list(TARBALL_PREFIX)) {
    if (listed.has(b.key)) continue
    listed.set(b.key, b)
    report.blobs++
    report.bytes += b.size
  }
  // Step 2: references afterwards; what is left in `listed` is unreferenced.
  for await (const key of meta.referencedBlobKeys()) {
    report.references++
    listed.delete(key)
  }
  const old = [...listed.values()].filter((b) => b.modified.getTime() <= cutoff)
  if (report.references === 0 && old.length > 0) {
    throw new GcRefusedError(
      `the metadata store refers to no blob at all, yet the blob store holds ${report.blobs} blobs: refusing to delete them. ` +
        'Check that the configuration names the database these blobs belong to (storage.meta).',
    )
  }
  for (const b of listed.values()) {
    report.unreferenced++
    report.unreferencedBytes += b.size
  }
  const keep = (b: BlobInfo): void => {
    report.kept++
    report.keptBytes += b.size
  }
  for (const b of listed.values()) {
    if (b.modified.getTime() > cutoff) {
      keep(b)
      continue
    }
    if (!opts.dryRun) {
      // Step 3: still as old as when listed?
      const current = await blobs.stat(b.key)
      if (!current) {
        report.gone++
        continue
      }
      if (current.modified.getTime() > cutoff) {
        keep(current)
        continue
      }
      await blobs.delete(b.key)
    }
    report.deleted++
    report.deletedBytes += b.size
    report.deletedKeys.push(b.key)
  }
  return report
}
