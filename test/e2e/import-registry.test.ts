/**
 * `pier import registry URL` end to end: the source is a second Pier on loopback whose `@acme`
 * scope is readable only with a token; packages are published there with the real npm CLI.
 * `pier import` (the CLI, as a child process) takes a scope (listed through the source's search)
 * and a names file, with bounded concurrency; npm then installs every version from the Pier
 * imported into, with the integrity the source served. A re-run writes nothing (what an
 * interrupted run resumes from); a name the source does not know is skipped with its reason; a
 * wrong token fails the run. Nothing leaves 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { addUser } from '../helpers/accounts.js'
import { NpmClient, run, type RunResult } from '../helpers/npm.js'
import { CLI, startPier, tempDir, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const ok = (r: RunResult, what: string): void => assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)

async function getJson(base: string, path: string, token?: string): Promise<{ status: number; body: Obj }> {
  const res = await fetch(new URL(path, base), { headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } })
  const text = await res.text()
  return { status: res.status, body: text ? (JSON.parse(text) as Obj) : {} }
}

function pierImport(args: string[]): Promise<RunResult> {
  return run(process.execPath, [CLI, 'import', 'registry', ...args], { timeoutMs: 180_000 })
}

const PACKAGES: Record<string, string[]> = {
  '@acme/a': ['1.0.0', '1.0.1', '2.0.0'],
  '@acme/b': ['0.1.0'],
  solo: ['1.0.0', '1.1.0', '1.2.0'],
}

describe('pier import registry', { timeout: 300_000 }, () => {
  const tmp = tempDir('pier-import-reg-')
  let source: TestPier
  let target: TestPier
  let token: string
  let config: string
  let names: string
  let database: TempDatabase
  const integrity: Record<string, Record<string, string>> = {}

  before(async () => {
    source = await startPier({ packages: { '@acme/*': { access: '$authenticated', publish: '$authenticated' }, '**': { access: '$all', publish: '$authenticated' } } })
    token = await addUser(source.url, 'publisher')
    const npm = new NpmClient(source.url)
    npm.setToken(token)
    for (const [name, versions] of Object.entries(PACKAGES)) {
      for (const v of versions) ok(await npm.npm(['publish'], { cwd: npm.makePackage({ name, version: v, description: `${name} ${v}` }) }), `publish ${name}@${v}`)
    }
    ok(await npm.npm(['deprecate', 'solo@1.0.0', 'too old']), 'deprecate')
    ok(await npm.npm(['dist-tag', 'add', 'solo@1.1.0', 'lts']), 'dist-tag')
    for (const name of Object.keys(PACKAGES)) {
      const doc = (await getJson(source.url, name.replace('/', '%2f'), token)).body
      integrity[name] = Object.fromEntries(Object.entries(doc.versions as Obj).map(([v, m]) => [v, (m as Obj).dist.integrity as string]))
    }
    // The target serves on PostgreSQL: its change notifications tell it of every import at once.
    database = await createTempDatabase({ prefix: 'pier_import_reg' })
    const meta = { type: 'postgres' as const, url: database.url }
    target = await startPier({ uplinks: {}, storage: { meta } })
    config = join(tmp, 'target.json')
    writeFileSync(config, JSON.stringify({ storage: { local: { path: target.dataDir }, meta }, uplinks: {} }))
    names = join(tmp, 'names.txt')
    writeFileSync(names, '# packages to bring over\nsolo\n\nnever-published   # gone at the source\n')
  })

  after(async () => {
    await source?.close()
    await target?.close()
    await database?.drop()
    rmSync(tmp, { recursive: true, force: true })
  })

  test('a wrong token fails the run and writes nothing', async () => {
    const r = await pierImport([source.url, '--scope', '@acme', '--token', 'not-a-token', '--config', config, '--json'])
    assert.equal(r.code, 1, r.stdout + r.stderr)
    assert.match(r.stderr, /cannot list the packages of @acme/)
  })

  test('usage errors exit 2', async () => {
    assert.equal((await pierImport([source.url, '--config', config])).code, 2, 'neither --names nor --scope')
    assert.equal((await pierImport(['not a url', '--names', names])).code, 2)
    assert.equal((await pierImport([source.url, '--names', names, '--concurrency', '0'])).code, 2)
  })

  test('imports a scope and a names file, and npm installs every version with the same integrity', async () => {
    const r = await pierImport([source.url, '--scope', '@acme', '--names', names, '--token', token, '--concurrency', '2', '--config', config, '--json'])
    ok(r, 'pier import registry')
    const s = JSON.parse(r.stdout) as Obj
    assert.deepEqual(s.packages, { seen: 4, created: 3, changed: 0, unchanged: 0, failed: 0 })
    assert.deepEqual(s.versions, { added: 7, updated: 0 })
    assert.equal(s.tarballs.count, 7)
    assert.deepEqual(s.skipped, [{ package: 'never-published', reason: 'the source does not know it (404)' }])

    const src = (await getJson(source.url, 'solo')).body
    const got = (await getJson(target.url, 'solo')).body
    assert.deepEqual(got['dist-tags'], { latest: '1.2.0', lts: '1.1.0' })
    assert.deepEqual(got.time, src.time)
    assert.equal(got.versions['1.0.0'].deprecated, 'too old')
    assert.deepEqual(got.maintainers.map((m: Obj) => m.name), ['publisher'])
    assert.equal(got.versions['1.2.0']._npmUser.name, 'publisher')

    const client = new NpmClient(target.url)
    const deps: Record<string, string> = {}
    for (const [name, versions] of Object.entries(PACKAGES)) for (const v of versions) deps[`x-${name.replace(/[@/]/g, '')}-${v}`] = `npm:${name}@${v}`
    const project = client.project(deps)
    ok(await client.npm(['install'], { cwd: project }), 'npm install from the target')
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as Obj
    for (const [name, versions] of Object.entries(integrity)) {
      for (const [v, want] of Object.entries(versions)) assert.equal(lock.packages[`node_modules/x-${name.replace(/[@/]/g, '')}-${v}`].integrity, want, `${name}@${v}`)
    }
  })

  test('a re-run fetches no tarball and writes nothing; a new version is caught up', async () => {
    const rev = (await getJson(target.url, '@acme%2fa')).body._rev as string
    const again = JSON.parse((await pierImport([source.url, '--scope', '@acme', '--names', names, '--token', token, '--config', config, '--json'])).stdout) as Obj
    assert.deepEqual(again.packages, { seen: 4, created: 0, changed: 0, unchanged: 3, failed: 0 })
    assert.equal(again.tarballs.count, 0)
    assert.equal((await getJson(target.url, '@acme%2fa')).body._rev, rev)

    const npm = new NpmClient(source.url)
    npm.setToken(token)
    ok(await npm.npm(['publish'], { cwd: npm.makePackage({ name: '@acme/b', version: '0.2.0' }) }), 'publish @acme/b@0.2.0')
    const r = await pierImport([source.url, '--scope', '@acme', '--token', token, '--config', config])
    ok(r, 'catch-up')
    assert.match(r.stdout, /^import: 2 packages \(0 new, 1 changed, 1 unchanged, 0 failed\), 1 versions added/m)
    assert.equal((await getJson(target.url, '@acme%2fb')).body['dist-tags'].latest, '0.2.0')
  })

  test('a Pier serving on SQLite sees an import made beside it by another process', async () => {
    const sqlite = await startPier({ uplinks: {} })
    try {
      const file = join(tmp, 'sqlite-target.json')
      writeFileSync(file, JSON.stringify({ storage: { local: { path: sqlite.dataDir } }, uplinks: {} }))
      // Asked before the import: "not found", which the serving Pier keeps in its caches.
      assert.equal((await getJson(sqlite.url, 'solo')).status, 404)
      assert.equal((await getJson(sqlite.url, 'solo')).status, 404)
      ok(await pierImport([source.url, '--names', names, '--config', file]), 'import into the serving SQLite Pier')
      // The SQLite store reads the change sequence every second (sqlite-meta-store.ts watchChanges):
      // wait for that, bounded, rather than for a fixed time.
      const deadline = Date.now() + 15_000
      let status = 404
      while (status !== 200 && Date.now() < deadline) {
        status = (await getJson(sqlite.url, 'solo')).status
        if (status !== 200) await new Promise((r) => setTimeout(r, 100))
      }
      assert.equal(status, 200, 'the import is served without a restart')
      assert.deepEqual((await getJson(sqlite.url, 'solo')).body['dist-tags'], { latest: '1.2.0', lts: '1.1.0' })
    } finally {
      await sqlite.close()
    }
  })
})
