/**
 * The real npm CLI (pinned devDependency) against Pier on the embedded default (SQLite + disk):
 * every command of the core issue, asserting exit codes, JSON output and on-disk state.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { NpmClient } from '../helpers/npm.js'
import { startPier, type TestPier } from '../helpers/pier.js'

let pier: TestPier
let alice: NpmClient
let bob: NpmClient

const ok = (r: { code: number; stdout: string; stderr: string }, what: string) =>
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)

const readJson = (p: string): Record<string, unknown> => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>

async function getJson(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(new URL(path, pier.url), { headers })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('npm CLI against Pier', () => {
  before(async () => {
    pier = await startPier()
    alice = new NpmClient(pier.url)
    bob = new NpmClient(pier.url)
  })
  after(async () => {
    await pier.close()
  })

  test('npm ping', async () => {
    ok(await alice.npm(['ping']), 'npm ping')
  })

  test('npm adduser creates an account (web login falls back to the legacy prompts), whoami, login', async () => {
    ok(await alice.login('alice', 'alice-pass-1'), 'adduser alice')
    assert.match(readFileSync(alice.userconfig, 'utf8'), /:_authToken=pier_/)
    const who = await alice.npm(['whoami'])
    ok(who, 'whoami')
    assert.equal(who.stdout.trim(), 'alice')
    ok(await bob.login('bob', 'bob-pass-1'), 'adduser bob')
    // Logging in again with the right password works; a wrong one fails.
    const again = new NpmClient(pier.url)
    ok(await again.login('alice', 'alice-pass-1', undefined, 'login'), 'login alice')
    const wrong = new NpmClient(pier.url)
    const bad = await wrong.login('alice', 'not-the-password', undefined, 'login')
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /E401|Incorrect/)
  })

  test('npm publish unscoped and scoped packages, with --tag and --access', async () => {
    ok(await alice.npm(['publish'], { cwd: alice.makePackage({ name: 'pier-a', version: '1.0.0', description: 'alpha thing', keywords: ['greek'] }) }), 'publish pier-a')
    ok(await alice.npm(['publish'], { cwd: alice.makePackage({ name: 'pier-a', version: '1.1.0', description: 'alpha thing', keywords: ['greek'] }) }), 'publish pier-a 1.1.0')
    ok(await alice.npm(['publish', '--tag', 'beta'], { cwd: alice.makePackage({ name: 'pier-a', version: '2.0.0-beta.1' }) }), 'publish beta')
    const scoped = alice.makePackage({ name: '@team/pier-b', version: '0.1.0', dependencies: { 'pier-a': '^1.0.0' } })
    ok(await alice.npm(['publish', '--access', 'public'], { cwd: scoped }), 'publish scoped')
    const { status, body } = await getJson('pier-a')
    assert.equal(status, 200)
    assert.deepEqual(body['dist-tags'], { latest: '1.1.0', beta: '2.0.0-beta.1' })
    assert.deepEqual(Object.keys(body.versions as object).sort(), ['1.0.0', '1.1.0', '2.0.0-beta.1'])
    const scopedDoc = await getJson('@team%2fpier-b')
    assert.equal(scopedDoc.status, 200)
    const v = (scopedDoc.body.versions as Record<string, { dist: { tarball: string } }>)['0.1.0']
    assert.equal(v?.dist.tarball, `${pier.url}@team/pier-b/-/pier-b-0.1.0.tgz`)
    // On disk: the SQLite file and a content-addressed tarball per version.
    assert.ok(existsSync(join(pier.dataDir, 'pier.sqlite')))
  })

  test('publishing an existing version with different content fails with 409 (EPUBLISHCONFLICT)', async () => {
    const r = await alice.npm(['publish'], { cwd: alice.makePackage({ name: 'pier-a', version: '1.0.0', description: 'changed' }) })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /EPUBLISHCONFLICT|409|previously published/)
  })

  test('another user cannot publish over a package they do not maintain', async () => {
    const r = await bob.npm(['publish'], { cwd: bob.makePackage({ name: 'pier-a', version: '9.0.0' }) })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /403|not a maintainer/)
  })

  test('npm view (with --json) and version manifests', async () => {
    const r = await alice.npm(['view', 'pier-a', '--json'])
    ok(r, 'view')
    const doc = JSON.parse(r.stdout) as Record<string, unknown>
    assert.equal(doc.name, 'pier-a')
    assert.equal(doc.version, '1.1.0')
    assert.equal(doc.description, 'alpha thing')
    const ver = await alice.npm(['view', 'pier-a@1.0.0', 'version'])
    assert.equal(ver.stdout.trim(), '1.0.0')
    const manifest = await getJson('pier-a/latest')
    assert.equal(manifest.body.version, '1.1.0')
  })

  test('npm install (fresh cache, --prefer-online) and npm ci from the lockfile', async () => {
    const consumer = new NpmClient(pier.url)
    const proj = consumer.project({ '@team/pier-b': '^0.1.0' })
    ok(await consumer.npm(['install', '--prefer-online'], { cwd: proj }), 'install')
    assert.equal(readJson(join(proj, 'node_modules/pier-a/package.json')).version, '1.1.0')
    assert.equal(readJson(join(proj, 'node_modules/@team/pier-b/package.json')).version, '0.1.0')
    const lock = readJson(join(proj, 'package-lock.json')) as { packages: Record<string, { resolved?: string; integrity?: string }> }
    const entry = lock.packages['node_modules/pier-a']
    assert.equal(entry?.resolved, `${pier.url}pier-a/-/pier-a-1.1.0.tgz`)
    assert.match(entry?.integrity ?? '', /^sha512-/)
    rmSync(join(proj, 'node_modules'), { recursive: true })
    rmSync(consumer.cache, { recursive: true })
    ok(await consumer.npm(['ci'], { cwd: proj }), 'ci')
    assert.equal(readJson(join(proj, 'node_modules/pier-a/package.json')).version, '1.1.0')
  })

  test('npm dist-tag add / ls / rm', async () => {
    ok(await alice.npm(['dist-tag', 'add', 'pier-a@1.0.0', 'stable']), 'dist-tag add')
    const ls = await alice.npm(['dist-tag', 'ls', 'pier-a'])
    ok(ls, 'dist-tag ls')
    assert.match(ls.stdout, /stable: 1\.0\.0/)
    assert.match(ls.stdout, /latest: 1\.1\.0/)
    ok(await alice.npm(['dist-tag', 'rm', 'pier-a', 'stable']), 'dist-tag rm')
    const { body } = await getJson('-/package/pier-a/dist-tags')
    assert.deepEqual(body, { latest: '1.1.0', beta: '2.0.0-beta.1' })
  })

  test('npm deprecate and undeprecate', async () => {
    ok(await alice.npm(['deprecate', 'pier-a@1.0.0', 'use 1.1 instead']), 'deprecate')
    let doc = await getJson('pier-a')
    assert.equal((doc.body.versions as Record<string, { deprecated?: string }>)['1.0.0']?.deprecated, 'use 1.1 instead')
    assert.equal((doc.body.versions as Record<string, { deprecated?: string }>)['1.1.0']?.deprecated, undefined)
    ok(await alice.npm(['deprecate', 'pier-a@1.0.0', '']), 'undeprecate')
    doc = await getJson('pier-a')
    assert.equal((doc.body.versions as Record<string, { deprecated?: string }>)['1.0.0']?.deprecated, undefined)
  })

  test('npm owner ls / add / rm', async () => {
    const ls = await alice.npm(['owner', 'ls', 'pier-a'])
    ok(ls, 'owner ls')
    assert.match(ls.stdout, /alice/)
    ok(await alice.npm(['owner', 'add', 'bob', 'pier-a']), 'owner add')
    assert.match((await alice.npm(['owner', 'ls', 'pier-a'])).stdout, /bob/)
    // bob may now publish
    ok(await bob.npm(['publish'], { cwd: bob.makePackage({ name: 'pier-a', version: '1.2.0', description: 'alpha thing', keywords: ['greek'] }) }), 'bob publishes')
    ok(await alice.npm(['owner', 'rm', 'bob', 'pier-a']), 'owner rm')
    assert.doesNotMatch((await alice.npm(['owner', 'ls', 'pier-a'])).stdout, /bob/)
  })

  test('npm star / stars / unstar', async () => {
    ok(await bob.npm(['star', 'pier-a']), 'star')
    const stars = await bob.npm(['stars'])
    ok(stars, 'stars')
    assert.match(stars.stdout, /pier-a/)
    const doc = await getJson('pier-a')
    assert.deepEqual(doc.body.users, { bob: true })
    ok(await bob.npm(['unstar', 'pier-a']), 'unstar')
    assert.equal((await getJson('pier-a')).body.users, undefined)
  })

  test('npm search matches name, description and keywords', async () => {
    const byKeyword = await alice.npm(['search', 'greek', '--json'])
    ok(byKeyword, 'search')
    const hits = JSON.parse(byKeyword.stdout) as { name: string }[]
    assert.deepEqual(hits.map((h) => h.name), ['pier-a'])
    const byDesc = JSON.parse((await alice.npm(['search', 'alpha', '--json'])).stdout) as { name: string }[]
    assert.deepEqual(byDesc.map((h) => h.name), ['pier-a'])
  })

  test('npm unpublish name@version: 410 afterwards, cannot be published again', async () => {
    ok(await alice.npm(['unpublish', 'pier-a@1.2.0']), 'unpublish version')
    const doc = await getJson('pier-a')
    assert.ok(!('1.2.0' in (doc.body.versions as object)))
    assert.equal((doc.body['dist-tags'] as Record<string, string>).latest, '1.1.0')
    assert.ok((doc.body.time as Record<string, string>)['1.2.0'], 'time keeps the unpublished version')
    assert.equal((await fetch(new URL('pier-a/1.2.0', pier.url))).status, 410)
    assert.equal((await fetch(new URL('pier-a/-/pier-a-1.2.0.tgz', pier.url))).status, 410)
    const again = await alice.npm(['publish'], { cwd: alice.makePackage({ name: 'pier-a', version: '1.2.0' }) })
    assert.notEqual(again.code, 0)
    assert.match(again.stderr, /410|unpublished/)
  })

  test('npm unpublish name --force removes the whole package', async () => {
    ok(await alice.npm(['publish'], { cwd: alice.makePackage({ name: 'pier-gone', version: '1.0.0' }) }), 'publish')
    ok(await alice.npm(['publish'], { cwd: alice.makePackage({ name: 'pier-gone', version: '1.0.1' }) }), 'publish')
    ok(await alice.npm(['unpublish', 'pier-gone', '--force']), 'unpublish --force')
    assert.equal((await fetch(new URL('pier-gone', pier.url))).status, 404)
    assert.equal((await fetch(new URL('pier-gone/-/pier-gone-1.0.0.tgz', pier.url))).status, 410)
  })

  test('npm token create / list / revoke; read-only tokens cannot publish', async () => {
    const created = await alice.npm(['token', 'create', '--json'], { answers: [[/[Pp]assword/, 'alice-pass-1']] })
    ok(created, 'token create')
    const created_ = JSON.parse(created.stdout.slice(created.stdout.indexOf('{'))) as { token: string }
    assert.match(created_.token, /^pier_/)
    // npm's list shows `key` = sha512 hex of the token; `npm token revoke` takes a key prefix.
    const t = { token: created_.token, key: createHash('sha512').update(created_.token).digest('hex') }
    const list = await alice.npm(['token', 'list', '--json'])
    ok(list, 'token list')
    const keys = (JSON.parse(list.stdout) as { key: string }[]).map((x) => x.key)
    assert.ok(keys.includes(t.key))
    ok(await alice.npm(['token', 'revoke', t.key.slice(0, 8)]), 'token revoke')
    const after = (JSON.parse((await alice.npm(['token', 'list', '--json'])).stdout) as { key: string }[]).map((x) => x.key)
    assert.ok(!after.includes(t.key))
    const revoked = await fetch(new URL('-/whoami', pier.url), { headers: { authorization: `Bearer ${t.token}` } })
    assert.equal(revoked.status, 401)

    const { token: ro } = await pier.pier.auth.createToken('alice', { readonly: true })
    const roClient = new NpmClient(pier.url)
    roClient.setToken(ro)
    const who = await roClient.npm(['whoami'])
    assert.equal(who.stdout.trim(), 'alice')
    const pub = await roClient.npm(['publish'], { cwd: roClient.makePackage({ name: 'pier-ro', version: '1.0.0' }) })
    assert.notEqual(pub.code, 0)
    assert.match(pub.stderr, /403/)
  })

  test('CIDR-restricted tokens refuse other addresses', async () => {
    const { token } = await pier.pier.auth.createToken('alice', { cidrWhitelist: ['10.0.0.0/8'] })
    const c = new NpmClient(pier.url)
    c.setToken(token)
    const r = await c.npm(['whoami'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /EAUTHIP|IP address|401/)
    const { token: local } = await pier.pier.auth.createToken('alice', { cidrWhitelist: ['127.0.0.0/8', '::1/128'] })
    c.setToken(local)
    assert.equal((await c.npm(['whoami'])).stdout.trim(), 'alice')
  })

  test('npm logout revokes the token on the server', async () => {
    const c = new NpmClient(pier.url)
    ok(await c.login('alice', 'alice-pass-1', undefined, 'login'), 'login')
    const token = /:_authToken=(\S+)/.exec(readFileSync(c.userconfig, 'utf8'))?.[1] ?? ''
    assert.ok(token)
    ok(await c.npm(['logout']), 'logout')
    const r = await fetch(new URL('-/whoami', pier.url), { headers: { authorization: `Bearer ${token}` } })
    assert.equal(r.status, 401)
  })
})
