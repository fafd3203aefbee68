/**
 * Users from an htpasswd file (htpasswd.ts) into Pier's user table, each hash stored as it is
 * (passwords.ts accepts it, and the user's next successful login replaces it with scrypt). A
 * re-run adds the users that are new and updates the hash of a user who changed their password
 * at the source but has not logged in to Pier since (the stored hash is still an imported one);
 * a user with a Pier hash of their own is left alone.
 */
import { USER_NAME } from '../../auth/auth-service.js'
import { legacyHashKind } from '../../auth/passwords.js'
import type { UserStore } from '../../auth/user-store.js'
import type { HtpasswdEntry } from './htpasswd.js'

/** What importing one user did. */
export type UserOutcome =
  | { user: string; result: 'created' | 'updated' | 'unchanged' | 'kept' }
  | { user: string; result: 'skipped'; reason: string }

/**
 * Imports the users of an htpasswd file.
 * @param actor who the audit log names for each `user-create` (the importer)
 * @param o.dryRun compare only: nothing is written
 * @returns one outcome per entry, in file order: `kept` is a user whose hash in Pier is Pier's own
 * @throws the store's errors
 */
export async function importUsers(store: UserStore, entries: readonly HtpasswdEntry[], o: { dryRun: boolean; actor: string }): Promise<UserOutcome[]> {
  const out: UserOutcome[] = []
  const seen = new Set<string>()
  for (const e of entries) {
    if (seen.has(e.user)) {
      out.push({ user: e.user, result: 'skipped', reason: `line ${e.line}: the user appears twice; the first line counts` })
      continue
    }
    seen.add(e.user)
    if (!USER_NAME.test(e.user)) {
      out.push({ user: e.user, result: 'skipped', reason: `line ${e.line}: not a valid user name` })
      continue
    }
    if (!e.kind) {
      out.push({ user: e.user, result: 'skipped', reason: `line ${e.line}: unknown hash format (accepted: bcrypt, {SHA}, $apr1$, crypt)` })
      continue
    }
    const existing = await store.getUser(e.user)
    const now = new Date().toISOString()
    if (existing) {
      if (existing.password_hash === e.hash) out.push({ user: e.user, result: 'unchanged' })
      else if (legacyHashKind(existing.password_hash) === undefined) out.push({ user: e.user, result: 'kept' })
      else {
        if (!o.dryRun) await store.updateUser(e.user, { password_hash: e.hash, updated: now })
        out.push({ user: e.user, result: 'updated' })
      }
      continue
    }
    if (!o.dryRun) {
      const row = { name: e.user, email: '', password_hash: e.hash, admin: 0, created: e.created ?? now, updated: now }
      const audit = { at: now, actor: o.actor, token: null, ip: null, action: 'user-create' as const, package: null, details: { user: e.user, admin: false, imported: 'htpasswd', hash: e.kind } }
      const r = await store.insertUser(row, -1, audit)
      if (r !== 'inserted') {
        out.push({ user: e.user, result: 'skipped', reason: 'created by someone else while importing' })
        continue
      }
    }
    out.push({ user: e.user, result: 'created' })
  }
  return out
}
