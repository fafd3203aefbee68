/**
 * Property (fast-check): no sequence of API calls by a caller without read access lets them tell
 * a private package from an unknown name, on any route. Each generated sequence of requests is
 * sent twice by the same caller, once naming a real package they may not read and once naming an
 * unknown package of the same length in the same scope; the answers (status, content type,
 * `WWW-Authenticate`, body with the name replaced) must be identical, request by request.
 *
 * The private packages: `@secret/pkg` (a `packages` rule lets only alice read and publish) and
 * `@acme/lib` (an org package with status private, granted to a team mallory is not in). The
 * callers: anonymous, mallory (a user outside both), and a granular token of alice's limited to
 * another scope.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { addUser } from '../helpers/accounts.js'
import { raw } from '../helpers/http.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** Real private name → an unknown name of the same length in the same scope. */
const PAIRS: [string, string][] = [
  ['@secret/pkg', '@secret/pkx'],
  ['@acme/lib', '@acme/lix'],
]

const esc = (n: string): string => n.replace('/', '%2f')
const file = (n: string): string => `${n.slice(n.indexOf('/') + 1)}-1.0.0.tgz`

/** One request shape, for a package name. */
type Step = (name: string, token: string | undefined) => { method: string; path: string; body?: unknown }

const STEPS: Record<string, Step> = {
  packument: (n) => ({ method: 'GET', path: `/${esc(n)}` }),
  packumentHead: (n) => ({ method: 'HEAD', path: `/${esc(n)}` }),
  forWrite: (n) => ({ method: 'GET', path: `/${esc(n)}?write=true` }),
  manifest: (n) => ({ method: 'GET', path: `/${esc(n)}/1.0.0` }),
  latest: (n) => ({ method: 'GET', path: `/${esc(n)}/latest` }),
  tarball: (n) => ({ method: 'GET', path: `/${n}/-/${file(n)}` }),
  distTags: (n) => ({ method: 'GET', path: `/-/package/${esc(n)}/dist-tags` }),
  distTagAdd: (n) => ({ method: 'PUT', path: `/-/package/${esc(n)}/dist-tags/beta`, body: '1.0.0' }),
  distTagRm: (n) => ({ method: 'DELETE', path: `/-/package/${esc(n)}/dist-tags/latest` }),
  publish: (n) => ({ method: 'PUT', path: `/${esc(n)}`, body: publishBody({ name: n, version: '9.9.9' }).body }),
  update: (n) => ({ method: 'PUT', path: `/${esc(n)}/-rev/1-0`, body: { _id: n, name: n, _rev: '1-0', versions: {}, users: { mallory: true } } }),
  unpublish: (n) => ({ method: 'DELETE', path: `/${esc(n)}/-rev/1-0` }),
  removeTarball: (n) => ({ method: 'DELETE', path: `/${n}/-/${file(n)}/-rev/1-0` }),
  visibility: (n) => ({ method: 'GET', path: `/-/package/${esc(n)}/visibility` }),
  collaborators: (n) => ({ method: 'GET', path: `/-/package/${esc(n)}/collaborators` }),
  setAccess: (n) => ({ method: 'POST', path: `/-/package/${esc(n)}/access`, body: { access: 'public' } }),
  search: (n) => ({ method: 'GET', path: `/-/v1/search?text=${encodeURIComponent(n)}` }),
  grant: (n) => ({ method: 'PUT', path: `/-/team/acme/developers/package`, body: { package: n, permissions: 'read-write' } }),
}

interface Answer {
  status: number
  type: string | undefined
  challenge: string | undefined
  body: string
}

async function send(base: string, step: Step, name: string, token: string | undefined): Promise<Answer> {
  const { method, path, body } = step(name, token)
  const headers: Record<string, string> = { 'accept-encoding': 'identity' }
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const r = await raw(base, path, headers, method, body === undefined ? undefined : JSON.stringify(body))
  // Search answers carry the time of the answer.
  const text = r.body.toString().replace(/"time":"[^"]*"/, '"time":"-"')
  return {
    status: r.status,
    type: r.headers['content-type'] as string | undefined,
    challenge: r.headers['www-authenticate'] as string | undefined,
    body: text,
  }
}

void describe('a package the caller may not read is indistinguishable from an unknown name', () => {
  let pier: TestPier
  const callers: Record<string, string | undefined> = { anonymous: undefined }
  before(async () => {
    pier = await startPier({
      packages: {
        '@secret/*': { access: 'alice', publish: 'alice' },
        '**': { access: '$all', publish: '$authenticated' },
      },
    })
    const alice = await addUser(pier.url, 'alice')
    callers.mallory = await addUser(pier.url, 'mallory')
    await pier.pier.registry.orgs.createOrg('acme', 'alice', { name: undefined, readonly: false, admin: true })
    for (const name of ['@secret/pkg', '@acme/lib']) {
      const r = await raw(pier.url, `/${esc(name)}`, { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, 'PUT', JSON.stringify(publishBody({ name, version: '1.0.0' }).body))
      assert.equal(r.status, 201, r.body.toString())
    }
    const priv = await raw(pier.url, `/-/package/${esc('@acme/lib')}/access`, { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, 'POST', JSON.stringify({ access: 'restricted' }))
    assert.equal(priv.status, 200, priv.body.toString())
    const limited = await raw(
      pier.url,
      '/-/npm/v1/tokens',
      { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      'POST',
      JSON.stringify({ password: 'alice-pass-1', scopes: ['@other'], packages_and_scopes_permission: 'read-write' }),
    )
    assert.equal(limited.status, 201, limited.body.toString())
    callers['alice token for @other'] = (JSON.parse(limited.body.toString()) as Obj).token as string
    // The setup is what it claims: alice reads both; mallory is refused.
    assert.equal((await raw(pier.url, `/${esc('@acme/lib')}`, { authorization: `Bearer ${alice}` })).status, 200)
    assert.equal((await raw(pier.url, `/${esc('@acme/lib')}`, { authorization: `Bearer ${String(callers.mallory)}` })).status, 404)
  })
  after(() => pier.close())

  void test('property: every sequence of calls answers alike for the real and the unknown name', async () => {
    let compared = 0
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(callers)),
        fc.constantFrom(...PAIRS),
        fc.array(fc.constantFrom(...Object.keys(STEPS)), { minLength: 1, maxLength: 8 }),
        async (who, [real, unknown], steps) => {
          const token = callers[who]
          for (const s of steps) {
            const step = STEPS[s] as Step
            const a = await send(pier.url, step, real, token)
            const b = await send(pier.url, step, unknown, token)
            compared++
            const norm = (x: Answer, n: string): Answer => ({ ...x, body: x.body.split(n).join('<name>').split(esc(n)).join('<name>') })
            assert.deepEqual(norm(a, real), norm(b, unknown), `${who} ${s}: ${real} vs ${unknown}`)
            assert.ok(a.status !== 200 || s === 'search', `${who} ${s} on ${real} answered 200: ${a.body.slice(0, 200)}`)
          }
        },
      ),
      { numRuns: 60, verbose: 1, includeErrorInReport: true, seed: Number(process.env.PIER_FC_SEED ?? Date.now() % 2 ** 31) },
    )
    assert.ok(compared >= 60)
  })
})
