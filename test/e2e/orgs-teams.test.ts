/**
 * Orgs, teams and `npm access`, driven by the real npm CLI against a Pier whose org was created
 * with `pier org create`: an org owner manages members and teams, grants teams read-only and
 * read-write on a package and makes it private; then each kind of caller (owner, read-only team
 * member, read-write team member, a user outside the org, an anonymous client) is tried on
 * reading and publishing, and the answers are npm's: a private package reads as an unknown one.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { addUser } from '../helpers/accounts.js'
import { NpmClient, run, type RunResult } from '../helpers/npm.js'
import { CLI, startPier, tempDir, type TestPier } from '../helpers/pier.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`)
  return r
}

function refused(r: RunResult, what: string, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `${what} should fail:\n${r.stdout}`)
  assert.match(r.stderr, pattern, what)
}

void describe('orgs, teams and npm access (npm CLI)', () => {
  let pier: TestPier
  let dataDir: string
  const clients: Record<string, NpmClient> = {}
  const c = (who: string): NpmClient => clients[who] as NpmClient

  before(async () => {
    dataDir = tempDir()
    const config = join(dataDir, 'config.json')
    writeFileSync(config, JSON.stringify({ storage: { local: { path: join(dataDir, 'data') } }, uplinks: {}, logger: { level: 'warn' } }))
    // The org is created by an operator with the CLI, before the node serves.
    ok(await run(process.execPath, [CLI, 'user', 'add', 'alice', '--password', 'alice-pass-1', '--config', config]), 'pier user add')
    ok(await run(process.execPath, [CLI, 'org', 'create', 'acme', '--owner', 'alice', '--config', config]), 'pier org create')
    const again = await run(process.execPath, [CLI, 'org', 'create', 'acme', '--owner', 'alice', '--config', config])
    assert.notEqual(again.code, 0)
    assert.match(again.stderr, /already exists/)
    pier = await startPier({ storage: { local: { path: join(dataDir, 'data') } } })
    for (const who of ['alice', 'bob', 'carol', 'dave']) {
      clients[who] = new NpmClient(pier.url)
      c(who).setToken(await addUser(pier.url, who))
    }
    clients.anonymous = new NpmClient(pier.url)
  })
  after(() => pier.close())

  void test('the owner manages members and teams', async () => {
    const set = ok(await c('alice').npm(['org', 'set', 'acme', 'bob', 'developer']), 'npm org set')
    assert.match(set.stdout, /Added bob as developer to acme\. You now have 2 members in this org\./)
    ok(await c('alice').npm(['org', 'set', 'acme', 'carol']), 'npm org set (default role)')
    const ls = ok(await c('alice').npm(['org', 'ls', 'acme']), 'npm org ls')
    assert.match(ls.stdout, /alice - owner/)
    assert.match(ls.stdout, /bob - developer/)
    assert.match(ls.stdout, /carol - developer/)
    // A developer may not manage the org; someone outside it cannot even see it.
    refused(await c('bob').npm(['org', 'set', 'acme', 'dave']), 'a developer adds a member', /403|not an owner or admin/)
    refused(await c('dave').npm(['org', 'ls', 'acme']), 'an outsider lists the org', /404/)

    for (const t of ['readers', 'writers']) ok(await c('alice').npm(['team', 'create', `@acme:${t}`]), `team create ${t}`)
    ok(await c('alice').npm(['team', 'add', '@acme:readers', 'bob']), 'team add bob')
    ok(await c('alice').npm(['team', 'add', '@acme:writers', 'carol']), 'team add carol')
    refused(await c('alice').npm(['team', 'add', '@acme:writers', 'dave']), 'a non-member joins a team', /not a member of org/)
    const teams = ok(await c('bob').npm(['team', 'ls', '@acme']), 'team ls')
    assert.match(teams.stdout, /@acme has 3 teams/)
    assert.match(teams.stdout, /@acme:developers/)
    const members = ok(await c('alice').npm(['team', 'ls', '@acme:writers']), 'team ls members')
    assert.match(members.stdout, /carol/)
  })

  void test('grants and a private package decide who reads and publishes', async () => {
    ok(await c('alice').npm(['publish', '--access', 'public'], { cwd: c('alice').makePackage({ name: '@acme/lib', version: '1.0.0' }) }), 'publish @acme/lib')
    // A user outside the org cannot publish into its scope.
    refused(await c('dave').npm(['publish'], { cwd: c('dave').makePackage({ name: '@acme/other', version: '1.0.0' }) }), 'outsider publishes into the scope', /not a member of org "acme"/)

    const priv = ok(await c('alice').npm(['access', 'set', 'status=private', '@acme/lib']), 'access set status=private')
    assert.match(priv.stdout, /@acme\/lib: private/)
    ok(await c('alice').npm(['access', 'grant', 'read-only', 'acme:readers', '@acme/lib']), 'grant read-only')
    ok(await c('alice').npm(['access', 'grant', 'read-write', 'acme:writers', '@acme/lib']), 'grant read-write')
    refused(await c('bob').npm(['access', 'grant', 'read-write', 'acme:readers', '@acme/lib']), 'a developer grants', /403/)

    const listed = JSON.parse(ok(await c('alice').npm(['access', 'list', 'packages', 'acme:writers', '--json']), 'list packages team').stdout) as Obj
    assert.deepEqual(listed, { '@acme/lib': 'read-write' })
    const collab = JSON.parse(ok(await c('alice').npm(['access', 'list', 'collaborators', '@acme/lib', '--json']), 'list collaborators').stdout) as Obj
    assert.deepEqual(collab, { alice: 'read-write', bob: 'read-only', carol: 'read-write' })
    const orgPkgs = JSON.parse(ok(await c('bob').npm(['access', 'list', 'packages', 'acme', '--json']), 'list packages org').stdout) as Obj
    assert.deepEqual(orgPkgs, { '@acme/lib': 'read-only' })

    // Reads: the team members read it; an outsider gets 404 exactly as for an unknown name.
    assert.equal(ok(await c('bob').npm(['view', '@acme/lib', 'version']), 'bob views').stdout.trim(), '1.0.0')
    const outsider = await c('dave').npm(['view', '@acme/lib', 'version'])
    const unknown = await c('dave').npm(['view', '@acme/nope', 'version'])
    refused(outsider, 'outsider views', /E404/)
    refused(unknown, 'outsider views an unknown name', /E404/)
    const same = (r: RunResult, name: string): string => r.stderr.replace(new RegExp(name, 'g'), 'X').replace(/A complete log of this run.*$/m, '')
    assert.equal(same(outsider, 'lib'), same(unknown, 'nope'), 'the same answer as for an unknown name')
    // Anonymous: 404 too, as for an unknown name in a scope anyone may read (a 401 would tell).
    refused(await clients.anonymous!.npm(['view', '@acme/lib', 'version']), 'anonymous views', /E404/)

    // Writes: read-only refused, read-write allowed.
    refused(await c('bob').npm(['publish'], { cwd: c('bob').makePackage({ name: '@acme/lib', version: '1.0.1' }) }), 'read-only publishes', /403/)
    ok(await c('carol').npm(['publish'], { cwd: c('carol').makePackage({ name: '@acme/lib', version: '1.0.1' }) }), 'read-write publishes')
    ok(await c('carol').npm(['dist-tag', 'add', '@acme/lib@1.0.0', 'stable']), 'read-write moves a dist-tag')

    // Revoked: carol may no longer publish (she still reads nothing else of it: it is private).
    ok(await c('alice').npm(['access', 'revoke', 'acme:writers', '@acme/lib']), 'revoke')
    refused(await c('carol').npm(['publish'], { cwd: c('carol').makePackage({ name: '@acme/lib', version: '1.0.2' }) }), 'revoked publishes', /E404|403/)

    // mfa is stored and reported; status back to public opens it to everyone.
    ok(await c('alice').npm(['access', 'set', 'mfa=publish', '@acme/lib']), 'set mfa')
    const access = await fetch(new URL('-/package/@acme%2flib/access', pier.url), { headers: { authorization: `Bearer ${await addUser(pier.url, 'alice')}` } })
    assert.equal(((await access.json()) as Obj).mfa, 'publish')
    const pub = ok(await c('alice').npm(['access', 'set', 'status=public', '@acme/lib']), 'set status=public')
    assert.match(pub.stdout, /@acme\/lib: public/)
    assert.equal(ok(await clients.anonymous!.npm(['view', '@acme/lib', 'version']), 'anonymous views a public package').stdout.trim(), '1.0.1')
    assert.match(ok(await c('dave').npm(['access', 'get', 'status', '@acme/lib']), 'get status').stdout, /@acme\/lib: public/)
  })

  void test('removing a member removes their team rights', async () => {
    ok(await c('alice').npm(['access', 'set', 'status=private', '@acme/lib']), 'private again')
    ok(await c('bob').npm(['view', '@acme/lib', 'version']), 'bob reads through his team')
    const rm = ok(await c('alice').npm(['org', 'rm', 'acme', 'bob']), 'org rm')
    assert.match(rm.stdout, /Successfully removed bob from acme/)
    refused(await c('bob').npm(['view', '@acme/lib', 'version']), 'bob no longer reads', /E404/)
    ok(await c('alice').npm(['team', 'destroy', '@acme:readers']), 'team destroy')
    const teams = ok(await c('alice').npm(['team', 'ls', '@acme']), 'team ls')
    assert.doesNotMatch(teams.stdout, /readers/)
  })
})
