/**
 * The web UI's pages over HTTP (docs/web.md), against an in-process Pier on SQLite with a
 * `packages` rule that gives `@secret/*` to alice alone:
 * - `/` is the home page for `Accept: text/html` and the JSON root for everyone else; every page
 *   carries the strict Content-Security-Policy; the assets are content-hashed and immutable;
 * - the package page shows the README rendered (GitHub flavour, highlighted code, anchors),
 *   versions with dates, dist-tags, dependencies and dependents linked, maintainers, the four
 *   install commands, the deprecation banner, sizes, integrity, repository, homepage, license,
 *   keywords; the version page shows that version; a new `_rev` shows at once (cache per `_rev`);
 * - search pages list what `/-/v1/search` lists, in its order, with its total;
 * - every access rule holds: the private package's page answers exactly like an unknown name's for
 *   anonymous callers and other users (status and text), and it is missing from search, the home
 *   page's lists and count, dependents and user pages; alice sees it all;
 * - sessions: signed HttpOnly SameSite cookies; sign-out revokes the session's token; tokens are
 *   created with npm 11's options and revoked from the tokens page; the admin page is for admins;
 * - branding (`web.title`, `web.logo`, `web.primary_color`) reaches the pages and the stylesheet.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { addUser } from '../helpers/accounts.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'
import { csrfOf, mainText, WebClient } from '../browser/web-client.js'

/** The root document without its `update_seq` (the change feed's end, a number). */
function rootDoc(body: unknown): unknown {
  const { update_seq, ...rest } = body as { update_seq?: unknown }
  assert.equal(typeof update_seq, 'number', 'the root document has an update_seq')
  return rest
}

const README = `# Widget

A *widget* for tests.

| a | b |
|---|---|
| 1 | 2 |

- [x] done
- [ ] todo

\`\`\`js
const x = 1
\`\`\`

![logo](./logo.png) [docs](docs/guide.md) [anchor](#usage)

## Usage
`

void describe('web UI pages', () => {
  let pier: TestPier
  const tokens: Record<string, string> = {}

  async function publish(who: string, pkg: Record<string, unknown>, readme?: string): Promise<void> {
    const name = String(pkg.name)
    const b = publishBody(pkg, readme === undefined ? {} : { files: { 'README.md': readme } }).body
    const r = await fetch(new URL(name.replace('/', '%2f'), pier.url), { method: 'PUT', headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/json' }, body: JSON.stringify(b) })
    assert.equal(r.status, 201, await r.text())
  }

  before(async () => {
    pier = await startPier({
      packages: { '@secret/*': { access: 'alice', publish: 'alice' }, '**': { access: '$all', publish: '$authenticated' } },
      auth: { admins: ['root'] },
      web: { title: 'Acme Registry', logo: '/logo.svg', primary_color: '#123456' },
    })
    for (const u of ['alice', 'bob', 'root']) tokens[u] = await addUser(pier.url, u)
    await publish('alice', { name: 'widget', version: '1.0.0', description: 'A widget', keywords: ['gizmo'], license: 'MIT', homepage: 'https://example.com/widget', repository: { type: 'git', url: 'git+https://github.com/acme/widget.git' }, dependencies: { 'left-pad': '^1.0.0' } }, README)
    await publish('alice', { name: 'widget', version: '1.1.0', description: 'A widget', keywords: ['gizmo'], license: 'MIT', repository: 'github:acme/widget', dependencies: { 'left-pad': '^1.0.0' } }, README + '\nVersion 1.1\n')
    await publish('bob', { name: 'uses-widget', version: '2.0.0', description: 'Depends on the widget', dependencies: { widget: '^1.0.0' } })
    await publish('alice', { name: '@secret/thing', version: '1.0.0', description: 'Secret gizmo thing', keywords: ['gizmo'], dependencies: { widget: '^1.0.0' } })
  })
  after(async () => {
    await pier.close()
  })

  void test('/ is the home page for browsers and the JSON root for clients; CSP and assets', async () => {
    const page = await new WebClient(pier.url).get('/')
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    const csp = page.headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'self'/)
    assert.match(csp, /script-src 'self'/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff')
    assert.doesNotMatch(page.text, /<script>|<style|style="|onload=|onclick=/i)
    assert.match(page.text, /<main id="main"/)
    const json = await fetch(pier.url, { headers: { accept: 'application/json' } })
    assert.deepEqual(rootDoc(await json.json()), { db_name: 'registry', engine: 'pier' })
    // One address, two representations: caches in front must key both on Accept.
    assert.match(json.headers.get('vary') ?? '', /accept/i)
    assert.match(page.headers.get('vary') ?? '', /accept/i)
    const plain = await fetch(pier.url)
    assert.deepEqual(rootDoc(await plain.json()), { db_name: 'registry', engine: 'pier' })
    const css = /href="(\/-\/web\/static\/app\.[0-9a-f]{12}\.css)"/.exec(page.text)?.[1]
    const js = /src="(\/-\/web\/static\/app\.[0-9a-f]{12}\.js)"/.exec(page.text)?.[1]
    assert.ok(css && js)
    const c = await fetch(new URL(css.slice(1), pier.url))
    assert.equal(c.status, 200)
    assert.match(c.headers.get('cache-control') ?? '', /immutable/)
    assert.match(await c.text(), /#123456/)
    assert.equal((await fetch(new URL(js.slice(1), pier.url))).status, 200)
    assert.equal((await fetch(new URL('-/web/static/app.000000000000.css', pier.url))).status, 404)
  })

  void test('branding: title and logo', async () => {
    const page = await new WebClient(pier.url).get('/-/web/')
    assert.match(page.text, /<title>Acme Registry<\/title>/)
    assert.match(page.text, /<img src="\/logo.svg" alt="">/)
  })

  void test('package page: README, versions, tags, dependencies, dependents, maintainers, install, facts', async () => {
    const page = await new WebClient(pier.url).get('/-/web/package/widget')
    assert.equal(page.status, 200)
    const t = page.text
    const text = mainText(t)
    assert.match(t, /<h1>widget<\/h1>/)
    assert.match(t, /<table>\s*<thead>\s*<tr>\s*<th>a<\/th>/)
    assert.match(t, /class="task-list-item-checkbox"/)
    assert.match(t, /<span class="hljs-keyword">const<\/span>/)
    assert.match(t, /<h2 id="readme-usage"/)
    assert.match(t, /href="#readme-usage"/)
    assert.match(t, /src="https:\/\/raw\.githubusercontent\.com\/acme\/widget\/HEAD\/logo\.png"/)
    assert.match(t, /href="https:\/\/github\.com\/acme\/widget\/blob\/HEAD\/docs\/guide\.md"/)
    assert.match(text, /Version 1\.1/)
    for (const cmd of ['npm install widget', 'pnpm add widget', 'yarn add widget', 'bun add widget']) assert.ok(text.includes(cmd), cmd)
    assert.match(text, /Versions \(2\)/)
    assert.match(t, /href="\/-\/web\/package\/widget\/v\/1\.0\.0"/)
    assert.match(t, /<time datetime="\d{4}-\d\d-\d\dT/)
    assert.match(text, /latest: widget@1\.1\.0/)
    assert.match(t, /href="\/-\/web\/package\/left-pad">left-pad<\/a>/)
    assert.match(t, /href="\/-\/web\/user\/alice">alice<\/a>/)
    assert.match(text, /Dependents \(1\)/)
    assert.match(t, /href="\/-\/web\/package\/uses-widget"/)
    assert.match(text, /License MIT/)
    assert.match(text, /Repository https:\/\/github\.com\/acme\/widget/)
    assert.match(text, /Tarball size \d+(\.\d)? (B|kB)/)
    assert.match(text, /Unpacked size/)
    assert.match(text, /Integrity sha512-/)
    assert.match(t, /href="\/-\/web\/search\?q=gizmo">gizmo<\/a>/)
  })

  void test('version page, deprecation banner, and a new _rev showing at once', async () => {
    const v = await new WebClient(pier.url).get('/-/web/package/widget/v/1.0.0')
    assert.equal(v.status, 200)
    assert.match(v.text, /<h1>widget@1\.0\.0<\/h1>/)
    assert.match(mainText(v.text), /npm install widget@1\.0\.0/)
    assert.match(mainText(v.text), /Homepage https:\/\/example\.com\/widget/)
    // An older version's page shows that version's own README (the cached state holds only the
    // latest's; the page reads the row it shows).
    assert.match(v.text, /<h2 id="readme-usage"/)
    assert.doesNotMatch(mainText(v.text), /Version 1\.1/)
    assert.doesNotMatch(v.text, /This package has no README/)
    assert.equal((await new WebClient(pier.url).get('/-/web/package/widget/v/9.9.9')).status, 404)
    // Deprecate 1.1.0 (npm deprecate's PUT): the next view shows the banner.
    const doc = (await (await fetch(new URL('widget?write=true', pier.url), { headers: { authorization: `Bearer ${tokens.alice}` } })).json()) as Record<string, unknown> & { versions: Record<string, Record<string, unknown>> }
    ;(doc.versions['1.1.0'] as Record<string, unknown>).deprecated = 'use gadget <script>alert(1)</script>'
    const put = await fetch(new URL('widget', pier.url), { method: 'PUT', headers: { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json' }, body: JSON.stringify(doc) })
    assert.equal(put.status, 201, await put.text())
    const after = await new WebClient(pier.url).get('/-/web/package/widget')
    assert.match(after.text, /<div class="deprecated" role="note"><strong>Deprecated:<\/strong> use gadget &lt;script&gt;alert\(1\)&lt;\/script&gt;<\/div>/)
  })

  void test('search pages: the same hits and total as /-/v1/search, paged', async () => {
    const api = (await (await fetch(new URL('-/v1/search?text=widget&size=20', pier.url))).json()) as { total: number; objects: { package: { name: string } }[] }
    const page = await new WebClient(pier.url).get('/-/web/search?q=widget')
    assert.equal(page.status, 200)
    const names = [...page.text.matchAll(/<span class="name"><a href="\/-\/web\/package\/([^"]+)">/g)].map((m) => m[1])
    assert.deepEqual(names, api.objects.map((o) => o.package.name))
    assert.match(mainText(page.text), new RegExp(`${api.total} packages? found`))
    assert.equal((await new WebClient(pier.url).get('/-/web/search?q=widget&page=2')).status, 200)
    // Too many words is the API's 400, as a page.
    const many = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')
    assert.equal((await new WebClient(pier.url).get(`/-/web/search?q=${encodeURIComponent(many)}`)).status, 400)
  })

  void test('a private package answers like an unknown name and is missing from every list', async () => {
    const anon = new WebClient(pier.url)
    const bob = new WebClient(pier.url)
    assert.equal((await bob.signIn('bob', 'bob-pass-1')).status, 303)
    for (const who of [anon, bob]) {
      const secret = await who.get('/-/web/package/@secret/thing')
      const unknown = await who.get('/-/web/package/@secret/nothing')
      assert.equal(secret.status, unknown.status)
      assert.equal(secret.status, who === anon ? 401 : 404)
      // Byte for byte the same page, but for the address asked (in the sign-in link's `next`).
      const asked = (n: string): string => encodeURIComponent(`/-/web/package/@secret/${n}`)
      assert.equal(secret.text.replaceAll(asked('thing'), 'ASKED'), unknown.text.replaceAll(asked('nothing'), 'ASKED'))
      assert.equal((await who.get('/-/web/package/@secret/thing/v/1.0.0')).status, secret.status)
      const search = await who.get('/-/web/search?q=gizmo')
      assert.doesNotMatch(search.text, /@secret/)
      assert.match(mainText(search.text), /1 package found/)
      const home = await who.get('/-/web/')
      assert.doesNotMatch(home.text, /@secret/)
      assert.match(mainText(home.text), /^Packages 2 packages/)
      const widget = await who.get('/-/web/package/widget')
      assert.doesNotMatch(widget.text, /@secret/)
      assert.match(mainText(widget.text), /Dependents \(1\)/)
      const user = await who.get('/-/web/user/alice')
      assert.doesNotMatch(user.text, /@secret/)
      const suggest = (await (await fetch(new URL('-/web/suggest?q=thing', pier.url), { headers: { cookie: [...who.jar].map(([k, v]) => `${k}=${v}`).join('; ') } })).json()) as { objects: unknown[] }
      assert.deepEqual(suggest.objects, [])
    }
    const alice = new WebClient(pier.url)
    assert.equal((await alice.signIn('alice', 'alice-pass-1')).status, 303)
    assert.equal((await alice.get('/-/web/package/@secret/thing')).status, 200)
    assert.match(mainText((await alice.get('/-/web/search?q=gizmo')).text), /2 packages found/)
    assert.match(mainText((await alice.get('/-/web/')).text), /^Packages 3 packages/)
    assert.match(mainText((await alice.get('/-/web/package/widget')).text), /Dependents \(2\)/)
    assert.match((await alice.get('/-/web/user/alice')).text, /@secret\/thing/)
  })

  void test('sessions: signed HttpOnly SameSite=Lax cookies; sign-out revokes the token', async () => {
    const c = new WebClient(pier.url)
    const page = await c.get('/-/web/login')
    const r = await c.post('/-/web/login', { csrf: csrfOf(page.text), username: 'alice', password: 'alice-pass-1', next: '/-/web/settings/tokens' })
    assert.equal(r.status, 303)
    assert.equal(r.headers.get('location'), '/-/web/settings/tokens')
    const set = r.headers.getSetCookie().find((s) => s.startsWith('pier_session='))
    assert.ok(set)
    assert.match(set, /HttpOnly/)
    assert.match(set, /SameSite=Lax/)
    assert.doesNotMatch(set, /Secure/)
    const home = await c.get('/-/web/')
    assert.match(home.text, /href="\/-\/web\/user\/alice">alice<\/a>/)
    const saved = new Map(c.jar)
    // A tampered cookie is anonymous.
    const forged = new WebClient(pier.url)
    forged.jar.set('pier_session', (saved.get('pier_session') ?? '').replace(/^./, 'x'))
    assert.match((await forged.get('/-/web/')).text, /Sign in<\/a>/)
    const out = await c.post('/-/web/logout', { csrf: csrfOf(home.text) })
    assert.equal(out.status, 303)
    assert.match((await c.get('/-/web/')).text, /Sign in<\/a>/)
    // The old cookie no longer works: its token was revoked.
    const replay = new WebClient(pier.url)
    for (const [k, v] of saved) replay.jar.set(k, v)
    assert.match((await replay.get('/-/web/')).text, /Sign in<\/a>/)
    // A next outside the UI is ignored.
    const p2 = await c.get('/-/web/login')
    const r2 = await c.post('/-/web/login', { csrf: csrfOf(p2.text), username: 'alice', password: 'alice-pass-1', next: '//evil.example/' })
    assert.equal(r2.headers.get('location'), '/-/web/')
  })

  void test('tokens page: create with npm 11 options, list, revoke; the password is asked', async () => {
    const c = new WebClient(pier.url)
    assert.equal((await c.get('/-/web/settings/tokens')).status, 303)
    await c.signIn('bob', 'bob-pass-1')
    const page = await c.get('/-/web/settings/tokens')
    assert.equal(page.status, 200)
    const csrf = csrfOf(page.text)
    const wrong = await c.post('/-/web/settings/tokens', { csrf, name: 'ci', password: 'nope' })
    assert.equal(wrong.status, 401)
    const made = await c.post('/-/web/settings/tokens', {
      csrf,
      name: 'ci',
      description: 'for CI',
      expires: '30',
      packages: 'uses-widget',
      scopes: '',
      packages_and_scopes_permission: 'read-write',
      orgs: '',
      orgs_permission: 'no-access',
      cidr_whitelist: '127.0.0.1/32',
      password: 'bob-pass-1',
    })
    assert.equal(made.status, 201, mainText(made.text))
    const token = /<p class="secret" id="new-token">([^<]+)<\/p>/.exec(made.text)?.[1]
    assert.ok(token)
    const listed = (await (await fetch(new URL('-/npm/v1/tokens', pier.url), { headers: { authorization: `Bearer ${token}` } })).json()) as { objects: { key: string; name: string; packages?: string[]; packages_and_scopes_permission?: string; cidr_whitelist: string[] | null; expires: string | null }[] }
    const ci = listed.objects.find((o) => o.name === 'ci')
    assert.ok(ci)
    assert.deepEqual(ci.packages, ['uses-widget'])
    assert.equal(ci.packages_and_scopes_permission, 'read-write')
    assert.deepEqual(ci.cidr_whitelist, ['127.0.0.1/32'])
    assert.ok(ci.expires)
    assert.match(mainText(made.text), /granular read-write: uses-widget/)
    const revoked = await c.post('/-/web/settings/tokens/revoke', { csrf, key: ci.key })
    assert.equal(revoked.status, 303)
    assert.equal((await fetch(new URL('-/whoami', pier.url), { headers: { authorization: `Bearer ${token}` } })).status, 401)
    // Without the CSRF token nothing happens.
    assert.equal((await c.post('/-/web/settings/tokens', { name: 'x', password: 'bob-pass-1' })).status, 403)
  })

  void test('admin page: administrators only; users and the audit log', async () => {
    const anon = new WebClient(pier.url)
    assert.equal((await anon.get('/-/web/admin')).status, 401)
    const bob = new WebClient(pier.url)
    await bob.signIn('bob', 'bob-pass-1')
    assert.equal((await bob.get('/-/web/admin')).status, 403)
    const root = new WebClient(pier.url)
    await root.signIn('root', 'root-pass-1')
    const page = await root.get('/-/web/admin')
    assert.equal(page.status, 200)
    const text = mainText(page.text)
    assert.match(text, /Users \(3\)/)
    assert.match(text, /root root@example\.com yes/)
    assert.match(text, /publish/)
    assert.match(text, /token-create/)
  })

  void test('org and team pages: members and packages, for members', async () => {
    // `pier org create acme --owner alice` (src/cli/main.ts) does this.
    await pier.pier.registry.orgs.createOrg('acme', 'alice', { name: undefined, readonly: false, admin: true })
    const headers = { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json' }
    assert.equal((await fetch(new URL('-/org/acme/team', pier.url), { method: 'PUT', headers, body: JSON.stringify({ name: 'devs' }) })).status, 201)
    const alice = new WebClient(pier.url)
    await alice.signIn('alice', 'alice-pass-1')
    const org = await alice.get('/-/web/org/acme')
    assert.equal(org.status, 200, mainText(org.text))
    assert.match(mainText(org.text), /Members \(1\) alice owner/)
    assert.match(org.text, /href="\/-\/web\/org\/acme\/team\/devs">acme:devs<\/a>/)
    const team = await alice.get('/-/web/org/acme/team/devs')
    assert.equal(team.status, 200)
    assert.match(mainText(team.text), /Members \(0\)/)
    assert.equal((await new WebClient(pier.url).get('/-/web/org/acme')).status, 401)
    assert.equal((await new WebClient(pier.url).get('/-/web/org/nope')).status, 401)
  })
})

void describe('web UI behind https', () => {
  void test('with an https url, the cookies are Secure', async () => {
    const pier = await startPier({ url: 'https://npm.example.com/' })
    try {
      await addUser(pier.url, 'alice')
      const c = new WebClient(pier.url)
      const page = await c.get('/-/web/login')
      assert.match(page.headers.getSetCookie().join('\n'), /pier_browser=[^\n]*; Secure/)
      const r = await c.post('/-/web/login', { csrf: csrfOf(page.text), username: 'alice', password: 'alice-pass-1' })
      assert.equal(r.status, 303)
      const set = r.headers.getSetCookie().find((x) => x.startsWith('pier_session='))
      assert.match(set ?? '', /HttpOnly/)
      assert.match(set ?? '', /Secure/)
      // The web login's URLs are built from the public url.
      const s = await fetch(new URL('-/v1/login', pier.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      const body = (await s.json()) as { loginUrl: string; doneUrl: string }
      assert.match(body.loginUrl, /^https:\/\/npm\.example\.com\/-\/web\/login\?session=/)
      assert.match(body.doneUrl, /^https:\/\/npm\.example\.com\/-\/v1\/done\?sessionId=/)
    } finally {
      await pier.close()
    }
  })
})
