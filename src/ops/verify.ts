/**
 * The blob store's health check (`pier verify`): every live version's tarball is in the blob store
 * and hashes to the version's integrity, every dist-tag names a live version, no old blob is left
 * that nothing refers to, and the cached uplink tarballs that are stored are intact. With `repair`,
 * what can be repaired without a human is: orphans are deleted (by `collectGarbage`, exactly as
 * `pier gc` deletes them) and damaged cached tarballs are removed, so the next request fetches them
 * from the uplink again and verifies them on the way. Nothing else is touched.
 *
 * The steps, each read lazily (memory bounded by one page of rows, the blob keys, and the problems):
 * 1. List every blob below `tarballs/` (key and size): which cached tarballs are stored.
 * 2. Orphans: `collectGarbage` (ops/gc.ts) with the grace period, as a dry run unless repairing.
 * 3. Live versions, page by page (`VerifyStore.liveVersionBlobs`): each blob is streamed through a
 *    hash (never read whole), at most `concurrency` at a time. Unpublished versions are skipped:
 *    their blobs are kept by gc, but nothing serves them.
 * 4. Dist-tags (`VerifyStore.distTagTargets`): a tag naming no version, or an unpublished one.
 * 5. Cached uplink packuments (`VerifyStore.cachedPackumentTexts`), read the way Pier serves them
 *    (`tarballIndex`, `expectedDigest`, `cachedTarballKey`): each of their tarballs that the
 *    listing of step 1 holds is hashed against the digest the uplink's manifest promises. A cached
 *    tarball that is not stored is normal (they are fetched on demand) and not a problem.
 *
 * What cannot be repaired here, and is only reported: a missing or damaged local tarball (Pier has
 * no other copy of its bytes; restore the blob from a backup), and a dangling dist-tag (which
 * version it should name is a human's decision). Note that on disk a `put` of the right bytes does
 * not replace a damaged file (FsBlobStore keeps an existing blob and only touches it), which is why
 * a damaged cached tarball is deleted rather than rewritten.
 *
 * Runs beside serving nodes: what is written while it runs may or may not be seen. A version whose
 * blob is replaced (`allow_previous_version`) during the run may be reported once; run it again.
 */
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { cachedTarballKey, TARBALL_PREFIX } from '../registry/blob-keys.js'
import { expectedDigest, integrityOf, type ExpectedDigest } from '../registry/integrity.js'
import type { BlobStore, PackageStore } from '../registry/stores.js'
import { parseUplinkPackument, tarballIndex } from '../uplink/rewrite.js'
import { collectGarbage } from './gc.js'

/** One live version's tarball facts, as `VerifyStore.liveVersionBlobs` yields them. */
export interface LiveVersionBlob {
  name: string
  version: string
  /** Blob key (blob-keys.ts). */
  tarball_key: string
  /** `sha512-<base64>` of the tarball. */
  integrity: string
  /** sha1 hex of the tarball. */
  shasum: string
  /** Tarball size, bytes. */
  size: number
}

/** One dist-tag and what its version is, as `VerifyStore.distTagTargets` yields them. */
export interface DistTagTarget {
  name: string
  tag: string
  version: string
  /** `live`: a version row without `unpublished`; `unpublished`: a row with it; `missing`: no row. */
  state: 'live' | 'unpublished' | 'missing'
}

/** One cached uplink packument, as `VerifyStore.cachedPackumentTexts` yields them. */
export interface CachedPackumentText {
  name: string
  uplink: string
  /** The packument JSON as the uplink sent it. */
  body: string
}

/**
 * What `verifyStore` reads from the metadata store besides gc's references (implemented by
 * KyselyMetaStore). Each is read page by page, each page its own query (no long transaction), in
 * primary-key order; rows written while it runs may or may not be seen.
 */
export interface VerifyStore extends Pick<PackageStore, 'referencedBlobKeys'> {
  /** Every version not unpublished, in (name, version) order. @throws the driver's error */
  liveVersionBlobs(): AsyncIterable<LiveVersionBlob>
  /** Every dist-tag with the state of the version it names, in (name, tag) order. @throws the driver's error */
  distTagTargets(): AsyncIterable<DistTagTarget>
  /** Every row of the uplink cache, in (name, uplink) order. @throws the driver's error */
  cachedPackumentTexts(): AsyncIterable<CachedPackumentText>
}

/**
 * The kinds of problem, in the order the report lists them:
 * - `missing-blob`: a live version's tarball is not in the blob store;
 * - `integrity-mismatch`: it is, but its bytes do not hash to the version's integrity;
 * - `dangling-dist-tag`: a tag names a version that does not exist or is unpublished;
 * - `orphan-blob`: a blob below `tarballs/` that no version and no cached packument refers to,
 *   older than the grace period (what `pier gc` deletes);
 * - `cached-mismatch`: a stored tarball of a cached uplink packument whose bytes do not hash to
 *   the digest the uplink's manifest promises.
 */
export type VerifyProblemKind = 'missing-blob' | 'integrity-mismatch' | 'dangling-dist-tag' | 'orphan-blob' | 'cached-mismatch'

/** The report's order of kinds. */
export const PROBLEM_KINDS: readonly VerifyProblemKind[] = ['missing-blob', 'integrity-mismatch', 'dangling-dist-tag', 'orphan-blob', 'cached-mismatch']

/** One thing found wrong. Fields that do not apply to the kind are absent. */
export interface VerifyProblem {
  kind: VerifyProblemKind
  /** Package name (all kinds but `orphan-blob`). */
  package?: string
  /** The version (of the tarball, or the one a dangling tag names). */
  version?: string
  /** `dangling-dist-tag`: the tag. */
  tag?: string
  /** `cached-mismatch`: the uplink whose cached packument names the tarball. */
  uplink?: string
  /** Blob key (all kinds but `dangling-dist-tag`). */
  key?: string
  /** Blob size in bytes, where known (the bytes read, or the listed size of an orphan). */
  size?: number
  /** Mismatches: the SRI string the bytes should have (`sha512-<base64>`). */
  expected?: string
  /** Mismatches: the SRI string they have, same algorithm. */
  actual?: string
  /** What is wrong, one clause (no trailing period). */
  detail: string
  /** Whether `repair` fixed it (then it no longer counts against the exit code). */
  repaired: boolean
  /** What was done, or what a human must do, one clause. */
  action: string
}

/** Options of `verifyStore`. */
export interface VerifyOptions {
  /** Unreferenced blobs modified less than this many milliseconds ago are not orphans (gc's grace period). */
  graceMs: number
  /** Delete orphans (via `collectGarbage`) and damaged cached tarballs; report the rest. */
  repair: boolean
  /** Blob reads in flight at once (default 8). */
  concurrency?: number
  /** Clock, ms since the epoch (default `Date.now`), handed to `collectGarbage`. */
  now?: () => number
}

/** What one run checked and found. Sizes are bytes. */
export interface VerifyReport {
  /** Live versions checked. */
  versions: number
  /** Blobs read and hashed (live versions' and stored cached tarballs'), and the bytes read. */
  blobs: number
  bytes: number
  /** Dist-tags checked. */
  distTags: number
  /** Blobs listed below `tarballs/`. */
  listed: number
  /** Cached uplink packuments read, the tarballs they name (with a digest), and how many of those are stored (each checked). */
  cachedPackuments: number
  cachedTarballs: number
  cachedStored: number
  /** Unreferenced blobs not reported because younger than the grace period. */
  youngUnreferenced: number
  /** Problems, in `PROBLEM_KINDS` order, then by package, version, tag and key. */
  problems: VerifyProblem[]
  /** Problems not repaired: the run is clean when this is 0. */
  remaining: number
  graceMs: number
  repair: boolean
}

/**
 * Streams `body` through a hash.
 * @returns the digest (base64) and the bytes read
 * @throws the stream's error (a read failure, a connection reset)
 */
async function hashStream(body: Readable, algorithm: string): Promise<{ digest: string; bytes: number }> {
  const hash = createHash(algorithm)
  let bytes = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk)
    bytes += chunk.length
  }
  return { digest: hash.digest('base64'), bytes }
}

/**
 * Runs `fn` on each item of `items` with at most `limit` calls in flight, pulling items only as
 * slots free up (so an iterable read page by page is never read ahead more than `limit` items).
 * @throws the first error `fn` threw (after the calls in flight settle; no new ones start)
 */
async function forEachBounded<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>()
  let failed = false
  let failure: unknown
  for await (const item of items) {
    if (failed) break
    const p: Promise<void> = fn(item)
      .catch((e: unknown) => {
        if (!failed) {
          failed = true
          failure = e
        }
      })
      .finally(() => running.delete(p))
    running.add(p)
    if (running.size >= limit) await Promise.race(running)
  }
  await Promise.all(running)
  if (failed) throw failure
}

/** One stored tarball of a cached packument, to check. */
interface CachedTarball {
  name: string
  uplink: string
  version: string
  key: string
  expected: ExpectedDigest
}

const BACKUP = 'not repaired: Pier has no other copy of these bytes, restore the blob from a backup'

/**
 * Checks the stores; see the file comment for the steps.
 * @returns the report (also when problems were found: the caller decides the exit code)
 * @throws GcRefusedError (ops/gc.ts) when the metadata refers to no blob at all while the store
 *   holds blobs past the grace period: a configuration naming the wrong database, in which every
 *   blob would be an orphan (nothing is read further, nothing deleted)
 * @throws Error from either store (the run stops; with `repair`, what was deleted so far stays
 *   deleted, which is harmless: orphans, and cached copies fetched again on demand)
 */
export async function verifyStore(meta: VerifyStore, blobs: BlobStore, opts: VerifyOptions): Promise<VerifyReport> {
  const limit = Math.max(1, opts.concurrency ?? 8)
  const problems: VerifyProblem[] = []
  const report: VerifyReport = {
    versions: 0,
    blobs: 0,
    bytes: 0,
    distTags: 0,
    listed: 0,
    cachedPackuments: 0,
    cachedTarballs: 0,
    cachedStored: 0,
    youngUnreferenced: 0,
    problems,
    remaining: 0,
    graceMs: opts.graceMs,
    repair: opts.repair,
  }

  // Step 1: what is stored (key → size).
  const listed = new Map<string, number>()
  for await (const b of blobs.list(TARBALL_PREFIX)) listed.set(b.key, b.size)
  report.listed = listed.size

  // Step 2: orphans, as gc finds (and with repair deletes) them.
  const gc = await collectGarbage(meta, blobs, { graceMs: opts.graceMs, dryRun: !opts.repair, ...(opts.now ? { now: opts.now } : {}) })
  report.youngUnreferenced = gc.kept
  for (const key of gc.deletedKeys) {
    const size = listed.get(key)
    problems.push({
      kind: 'orphan-blob',
      key,
      ...(size === undefined ? {} : { size }),
      detail: `no version and no cached packument refers to it, unchanged for longer than the grace period`,
      repaired: opts.repair,
      action: opts.repair ? 'deleted (as pier gc does)' : 'pier verify --repair or pier gc deletes it',
    })
  }

  // Step 3: live versions.
  /** Keys of live versions found damaged: a cached tarball under the same key is not deleted. */
  const damagedLocal = new Set<string>()
  await forEachBounded(meta.liveVersionBlobs(), limit, async (v) => {
    report.versions++
    const expected = expectedDigest(v.integrity, v.shasum)
    const h = await blobs.get(v.tarball_key)
    if (!h) {
      damagedLocal.add(v.tarball_key)
      problems.push({ kind: 'missing-blob', package: v.name, version: v.version, key: v.tarball_key, detail: 'the tarball is not in the blob store', repaired: false, action: BACKUP })
      return
    }
    const { digest, bytes } = await hashStream(h.body, expected?.algorithm ?? 'sha512')
    report.blobs++
    report.bytes += bytes
    if (expected?.digests.includes(digest)) return
    damagedLocal.add(v.tarball_key)
    const actual = `${expected?.algorithm ?? 'sha512'}-${digest}`
    problems.push({
      kind: 'integrity-mismatch',
      package: v.name,
      version: v.version,
      key: v.tarball_key,
      size: bytes,
      expected: expected ? integrityOf(expected) : v.integrity,
      actual,
      detail: expected
        ? `the stored bytes (${bytes} bytes, ${v.size} expected) hash to ${actual}, not to the version's integrity ${integrityOf(expected)}`
        : `the version records no usable integrity ("${v.integrity}") or shasum`,
      repaired: false,
      action: BACKUP,
    })
  })

  // Step 4: dist-tags.
  for await (const t of meta.distTagTargets()) {
    report.distTags++
    if (t.state === 'live') continue
    problems.push({
      kind: 'dangling-dist-tag',
      package: t.name,
      tag: t.tag,
      version: t.version,
      detail: t.state === 'missing' ? `the tag names version ${t.version}, which does not exist` : `the tag names version ${t.version}, which is unpublished`,
      repaired: false,
      action: `not repaired (which version it should name needs a human): npm dist-tag add ${t.name}@<version> ${t.tag}, or npm dist-tag rm ${t.name} ${t.tag}`,
    })
  }

  // Step 5: stored tarballs of cached packuments.
  const checked = new Set<string>()
  async function* storedCachedTarballs(): AsyncIterable<CachedTarball> {
    for await (const row of meta.cachedPackumentTexts()) {
      report.cachedPackuments++
      const parsed = parseUplinkPackument(row.name, row.body)
      // A copy that is not a packument of its name is never served: the cache fetches it again.
      if (!('doc' in parsed)) continue
      for (const t of tarballIndex(row.name, parsed.doc).values()) {
        const expected = expectedDigest(t.integrity, t.shasum)
        if (!expected) continue
        report.cachedTarballs++
        const key = cachedTarballKey(expected)
        if (!listed.has(key) || checked.has(key)) continue
        checked.add(key)
        yield { name: row.name, uplink: row.uplink, version: t.version, key, expected }
      }
    }
  }
  await forEachBounded(storedCachedTarballs(), limit, async (c) => {
    const h = await blobs.get(c.key)
    // Deleted since the listing (its packument left the cache and gc ran): fetched on demand.
    if (!h) return
    report.cachedStored++
    const { digest, bytes } = await hashStream(h.body, c.expected.algorithm)
    report.blobs++
    report.bytes += bytes
    if (c.expected.digests.includes(digest)) return
    const expected = integrityOf(c.expected)
    const actual = `${c.expected.algorithm}-${digest}`
    const shared = damagedLocal.has(c.key)
    let action: string
    if (!opts.repair) action = 'pier verify --repair removes it (fetched again on next request)'
    else if (shared) action = `not removed: it is also the blob of a local version (reported above), ${BACKUP}`
    else {
      await blobs.delete(c.key)
      action = 'removed, fetched again on next request'
    }
    problems.push({
      kind: 'cached-mismatch',
      package: c.name,
      version: c.version,
      uplink: c.uplink,
      key: c.key,
      size: bytes,
      expected,
      actual,
      detail: `the stored bytes (${bytes} bytes) hash to ${actual}, not to ${expected} that uplink "${c.uplink}" promises`,
      repaired: opts.repair && !shared,
      action,
    })
  })

  problems.sort(compareProblems)
  report.remaining = problems.filter((p) => !p.repaired).length
  return report
}

/** Report order: kind (`PROBLEM_KINDS`), then package, version, tag, key. */
function compareProblems(a: VerifyProblem, b: VerifyProblem): number {
  const byKind = PROBLEM_KINDS.indexOf(a.kind) - PROBLEM_KINDS.indexOf(b.kind)
  if (byKind !== 0) return byKind
  for (const f of ['package', 'version', 'tag', 'key'] as const) {
    const x = a[f] ?? ''
    const y = b[f] ?? ''
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}
