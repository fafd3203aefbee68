/**
 * Who may do what, driven by the real npm CLI: npm 11's granular tokens (`npm token create
 * --scopes … --packages-and-scopes-permission …`, `--expires`), an expired token, administrators
 * (`auth.admins`) revoking another user's token and reading the audit log, the audit log's
 * entries for every kind of write on SQLite and PostgreSQL, the failed-login limit, and that no
 * log line of a Pier process at debug level holds a token or a password.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { addUser } from '../helpers/accounts.js'
import { NpmClient, type RunResult } from '../helpers/npm.js'
import { spawnPier, startPier, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'
import { publishBody } from '../helpers/publish-body.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function ok(r: RunResult, what: string): void {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`)
}

async function api(base: string, path: string, token: string | undefined, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: Obj; headers: Headers }> {
  const res = await fetch(new URL(path.replace(/^\//, ''), base), {
    method: init.method ?? 'GET',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  })
  const text = await res.text()
  return { status: res.status, body: text ? (JSON.parse(text) as Obj) : {}, headers: res.headers }
}

/** Creates a token with the real npm CLI and returns it (npm prints `Created token <token>`). */
async function npmTokenCreate(c: NpmClient, password: string, args: string[]): Promise<string> {
  const r = await c.npm(['token', 'create', '--password', password, ...args])
  ok(r, `npm token create ${args.join(' ')}`)
  const m = /Created token (\S+)/.exec(r.stdout)
  assert.ok(m?.[1], r.stdout)
  return m[1]
}

void describe('granular tokens, administrators and the audit log (npm CLI)', () => {
  let pier: TestPier
  let alice: NpmClient
  let aliceToken: string
  let rootToken: string
  before(async () => {
    pier = await startPier({ auth: { admins: ['root'] } })
    aliceToken = await addUser(pier.url, 'alice')
    rootToken = await addUser(pier.url, 'root')
    await addUser(pier.url, 'mallory')
    alice = new NpmClient(pier.url)
    alice.setToken(aliceToken)
  })
  after(() => pier.close())

  void test('a read-write token for @acme publishes @acme/* and nothing else; npm token list shows its name, scope and expiry', async () => {
    const scoped = await npmTokenCreate(alice, 'alice-pass-1', [
      '--name',
      'ci-acme',
      '--token-description',
      'CI for acme',
      '--scopes',
      '@acme',
      '--packages-and-scopes-permission',
      'read-write',
      '--expires',
      '30',
    ])
    const ci = new NpmClient(pier.url)
    ci.setToken(scoped)
    ok(await ci.npm(['publish', '--access', 'public'], { cwd: ci.makePackage({ name: '@acme/tool', version: '1.0.0' }) }), 'publish @acme/tool')
    const refused = await ci.npm(['publish'], { cwd: ci.makePackage({ name: 'lodash-fork', version: '1.0.0' }) })
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /403/)
    assert.match(refused.stderr, /This token may not change "lodash-fork": it is limited to @acme\/\* \(read-write\)/)
    // The token's own user may publish lodash-fork: only the token is limited.
    ok(await alice.npm(['publish'], { cwd: alice.makePackage({ name: 'lodash-fork', version: '1.0.0' }) }), 'alice publishes lodash-fork')

    const list = await alice.npm(['token', 'list', '--json'])
    ok(list, 'token list')
    const rows = JSON.parse(list.stdout) as Obj[]
    const row = rows.find((t) => t.name === 'ci-acme')
    assert.ok(row, list.stdout)
    assert.equal(row.description, 'CI for acme')
    assert.deepEqual(row.scopes, ['@acme'])
    assert.equal(row.packages_and_scopes_permission, 'read-write')
    const days = (Date.parse(String(row.expires)) - Date.parse(String(row.created))) / 86_400_000
    assert.ok(Math.abs(days - 30) < 0.01, `expires ${String(row.expires)}`)
    assert.equal(String(row.token).endsWith('…'), true, 'only a prefix of the secret is listed')
    // Used once (the publish): last_used is recorded (at most once a minute, batched: flushed now).
    await pier.pier.auth.flushLastUsed()
    const again = (JSON.parse((await alice.npm(['token', 'list', '--json'])).stdout) as Obj[]).find((t) => t.name === 'ci-acme')
    assert.equal(typeof again?.last_used, 'string')
  })

  void test('a read-only granular token reads what it names and changes nothing', async () => {
    const ro = await npmTokenCreate(alice, 'alice-pass-1', ['--packages', 'lodash-fork', '--packages-and-scopes-permission', 'read-only'])
    const c = new NpmClient(pier.url)
    c.setToken(ro)
    const view = await c.npm(['view', 'lodash-fork', 'version'])
    ok(view, 'npm view')
    assert.equal(view.stdout.trim(), '1.0.0')
    const tag = await c.npm(['dist-tag', 'add', 'lodash-fork@1.0.0', 'beta'])
    assert.notEqual(tag.code, 0)
    assert.match(tag.stderr, /403/)
  })

  void test('an expired token stops working (401 naming the expiry)', async () => {
    const t = await npmTokenCreate(alice, 'alice-pass-1', ['--name', 'short', '--expires', '1'])
    assert.equal((await api(pier.url, '/-/whoami', t)).status, 200)
    // Time travel on the real database: the token's expiry moves into the past.
    const db = new Database(join(pier.dataDir, 'pier.sqlite'))
    try {
      db.prepare("update tokens set expires = '2020-01-01T00:00:00.000Z' where name = 'short'").run()
    } finally {
      db.close()
    }
    const c = new NpmClient(pier.url)
    c.setToken(t)
    const who = await c.npm(['whoami'])
    assert.notEqual(who.code, 0)
    assert.match(who.stderr, /401|expired/)
    const r = await api(pier.url, '/-/whoami', t)
    assert.equal(r.status, 401)
    assert.match(r.body.error as string, /expired on 2020-01-01/)
  })

  void test('an administrator lists everyone\'s tokens and revokes another user\'s; a user cannot', async () => {
    const victim = await npmTokenCreate(alice, 'alice-pass-1', ['--name', 'to-revoke'])
    assert.equal((await api(pier.url, '/-/pier/v1/tokens', aliceToken)).status, 403)
    assert.equal((await api(pier.url, '/-/pier/v1/tokens', undefined)).status, 401)
    const all = await api(pier.url, '/-/pier/v1/tokens', rootToken)
    assert.equal(all.status, 200)
    const entry = (all.body.objects as Obj[]).find((t) => t.name === 'to-revoke')
    assert.ok(entry)
    assert.equal(entry.user, 'alice')
    assert.doesNotMatch(JSON.stringify(all.body), new RegExp(victim.slice(10)), 'no secret in the list')
    // mallory may not revoke it; root (with the real npm CLI) may.
    const malloryLogin = await api(pier.url, '/-/user/org.couchdb.user:mallory', undefined, { method: 'PUT', body: { name: 'mallory', password: 'mallory-pass-1' } })
    assert.equal((await api(pier.url, `/-/npm/v1/tokens/token/${String(entry.key)}`, String(malloryLogin.body.token), { method: 'DELETE' })).status, 404)
    const root = new NpmClient(pier.url)
    root.setToken(rootToken)
    assert.equal((await api(pier.url, `/-/npm/v1/tokens/token/${String(entry.key)}`, rootToken, { method: 'DELETE' })).status, 204)
    assert.equal((await api(pier.url, '/-/whoami', victim)).status, 401)
    ok(await root.npm(['whoami']), 'root whoami')
  })
})

for (const backend of ['sqlite', 'postgres'] as const) {
  void describe(`audit log (${backend})`, () => {
    let pier: TestPier
    let database: TempDatabase | undefined
    before(async () => {
      if (backend === 'postgres') database = await createTempDatabase()
      pier = await startPier({ auth: { admins: ['root'] }, ...(database ? { storage: { meta: { type: 'postgres', url: database.url } } } : {}) })
    })
    after(async () => {
      await pier.close()
      await database?.drop()
    })

    void test('every write is recorded with who, what, when, address and token; admins only; no secret', async () => {
      const root = await addUser(pier.url, 'root')
      const bob = await addUser(pier.url, 'bob')
      const name = `audited-${backend}`
      assert.equal((await api(pier.url, `/${name}`, bob, { method: 'PUT', body: publishBody({ name, version: '1.0.0' }).body })).status, 201)
      assert.equal((await api(pier.url, `/${name}`, bob, { method: 'PUT', body: publishBody({ name, version: '1.1.0' }).body })).status, 201)
      assert.equal((await api(pier.url, `/-/package/${name}/dist-tags/beta`, bob, { method: 'PUT', body: '1.0.0' })).status, 201)
      const doc = (await api(pier.url, `/${name}?write=true`, bob)).body
      ;(doc.versions as Obj)['1.0.0'].deprecated = 'use 1.1.0'
      assert.equal((await api(pier.url, `/${name}/-rev/${String(doc._rev)}`, bob, { method: 'PUT', body: doc })).status, 201)
      // A failed login, and a refused write (not recorded: nothing changed).
      assert.equal((await api(pier.url, '/-/user/org.couchdb.user:bob', undefined, { method: 'PUT', body: { name: 'bob', password: 'wrong-password-1' } })).status, 401)
      assert.equal((await api(pier.url, `/-/package/${name}/dist-tags/beta`, root + 'x', { method: 'DELETE' })).status, 401)

      assert.equal((await api(pier.url, '/-/pier/v1/audit', bob)).status, 403)
      assert.equal((await api(pier.url, '/-/pier/v1/audit', undefined)).status, 401)
      const log = await api(pier.url, '/-/pier/v1/audit?limit=1000', root)
      assert.equal(log.status, 200)
      const entries = log.body.objects as Obj[]
      const actions = entries.map((e) => `${String(e.action)}:${String(e.actor)}:${String(e.package)}`)
      for (const want of [
        'user-create:root:null',
        'user-create:bob:null',
        `publish:bob:${name}`,
        `dist-tag-add:bob:${name}`,
        `update:bob:${name}`,
        'login-failure:null:null',
      ]) {
        assert.ok(actions.includes(want), `${want} in ${actions.join(', ')}`)
      }
      const publish = entries.find((e) => e.action === 'publish' && (e.details as Obj).version === '1.1.0') as Obj
      assert.equal(publish.ip, '127.0.0.1')
      assert.match(String(publish.token), /^[0-9a-f]{128}$/, 'the token is named by its key')
      assert.match(String(publish.at), /^\d{4}-\d\d-\d\dT/)
      const deprecation = entries.find((e) => e.action === 'update') as Obj
      assert.deepEqual((deprecation.details as Obj).deprecations, [{ version: '1.0.0', message: 'use 1.1.0' }])
      assert.equal((entries.find((e) => e.action === 'login-failure') as Obj).details.user, 'bob')
      const text = JSON.stringify(entries)
      for (const secret of [root, bob, 'bob-pass-1', 'root-pass-1', 'wrong-password-1']) assert.ok(!text.includes(secret), 'no secret in the audit log')

      // Filters and paging.
      const mine = await api(pier.url, `/-/pier/v1/audit?user=bob&package=${name}&limit=2`, root)
      assert.equal((mine.body.objects as Obj[]).length, 2)
      assert.ok((mine.body.objects as Obj[]).every((e) => e.actor === 'bob' && e.package === name))
      const next = await api(pier.url, String(mine.body.urls.next), root)
      assert.ok((next.body.objects as Obj[]).every((e) => (e.seq as number) > ((mine.body.objects as Obj[])[1] as Obj).seq))
    })
  })
}

void describe('failed logins are limited', () => {
  void test('after max_failures wrong passwords the name is refused with 429 and Retry-After, even with the right password', async () => {
    const pier = await startPier({ auth: { rate_limit: { max_failures: 3, window: '15m' } } })
    try {
      await addUser(pier.url, 'carol')
      const login = (password: string) => api(pier.url, '/-/user/org.couchdb.user:carol', undefined, { method: 'PUT', body: { name: 'carol', password } })
      const unknown = await api(pier.url, '/-/user/org.couchdb.user:nobody', undefined, { method: 'PUT', body: { name: 'nobody', password: 'x' } })
      for (let i = 0; i < 2; i++) {
        const r = await login('wrong')
        assert.equal(r.status, 401)
        // An unknown user (sign-up open: it would be created, so use Basic) and a wrong password read the same.
        assert.equal(r.body.error, 'Incorrect username or password.')
      }
      assert.equal(unknown.status, 201, 'sign-up is open: an unknown name signs up')
      const basicUnknown = await fetch(new URL('-/whoami', pier.url), { headers: { authorization: `Basic ${Buffer.from('ghost:pw').toString('base64')}` } })
      assert.equal(basicUnknown.status, 401)
      assert.equal(((await basicUnknown.json()) as Obj).error, 'Incorrect username or password.')
      const limited = await login('carol-pass-1')
      assert.equal(limited.status, 429)
      assert.match(String(limited.headers.get('retry-after')), /^\d+$/)
      assert.match(limited.body.error as string, /Too many failed logins/)
    } finally {
      await pier.close()
    }
  })
})

void describe('no secrets in logs', () => {
  void test('a Pier process at logger.level debug never writes a token or a password it was given', async () => {
    const p = await spawnPier({ logger: { level: 'debug' } })
    try {
      const token = await addUser(p.url, 'dave')
      const c = new NpmClient(p.url)
      c.setToken(token)
      ok(await c.npm(['publish'], { cwd: c.makePackage({ name: 'logged-pkg', version: '1.0.0' }) }), 'publish')
      await fetch(new URL('-/whoami', p.url), { headers: { authorization: `Basic ${Buffer.from('dave:dave-pass-1').toString('base64')}` } })
      await fetch(new URL(`-/user/token/${token}`, p.url), { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
      const code = await p.stop()
      assert.equal(code, 0)
      const out = p.output()
      assert.match(out, /incoming request/, 'the debug request dump was written')
      for (const secret of [token, 'dave-pass-1', Buffer.from('dave:dave-pass-1').toString('base64')]) {
        assert.ok(!out.includes(secret), `the log holds ${secret.slice(0, 12)}…`)
      }
    } finally {
      p.child.kill('SIGKILL')
    }
  })
})
