/**
 * `packages` rules over HTTP: who may read (anonymous callers get 401, users left out get 404) and
 * who may publish (403; 404 for a user who may not read the name either), first match wins.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'
import { esc } from '../helpers/uplink-fixture.js'

describe('packages rules', () => {
  let pier: TestPier
  const tokens: Record<string, string> = {}

  async function put(name: string, version: string, user: string): Promise<number> {
    const res = await fetch(new URL(esc(name), pier.url), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[user]}` },
      body: JSON.stringify(publishBody({ name, version }).body),
    })
    return res.status
  }
  const read = async (path: string, user?: string): Promise<number> =>
    (await fetch(new URL(path, pier.url), { headers: user ? { authorization: `Bearer ${tokens[user]}` } : {} })).status

  before(async () => {
    pier = await startPier({
      packages: {
        '@team/*': { access: '$authenticated', publish: 'alice' },
        'carol-*': { access: 'carol', publish: 'carol' },
        '**': { access: '$all', publish: '$authenticated' },
      },
    })
    for (const user of ['alice', 'bob', 'carol']) {
      const res = await fetch(new URL(`-/user/org.couchdb.user:${user}`, pier.url), {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: user, password: `${user}-pass-1`, email: `${user}@example.com` }),
      })
      tokens[user] = ((await res.json()) as { token: string }).token
    }
  })
  after(async () => {
    await pier.close()
  })

  test('publish: only the users the first matching rule names', async () => {
    assert.equal(await put('@team/lib', '1.0.0', 'bob'), 403)
    assert.equal(await put('@team/lib', '1.0.0', 'alice'), 201)
    // alice may not even read carol-*: her write is answered as for an unknown name.
    assert.equal(await put('carol-x', '1.0.0', 'alice'), 404)
    assert.equal(await put('carol-x', '1.0.0', 'carol'), 201)
    assert.equal(await put('open-lib', '1.0.0', 'bob'), 201)
  })

  test('read: anonymous callers get 401, users left out get 404, the rest 200', async () => {
    assert.equal(await read(esc('@team/lib')), 401)
    assert.equal(await read(esc('@team/lib'), 'bob'), 200)
    assert.equal(await read('@team/lib/-/lib-1.0.0.tgz'), 401)
    assert.equal(await read('@team/lib/-/lib-1.0.0.tgz', 'bob'), 200)
    assert.equal(await read('carol-x', 'alice'), 404)
    assert.equal(await read('carol-x/1.0.0', 'alice'), 404)
    assert.equal(await read('carol-x', 'carol'), 200)
    assert.equal(await read('open-lib'), 200)
  })
})
