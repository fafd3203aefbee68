/**
 * The change feed as CouchDB's `_changes` gives it (docs/protocol.md §6), for mirrors and
 * followers: one row per committed write of a package, in commit order, the newest `_rev` of each.
 *
 * Shape of one page (CouchDB 3 `GET /{db}/_changes`, `feed=normal`): `{ results: [{ seq, id,
 * changes: [{ rev }], deleted? }], last_seq }`. A follower keeps `last_seq` and passes it back
 * as `since`. `seq` is Pier's change sequence, a number that only grows.
 */
import type { PackageChange } from './stores.js'

/** One row of `results`: `id` is the package name, `deleted` only on a whole-package unpublish. */
export interface ChangeRow {
  seq: number
  id: string
  changes: { rev: string }[]
  deleted?: true
}

/** A page of the feed. `last_seq`: the last row read, visible or not (so a follower moves on). */
export interface ChangesPage {
  results: ChangeRow[]
  last_seq: number
}

/** What a page asks for: rows after `since` (a seq), at most `limit` of them (1–10,000). */
export interface ChangesQuery {
  since: number
  limit: number
}

/** The CouchDB row of one change. */
export function changeRow(c: PackageChange): ChangeRow {
  return { seq: c.seq, id: c.name, changes: [{ rev: c.rev }], ...(c.deleted ? { deleted: true as const } : {}) }
}
