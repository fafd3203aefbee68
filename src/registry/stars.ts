/**
 * Stars (`npm star`, `npm unstar`, `npm stars`; docs/protocol.md §3.2): a star is the caller's own
 * entry in a packument's `users`, written by a PUT of the document (update.ts: the one change a
 * user who is not a maintainer may make). `npm stars` lists a user's starred packages through
 * CouchDB's old view, `GET /-/_view/starredByUser?key="<user>"`.
 */
import type { ReadGate } from './read-gate.js'
import type { PackageStore } from './stores.js'
import type { Caller } from './types.js'

/** One row of the `starredByUser` view. */
export interface StarRow {
  key: string
  value: string
}

/**
 * The packages `user` starred that the caller may read (the others are left out, as if unknown),
 * as the view's rows.
 */
export async function starredBy(store: PackageStore, gate: ReadGate, user: string, caller: Caller): Promise<StarRow[]> {
  const names = await gate.filter(await store.starredBy(user), (n) => n, caller)
  return names.map((n) => ({ key: user, value: n }))
}
