/**
 * npm audit through Pier: the advisory requests go to the audit uplink (here a small advisory
 * server on loopback that records what it receives) without any name that must stay in the
 * company: local packages, private scopes, scopes with a local package, names the rules do not
 * proxy. Bodies are re-encoded as sent (gzip for bulk) and the answer relayed; a request with
 * nothing left to ask is answered locally without contacting the uplink. Without an audit uplink
 * every endpoint answers 501; with the uplink down, 502.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { gunzipSync, gzipSync } from 'node:zlib'
import { MAX_AUDIT_INFLATED } from '../../src/uplink/audit.js'
import { addUser } from '../helpers/accounts.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'

const BULK = '-/npm/v1/security/advisories/bulk'
const QUICK = '-/npm/v1/security/audits/quick'

describe('npm audit forwarding', () => {
  const seen: { req: IncomingMessage; body: Buffer }[] = []
  const advisories = { 'up-b': [{ id: 1, url: 'https://advisories.example.com/1', title: 'bad', severity: 'high', vulnerable_versions: '<1.1.0' }] }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ req, body: Buffer.concat(chunks) })
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(advisories))
    })
  })
  let advisoryUrl: string
  let pier: TestPier
  let none: TestPier

  /** What the advisory server received last, parsed (gunzipped when gzipped). */
  const lastBody = (): Record<string, unknown> => {
    const got = seen.at(-1)
    assert.ok(got, 'the advisory server was asked')
    const raw = got.req.headers['content-encoding'] === 'gzip' ? gunzipSync(got.body) : got.body
    return JSON.parse(raw.toString()) as Record<string, unknown>
  }
  const post = (base: string, path: string, body: unknown, gzip: boolean): Promise<Response> =>
    fetch(new URL(path, base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'npm-command': 'audit', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
      body: gzip ? new Uint8Array(gzipSync(JSON.stringify(body))) : JSON.stringify(body),
    })

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    advisoryUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    pier = await startPier({
      uplinks: { adv: { url: advisoryUrl, timeout: 2000 } },
      private_scopes: ['@hidden'],
      packages: {
        'internal-*': { access: '$all', publish: '$authenticated' },
        '**': { access: '$all', publish: '$authenticated', proxy: 'adv' },
      },
    })
    const token = await addUser(pier.url, 'auditor')
    for (const name of ['our-secret-local-lib', '@corp/local-one']) {
      const res = await fetch(new URL(name.replace('/', '%2f'), pier.url), {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(publishBody({ name, version: '1.0.0' }).body),
      })
      assert.equal(res.status, 201)
    }
    none = await startPier()
  })
  after(async () => {
    await pier.close()
    await none.close()
    if (server.listening) await new Promise<void>((r) => server.close(() => r()))
  })

  test('advisories/bulk: local, private-scope and unproxied names are taken out; the rest goes gzipped; the answer comes back', async () => {
    const query = {
      'up-b': ['1.0.0'],
      'our-secret-local-lib': ['1.0.0'],
      '@corp/local-one': ['1.0.0'],
      '@corp/other-in-a-local-scope': ['2.0.0'],
      '@hidden/x': ['1.0.0'],
      'internal-tool': ['3.0.0'],
      '@pub/fine': ['1.2.3'],
    }
    const res = await post(pier.url, BULK, query, true)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), advisories)
    const got = seen.at(-1)
    assert.equal(got?.req.url, `/${BULK}`)
    assert.equal(got?.req.headers['content-encoding'], 'gzip')
    assert.deepEqual(lastBody(), { 'up-b': ['1.0.0'], '@pub/fine': ['1.2.3'] })
  })

  test('advisories/bulk with only local names: {} answered here, the uplink not asked', async () => {
    const before = seen.length
    const res = await post(pier.url, BULK, { 'our-secret-local-lib': ['1.0.0'], '@hidden/x': ['1.0.0'] }, true)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), {})
    assert.equal(seen.length, before)
  })

  test('audits/quick: the tree loses the same names, nested ones included', async () => {
    const tree = {
      name: 'proj',
      version: '1.0.0',
      requires: { 'up-b': '^1.0.0', 'our-secret-local-lib': '^1.0.0' },
      dependencies: {
        'up-b': { version: '1.0.0', integrity: 'sha512-x', requires: { '@corp/local-one': '^1.0.0', 'dep-of-b': '^2' }, dependencies: { '@corp/local-one': { version: '1.0.0' }, 'dep-of-b': { version: '2.0.0' } } },
        'our-secret-local-lib': { version: '1.0.0', requires: { 'up-b': '^1.0.0' } },
      },
      metadata: { npm_version: '10.9.0' },
    }
    const res = await post(pier.url, QUICK, tree, false)
    assert.equal(res.status, 200)
    assert.equal(seen.at(-1)?.req.url, `/${QUICK}`)
    assert.deepEqual(lastBody(), {
      name: 'proj',
      version: '1.0.0',
      requires: { 'up-b': '^1.0.0' },
      dependencies: { 'up-b': { version: '1.0.0', integrity: 'sha512-x', requires: { 'dep-of-b': '^2' }, dependencies: { 'dep-of-b': { version: '2.0.0' } } } },
      metadata: { npm_version: '10.9.0' },
    })
    const before = seen.length
    const local = await post(pier.url, QUICK, { name: 'proj', version: '1.0.0', requires: { 'our-secret-local-lib': '^1' }, dependencies: { 'our-secret-local-lib': { version: '1.0.0' } } }, false)
    assert.equal(local.status, 200)
    const report = (await local.json()) as { advisories: unknown; metadata: { vulnerabilities: Record<string, number> } }
    assert.deepEqual(report.advisories, {})
    assert.deepEqual(report.metadata.vulnerabilities, { info: 0, low: 0, moderate: 0, high: 0, critical: 0 })
    assert.equal(seen.length, before, 'nothing left to ask: the uplink is not asked')
  })

  test("audits, pnpm's shape: importers stay, the names inside them are pruned", async () => {
    const tree = {
      install: [],
      remove: [],
      metadata: {},
      requires: { '.': '1.0.0', packages__app: '0.1.0' },
      dependencies: {
        '.': { version: '1.0.0', requires: { 'up-b': '1.0.0', 'our-secret-local-lib': '1.0.0' }, dependencies: { 'up-b': { version: '1.0.0' }, 'our-secret-local-lib': { version: '1.0.0' } } },
        packages__app: { version: '0.1.0', requires: { '@corp/local-one': '1.0.0' }, dependencies: { '@corp/local-one': { version: '1.0.0' } } },
      },
    }
    const res = await post(pier.url, '-/npm/v1/security/audits', tree, false)
    assert.equal(res.status, 200)
    assert.equal(seen.at(-1)?.req.url, '/-/npm/v1/security/audits')
    assert.deepEqual(lastBody(), {
      install: [],
      remove: [],
      metadata: {},
      requires: { '.': '1.0.0', packages__app: '0.1.0' },
      dependencies: {
        '.': { version: '1.0.0', requires: { 'up-b': '1.0.0' }, dependencies: { 'up-b': { version: '1.0.0' } } },
        packages__app: { version: '0.1.0', requires: {}, dependencies: {} },
      },
    })
  })

  test('bad bodies: not JSON 400, a gzip bomb 413, nothing forwarded', async () => {
    const before = seen.length
    const bad = await fetch(new URL(BULK, pier.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' })
    assert.equal(bad.status, 400)
    const bomb = gzipSync(Buffer.alloc(MAX_AUDIT_INFLATED + 1, 0x20))
    const big = await fetch(new URL(BULK, pier.url), { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: new Uint8Array(bomb) })
    assert.equal(big.status, 413)
    assert.equal(seen.length, before)
  })

  test('without an audit uplink: 501; with the uplink down: 502', async () => {
    const r501 = await fetch(new URL(BULK, none.url), { method: 'POST', body: '{}' })
    assert.equal(r501.status, 501)
    assert.match(((await r501.json()) as { error: string }).error, /no advisory source/)
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
    const r502 = await post(pier.url, BULK, { 'up-b': ['1.0.0'] }, false)
    assert.equal(r502.status, 502)
    assert.match(((await r502.json()) as { error: string }).error, /uplink "adv" is unreachable/)
  })
})
