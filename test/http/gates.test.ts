/**
 * The two gates over real HTTP, table-driven over every GET route and every write route, with a
 * `packages` rule giving `@secret/*` to one user (`access: alice`, `publish: alice`) and
 * `@shared/*` readable by every user but publishable by alice only.
 *
 * - Read gate: for each GET (and HEAD) route, a private package and an unknown name of the same
 *   scope give byte-identical answers (status, body, headers apart from date and request id) to
 *   everyone who may not read it: anonymous (401), another user (404), that user's read-only
 *   token (404). Lists (search, a user's stars) leave the private package out as if unknown. The
 *   owner reads everything.
 * - Write path: for each write route (publish, deprecate, owner change, star, per-version and
 *   whole unpublish, tarball removal, dist-tag add and rm), the same comparison for those who may
 *   not read (401 / 404, 403 for a read-only token); a user who may read but not publish gets 403;
 *   the private package is unchanged afterwards; the owner's writes succeed.
 */
import assert from 'node:assert/strict'
import { request, type IncomingHttpHeaders } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { addUser } from '../helpers/accounts.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'

interface Answer {
  status: number
  headers: Record<string, unknown>
  body: string
}

/** Headers that differ per response by nature. */
const PER_RESPONSE = new Set(['date', 'x-request-id', 'keep-alive', 'connection'])

/** One raw exchange (no redirects followed, no decompression). */
function exchange(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string> = { ...headers }
    if (body !== undefined) h['content-type'] = 'application/json'
    const req = request(new URL(path.replace(/^\//, ''), base), { method, headers: h }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: Object.fromEntries(Object.entries(res.headers as IncomingHttpHeaders).filter(([k]) => !PER_RESPONSE.has(k)).sort(([a], [b]) => a.localeCompare(b))),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

void describe('one read gate, one write path', () => {
  let pier: TestPier
  /** Authorization headers by who is asking. */
  const as: Record<string, Record<string, string>> = { anonymous: {} }
  /** The private package's `_rev` as its owner sees it, before the writes. */
  let secretRev = ''

  const call = (who: string, method: string, path: string, body?: unknown): Promise<Answer> =>
    exchange(pier.url, method, path, { accept: 'application/json', 'accept-encoding': 'gzip', ...as[who] }, body === undefined ? undefined : JSON.stringify(body))

  async function publish(who: string, name: string, version: string, extra: Record<string, unknown> = {}): Promise<void> {
    const r = await call(who, 'PUT', `/${name.replace('/', '%2f')}`, publishBody({ name, version, description: `${name} description`, keywords: ['gatekw'], ...extra }).body)
    assert.equal(r.status, 201, r.body)
  }

  before(async () => {
    pier = await startPier({
      packages: {
        '@secret/*': { access: 'alice', publish: 'alice' },
        '@shared/*': { access: '$authenticated', publish: 'alice' },
        '**': { access: '$all', publish: '$authenticated' },
      },
    })
    for (const user of ['alice', 'bob']) {
      const token = await addUser(pier.url, user)
      as[user] = { authorization: `Bearer ${token}` }
      const res = await call(user, 'POST', '/-/npm/v1/tokens', { password: `${user}-pass-1`, readonly: true })
      assert.equal(res.status, 201, res.body)
      as[`${user}-read-only`] = { authorization: `Bearer ${(JSON.parse(res.body) as { token: string }).token}` }
    }
    await publish('alice', '@secret/thing', '1.0.0')
    await publish('alice', '@secret/thing', '1.1.0')
    await publish('alice', '@shared/lib', '1.0.0')
    await publish('alice', '@shared/lib', '1.1.0')
    assert.equal((await call('alice', 'PUT', '/-/package/@secret%2fthing/dist-tags/beta', '1.0.0')).status, 201)
    const doc = JSON.parse((await call('alice', 'GET', '/@secret%2fthing?write=true')).body) as { _rev: string }
    assert.equal((await call('alice', 'PUT', '/@secret%2fthing', { _id: '@secret/thing', _rev: doc._rev, users: { alice: true } })).status, 201)
    secretRev = (JSON.parse((await call('alice', 'GET', '/@secret%2fthing?write=true')).body) as { _rev: string })._rev
  })
  after(async () => {
    await pier.close()
  })

  /** GET routes, each as [private path, unknown path] (the unknown one in the same scope, so the same rule). */
  const READS: [string, string, string][] = [
    ['packument, %2f', '/@secret%2fthing', '/@secret%2fnothing'],
    ['packument, literal slash', '/@secret/thing', '/@secret/nothing'],
    ['packument, %2F', '/@secret%2Fthing', '/@secret%2Fnothing'],
    ['packument ?write=true', '/@secret%2fthing?write=true', '/@secret%2fnothing?write=true'],
    ['manifest by version', '/@secret%2fthing/1.0.0', '/@secret%2fnothing/1.0.0'],
    ['manifest by dist-tag', '/@secret%2fthing/latest', '/@secret%2fnothing/latest'],
    ['tarball', '/@secret/thing/-/thing-1.0.0.tgz', '/@secret/nothing/-/nothing-1.0.0.tgz'],
    ['tarball, %2f', '/@secret%2fthing/-/thing-1.0.0.tgz', '/@secret%2fnothing/-/nothing-1.0.0.tgz'],
    ['dist-tags', '/-/package/@secret%2fthing/dist-tags', '/-/package/@secret%2fnothing/dist-tags'],
  ]
  const OUTSIDERS: [string, number][] = [
    ['anonymous', 401],
    ['bob', 404],
    ['bob-read-only', 404],
  ]

  for (const [route, secret, unknown] of READS) {
    for (const method of ['GET', 'HEAD']) {
      void test(`${method} ${route}: the private package and an unknown name answer alike to those who may not read`, async () => {
        for (const [who, status] of OUTSIDERS) {
          const a = await call(who, method, secret)
          const b = await call(who, method, unknown)
          assert.equal(a.status, status, `${who}: ${a.body}`)
          assert.deepEqual(a, b, `${who}: ${method} ${secret} vs ${unknown}`)
        }
        for (const who of ['alice', 'alice-read-only']) {
          const a = await call(who, method, secret)
          assert.equal(a.status, 200, `${who} reads ${secret}: ${a.body}`)
        }
        // With a corgi Accept too (npm install's packument request).
        if (route.startsWith('packument')) {
          const corgi = { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*' }
          const a = await exchange(pier.url, method, secret, corgi)
          const b = await exchange(pier.url, method, unknown, corgi)
          assert.deepEqual(a, b)
        }
      })
    }
  }

  void test('search: the private package is neither listed nor counted for those who may not read it', async () => {
    const strip = (a: Answer): unknown => {
      const { time: _t, ...rest } = JSON.parse(a.body) as Record<string, unknown>
      return { status: a.status, body: rest }
    }
    for (const [who] of OUTSIDERS) {
      const secret = await call(who, 'GET', '/-/v1/search?text=thing&size=20&from=0')
      const none = await call(who, 'GET', '/-/v1/search?text=nothing-at-all&size=20&from=0')
      assert.deepEqual(strip(secret), strip(none), who)
      // A word the private package shares with a readable one: only the readable one is counted.
      const shared = JSON.parse((await call(who, 'GET', '/-/v1/search?text=gatekw')).body) as { total: number; objects: { package: { name: string } }[] }
      assert.ok(!shared.objects.some((o) => o.package.name === '@secret/thing'), who)
      assert.equal(shared.total, who === 'anonymous' ? 0 : 1, `${who}: ${JSON.stringify(shared)}`)
    }
    const mine = JSON.parse((await call('alice', 'GET', '/-/v1/search?text=thing')).body) as { total: number; objects: { package: { name: string } }[] }
    assert.equal(mine.total, 1)
    assert.equal(mine.objects[0]?.package.name, '@secret/thing')
  })

  void test("a user's stars: the private package is left out for those who may not read it", async () => {
    const view = '/-/_view/starredByUser?key=%22alice%22'
    for (const [who] of OUTSIDERS) {
      const a = await call(who, 'GET', view)
      assert.equal(a.status, 200)
      assert.deepEqual(JSON.parse(a.body), { rows: [] }, who)
    }
    assert.deepEqual(JSON.parse((await call('alice', 'GET', view)).body), { rows: [{ key: 'alice', value: '@secret/thing' }] })
  })

  /** A write route: its path and body for a package name (`rev`: the URL revision to send). */
  interface WriteRoute {
    route: string
    method: string
    path: (name: string, file: string, rev: string) => string
    body: (name: string) => unknown
  }
  const WRITES: WriteRoute[] = [
    { route: 'publish', method: 'PUT', path: (n) => `/${n.replace('/', '%2f')}`, body: (n) => publishBody({ name: n, version: '9.0.0' }).body },
    {
      route: 'deprecate',
      method: 'PUT',
      path: (n) => `/${n.replace('/', '%2f')}`,
      body: (n) => ({ _id: n, name: n, versions: { '1.0.0': { name: n, version: '1.0.0', deprecated: 'no' }, '1.1.0': { name: n, version: '1.1.0' } } }),
    },
    { route: 'star', method: 'PUT', path: (n) => `/${n.replace('/', '%2f')}`, body: (n) => ({ _id: n, users: { bob: true } }) },
    { route: 'owner add', method: 'PUT', path: (n, _f, r) => `/${n.replace('/', '%2f')}/-rev/${r}`, body: (n) => ({ _id: n, maintainers: [{ name: 'alice' }, { name: 'bob' }] }) },
    {
      route: 'unpublish one version',
      method: 'PUT',
      path: (n, _f, r) => `/${n.replace('/', '%2f')}/-rev/${r}`,
      body: (n) => ({ _id: n, name: n, versions: { '1.0.0': { name: n, version: '1.0.0' } } }),
    },
    { route: 'remove tarball', method: 'DELETE', path: (n, f, r) => `/${n}/-/${f}-1.1.0.tgz/-rev/${r}`, body: () => undefined },
    { route: 'unpublish all', method: 'DELETE', path: (n, _f, r) => `/${n.replace('/', '%2f')}/-rev/${r}`, body: () => undefined },
    { route: 'dist-tag add', method: 'PUT', path: (n) => `/-/package/${n.replace('/', '%2f')}/dist-tags/next`, body: () => '1.0.0' },
    { route: 'dist-tag rm', method: 'DELETE', path: (n) => `/-/package/${n.replace('/', '%2f')}/dist-tags/beta`, body: () => undefined },
  ]
  const WRITE_OUTSIDERS: [string, number][] = [
    ['anonymous', 401],
    ['bob', 404],
    ['bob-read-only', 403],
    ['alice-read-only', 403],
  ]

  for (const w of WRITES) {
    void test(`${w.method} ${w.route}: refused alike for the private package and an unknown name`, async () => {
      for (const [who, status] of WRITE_OUTSIDERS) {
        const a = await call(who, w.method, w.path('@secret/thing', 'thing', secretRev), w.body('@secret/thing'))
        const b = await call(who, w.method, w.path('@secret/nothing', 'nothing', secretRev), w.body('@secret/nothing'))
        assert.equal(a.status, status, `${who}: ${a.body}`)
        assert.deepEqual(a, b, `${who}: ${w.route}`)
      }
    })
    void test(`${w.method} ${w.route}: a user who may read but not publish gets 403`, async () => {
      const rev = (JSON.parse((await call('bob', 'GET', '/@shared%2flib?write=true')).body) as { _rev: string })._rev
      const a = await call('bob', w.method, w.path('@shared/lib', 'lib', rev), w.body('@shared/lib'))
      assert.equal(a.status, 403, a.body)
      const b = await call('bob', w.method, w.path('@shared/none', 'none', rev), w.body('@shared/none'))
      assert.deepEqual(a.status, b.status)
    })
  }

  void test('after every refused write the private package is unchanged', async () => {
    const doc = JSON.parse((await call('alice', 'GET', '/@secret%2fthing?write=true')).body) as Record<string, unknown>
    assert.equal(doc._rev, secretRev)
    assert.deepEqual(Object.keys(doc.versions as object), ['1.0.0', '1.1.0'])
    assert.deepEqual(doc['dist-tags'], { latest: '1.1.0', beta: '1.0.0' })
    assert.deepEqual(doc.maintainers, [{ name: 'alice', email: 'alice@example.com' }])
    assert.deepEqual(doc.users, { alice: true })
  })

  void test("the owner's writes go through the same path and succeed", async () => {
    const tag = await call('alice', 'PUT', '/-/package/@secret%2fthing/dist-tags/next', '1.0.0')
    assert.equal(tag.status, 201, tag.body)
    assert.deepEqual((JSON.parse(tag.body) as { 'dist-tags': unknown })['dist-tags'], { latest: '1.1.0', beta: '1.0.0', next: '1.0.0' })
    assert.equal((await call('alice', 'DELETE', '/-/package/@secret%2fthing/dist-tags/next')).status, 200)
    const doc = JSON.parse((await call('alice', 'GET', '/@secret%2fthing?write=true')).body) as { _rev: string }
    const dep = await call('alice', 'PUT', '/@secret%2fthing', {
      _id: '@secret/thing',
      _rev: doc._rev,
      versions: { '1.0.0': { name: '@secret/thing', version: '1.0.0', deprecated: 'use 1.1' }, '1.1.0': { name: '@secret/thing', version: '1.1.0' } },
    })
    assert.equal(dep.status, 201, dep.body)
    const m = JSON.parse((await call('alice', 'GET', '/@secret%2fthing/1.0.0')).body) as { deprecated?: string }
    assert.equal(m.deprecated, 'use 1.1')
  })
})
