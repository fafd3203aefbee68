/**
 * `pier backup` and `pier restore` (docs/backup.md): a consistent snapshot of the metadata and the
 * tarball blobs it references, written as one tar stream while Pier serves, and its restore into
 * an empty database and blob store, checked entry by entry.
 *
 * The archive (POSIX tar, as `tar-stream` writes it; gzipped when the caller asks), in this order:
 * 1. `pier-backup.json`: the manifest (`BackupManifest`): format, Pier's version, time, backend,
 *    migrations applied, the change sequence's high-water mark, `since` for an incremental backup,
 *    rows per table and the number of blobs;
 * 2. `meta/<table>/<n>.jsonl`: the rows of each table in primary-key order, one JSON object per
 *    line, in chunks of at most `CHUNK_ROWS` rows or `CHUNK_BYTES` bytes (a tar header states its
 *    entry's size before the bytes, so a table is cut in chunks instead of being held whole);
 * 3. `blobs/<key>`: each tarball blob the versions refer to, streamed from the blob store;
 * 4. `checksums.sha256`: the SHA-256 of every entry before it, in `sha256sum` format
 *    (`<hex>  <name>`), so `tar x` then `sha256sum -c checksums.sha256` checks an archive too.
 *
 * Consistency: every row and every blob key comes from one read transaction (`BackupSource`,
 * implemented by storage/meta/snapshot.ts). Blobs are immutable and content-addressed, and a
 * publish stores its blob before committing the version row (docs/architecture.md, "A PUT"), so
 * every blob a committed row refers to is in the store when the snapshot reads the row.
 *
 * This module knows no database: it talks to the ports below, which storage/meta/snapshot.ts
 * implements, and to the registry's `BlobStore`.
 */
import { createHash } from 'node:crypto'
import { Readable, Transform, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, createGzip } from 'node:zlib'
import { extract as tarExtract, pack as tarPack, type Extract, type Pack } from 'tar-stream'
import { cachedTarballKey, tarballKey } from '../registry/blob-keys.js'
import { expectedDigest, type ExpectedDigest } from '../registry/integrity.js'
import type { BlobStore } from '../registry/stores.js'

/** The archive's format name and version (`BackupManifest.format`, `.version`). */
export const BACKUP_FORMAT = 'pier-backup'
export const BACKUP_FORMAT_VERSION = 1
/** Entry names of the manifest and of the trailing checksums. */
export const MANIFEST_ENTRY = 'pier-backup.json'
export const CHECKSUMS_ENTRY = 'checksums.sha256'
/** Most rows, and bytes (before a row that does not fit), of one `meta/<table>/<n>.jsonl` chunk. */
export const CHUNK_ROWS = 1000
export const CHUNK_BYTES = 4 * 1024 * 1024
/** Most rows, and bound parameters, of one INSERT of a restore (under SQLite's and PostgreSQL's limits). */
const INSERT_ROWS = 500
const INSERT_PARAMS = 8000

/** Which rows of a table an incremental backup carries (see storage/meta/snapshot.ts, `TableScope`). */
export type TableScope = 'package' | 'changes' | 'whole'

/** A table as the ports describe it. */
export interface TableInfo {
  name: string
  scope: TableScope
}

/** One row: column name → string, number or null. */
export type BackupRow = Record<string, unknown>

/**
 * What a backup reads, all of it from one snapshot of the metadata (storage/meta/snapshot.ts,
 * `withSnapshot`). Every method throws the driver's error.
 */
export interface BackupSource {
  /** `sqlite` or `postgres`. */
  readonly dialect: string
  /** Every table, in the order the archive carries them. */
  readonly tables: readonly TableInfo[]
  /** Migrations applied, in name order. */
  migrations(): Promise<string[]>
  /** The largest `changes.seq`, 0 when empty. */
  highWater(): Promise<number>
  /** Rows of `table` the backup carries (with `since`: those of an incremental backup). */
  count(table: string, since?: number): Promise<number>
  /** Those rows, in primary-key order, read page by page. */
  rows(table: string, since?: number): AsyncIterable<BackupRow>
  /** Distinct blob keys of the versions carried, in key order. */
  blobKeys(since?: number): AsyncIterable<string>
  /** How many keys `blobKeys` yields. */
  countBlobKeys(since?: number): Promise<number>
}

/**
 * What a restore writes, all of it in one transaction that commits when the restore succeeded
 * and rolls back otherwise (storage/meta/snapshot.ts, `withBulkLoad`).
 */
export interface RestoreTarget {
  readonly dialect: string
  readonly tables: readonly TableInfo[]
  migrations(): Promise<string[]>
  highWater(): Promise<number>
  /** Rows per table. */
  counts(): Promise<Record<string, number>>
  /** Deletes the rows of the package-scoped tables of these packages. */
  deletePackages(names: readonly string[]): Promise<void>
  /** Deletes every row of `table`. */
  clear(table: string): Promise<void>
  /** Inserts rows of one table (columns: the first row's), `changes` rows already there skipped. */
  insert(table: string, rows: readonly BackupRow[]): Promise<void>
  /** Distinct `tarball_key`s of the versions of `names` (every version when undefined). */
  tarballKeys(names?: readonly string[]): AsyncIterable<string>
  /** Moves identity sequences past the restored rows. */
  finish(): Promise<void>
}

/** The manifest, `pier-backup.json`. Times are ISO 8601. */
export interface BackupManifest {
  format: typeof BACKUP_FORMAT
  version: typeof BACKUP_FORMAT_VERSION
  /** Version of the Pier that wrote it (package.json). */
  pier: string
  created: string
  /** The source's metadata dialect and blob store kind (`local` or `s3`). */
  backend: { meta: string; blobs: string }
  /** Migrations applied to the source, in name order. */
  migrations: string[]
  /** The change sequence's high-water mark in the snapshot: pass it as `--since` next time. */
  seq: number
  /** For an incremental backup, the `--since` it was taken with; null for a full one. */
  since: number | null
  /** Rows carried per table. */
  tables: Record<string, number>
  /** Blob entries carried. */
  blobs: number
}

/** What a backup wrote. Sizes are bytes. */
export interface BackupSummary {
  manifest: BackupManifest
  /** Tar entries (manifest, row chunks, blobs, checksums). */
  entries: number
  rows: number
  blobs: number
  /** Bytes of blob content. */
  blobBytes: number
  /** Bytes of the archive as written (after gzip when compressed). */
  bytes: number
}

/** What a restore loaded. Sizes are bytes. */
export interface RestoreSummary {
  manifest: BackupManifest
  entries: number
  rows: number
  blobs: number
  blobBytes: number
  /** Blobs the store already held with the right bytes (not written again). */
  blobsPresent: number
  /** Bytes of the archive as read (before gunzip). */
  bytes: number
}

/**
 * A backup or restore that cannot go on: a damaged or foreign archive, a target that is not
 * empty, a blob missing from the source. The message says what and what to do.
 */
export class BackupError extends Error {
  override name = 'BackupError'
}

/** Options of `writeBackup`. */
export interface BackupOptions {
  /** Incremental: only what changed after this change sequence number. */
  since?: number
  /** Gzip the archive. */
  gzip?: boolean
  /** Pier's version, for the manifest. */
  pier: string
  /** Blob store kind, for the manifest (`local` or `s3`). */
  blobsKind: string
  /** Clock (default `new Date()`): the manifest's `created` and every entry's mtime. */
  now?: Date
}

/** One entry of an archive being read (tar-stream's `Source`, which it does not export by name). */
type Entry = Extract extends AsyncIterable<infer S> ? S : never

/** Keys of tarball blobs: `tarballs/<algorithm>/<2 hex>/<hex>.tgz` (registry/blob-keys.ts). */
const BLOB_KEY = /^tarballs\/(sha512|sha384|sha256|sha1)\/([0-9a-f]{2})\/([0-9a-f]+)\.tgz$/

/** The digest a blob's key promises, or undefined for a key of another form. */
function keyDigest(key: string): ExpectedDigest | undefined {
  const m = BLOB_KEY.exec(key)
  if (!m || !m[3]?.startsWith(m[2] ?? '')) return undefined
  return { algorithm: m[1] as string, digests: [Buffer.from(m[3], 'hex').toString('base64')] }
}

/** Counts the bytes flowing through. */
class ByteCounter extends Transform {
  bytes = 0
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length
    cb(null, chunk)
  }
}

/**
 * Adds one entry to `pack` and resolves with its SHA-256 (hex) once it is in the archive stream
 * (which waits while the reader of the archive is slower: backpressure).
 * @param digest also hashed with this algorithm (a blob's key digest), returned base64 in `other`
 */
function addEntry(
  pack: Pack,
  name: string,
  size: number,
  mtime: Date,
  body: Buffer | Readable,
  digest?: string,
): Promise<{ sha256: string; other?: string }> {
  const sha256 = createHash('sha256')
  const other = digest ? createHash(digest) : undefined
  return new Promise((resolve, reject) => {
    const sink = pack.entry({ name, size, mtime, mode: 0o644, type: 'file' }, (err) => {
      if (err) {
        // The archive failed (its reader went away, or the blob's size was wrong): stop reading the blob.
        if (!Buffer.isBuffer(body)) body.destroy()
        reject(err instanceof Error ? err : new Error(String(err)))
      } else resolve({ sha256: sha256.digest('hex'), ...(other ? { other: other.digest('base64') } : {}) })
    })
    if (Buffer.isBuffer(body)) {
      sha256.update(body)
      other?.update(body)
      sink.write(body)
      sink.end(undefined)
      return
    }
    body.on('data', (c: Buffer) => {
      sha256.update(c)
      other?.update(c)
      if (!sink.write(c)) {
        body.pause()
        sink.once('drain', () => body.resume())
      }
    })
    body.once('end', () => sink.end(undefined))
    body.once('error', (e) => sink.destroy(e))
  })
}

/** Zero-padded chunk number, so entry names sort in archive order. */
const chunkName = (table: string, n: number): string => `meta/${table}/${String(n).padStart(6, '0')}.jsonl`

/**
 * Writes a backup of `source` (one snapshot) and the blobs its versions refer to into `out`.
 * `out` is ended when the archive is complete; on failure it is destroyed (the caller removes a
 * partial file).
 * @throws BackupError when a referenced blob is missing or does not match its key (the store is
 *   damaged: run `pier verify`), or `since` is beyond the high-water mark; the stores' and
 *   `out`'s errors
 */
export async function writeBackup(source: BackupSource, blobs: BlobStore, out: Writable, opts: BackupOptions): Promise<BackupSummary> {
  const now = opts.now ?? new Date()
  const since = opts.since
  const seq = await source.highWater()
  if (since !== undefined && since > seq) throw new BackupError(`--since ${since} is beyond the change sequence's high-water mark (${seq}): nothing to back up after it; was the previous backup taken of another registry?`)
  const tables: Record<string, number> = {}
  for (const t of source.tables) tables[t.name] = await source.count(t.name, since)
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    version: BACKUP_FORMAT_VERSION,
    pier: opts.pier,
    created: now.toISOString(),
    backend: { meta: source.dialect, blobs: opts.blobsKind },
    migrations: await source.migrations(),
    seq,
    since: since ?? null,
    tables,
    blobs: await source.countBlobKeys(since),
  }
  const summary: BackupSummary = { manifest, entries: 0, rows: 0, blobs: 0, blobBytes: 0, bytes: 0 }
  const sums: string[] = []

  const pack = tarPack()
  const counter = new ByteCounter()
  const written = opts.gzip ? pipeline(pack, createGzip(), counter, out) : pipeline(pack, counter, out)
  written.catch(() => undefined) // awaited below; this keeps an early failure from being "unhandled"

  const add = async (name: string, body: Buffer | Readable, size: number, digest?: string): Promise<string | undefined> => {
    const r = await addEntry(pack, name, size, now, body, digest)
    sums.push(`${r.sha256}  ${name}\n`)
    summary.entries++
    return r.other
  }

  try {
    const head = Buffer.from(JSON.stringify(manifest, null, 2) + '\n')
    await add(MANIFEST_ENTRY, head, head.length)
    for (const t of source.tables) {
      let n = 0
      let lines: string[] = []
      let bytes = 0
      const flush = async (): Promise<void> => {
        if (lines.length === 0) return
        const buf = Buffer.from(lines.join(''))
        lines = []
        bytes = 0
        await add(chunkName(t.name, ++n), buf, buf.length)
      }
      for await (const row of source.rows(t.name, since)) {
        const line = JSON.stringify(row) + '\n'
        const size = Buffer.byteLength(line)
        if (lines.length >= CHUNK_ROWS || (lines.length > 0 && bytes + size > CHUNK_BYTES)) await flush()
        lines.push(line)
        bytes += size
        summary.rows++
      }
      await flush()
    }
    for await (const key of source.blobKeys(since)) {
      const expected = keyDigest(key)
      if (!expected) throw new BackupError(`blob key ${JSON.stringify(key)} of a version is not a tarball key this Pier knows; run pier verify`)
      const handle = await blobs.get(key)
      if (!handle) throw new BackupError(`blob ${key} is missing from the blob store, though a version refers to it; run pier verify (nothing was backed up)`)
      const got = await add(`blobs/${key}`, handle.body, handle.size, expected.algorithm)
      if (got !== expected.digests[0]) throw new BackupError(`blob ${key} does not match its content address (the blob store is damaged); run pier verify (nothing was backed up)`)
      summary.blobs++
      summary.blobBytes += handle.size
    }
    const list = Buffer.from(sums.join(''))
    await add(CHECKSUMS_ENTRY, list, list.length)
    pack.finalize()
  } catch (e) {
    pack.destroy(e as Error)
    await written.catch(() => undefined)
    throw e
  }
  await written
  summary.bytes = counter.bytes
  return summary
}

/** Reads a whole entry (a row chunk or a blob: bounded by what the archive holds). */
async function readEntry(entry: Entry, hashes: { sha256: ReturnType<typeof createHash>; other?: ReturnType<typeof createHash> }): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of entry as unknown as AsyncIterable<Buffer>) {
    hashes.sha256.update(c)
    hashes.other?.update(c)
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}

/** Starts reading `input`, gunzipping it when it starts with gzip's magic bytes (1f 8b). */
async function maybeGunzip(input: Readable): Promise<Readable> {
  const it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  const first = await it.next()
  const head: Buffer | undefined = first.done ? undefined : (first.value as Buffer)
  const rest = Readable.from(
    (async function* () {
      if (head) yield head
      for (;;) {
        const n = await it.next()
        if (n.done) return
        yield n.value as Buffer
      }
    })(),
  )
  return head && head[0] === 0x1f && head[1] === 0x8b ? rest.pipe(createGunzip()) : rest
}

/** Validates the manifest's shape. @throws BackupError */
function parseManifest(buf: Buffer): BackupManifest {
  let m: unknown
  try {
    m = JSON.parse(buf.toString('utf8'))
  } catch {
    throw new BackupError(`${MANIFEST_ENTRY} is not JSON: not a Pier backup, or a damaged one`)
  }
  const o = m as Partial<BackupManifest>
  if (typeof m !== 'object' || m === null || o.format !== BACKUP_FORMAT) throw new BackupError(`${MANIFEST_ENTRY} does not describe a Pier backup`)
  if (o.version !== BACKUP_FORMAT_VERSION) throw new BackupError(`backup format version ${String(o.version)} is not one this Pier reads (it reads ${BACKUP_FORMAT_VERSION}); restore it with the Pier that wrote it (${String(o.pier)}) or a newer one`)
  if (typeof o.seq !== 'number' || !Array.isArray(o.migrations) || typeof o.tables !== 'object' || o.tables === null || typeof o.blobs !== 'number' || (o.since !== null && typeof o.since !== 'number')) {
    throw new BackupError(`${MANIFEST_ENTRY} is incomplete: a damaged backup`)
  }
  return o as BackupManifest
}

/**
 * Restores the archive read from `input` (gzipped or not): a full backup into an empty target,
 * or an incremental one on top of the state it follows. Every entry is checked as it is read
 * (each blob against its content address and its versions' integrity, every entry against
 * `checksums.sha256`, the row and blob counts against the manifest) and the metadata is loaded in
 * the one transaction `withTarget` runs, which commits only when all of it checked out. Blobs are
 * written as they come, before that commit: after a failed restore they are orphans that
 * `pier gc` removes, and a second restore finds them and checks them.
 * @param withTarget runs its function in one transaction of the target, migrated to this Pier's
 *   schema (commit on success)
 * @throws BackupError for a damaged or foreign archive, a target that is not empty (full) or does
 *   not follow on (incremental), a backup of a newer schema; the stores' errors. Nothing of the
 *   metadata is changed then.
 */
export async function restoreBackup(
  input: Readable,
  withTarget: <T>(fn: (t: RestoreTarget) => Promise<T>) => Promise<T>,
  blobs: BlobStore,
): Promise<RestoreSummary> {
  const counter = new ByteCounter()
  const extract = tarExtract()
  // pipe() does not forward errors: a read error of the input fails the counter, and so the restore.
  input.once('error', (e) => counter.destroy(e))
  const source = await maybeGunzip(input.pipe(counter))
  const fed = pipeline(source, extract)
  fed.catch(() => undefined) // awaited below
  const entries = extract[Symbol.asyncIterator]()
  try {
    const summary = await restoreEntries(entries, withTarget, blobs)
    await fed
    summary.bytes = counter.bytes
    return summary
  } catch (e) {
    extract.destroy()
    source.destroy()
    await fed.catch(() => undefined)
    if (e instanceof BackupError) throw e
    const msg = (e as Error).message
    // tar-stream's and zlib's own words for a cut or damaged archive.
    if (/unexpected end|Invalid tar header|incorrect header check|invalid (block|distance|stored)|Unexpected end of data|Size mismatch/i.test(msg)) throw new BackupError(`the archive is damaged or cut short (${msg}); nothing was restored`)
    throw e
  }
}

async function restoreEntries(
  entries: AsyncIterator<Entry>,
  withTarget: <T>(fn: (t: RestoreTarget) => Promise<T>) => Promise<T>,
  blobs: BlobStore,
): Promise<RestoreSummary> {
  const sums: string[] = []
  const firstEntry = await entries.next()
  if (firstEntry.done || firstEntry.value.header.name !== MANIFEST_ENTRY) throw new BackupError(`not a Pier backup: the archive does not start with ${MANIFEST_ENTRY}`)
  const mh = { sha256: createHash('sha256') }
  const manifest = parseManifest(await readEntry(firstEntry.value, mh))
  sums.push(`${mh.sha256.digest('hex')}  ${MANIFEST_ENTRY}\n`)
  const summary: RestoreSummary = { manifest, entries: 1, rows: 0, blobs: 0, blobBytes: 0, blobsPresent: 0, bytes: 0 }
  const incremental = manifest.since !== null

  return withTarget(async (target) => {
    // The target is migrated to this Pier's latest schema; a backup of a later one is refused.
    const known = await target.migrations()
    const unknown = manifest.migrations.filter((m) => !known.includes(m))
    if (unknown.length > 0) throw new BackupError(`the backup was taken of a newer schema (migrations ${unknown.join(', ')}, Pier ${manifest.pier}); restore it with that Pier or a newer one`)
    const scopes = new Map(target.tables.map((t) => [t.name, t.scope]))
    for (const name of Object.keys(manifest.tables)) {
      if (!scopes.has(name)) throw new BackupError(`the backup holds a table this Pier does not know (${name}); restore it with the Pier that wrote it (${manifest.pier}) or a newer one`)
    }
    const counts = await target.counts()
    if (!incremental) {
      const full = Object.entries(counts).filter(([, n]) => n > 0)
      if (full.length > 0) {
        throw new BackupError(`the target is not empty (${full.map(([t, n]) => `${t}: ${n} rows`).join(', ')}); restore a full backup into an empty data folder or database`)
      }
    } else {
      const high = await target.highWater()
      const since = manifest.since as number
      if (high < since) throw new BackupError(`this incremental backup follows change ${since}, but the target holds changes up to ${high} only; restore the backups in order (the full one, then each incremental)`)
      if (high > manifest.seq) throw new BackupError(`the target holds changes up to ${high}, past this incremental backup's ${manifest.seq}: it is newer than the backup`)
      // Tables carried whole replace the target's (rows deleted since the full backup go too).
      for (const t of target.tables) if (t.scope === 'whole') await target.clear(t.name)
    }

    const rowsSeen: Record<string, number> = {}
    const changedNames: string[] = []
    /** Keys of versions whose integrity does not name the key itself: checked when the blob comes. */
    const pendingIntegrity = new Map<string, ExpectedDigest[]>()
    const received = new Set<string>()
    let checksums: string | undefined

    for (;;) {
      const next = await entries.next()
      if (next.done) break
      const entry = next.value
      const name = entry.header.name
      summary.entries++
      if (checksums !== undefined) throw new BackupError(`the archive goes on after ${CHECKSUMS_ENTRY} (${name}): not one pier backup wrote`)
      if (name === CHECKSUMS_ENTRY) {
        checksums = (await readEntry(entry, { sha256: createHash('sha256') })).toString('utf8')
        continue
      }
      const meta = /^meta\/([a-z_]+)\/\d+\.jsonl$/.exec(name)
      if (meta) {
        const table = meta[1] as string
        const scope = scopes.get(table)
        if (!scope || !(table in manifest.tables)) throw new BackupError(`entry ${name}: a table the manifest does not list`)
        const h = { sha256: createHash('sha256') }
        const text = (await readEntry(entry, h)).toString('utf8')
        sums.push(`${h.sha256.digest('hex')}  ${name}\n`)
        const rows: BackupRow[] = []
        for (const line of text.split('\n')) {
          if (line === '') continue
          let row: unknown
          try {
            row = JSON.parse(line)
          } catch {
            throw new BackupError(`entry ${name}: a line is not JSON (a damaged backup)`)
          }
          if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new BackupError(`entry ${name}: a line is not a row`)
          rows.push(row as BackupRow)
        }
        rowsSeen[table] = (rowsSeen[table] ?? 0) + rows.length
        summary.rows += rows.length
        if (table === 'versions') for (const r of rows) checkVersionRow(r, pendingIntegrity, name)
        if (incremental && table === 'packages') {
          const names = rows.map((r) => String(r.name))
          changedNames.push(...names)
          await target.deletePackages(names)
        }
        await insertRows(target, table, rows)
        continue
      }
      if (name.startsWith('blobs/')) {
        const key = name.slice('blobs/'.length)
        const expected = keyDigest(key)
        if (!expected) throw new BackupError(`entry ${name}: not a tarball blob key`)
        const h = { sha256: createHash('sha256'), other: createHash(expected.algorithm) }
        const bytes = await readEntry(entry, h)
        sums.push(`${h.sha256.digest('hex')}  ${name}\n`)
        if (h.other.digest('base64') !== expected.digests[0]) throw new BackupError(`blob ${key} in the backup does not match its content address: the backup is damaged; nothing was restored`)
        for (const e of pendingIntegrity.get(key) ?? []) {
          if (!e.digests.includes(createHash(e.algorithm).update(bytes).digest('base64'))) throw new BackupError(`blob ${key} does not match the integrity of the version that refers to it: the backup is damaged; nothing was restored`)
        }
        pendingIntegrity.delete(key)
        if (await storedIntact(blobs, key, expected)) summary.blobsPresent++
        else await blobs.put(key, bytes)
        received.add(key)
        summary.blobs++
        summary.blobBytes += bytes.length
        continue
      }
      throw new BackupError(`entry ${name}: not part of a Pier backup`)
    }

    if (checksums === undefined) throw new BackupError(`the archive ends before ${CHECKSUMS_ENTRY}: it was cut short; nothing was restored`)
    if (checksums !== sums.join('')) {
      const want = new Set(checksums.split('\n'))
      const bad = sums.map((s) => s.slice(0, -1)).find((s) => !want.has(s))
      throw new BackupError(`an entry does not match ${CHECKSUMS_ENTRY}${bad ? ` (${bad.slice(66)})` : ' (entries missing)'}: the backup is damaged; nothing was restored`)
    }
    for (const [table, n] of Object.entries(manifest.tables)) {
      if ((rowsSeen[table] ?? 0) !== n) throw new BackupError(`table ${table}: the manifest says ${n} rows, the archive holds ${rowsSeen[table] ?? 0}: the backup is damaged`)
    }
    if (summary.blobs !== manifest.blobs) throw new BackupError(`the manifest says ${manifest.blobs} blobs, the archive holds ${summary.blobs}: the backup is damaged`)
    for await (const key of target.tarballKeys(incremental ? changedNames : undefined)) {
      if (received.has(key)) continue
      const expected = keyDigest(key)
      if (expected && (await blobs.stat(key))) continue
      throw new BackupError(`a version refers to blob ${key}, which neither the backup nor the blob store holds${incremental ? ' (restore the full backup first, into the same blob store)' : ''}`)
    }
    await target.finish()
    return summary
  })
}

/**
 * A version row's integrity must name its blob: the key is the content address of the digest
 * the row's `dist.integrity` (else shasum) promises; when it is not (a key of another form), the
 * digest is checked against the blob's bytes when that blob arrives.
 * @throws BackupError for a row without integrity or key
 */
function checkVersionRow(r: BackupRow, pending: Map<string, ExpectedDigest[]>, entry: string): void {
  const key = typeof r.tarball_key === 'string' ? r.tarball_key : undefined
  const expected = expectedDigest(typeof r.integrity === 'string' ? r.integrity : undefined, typeof r.shasum === 'string' ? r.shasum : undefined)
  if (!key || !expected) throw new BackupError(`entry ${entry}: a version row without tarball key or integrity (${String(r.name)}@${String(r.version)})`)
  const named = expected.algorithm === 'sha512' ? expected.digests.map((d) => tarballKey(Buffer.from(d, 'base64').toString('hex'))) : [cachedTarballKey(expected)]
  if (named.includes(key)) return
  pending.set(key, [...(pending.get(key) ?? []), expected])
}

/** Whether the store already holds `key` with the bytes its address promises (a damaged copy is deleted). */
async function storedIntact(blobs: BlobStore, key: string, expected: ExpectedDigest): Promise<boolean> {
  const handle = await blobs.get(key)
  if (!handle) return false
  const h = createHash(expected.algorithm)
  for await (const c of handle.body as AsyncIterable<Buffer>) h.update(c)
  if (h.digest('base64') === expected.digests[0]) return true
  // A damaged file under the key: FsBlobStore.put would keep it (content-addressed), so remove it.
  await blobs.delete(key)
  return false
}

/** Inserts `rows` of one table in statements of at most INSERT_ROWS rows and INSERT_PARAMS parameters. */
async function insertRows(target: RestoreTarget, table: string, rows: BackupRow[]): Promise<void> {
  let i = 0
  while (i < rows.length) {
    const first = rows[i] as BackupRow
    const cols = Object.keys(first).join('\0')
    const width = Math.max(1, Object.keys(first).length)
    const max = Math.max(1, Math.min(INSERT_ROWS, Math.floor(INSERT_PARAMS / width)))
    let j = i + 1
    // One statement takes rows with the same columns (every row of a table has them all).
    while (j < rows.length && j - i < max && Object.keys(rows[j] as BackupRow).join('\0') === cols) j++
    await target.insert(table, rows.slice(i, j))
    i = j
  }
}
