/**
 * npm audit through Pier: the advisory requests are forwarded, body and encoding as npm sent them,
 * to the audit uplink (here a small advisory server on loopback) and its answer is relayed; without
 * an audit uplink they answer 501, and with the uplink down 502.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { gunzipSync, gzipSync } from 'node:zlib'
import { startPier, type TestPier } from '../helpers/pier.js'

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

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    advisoryUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
    pier = await startPier({ uplinks: { adv: { url: advisoryUrl, timeout: 2000 } }, packages: {} })
    none = await startPier()
  })
  after(async () => {
    await pier.close()
    await none.close()
    if (server.listening) await new Promise<void>((r) => server.close(() => r()))
  })

  test('advisories/bulk: the gzipped body goes upstream as sent and the answer comes back', async () => {
    const query = { 'up-b': ['1.0.0'] }
    const res = await fetch(new URL('-/npm/v1/security/advisories/bulk', pier.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'npm-command': 'audit' },
      body: new Uint8Array(gzipSync(JSON.stringify(query))),
    })
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), advisories)
    const got = seen.at(-1)
    assert.equal(got?.req.url, '/-/npm/v1/security/advisories/bulk')
    assert.equal(got?.req.headers['content-encoding'], 'gzip')
    assert.deepEqual(JSON.parse(gunzipSync(got.body).toString()), query)
  })

  test('audits/quick is forwarded too', async () => {
    const res = await fetch(new URL('-/npm/v1/security/audits/quick', pier.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'proj', version: '1.0.0', requires: {}, dependencies: {} }),
    })
    assert.equal(res.status, 200)
    assert.equal(seen.at(-1)?.req.url, '/-/npm/v1/security/audits/quick')
  })

  test('without an audit uplink: 501; with the uplink down: 502', async () => {
    const r501 = await fetch(new URL('-/npm/v1/security/advisories/bulk', none.url), { method: 'POST', body: '{}' })
    assert.equal(r501.status, 501)
    assert.match(((await r501.json()) as { error: string }).error, /no advisory source/)
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
    const r502 = await fetch(new URL('-/npm/v1/security/advisories/bulk', pier.url), { method: 'POST', body: '{}' })
    assert.equal(r502.status, 502)
    assert.match(((await r502.json()) as { error: string }).error, /uplink "adv" is unreachable/)
  })
})
