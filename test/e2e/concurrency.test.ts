/**
 * Concurrent writes over real HTTP against an in-process Pier: many publishes of one package at
 * once (distinct versions, and the same version with different or identical tarballs), and
 * dist-tag changes racing publishes. Every write must either land completely or be refused.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { create as tarCreate } from 'tar'
import { startPier, tempDir, type TestPier } from '../helpers/pier.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** A publish body (npm's wire format, docs/protocol.md §3.1) and the facts of its tarball. */
interface Body {
  version: string
  json: string
  tarball: Buffer
  integrity: string
}

const sha512 = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`

/** Packs `package/` (package.json, README.md, a random file) into a .tgz in memory. */
function pack(pkg: Record<string, unknown>, salt: string): Buffer {
  const dir = tempDir('pier-conc-pack-')
  try {
    mkdirSync(join(dir, 'package'))
    writeFileSync(join(dir, 'package', 'package.json'), JSON.stringify(pkg, null, 2))
    writeFileSync(join(dir, 'package', 'README.md'), `# ${String(pkg.name)}\n`)
    writeFileSync(join(dir, 'package', 'salt.txt'), salt)
    tarCreate({ gzip: true, cwd: dir, sync: true, file: join(dir, 'p.tgz'), portable: true }, ['package'])
    return readFileSync(join(dir, 'p.tgz'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** npm's publish body for `name@version`; `tags` defaults to `{latest: version}`. */
function body(name: string, version: string, opts: { salt?: string; tags?: string[] } = {}): Body {
  const pkg = { name, version, description: `${name} ${version}` }
  const tarball = pack(pkg, opts.salt ?? randomBytes(16).toString('hex'))
  const integrity = sha512(tarball)
  const doc = {
    _id: name,
    name,
    'dist-tags': Object.fromEntries((opts.tags ?? ['latest']).map((t) => [t, version])),
    versions: {
      [version]: {
        ...pkg,
        _id: `${name}@${version}`,
        readme: `# ${name}\n`,
        dist: { integrity, shasum: createHash('sha1').update(tarball).digest('hex'), tarball: `http://x.example/${name}-${version}.tgz` },
      },
    },
    access: null,
    _attachments: { [`${name}-${version}.tgz`]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
  }
  return { version, json: JSON.stringify(doc), tarball, integrity }
}

let pier: TestPier
let token: string

async function call(method: string, path: string, opts: { body?: string; token?: string } = {}): Promise<{ status: number; body: Obj }> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  const res = await fetch(new URL(path, pier.url), { method, headers, body: opts.body })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Obj) }
}

const publish = (name: string, b: Body) => call('PUT', name, { body: b.json, token })
const packument = async (name: string): Promise<Obj> => {
  const r = await call('GET', name)
  assert.equal(r.status, 200, `GET ${name}: ${JSON.stringify(r.body)}`)
  return r.body
}
const seqOf = (rev: string): number => Number(rev.split('-')[0])

/** Number of change-feed rows for `name`. */
async function changeCount(name: string): Promise<number> {
  const rows = await pier.pier.meta.changesSince(0, 1_000_000)
  return rows.filter((r) => r.name === name).length
}

/** Downloads `dist.tarball` of every version and checks it against `dist.integrity` (and `expected`). */
async function checkTarballs(doc: Obj, expected: Map<string, Body>): Promise<void> {
  await Promise.all(
    Object.entries(doc.versions as Obj).map(async ([v, m]: [string, Obj]) => {
      const url = new URL(String(m.dist.tarball))
      assert.equal(url.host, new URL(pier.url).host, `tarball URL of ${v} is on the registry's host`)
      const res = await fetch(url)
      assert.equal(res.status, 200, `GET ${url.href}`)
      const bytes = Buffer.from(await res.arrayBuffer())
      assert.equal(sha512(bytes), m.dist.integrity, `${v}: downloaded bytes match dist.integrity`)
      const want = expected.get(v)
      if (want) {
        assert.equal(m.dist.integrity, want.integrity, `${v}: stored tarball is the one published`)
        assert.ok(bytes.equals(want.tarball))
      }
    }),
  )
}

describe('concurrent writes', () => {
  before(async () => {
    pier = await startPier()
    const r = await call('PUT', '-/user/org.couchdb.user:alice', {
      body: JSON.stringify({ _id: 'org.couchdb.user:alice', name: 'alice', password: 'alice-pass-1', email: 'alice@example.com', type: 'user', roles: [] }),
    })
    assert.equal(r.status, 201)
    token = String(r.body.token)
  })
  after(async () => {
    await pier.close()
  })

  test('30 simultaneous publishes of different versions all land, with their tarballs, one revision each', async () => {
    const name = 'conc-many'
    assert.equal((await publish(name, body(name, '0.0.1'))).status, 201)
    const before = await packument(name)
    const seq0 = seqOf(before._rev as string)
    const changes0 = await changeCount(name)

    const bodies = Array.from({ length: 30 }, (_, i) => body(name, `1.0.${i}`))
    const results = await Promise.all(bodies.map((b) => publish(name, b)))
    for (const [i, r] of results.entries()) assert.equal(r.status, 201, `publish 1.0.${i}: ${JSON.stringify(r.body)}`)
    // Writes are serialised: each got its own revision, seq0+1 … seq0+30.
    const seqs = results.map((r) => seqOf(String(r.body.rev))).sort((a, b) => a - b)
    assert.deepEqual(seqs, Array.from({ length: 30 }, (_, i) => seq0 + 1 + i))

    const doc = await packument(name)
    assert.deepEqual(Object.keys(doc.versions as Obj).sort(), ['0.0.1', ...bodies.map((b) => b.version)].sort())
    for (const b of bodies) assert.ok((doc.time as Obj)[b.version], `time[${b.version}]`)
    assert.equal(seqOf(doc._rev as string), seq0 + 30)
    assert.ok(bodies.some((b) => b.version === (doc['dist-tags'] as Obj).latest), 'latest is one of the published versions')
    assert.equal(await changeCount(name), changes0 + 30)
    await checkTarballs(doc, new Map(bodies.map((b) => [b.version, b])))
  })

  test('30 simultaneous publishes of the same version with different tarballs: one 201, 29 × 409, the winner is stored', async () => {
    const name = 'conc-same'
    const bodies = Array.from({ length: 30 }, () => body(name, '2.0.0'))
    assert.equal(new Set(bodies.map((b) => b.integrity)).size, 30)
    const results = await Promise.all(bodies.map((b) => publish(name, b)))
    const statuses = results.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(',')}`)
    assert.equal(statuses.filter((s) => s === 409).length, 29, `statuses: ${statuses.join(',')}`)
    for (const r of results) if (r.status === 409) assert.match(String(r.body.error), /cannot publish over the previously published versions: 2\.0\.0/)
    const winner = bodies[statuses.indexOf(201)] as Body

    const doc = await packument(name)
    assert.deepEqual(Object.keys(doc.versions as Obj), ['2.0.0'])
    assert.deepEqual(doc['dist-tags'], { latest: '2.0.0' })
    assert.deepEqual((doc.maintainers as Obj[]).map((m) => m.name), ['alice'])
    assert.equal(seqOf(doc._rev as string), 1)
    assert.equal(await changeCount(name), 1)
    await checkTarballs(doc, new Map([['2.0.0', winner]]))
  })

  test('30 simultaneous identical publishes (npm retrying): one 201, the rest 200 with nothing changed', async () => {
    const name = 'conc-retry'
    const b = body(name, '1.0.0', { salt: 'fixed' })
    const results = await Promise.all(Array.from({ length: 30 }, () => publish(name, b)))
    const statuses = results.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses.join(',')}`)
    assert.equal(statuses.filter((s) => s === 200).length, 29, `statuses: ${statuses.join(',')}`)
    const doc = await packument(name)
    assert.equal(seqOf(doc._rev as string), 1)
    for (const r of results) assert.equal(r.body.rev, doc._rev)
    await checkTarballs(doc, new Map([['1.0.0', b]]))
  })

  test('dist-tag PUTs for 20 different tags racing 5 publishes: every tag and version is there afterwards', async () => {
    const name = 'conc-tags'
    const base = Array.from({ length: 5 }, (_, i) => body(name, `1.0.${i}`))
    for (const b of base) assert.equal((await publish(name, b)).status, 201)
    const seq0 = seqOf((await packument(name))._rev as string)

    const tagWrites = Array.from({ length: 20 }, (_, i) => ({ tag: `chan-${String.fromCharCode(97 + i)}`, version: `1.0.${i % 5}` }))
    const pre = Array.from({ length: 5 }, (_, i) => body(name, `2.0.0-rc.${i}`, { tags: [`rc${String.fromCharCode(97 + i)}`] }))
    const results = await Promise.all([
      ...tagWrites.map((t) => call('PUT', `-/package/${name}/dist-tags/${t.tag}`, { body: JSON.stringify(t.version), token })),
      ...pre.map((b) => publish(name, b)),
    ])
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body))

    const want: Record<string, string> = { latest: '1.0.4' }
    for (const t of tagWrites) want[t.tag] = t.version
    for (const [i, b] of pre.entries()) want[`rc${String.fromCharCode(97 + i)}`] = b.version
    const tags = await call('GET', `-/package/${name}/dist-tags`)
    assert.equal(tags.status, 200)
    assert.deepEqual(tags.body, want)
    const doc = await packument(name)
    assert.deepEqual(doc['dist-tags'], want)
    assert.equal(Object.keys(doc.versions as Obj).length, 10)
    assert.equal(seqOf(doc._rev as string), seq0 + 25)
    await checkTarballs(doc, new Map([...base, ...pre].map((b) => [b.version, b])))
  })
})
