/**
 * Search through the uplink (`search.uplink`, on by default): `/-/v1/search` also asks the first
 * uplink the rules proxy to (here another Pier behind a recording fixture on loopback), lists its
 * hits after the local ones (a local name always wins a clash), never sends a query naming a
 * private scope, reuses the uplink's answer for a while, and answers from local data alone when
 * the uplink hangs (within `search.timeout`). The real npm CLI's `npm search` sees the merged list.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { addUser } from '../helpers/accounts.js'
import { NpmClient } from '../helpers/npm.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'
import { startUplinkFixture, type UplinkFixture } from '../helpers/uplink-fixture.js'

interface SearchAnswer {
  objects: { package: { name: string; description: string } }[]
  total: number
}

async function publish(base: string, token: string, name: string, description: string): Promise<void> {
  const res = await fetch(new URL(name.replace('/', '%2f'), base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(publishBody({ name, version: '1.0.0', description }).body),
  })
  assert.equal(res.status, 201, await res.text())
}

const search = async (base: string, text: string): Promise<SearchAnswer> => {
  const res = await fetch(new URL(`-/v1/search?text=${encodeURIComponent(text)}&size=20&from=0`, base))
  assert.equal(res.status, 200)
  return (await res.json()) as SearchAnswer
}

void describe('search through the uplink', () => {
  let upstream: TestPier
  let fixture: UplinkFixture
  let pier: TestPier
  let off: TestPier
  const searchesUpstream = (): string[] => fixture.requests.filter((r) => r.url.startsWith('/-/v1/search')).map((r) => r.url)

  before(async () => {
    upstream = await startPier()
    const upToken = await addUser(upstream.url, 'up')
    await publish(upstream.url, upToken, 'only-upstream-pkg', 'findme widget from upstream')
    await publish(upstream.url, upToken, 'shared-name', 'findme shared, the upstream copy')
    await publish(upstream.url, upToken, '@corp/leaky', 'findme in a private scope upstream')
    fixture = await startUplinkFixture(upstream.url)
    const config = {
      // The uplink's own timeout is far longer than any test: only search.timeout can end a hung search.
      uplinks: { up: { url: fixture.url, timeout: '10m' } },
      private_scopes: ['@corp'],
      search: { timeout: 300 },
    }
    pier = await startPier(config)
    off = await startPier({ ...config, search: { uplink: false } })
    const token = await addUser(pier.url, 'me')
    await publish(pier.url, token, 'shared-name', 'findme shared, the local one')
    await publish(pier.url, token, 'local-only-pkg', 'findme locally')
  })
  after(async () => {
    await pier?.close()
    await off?.close()
    await fixture?.close()
    await upstream?.close()
  })

  void test('local hits first, then the uplink\'s; a local name wins; a private scope\'s upstream hit is left out', async () => {
    const r = await search(pier.url, 'findme')
    const names = r.objects.map((o) => o.package.name)
    assert.deepEqual(names.slice(0, 2).sort(), ['local-only-pkg', 'shared-name'])
    assert.deepEqual(names.slice(2), ['only-upstream-pkg'])
    assert.equal(r.objects.find((o) => o.package.name === 'shared-name')?.package.description, 'findme shared, the local one')
    assert.ok(r.total >= r.objects.length)
    assert.equal(searchesUpstream().length, 1)
  })

  void test('the uplink\'s answer is reused for the same search', async () => {
    const before = searchesUpstream().length
    await search(pier.url, 'findme')
    await search(pier.url, 'findme')
    assert.equal(searchesUpstream().length, before)
  })

  void test('a search naming a private scope is never sent upstream', async () => {
    for (const text of ['@corp/leaky', '@corp', 'scope:corp findme', 'findme @corp/x']) {
      const r = await search(pier.url, text)
      assert.ok(!r.objects.some((o) => o.package.name.startsWith('@corp/')), text)
    }
    assert.ok(!searchesUpstream().some((u) => /corp/.test(decodeURIComponent(u))), searchesUpstream().join(', '))
  })

  void test('an uplink that hangs: the local hits come back within the search timeout', async () => {
    fixture.fault = (_m, url) => (url.startsWith('/-/v1/search') ? 'hang' : undefined)
    try {
      // Had Pier waited for the hung uplink (timeout 10 min), this would not answer before the
      // test's own timeout: no wall-clock assertion needed.
      const r = await search(pier.url, 'findme locally')
      assert.deepEqual(
        r.objects.map((o) => o.package.name),
        ['local-only-pkg'],
      )
    } finally {
      fixture.fault = () => undefined
    }
  })

  void test('search.uplink: false asks no uplink', async () => {
    const r = await search(off.url, 'only-upstream')
    assert.deepEqual(r.objects, [])
    assert.ok(!searchesUpstream().some((u) => u.includes('only-upstream')), searchesUpstream().join(', '))
  })

  void test('npm search through Pier finds the upstream package, and lists the local one first', async () => {
    const npm = new NpmClient(pier.url)
    const r = await npm.npm(['search', '--json', 'findme'])
    assert.equal(r.code, 0, r.stderr)
    const names = (JSON.parse(r.stdout) as { name: string }[]).map((p) => p.name)
    assert.ok(names.includes('only-upstream-pkg'), names.join(', '))
    assert.ok(names.indexOf('shared-name') < names.indexOf('only-upstream-pkg'), names.join(', '))
    assert.ok(names.indexOf('local-only-pkg') < names.indexOf('only-upstream-pkg'), names.join(', '))
  })
})
