/**
 * Migration 0007: `search_index`, one row per package with a live `latest` version: its name and
 * the text search matches (`searchText`: the name, the latest manifest's description and keywords,
 * lowercased). Written by the write path's `_rev` bump in the same transaction as every change
 * (kysely-meta-store.ts `refreshSearchRow`), so it is never behind the packages it describes.
 *
 * Why (issue 14, docs/performance.md): search matched every word with `LIKE '%w%'` against the
 * whole manifest of every package's latest version (about 1 KB each): 37 ms at the median and
 * 58 ms at p99 with 10,000 packages, growing with the corpus. This table's text is about a tenth
 * of that and needs no join to be scanned. The backfill reads the latest versions in pages of 500.
 *
 * Frozen in time: never edit after release. Portable column types: PostgreSQL runs the same one.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Kysely } from 'kysely'

/**
 * The text a package's search matches: name, description and keywords of its latest manifest,
 * lowercased (JavaScript's `toLowerCase`, so matching is the same on every dialect).
 */
export function searchText(name: string, manifest: string): string {
  let m: { description?: unknown; keywords?: unknown } = {}
  try {
    m = JSON.parse(manifest) as typeof m
  } catch {
    // A stored manifest is JSON; an unreadable one is matched by its name alone.
  }
  const words = [name, typeof m.description === 'string' ? m.description : '', ...(Array.isArray(m.keywords) ? m.keywords.map(String) : [])]
  return words.join(' ').toLowerCase()
}

const PAGE = 500

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('search_index')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('text', 'text', (c) => c.notNull())
    .execute()
  let after = ''
  while (true) {
    const rows: { name: string; manifest: string }[] = await db
      .selectFrom('dist_tags')
      .innerJoin('versions', (j) => j.onRef('versions.name', '=', 'dist_tags.name').onRef('versions.version', '=', 'dist_tags.version'))
      .select(['versions.name as name', 'versions.manifest as manifest'])
      .where('dist_tags.tag', '=', 'latest')
      .where('versions.unpublished', 'is', null)
      .where('dist_tags.name', '>', after)
      .orderBy('dist_tags.name')
      .limit(PAGE)
      .execute()
    if (rows.length > 0) await db.insertInto('search_index').values(rows.map((r) => ({ name: r.name, text: searchText(r.name, r.manifest) }))).execute()
    const last = rows.at(-1)
    if (!last || rows.length < PAGE) break
    after = last.name
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('search_index').execute()
}
