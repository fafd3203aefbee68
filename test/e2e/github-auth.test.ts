/**
 * `auth.type: github` end to end: the real npm CLI with GitHub tokens against in-process Piers
 * whose `auth.github.host` is a GitHub stand-in on loopback (test/helpers/github-fixture.ts). Who
 * the caller is comes from `GET /user`; what they may do from `GET /repos/{owner}/{repo}`'s
 * `permissions` on the repository named by the package's `repository` field. Covered: `npm
 * whoami`, publish (push allowed, pull refused, a scope that is not the repository's owner
 * refused), install and view (pull allowed, no access 404, anonymous 401, proxied names read by
 * any GitHub user), Pier's own tokens beside GitHub's, the cache (GitHub calls with a cold and a
 * warm cache), a revoked token refused once the TTL has passed, rate limits (served from an
 * expired cache; 503 with Retry-After when nothing is cached), a GitHub slower than the timeout,
 * and the cache shared through PostgreSQL by two nodes.
 */
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { githubWebHosts, parseGithubRepository, rateLimitedUntil, rightOfPermissions } from '../../src/auth/github.js'
import { ConfigSchema, GITHUB_API_DEFAULT } from '../../src/config/schema.js'
import { addUser } from '../helpers/accounts.js'
import { startGithubFixture, type GithubFixture } from '../helpers/github-fixture.js'
import { NpmClient, type RunResult } from '../helpers/npm.js'
import { startPier, tempDir, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'
import { publishBody } from '../helpers/publish-body.js'

/** Fake GitHub tokens (never real ones), each a row of the fixture's table. */
const T = {
  alice: 'gh-test-alice-1',
  aliceB: 'gh-test-alice-2',
  aliceB2: 'gh-test-alice-3',
  alicePg: 'gh-test-alice-4',
  bob: 'gh-test-bob-1',
  bobB: 'gh-test-bob-2',
  bobPg: 'gh-test-bob-3',
  carol: 'gh-test-carol-1',
  carolPg: 'gh-test-carol-2',
  dave: 'gh-test-dave-1',
  erin: 'gh-test-erin-1',
  frank: 'gh-test-frank-1',
  grace: 'gh-test-grace-1',
  heidi: 'gh-test-heidi-1',
  slow: 'gh-test-slow-1',
  ivan: 'gh-test-ivan-1',
}

const ALICE = { login: 'alice', repos: { 'acme/widget': 'push', 'acme/tool': 'admin' } } as const
const BOB = { login: 'bob', repos: { 'acme/widget': 'pull' } } as const
const CAROL = { login: 'carol', repos: {} } as const

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`)
  return r
}

function refused(r: RunResult, what: string, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `${what} should fail:\n${r.stdout}`)
  assert.match(r.stderr, pattern, `${what}:\n${r.stderr}`)
}

/** `auth` for a Pier that asks `fixture`. */
function githubAuth(fixture: GithubFixture, ttl?: string) {
  return { type: 'github' as const, admins: ['root'], github: { host: fixture.url, timeout: '1s', ...(ttl ? { cache: { ttl } } : {}) } }
}

/** A GET with a bearer token (none for `undefined`). */
function get(base: string, path: string, token: string | undefined): Promise<Response> {
  return fetch(new URL(path, base), { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
}

/** A client of `pier` whose `_authToken` is `token`. */
function client(pier: TestPier, token?: string): NpmClient {
  const c = new NpmClient(pier.url)
  if (token !== undefined) c.setToken(token)
  return c
}

/** Publishes `pkg` with npm (its package.json as given). */
async function publish(c: NpmClient, pkg: Record<string, unknown>): Promise<RunResult> {
  return c.npm(['publish'], { cwd: c.makePackage(pkg) })
}

void describe('repository fields and GitHub headers (pure functions)', () => {
  void test('parseGithubRepository reads the forms npm accepts, on GitHub hosts only', () => {
    const hosts = githubWebHosts(GITHUB_API_DEFAULT)
    const web = [...hosts][0] as string
    const want = { owner: 'acme', repo: 'widget' }
    for (const r of [
      'github:acme/widget',
      'acme/widget',
      'acme/widget#main',
      `git+https://${web}/acme/widget.git`,
      `https://${web}/acme/widget`,
      `https://www.${web}/acme/widget/`,
      `git://${web}/acme/widget.git`,
      `git+ssh://git@${web}/acme/widget.git`,
      `git@${web}:acme/widget.git`,
      { type: 'git', url: `git+https://${web}/acme/widget.git` },
      { type: 'git', url: 'github:acme/widget', directory: 'packages/widget' },
    ]) {
      assert.deepEqual(parseGithubRepository(r, hosts), want, JSON.stringify(r))
    }
    for (const r of [
      undefined,
      '',
      42,
      'gitlab:acme/widget',
      'bitbucket:acme/widget',
      'git+https://gitlab.example.com/acme/widget.git',
      'git@gitlab.example.com:acme/widget.git',
      `https://${web}/acme`,
      `https://${web}/acme/widget/tree/main`,
      'acme/..',
      '../acme/widget',
      'ac me/widget',
      { type: 'git' },
    ]) {
      assert.equal(parseGithubRepository(r, hosts), undefined, JSON.stringify(r))
    }
    // GitHub Enterprise Server: the API below /api/v3 of the web host.
    assert.deepEqual(parseGithubRepository('https://ghe.example.com/acme/widget', githubWebHosts('https://ghe.example.com/api/v3')), want)
  })

  void test('auth.github configuration: defaults, the seed\'s cache.path and the OAuth keys accepted, unknown keys refused', () => {
    const c = ConfigSchema.parse({ auth: { type: 'github', github: { cache: { path: './gh-cache' }, client_id: 'id', client_secret: 'secret' } } })
    assert.equal(c.auth.github.host, GITHUB_API_DEFAULT)
    assert.equal(c.auth.github.timeout, 10_000)
    assert.equal(c.auth.github.cache.ttl, 5 * 60_000)
    assert.equal(ConfigSchema.parse({ auth: { github: { timeout: '3s', cache: { ttl: '1m' } } } }).auth.github.cache.ttl, 60_000)
    assert.equal(ConfigSchema.parse({}).auth.github.host, GITHUB_API_DEFAULT)
    assert.throws(() => ConfigSchema.parse({ auth: { github: { hots: 'x' } } }), /hots/)
    assert.throws(() => ConfigSchema.parse({ auth: { github: { host: 'not a url' } } }), /host/)
  })

  void test('permissions and rate-limit headers', () => {
    assert.equal(rightOfPermissions({ admin: false, maintain: false, push: true, triage: true, pull: true }), 'write')
    assert.equal(rightOfPermissions({ maintain: true }), 'write')
    assert.equal(rightOfPermissions({ admin: true }), 'write')
    assert.equal(rightOfPermissions({ triage: true, pull: true }), 'read')
    assert.equal(rightOfPermissions({ pull: true }), 'read')
    assert.equal(rightOfPermissions({ pull: false }), 'none')
    assert.equal(rightOfPermissions(undefined), 'none')
    const now = 1_000_000_000_000
    assert.equal(rateLimitedUntil(403, { 'x-ratelimit-remaining': '0', 'retry-after': '30' }, now), now + 30_000)
    assert.equal(rateLimitedUntil(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 90) }, now), now + 90_000)
    assert.equal(rateLimitedUntil(429, {}, now), now + 60_000)
    assert.equal(rateLimitedUntil(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 5) }, now), now + 5_000)
    assert.equal(rateLimitedUntil(403, { 'x-ratelimit-remaining': '12' }, now), undefined)
    assert.equal(rateLimitedUntil(200, { 'x-ratelimit-remaining': '4999' }, now), undefined)
  })
})

void describe('auth.type github (npm CLI, SQLite)', () => {
  let fixture: GithubFixture
  let upstream: TestPier
  let pier: TestPier
  let rootToken: string

  before(async () => {
    fixture = await startGithubFixture({
      [T.alice]: ALICE,
      [T.bob]: BOB,
      [T.carol]: CAROL,
      [T.dave]: { login: 'dave', repos: { 'other/x': 'admin' } },
      [T.erin]: { login: 'erin', repos: { 'acme/widget': 'pull' } },
      [T.frank]: { login: 'frank', repos: { 'acme/widget': 'pull' } },
      [T.grace]: { login: 'grace' },
      [T.slow]: { login: 'slowpoke' },
      [T.ivan]: { login: 'ivan', repos: { 'acme/widget': 'maintain' } },
    })
    fixture.slow.add(T.slow)
    // An ordinary Pier as the uplink, with one public package: proxied names read by GitHub users.
    upstream = await startPier()
    const publisher = await addUser(upstream.url, 'upstreamer')
    const put = await fetch(new URL('plain-dep', upstream.url), {
      method: 'PUT',
      headers: { authorization: `Bearer ${publisher}`, 'content-type': 'application/json' },
      body: JSON.stringify(publishBody({ name: 'plain-dep', version: '1.0.0' }).body),
    })
    assert.equal(put.status, 201)
    pier = await startPier({ auth: githubAuth(fixture), uplinks: { up: { url: upstream.url } } })
    rootToken = await addUser(pier.url, 'root')
  })
  after(async () => {
    await pier.close()
    await upstream.close()
    await fixture.close()
  })

  void test('npm whoami prints the GitHub login; Pier-issued tokens keep working without asking GitHub', async () => {
    const who = ok(await client(pier, T.alice).npm(['whoami']), 'npm whoami (alice)')
    assert.equal(who.stdout.trim(), 'alice')
    const asked = fixture.requests.find((r) => r.token === T.alice && r.path === '/user')
    assert.ok(asked, 'GET /user was asked with the token')
    assert.equal(asked.headers.authorization, `Bearer ${T.alice}`)
    assert.equal(asked.headers.accept, 'application/vnd.github+json')
    assert.equal(asked.headers['x-github-api-version'], '2022-11-28')
    assert.ok((asked.headers['user-agent'] ?? '').length > 0)

    const root = ok(await client(pier, rootToken).npm(['whoami']), 'npm whoami (root, a Pier token)')
    assert.equal(root.stdout.trim(), 'root')
    assert.equal(fixture.callsWith(rootToken), 0, 'a token Pier issued is never sent to GitHub')

    const bad = await get(pier.url, '-/whoami', 'gh-test-unknown')
    assert.equal(bad.status, 401)
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer/)
    assert.equal(((await bad.json()) as { error: string }).error, 'Invalid or revoked GitHub token.')
    // A token of Pier's own form that Pier does not know (revoked) is never sent to GitHub.
    const stale = await get(pier.url, '-/whoami', 'pier_revoked-or-made-up')
    assert.equal(stale.status, 401)
    assert.match(((await stale.json()) as { error: string }).error, /Run `npm login` again/)
    assert.equal(fixture.callsWith('pier_revoked-or-made-up'), 0)
  })

  void test('publish: push on the repository allows it, pull refuses it, the scope must be the repository owner', async () => {
    const alice = client(pier, T.alice)
    ok(await publish(alice, { name: '@acme/widget', version: '1.0.0', repository: 'github:acme/widget' }), 'alice (push) publishes @acme/widget')
    const view = ok(await alice.npm(['view', '@acme/widget', 'version']), 'npm view')
    assert.equal(view.stdout.trim(), '1.0.0')

    refused(
      await publish(client(pier, T.bob), { name: '@acme/widget', version: '1.1.0', repository: 'github:acme/widget' }),
      'bob (pull) publishes a new version',
      /E403[\s\S]*no write permission on the repository of "@acme\/widget"/,
    )
    // Write permission is what being a maintainer means: another user with it publishes the next
    // version and moves a dist-tag of alice's package.
    const ivan = client(pier, T.ivan)
    ok(await publish(ivan, { name: '@acme/widget', version: '1.2.0', repository: 'github:acme/widget' }), 'ivan (maintain) publishes 1.2.0')
    ok(await ivan.npm(['dist-tag', 'add', '@acme/widget@1.0.0', 'stable']), 'ivan moves a dist-tag')
    refused(
      await publish(client(pier, T.dave), { name: '@acme/thing', version: '1.0.0', repository: 'github:other/x' }),
      'dave (admin of other/x) publishes into @acme',
      /E403[\s\S]*The scope @acme does not match the repository owner "other" \(github:other\/x\)/,
    )
    // An unscoped package needs no scope; its repository as a git URL on the GitHub host.
    const webHost = new URL(fixture.url).hostname
    ok(await publish(alice, { name: 'widget-cli', version: '1.0.0', repository: { type: 'git', url: `git+https://${webHost}/acme/widget.git` } }), 'alice publishes widget-cli')
    const after = ok(await client(pier, T.bob).npm(['view', 'widget-cli', 'version']), 'bob (pull) views widget-cli')
    assert.equal(after.stdout.trim(), '1.0.0')
  })

  void test('install: pull reads, no access is 404, anonymous 401; proxied names are read by any GitHub user; calls with a cold and a warm cache', async (t) => {
    const erin = client(pier, T.erin)
    ok(await erin.npm(['install', '@acme/widget'], { cwd: erin.project() }), 'erin (pull) installs @acme/widget')
    const cold = fixture.requests.filter((r) => r.token === T.erin).map((r) => r.path)
    assert.deepEqual(cold.sort(), ['/repos/acme/widget', '/user'], 'a cold cache: one GET /user and one GET /repos for the whole install')
    // Another client (empty npm cache), the same token: everything from Pier's cache.
    const erin2 = client(pier, T.erin)
    ok(await erin2.npm(['install', '@acme/widget'], { cwd: erin2.project() }), 'erin installs again')
    assert.equal(fixture.callsWith(T.erin), cold.length, 'a warm cache: no GitHub call')
    t.diagnostic(`GitHub calls for npm install: cold cache ${cold.length}, warm cache 0`)

    refused(await client(pier, T.carol).npm(['view', '@acme/widget']), 'carol (no access) views @acme/widget', /E404/)
    const carol = client(pier, T.carol)
    refused(await carol.npm(['install', '@acme/widget'], { cwd: carol.project() }), 'carol installs @acme/widget', /E404/)
    assert.equal((await get(pier.url, '@acme%2fwidget', undefined)).status, 401, 'anonymous')
    assert.equal((await get(pier.url, '@acme%2fwidget/-/widget-1.0.0.tgz', undefined)).status, 401, 'anonymous tarball')

    ok(await carol.npm(['install', 'plain-dep'], { cwd: carol.project() }), 'carol installs a proxied package')
    assert.equal((await get(pier.url, 'plain-dep', undefined)).status, 401, 'anonymous, proxied')
    // A Pier user (not a GitHub token) reads proxied names, not GitHub-decided ones.
    assert.equal((await get(pier.url, 'plain-dep', rootToken)).status, 200)
  })

  void test('rate-limited with a cold cache: 503 with Retry-After, never 200', async () => {
    try {
      fixture.rateLimit = { retryAfter: 42 }
      for (const path of ['-/whoami', '@acme%2fwidget', '@acme%2fwidget/-/widget-1.0.0.tgz']) {
        const r = await get(pier.url, path, T.frank)
        assert.equal(r.status, 503, path)
        const after = Number(r.headers.get('retry-after'))
        assert.ok(after >= 1 && after <= 42, `Retry-After ${after}`)
        assert.match(((await r.json()) as { error: string }).error, /GitHub cannot answer now \(rate-limited \(403\)\)/)
      }
      assert.equal(fixture.callsWith(T.frank), 1, 'after the first refusal, the token waits for Retry-After')
      // 429 without retry-after: x-ratelimit-reset decides.
      fixture.rateLimit = { retryAfter: 30, status: 429, retryAfterHeader: false }
      const r = await get(pier.url, '-/whoami', T.grace)
      assert.equal(r.status, 503)
      const after = Number(r.headers.get('retry-after'))
      assert.ok(after >= 1 && after <= 31, `Retry-After ${after}`)
      // A warm cache (alice's answers are fresh) is not disturbed.
      const who = ok(await client(pier, T.alice).npm(['whoami']), 'alice whoami while rate-limited')
      assert.equal(who.stdout.trim(), 'alice')
    } finally {
      fixture.rateLimit = undefined
    }
  })

  void test('a GitHub slower than auth.github.timeout: 503, not a hang', async () => {
    const r = await get(pier.url, '-/whoami', T.slow)
    assert.equal(r.status, 503)
    assert.ok(Number(r.headers.get('retry-after')) >= 1)
    assert.match(((await r.json()) as { error: string }).error, /no answer within 1000 ms/)
    assert.equal(fixture.requests.filter((q) => q.token === T.slow && q.status === 0).length, 1, 'one withheld answer')
  })
})

void describe('auth.type github: TTL, revocation and an expired cache under a rate limit (cache.ttl 1s)', () => {
  let fixture: GithubFixture
  let pier: TestPier

  before(async () => {
    fixture = await startGithubFixture({ [T.aliceB]: ALICE, [T.aliceB2]: ALICE, [T.bobB]: BOB, [T.heidi]: BOB })
    pier = await startPier({ auth: githubAuth(fixture, '1s') })
  })
  after(async () => {
    await pier.close()
    await fixture.close()
  })

  void test('a revoked token is refused once the TTL has passed', async (t) => {
    const alice = client(pier, T.aliceB)
    assert.equal(ok(await alice.npm(['whoami']), 'whoami').stdout.trim(), 'alice')
    fixture.revoke(T.aliceB)
    let polls = 0
    let status = 200
    // At most ~10 s: the answer is trusted for 1 s.
    for (; polls < 200 && status !== 401; polls++) {
      status = (await get(pier.url, '-/whoami', T.aliceB)).status
      if (status === 200) await delay(50)
      else assert.equal(status, 401, 'only 200 (still trusted) or 401 (revoked)')
    }
    assert.equal(status, 401, 'refused within the bound')
    t.diagnostic(`revoked token refused after ${polls} polls`)
    refused(await alice.npm(['whoami']), 'npm whoami with the revoked token', /E401/)
  })

  void test('rate-limited with an expired cache: reads keep working from it; a cold token gets 503', async () => {
    ok(await publish(client(pier, T.aliceB2), { name: '@acme/widget', version: '1.0.0', repository: 'github:acme/widget' }), 'publish')
    const bob = client(pier, T.bobB)
    ok(await bob.npm(['view', '@acme/widget', 'version']), 'bob views (warms the cache)')
    try {
      fixture.rateLimit = { retryAfter: 120 }
      // Until GitHub has refused bob's token once (the cached answers expired), every read is a 200.
      const limited = () => fixture.requests.some((r) => r.token === T.bobB && r.status === 403)
      let polls = 0
      for (; polls < 200 && !limited(); polls++) {
        const r = await get(pier.url, '@acme%2fwidget', T.bobB)
        assert.equal(r.status, 200, 'served from the cache')
        await r.arrayBuffer()
        if (!limited()) await delay(50)
      }
      assert.ok(limited(), 'GitHub was asked again once the answers expired, and refused')
      const calls = fixture.callsWith(T.bobB)
      const view = ok(await bob.npm(['view', '@acme/widget', 'version']), 'bob views while rate-limited')
      assert.equal(view.stdout.trim(), '1.0.0')
      const proj = bob.project()
      ok(await bob.npm(['install', '@acme/widget'], { cwd: proj }), 'bob installs while rate-limited')
      assert.equal(fixture.callsWith(T.bobB), calls, 'no call while Retry-After runs')
      assert.equal((await get(pier.url, '@acme%2fwidget', T.heidi)).status, 503, 'a cold token: nothing to serve')
    } finally {
      fixture.rateLimit = undefined
    }
  })
})

void describe('auth.type github on PostgreSQL: two nodes share the cached answers', () => {
  let fixture: GithubFixture
  let db: TempDatabase
  let dataDir: string
  let nodes: TestPier[] = []

  before(async () => {
    fixture = await startGithubFixture({ [T.alicePg]: ALICE, [T.bobPg]: BOB, [T.carolPg]: CAROL })
    db = await createTempDatabase()
    dataDir = tempDir()
    const config = { auth: githubAuth(fixture), storage: { local: { path: dataDir }, meta: { type: 'postgres' as const, url: db.url } } }
    nodes = [await startPier(config), await startPier(config)]
  })
  after(async () => {
    for (const n of nodes) await n.close()
    await fixture.close()
    await db.drop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  void test("the second node answers from the first node's cached permission while GitHub rate-limits", async () => {
    const [one, two] = nodes as [TestPier, TestPier]
    ok(await publish(client(one, T.alicePg), { name: '@acme/widget', version: '1.0.0', repository: 'github:acme/widget' }), 'alice publishes on node 1')
    ok(await client(one, T.bobPg).npm(['view', '@acme/widget', 'version']), 'bob views on node 1')
    try {
      fixture.rateLimit = { retryAfter: 60 }
      const seen = fixture.requests.length
      const bob = client(two, T.bobPg)
      const view = ok(await bob.npm(['view', '@acme/widget', 'version']), 'bob views on node 2')
      assert.equal(view.stdout.trim(), '1.0.0')
      ok(await bob.npm(['install', '@acme/widget'], { cwd: bob.project() }), 'bob installs from node 2')
      assert.equal(fixture.requests.length, seen, 'node 2 asked GitHub nothing')
      assert.equal((await get(two.url, '@acme%2fwidget', T.carolPg)).status, 503, 'a token no node has seen')
    } finally {
      fixture.rateLimit = undefined
    }
    // The store holds digests, never a token.
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    try {
      const rows = (await c.query<{ key: string; value: string }>('select key, value from github_cache order by key')).rows
      assert.ok(rows.length >= 4, `rows: ${rows.length}`)
      for (const r of rows) {
        assert.match(r.key, /^(user:[0-9a-f]{128}|repo:[0-9a-f]{128}:[a-z0-9._-]+\/[a-z0-9._-]+)$/)
        for (const tok of Object.values(T)) assert.ok(!r.key.includes(tok) && !r.value.includes(tok))
      }
    } finally {
      await c.end()
    }
  })
})
