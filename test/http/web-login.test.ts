/**
 * Web login over HTTP (docs/protocol.md §1.1, §9.6; docs/web.md), against an in-process Pier on
 * SQLite, the browser played by a cookie-keeping client:
 * - `POST /-/v1/login` answers http(s) `loginUrl` and `doneUrl`; polling answers 202 with a JSON
 *   body and `Retry-After` in seconds until the person signed in, then 200 with a working token
 *   exactly once (also under concurrent polls), then 404;
 * - the session is bound to the browser that opened the link first, the form is CSRF-protected
 *   (a missing token or a foreign Origin is refused), a wrong password leaves it pending;
 * - `{"create": true}` (npm adduser) offers sign-up, which creates the account; closed sign-up
 *   offers none;
 * - sessions expire (`WebLogins` over the real store, with a clock the test moves);
 * - `web.enable: false` answers 404 (npm falls back to its password prompts);
 * - `auth.type: github`: the OAuth web flow against the loopback GitHub fixture hands npm the
 *   GitHub token, which Pier then authenticates;
 * - on PostgreSQL with two nodes on one database: a login started on one node is completed on the
 *   other and taken exactly once; a UI session cookie made on one node works on the other.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { WebLogins } from '../../src/auth/web-login.js'
import { openMetaStore } from '../../src/storage/meta/open-meta-store.js'
import { addUser } from '../helpers/accounts.js'
import { captureLog } from '../helpers/log-capture.js'
import { startGithubFixture, type GithubFixture } from '../helpers/github-fixture.js'
import { startPier, tempDir, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'
import { publishBody } from '../helpers/publish-body.js'
import { csrfOf, mainText, WebClient } from '../browser/web-client.js'

/** The root document without its `update_seq` (the change feed's end, a number). */
function rootDoc(body: unknown): unknown {
  const { update_seq, ...rest } = body as { update_seq?: unknown }
  assert.equal(typeof update_seq, 'number', 'the root document has an update_seq')
  return rest
}

interface Started {
  loginUrl: string
  doneUrl: string
}

async function startLogin(base: string, body: unknown = {}): Promise<Started> {
  const r = await fetch(new URL('-/v1/login', base), { method: 'POST', headers: { 'content-type': 'application/json', 'npm-auth-type': 'web', 'npm-command': 'login' }, body: JSON.stringify(body) })
  assert.equal(r.status, 200)
  return (await r.json()) as Started
}

async function poll(doneUrl: string): Promise<{ status: number; retryAfter: string | null; cache: string | null; body: Record<string, unknown> }> {
  const r = await fetch(doneUrl)
  const text = await r.text()
  return { status: r.status, retryAfter: r.headers.get('retry-after'), cache: r.headers.get('cache-control'), body: JSON.parse(text) as Record<string, unknown> }
}

async function whoami(base: string, token: string): Promise<string | undefined> {
  const r = await fetch(new URL('-/whoami', base), { headers: { authorization: `Bearer ${token}` } })
  return r.status === 200 ? ((await r.json()) as { username: string }).username : undefined
}

/** The path and query of an absolute URL, for the client. */
const pathOf = (u: string): string => {
  const x = new URL(u)
  return x.pathname + x.search
}

void describe('web login (npm login --auth-type=web)', () => {
  let pier: TestPier

  before(async () => {
    pier = await startPier({})
    await addUser(pier.url, 'alice')
  })
  after(async () => {
    await pier.close()
  })

  void test('POST answers loginUrl and doneUrl; polls are 202 with JSON and Retry-After in seconds', async () => {
    const s = await startLogin(pier.url)
    const base = pier.url.replace(/\/$/, '')
    assert.match(s.loginUrl, new RegExp(`^${base}/-/web/login\\?session=[A-Za-z0-9_-]{43}$`))
    assert.match(s.doneUrl, new RegExp(`^${base}/-/v1/done\\?sessionId=[A-Za-z0-9_-]{43}$`))
    assert.notEqual(new URL(s.loginUrl).searchParams.get('session'), new URL(s.doneUrl).searchParams.get('sessionId'))
    for (let i = 0; i < 3; i++) {
      const p = await poll(s.doneUrl)
      assert.equal(p.status, 202)
      assert.equal(p.retryAfter, '1')
      assert.equal(p.cache, 'no-store')
      assert.deepEqual(p.body, { status: 'pending' })
    }
  })

  void test('signing in hands the token to the poller once; the token works', async () => {
    const s = await startLogin(pier.url)
    const browser = new WebClient(pier.url)
    const form = await browser.get(pathOf(s.loginUrl))
    assert.equal(form.status, 200)
    assert.match(form.text, /<label for="username">Username<\/label>/)
    assert.match(form.text, /<label for="password">Password<\/label>/)
    assert.match(form.text, /<button type="submit">Sign in<\/button>/)
    const done = await browser.post('/-/web/login', { csrf: csrfOf(form.text), session: new URL(s.loginUrl).searchParams.get('session') ?? '', username: 'alice', password: 'alice-pass-1' })
    assert.equal(done.status, 200)
    assert.match(mainText(done.text), /npm CLI is signed in/)
    const polls = await Promise.all([1, 2, 3, 4, 5].map(() => poll(s.doneUrl)))
    const won = polls.filter((p) => p.status === 200)
    assert.equal(won.length, 1, JSON.stringify(polls.map((p) => p.status)))
    assert.ok(polls.every((p) => p.status === 200 || p.status === 404))
    const token = won[0]?.body.token
    assert.equal(typeof token, 'string')
    assert.equal(await whoami(pier.url, token as string), 'alice')
    const again = await poll(s.doneUrl)
    assert.equal(again.status, 404)
    assert.equal(typeof again.body.error, 'string')
    // The link is used up.
    assert.equal((await browser.get(pathOf(s.loginUrl))).status, 404)
  })

  void test('bound to the first browser; CSRF token and Origin checked; a wrong password leaves it pending', async () => {
    const s = await startLogin(pier.url)
    const session = new URL(s.loginUrl).searchParams.get('session') ?? ''
    const a = new WebClient(pier.url)
    const b = new WebClient(pier.url)
    const pageA = await a.get(pathOf(s.loginUrl))
    assert.equal(pageA.status, 200)
    // Another browser cannot open or complete it.
    const pageB = await b.get(pathOf(s.loginUrl))
    assert.equal(pageB.status, 404)
    assert.match(mainText(pageB.text), /opened in another browser/)
    const loginPageB = await b.get('/-/web/login')
    const viaB = await b.post('/-/web/login', { csrf: csrfOf(loginPageB.text), session, username: 'alice', password: 'alice-pass-1' })
    assert.equal(viaB.status, 404)
    // No CSRF token, a wrong one, a foreign Origin.
    assert.equal((await a.post('/-/web/login', { session, username: 'alice', password: 'alice-pass-1' })).status, 403)
    assert.equal((await a.post('/-/web/login', { csrf: csrfOf(loginPageB.text), session, username: 'alice', password: 'alice-pass-1' })).status, 403)
    assert.equal((await a.post('/-/web/login', { csrf: csrfOf(pageA.text), session, username: 'alice', password: 'alice-pass-1' }, { origin: 'http://evil.example' })).status, 403)
    // A wrong password.
    const wrong = await a.post('/-/web/login', { csrf: csrfOf(pageA.text), session, username: 'alice', password: 'nope' })
    assert.equal(wrong.status, 401)
    assert.match(mainText(wrong.text), /Incorrect username or password/)
    assert.equal((await poll(s.doneUrl)).status, 202)
    // Then the right one, from the right browser.
    assert.equal((await a.post('/-/web/login', { csrf: csrfOf(pageA.text), session, username: 'alice', password: 'alice-pass-1' })).status, 200)
    assert.equal((await poll(s.doneUrl)).status, 200)
  })

  void test('a signed-in browser authorises the CLI in one click', async () => {
    const a = new WebClient(pier.url)
    assert.equal((await a.signIn('alice', 'alice-pass-1')).status, 303)
    const s = await startLogin(pier.url)
    const page = await a.get(pathOf(s.loginUrl))
    assert.match(page.text, /Authorize the npm CLI as alice/)
    const r = await a.post('/-/web/login/authorize', { csrf: csrfOf(page.text), session: new URL(s.loginUrl).searchParams.get('session') ?? '' })
    assert.equal(r.status, 200)
    const p = await poll(s.doneUrl)
    assert.equal(p.status, 200)
    assert.equal(await whoami(pier.url, p.body.token as string), 'alice')
  })

  void test('npm adduser ({"create": true}) offers sign-up, which creates the account', async () => {
    const s = await startLogin(pier.url, { create: true })
    const session = new URL(s.loginUrl).searchParams.get('session') ?? ''
    const browser = new WebClient(pier.url)
    const page = await browser.get(pathOf(s.loginUrl))
    assert.match(page.text, /New here\? <a href="\/-\/web\/signup\?session=/)
    const form = await browser.get(`/-/web/signup?session=${session}`)
    assert.equal(form.status, 200)
    const taken = await browser.post('/-/web/signup', { csrf: csrfOf(form.text), session, username: 'alice', email: 'a@example.com', password: 'x-pass-1' })
    assert.equal(taken.status, 409)
    const r = await browser.post('/-/web/signup', { csrf: csrfOf(form.text), session, username: 'carol', email: 'carol@example.com', password: 'carol-pass-1' })
    assert.equal(r.status, 200, r.text)
    const p = await poll(s.doneUrl)
    assert.equal(p.status, 200)
    assert.equal(await whoami(pier.url, p.body.token as string), 'carol')
  })

  void test('unknown and malformed sessions: the page says so, the poll answers 404 with an error', async () => {
    const browser = new WebClient(pier.url)
    assert.equal((await browser.get('/-/web/login?session=' + 'A'.repeat(43))).status, 404)
    assert.equal((await browser.get('/-/web/login?session=../../etc')).status, 404)
    const p = await poll(new URL('-/v1/done?sessionId=nope', pier.url).href)
    assert.equal(p.status, 404)
    assert.equal(typeof p.body.error, 'string')
  })
})

void describe('web login secrets stay out of the logs', () => {
  void test('request log lines redact ?session= and ?sessionId=', async () => {
    const log = captureLog('debug')
    const pier = await startPier({}, { logger: log.logger })
    try {
      await addUser(pier.url, 'alice')
      const s = await startLogin(pier.url)
      await poll(s.doneUrl)
      const browser = new WebClient(pier.url)
      await browser.signIn('alice', 'alice-pass-1', new URL(s.loginUrl).searchParams.get('session') ?? '')
      await poll(s.doneUrl)
      await log.waitFor((l) => typeof l.url === 'string' && l.url.startsWith('/-/v1/done') && l.status === 200)
      const text = log.lines.map((l) => JSON.stringify(l)).join('\n')
      assert.ok(!text.includes(new URL(s.doneUrl).searchParams.get('sessionId') ?? '-'), 'done secret logged')
      assert.ok(!text.includes(new URL(s.loginUrl).searchParams.get('session') ?? '-'), 'login secret logged')
      assert.match(text, /sessionId=\[redacted\]/)
    } finally {
      await pier.close()
    }
  })
})

void describe('web login sessions expire', () => {
  void test('after the TTL a link cannot be opened or completed, and the poll is gone', async () => {
    const dir = tempDir()
    const meta = await openMetaStore({ type: 'sqlite', synchronous: 'full', max_staleness: 1000, prepared_statements: true }, dir, dir)
    await meta.migrate()
    try {
      let now = Date.parse('2026-01-01T00:00:00Z')
      const logins = new WebLogins(meta, { ttlMs: 10 * 60_000, secret: 's'.repeat(43), now: () => now })
      const a = await logins.start(false)
      const b = await logins.start(true)
      assert.deepEqual(await logins.claim(a.loginSecret, 'browser-1'), { signup: false, done: false })
      assert.deepEqual(await logins.claim(b.loginSecret, 'browser-1'), { signup: true, done: false })
      assert.deepEqual(await logins.poll(a.doneSecret), { state: 'pending' })
      now += 10 * 60_000 - 1
      assert.ok(await logins.complete(b.loginSecret, 'browser-1', 'alice'))
      now += 1
      assert.equal(await logins.claim(a.loginSecret, 'browser-1'), undefined)
      assert.equal(await logins.complete(a.loginSecret, 'browser-1', 'alice'), false)
      assert.deepEqual(await logins.poll(a.doneSecret), { state: 'gone' })
      // Completed but not taken in time: gone too.
      assert.deepEqual(await logins.poll(b.doneSecret), { state: 'gone' })
      // The next start removes expired rows.
      await logins.start(false)
      assert.equal(await meta.findWebLoginByDone('x'), undefined)
      assert.equal(await meta.deleteExpiredWebLogins(new Date(now).toISOString()), 0)
    } finally {
      await meta.close()
    }
  })
})

void describe('web login switched off, or sign-up closed', () => {
  void test('web.enable: false: POST /-/v1/login is 404 with an error, no pages', async () => {
    const pier = await startPier({ web: { enable: false } })
    try {
      const r = await fetch(new URL('-/v1/login', pier.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      assert.equal(r.status, 404)
      assert.equal(typeof ((await r.json()) as { error: unknown }).error, 'string')
      const page = await fetch(new URL('-/web/', pier.url), { headers: { accept: 'text/html' } })
      assert.equal(page.status, 404)
      assert.match(page.headers.get('content-type') ?? '', /json/)
      const root = await fetch(pier.url, { headers: { accept: 'text/html' } })
      assert.deepEqual(rootDoc(await root.json()), { db_name: 'registry', engine: 'pier' })
    } finally {
      await pier.close()
    }
  })

  void test('auth.local.allow_signup: false: no sign-up offered, the sign-up page is 403', async () => {
    const pier = await startPier({ auth: { local: { allow_signup: false } } })
    try {
      const s = await startLogin(pier.url, { create: true })
      const browser = new WebClient(pier.url)
      const page = await browser.get(pathOf(s.loginUrl))
      assert.equal(page.status, 200)
      assert.doesNotMatch(page.text, /signup/)
      assert.equal((await browser.get('/-/web/signup')).status, 403)
    } finally {
      await pier.close()
    }
  })
})

void describe('web login with auth.type: github (OAuth app, loopback fixture)', () => {
  let fixture: GithubFixture
  let pier: TestPier
  const TOKEN = 'gho_fixture_octocat_1'

  before(async () => {
    fixture = await startGithubFixture({ [TOKEN]: { login: 'octocat', repos: {} } })
    fixture.oauth = { clientId: 'pier-app', clientSecret: 'pier-app-secret', approve: TOKEN }
    pier = await startPier({ auth: { type: 'github', github: { host: fixture.url, client_id: 'pier-app', client_secret: 'pier-app-secret' } } })
  })
  after(async () => {
    await pier.close()
    await fixture.close()
  })

  void test('the login page sends the browser to GitHub; the callback completes the login with the GitHub token', async () => {
    const s = await startLogin(pier.url)
    const browser = new WebClient(pier.url)
    const page = await browser.get(pathOf(s.loginUrl))
    assert.equal(page.status, 200)
    const link = /href="(\/-\/web\/login\/github\?[^"]+)"/.exec(page.text)?.[1]?.replace(/&amp;/g, '&')
    assert.ok(link, 'a Sign in with GitHub link')
    const toGithub = await browser.get(link)
    assert.equal(toGithub.status, 302)
    const authorize = new URL(toGithub.headers.get('location') ?? '')
    assert.equal(authorize.origin, fixture.url)
    assert.equal(authorize.pathname, '/login/oauth/authorize')
    assert.equal(authorize.searchParams.get('client_id'), 'pier-app')
    assert.equal(authorize.searchParams.get('redirect_uri'), `${pier.url}-/web/login/github/callback`)
    const approved = await fetch(authorize, { redirect: 'manual' })
    assert.equal(approved.status, 302)
    const back = new URL(approved.headers.get('location') ?? '')
    // A forged state is refused.
    const forged = new URL(back)
    forged.searchParams.set('state', 'forged')
    assert.equal((await browser.get(forged.pathname + forged.search)).status, 400)
    // The forged try cleared the state cookie: start again, then come back with the real state.
    const again = await browser.get(link)
    const approved2 = await fetch(new URL(again.headers.get('location') ?? ''), { redirect: 'manual' })
    const back2 = new URL(approved2.headers.get('location') ?? '')
    const done = await browser.get(back2.pathname + back2.search)
    assert.equal(done.status, 200, done.text)
    assert.match(mainText(done.text), /Signed in as octocat/)
    const p = await poll(s.doneUrl)
    assert.equal(p.status, 200)
    assert.equal(p.body.token, TOKEN)
    assert.equal(await whoami(pier.url, TOKEN), 'octocat')
    assert.ok(fixture.requests.some((r) => r.method === 'POST' && r.path === '/login/oauth/access_token'))
  })

  void test('signing in to the UI with GitHub: the session holds the GitHub token; sign-out clears it', async () => {
    const browser = new WebClient(pier.url)
    const page = await browser.get('/-/web/login')
    assert.match(page.text, /Sign in with GitHub/)
    assert.doesNotMatch(page.text, /<label for="password">/)
    const toGithub = await browser.get('/-/web/login/github?next=%2F-%2Fweb%2Fsettings%2Ftokens')
    const approved = await fetch(new URL(toGithub.headers.get('location') ?? ''), { redirect: 'manual' })
    const back = new URL(approved.headers.get('location') ?? '')
    const done = await browser.get(back.pathname + back.search)
    assert.equal(done.status, 303)
    assert.equal(done.headers.get('location'), '/-/web/settings/tokens')
    const home = await browser.get('/-/web/')
    assert.match(home.text, /href="\/-\/web\/user\/octocat">octocat<\/a>/)
    assert.equal((await browser.post('/-/web/logout', { csrf: csrfOf(home.text) })).status, 303)
    assert.match((await browser.get('/-/web/')).text, /Sign in<\/a>/)
  })

  void test('without an OAuth app configured, POST /-/v1/login is 404 (npm falls back)', async () => {
    const other = await startPier({ auth: { type: 'github', github: { host: fixture.url } } })
    try {
      const r = await fetch(new URL('-/v1/login', other.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      assert.equal(r.status, 404)
    } finally {
      await other.close()
    }
  })
})

void describe('web login and pages on PostgreSQL, two nodes behind one database', () => {
  let db: TempDatabase
  let a: TestPier
  let b: TestPier

  before(async () => {
    db = await createTempDatabase({ prefix: 'pier_web_' })
    const config = { storage: { meta: { type: 'postgres' as const, url: db.url } } }
    a = await startPier(config)
    b = await startPier(config)
    await addUser(a.url, 'alice')
  })
  after(async () => {
    await a?.close()
    await b?.close()
    await db?.drop()
  })

  void test('started on one node, signed in on the other, taken once from either', async () => {
    const s = await startLogin(a.url)
    // The browser reaches node B (the load balancer's choice): same session, same secret.
    const browser = new WebClient(b.url)
    const session = new URL(s.loginUrl).searchParams.get('session') ?? ''
    const page = await browser.get(`/-/web/login?session=${session}`)
    assert.equal(page.status, 200)
    assert.equal((await poll(s.doneUrl)).status, 202)
    const done = await browser.post('/-/web/login', { csrf: csrfOf(page.text), session, username: 'alice', password: 'alice-pass-1' })
    assert.equal(done.status, 200)
    const doneB = s.doneUrl.replace(a.url, b.url)
    const polls = await Promise.all([poll(s.doneUrl), poll(doneB), poll(s.doneUrl), poll(doneB)])
    assert.deepEqual(polls.map((p) => p.status).sort(), [200, 404, 404, 404])
    const token = polls.find((p) => p.status === 200)?.body.token as string
    assert.equal(await whoami(a.url, token), 'alice')
    // A UI session made on one node is signed with the secret both share.
    const ui = new WebClient(a.url)
    assert.equal((await ui.signIn('alice', 'alice-pass-1')).status, 303)
    const onB = new WebClient(b.url)
    for (const [k, v] of ui.jar) onB.jar.set(k, v)
    assert.match((await onB.get('/-/web/')).text, /href="\/-\/web\/user\/alice">alice<\/a>/)
  })

  void test('home, search and dependents read PostgreSQL (ILIKE, LIKE escapes)', async () => {
    const token = await (async () => {
      const s = await startLogin(a.url)
      const c = new WebClient(a.url)
      const session = new URL(s.loginUrl).searchParams.get('session') ?? ''
      const page = await c.get(`/-/web/login?session=${session}`)
      await c.post('/-/web/login', { csrf: csrfOf(page.text), session, username: 'alice', password: 'alice-pass-1' })
      return (await poll(s.doneUrl)).body.token as string
    })()
    for (const pkg of [{ name: 'pg_base', version: '1.0.0', description: 'Base On PG' }, { name: 'pg-user', version: '1.0.0', dependencies: { pg_base: '^1.0.0' } }, { name: 'pgxbase-like', version: '1.0.0', dependencies: { pgxbase: '^1.0.0' } }]) {
      const r = await fetch(new URL(pkg.name, a.url), { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(publishBody(pkg).body) })
      assert.equal(r.status, 201, await r.text())
    }
    const c = new WebClient(b.url)
    assert.match(mainText((await c.get('/-/web/')).text), /^Packages 3 packages/)
    assert.match(mainText((await c.get('/-/web/search?q=base%20on%20pg')).text), /1 package found/)
    // `_` is a LIKE wildcard: pgxbase-like depends on pgxbase, not on pg_base.
    const page = await c.get('/-/web/package/pg_base')
    assert.match(mainText(page.text), /Dependents \(1\)/)
    assert.match(page.text, /href="\/-\/web\/package\/pg-user"/)
  })
})
