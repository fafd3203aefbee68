/**
 * Accounts over HTTP for tests: a user created the way `npm adduser` does (the legacy CouchDB
 * call, docs/protocol.md §1), its password `<name>-pass-1`.
 */
import assert from 'node:assert/strict'

/**
 * PUT /-/user/org.couchdb.user:<name> on the Pier at `base` (ending in `/`).
 * @returns the session token of the new user
 * @throws AssertionError unless Pier answers 201
 */
export async function addUser(base: string, name: string): Promise<string> {
  const res = await fetch(new URL(`-/user/org.couchdb.user:${name}`, base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password: `${name}-pass-1`, email: `${name}@example.com`, type: 'user', roles: [] }),
  })
  assert.equal(res.status, 201, await res.clone().text())
  return ((await res.json()) as { token: string }).token
}
