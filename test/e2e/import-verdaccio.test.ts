/**
 * `pier import verdaccio` end to end, against a storage folder written by Verdaccio itself:
 * Verdaccio 5 (the last major that runs on Node 20) is installed from the machine's configured
 * npm registry into a temp folder by the pinned npm CLI, on every run (some 15 s; nothing is
 * kept between runs), and started on a random loopback port. The real npm CLI signs a user up
 * there (a bcrypt hash in its htpasswd file), publishes an unscoped package with many versions
 * and a prerelease under `next`, a scoped one, deprecates a version, adds a dist-tag and a star,
 * and installs a package Verdaccio proxies from a loopback Pier (so Verdaccio caches it); a
 * second user's `{SHA}` line is written into the htpasswd file by hand. Then `pier import` (the
 * CLI, as a child process) imports the folder into a Pier that is serving, and npm installs every
 * version from that Pier with the integrity Verdaccio served, the users log in with their old
 * passwords (whose hashes are then scrypt), and the cached package installs with its upstream
 * stopped. A re-run writes nothing; a new version at the source is caught up; `--dry-run`
 * writes nothing; a damaged tarball is skipped with its reason. Apart from installing Verdaccio,
 * nothing leaves 127.0.0.1 (its only uplink is the loopback Pier).
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import pg from 'pg'
import { NPM_CLI, NpmClient, run, type RunResult } from '../helpers/npm.js'
import { CLI, spawnPier, startPier, tempDir, type PierProcess, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const ok = (r: RunResult, what: string): void => assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)

/** A free loopback port (Verdaccio takes its port on the command line). */
async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((res) => s.close(() => res()))
  return port
}

async function getJson(base: string, path: string): Promise<{ status: number; body: Obj }> {
  const res = await fetch(new URL(path, base), { headers: { accept: 'application/json' } })
  const text = await res.text()
  return { status: res.status, body: text ? (JSON.parse(text) as Obj) : {} }
}

/** A running Verdaccio. */
interface Verdaccio {
  url: string
  child: ChildProcess
  stop(): Promise<void>
}

/** Starts Verdaccio with `config` written as YAML-compatible JSON, and waits for its listening line. */
async function startVerdaccio(bin: string, dir: string, config: Obj): Promise<Verdaccio> {
  const port = await freePort()
  const file = join(dir, 'verdaccio.json')
  writeFileSync(file, JSON.stringify(config))
  const child = spawn(process.execPath, [bin, '--config', file, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const exited = new Promise<void>((res) => child.on('exit', () => res()))
  await new Promise<void>((res, rej) => {
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (out.includes(`http://127.0.0.1:${port}/`)) res()
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    void exited.then(() => rej(new Error(`verdaccio exited before listening:\n${out}`)))
  })
  return {
    url: `http://127.0.0.1:${port}/`,
    child,
    async stop() {
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** `pier import …` as a child process. */
function pierImport(args: string[]): Promise<RunResult> {
  return run(process.execPath, [CLI, 'import', ...args], { timeoutMs: 180_000 })
}

/** The JSON summary of a `--json` run. */
function summary(r: RunResult): Obj {
  ok(r, 'pier import')
  return JSON.parse(r.stdout) as Obj
}

const PLAIN_VERSIONS = ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0', '2.0.0-beta.1']

describe('pier import verdaccio', { timeout: 600_000 }, () => {
  const tmp = tempDir('pier-import-vd-')
  const storage = join(tmp, 'storage')
  const htpasswd = join(tmp, 'htpasswd')
  let verdaccio: Verdaccio
  let upstream: TestPier
  let pier: PierProcess
  let pierConfig: string
  let database: TempDatabase
  let pierDir: string | undefined
  let author: NpmClient
  /** name → version → the integrity Verdaccio served. */
  const integrity: Record<string, Record<string, string>> = {}
  const sourceDocs: Record<string, Obj> = {}

  before(async () => {
    // Verdaccio 5 from the machine's configured registry (no registry named here), into the temp folder.
    const install = await run(process.execPath, [NPM_CLI, 'install', 'verdaccio@5', '--prefix', join(tmp, 'vd'), '--no-audit', '--no-fund', '--loglevel=error'], {
      timeoutMs: 300_000,
    })
    ok(install, 'installing verdaccio@5')

    // The upstream Verdaccio proxies for `up-lib`.
    upstream = await startPier({ auth: { local: { allow_signup: true } } })
    const up = new NpmClient(upstream.url)
    ok(await up.login('upper', 'upper-pw-1'), 'login upstream')
    ok(await up.npm(['publish'], { cwd: up.makePackage({ name: 'up-lib', version: '1.0.0' }) }), 'publish up-lib upstream')

    verdaccio = await startVerdaccio(join(tmp, 'vd/node_modules/verdaccio/bin/verdaccio'), tmp, {
      storage,
      auth: { htpasswd: { file: htpasswd, max_users: 100, algorithm: 'bcrypt', rounds: 4 } },
      uplinks: { up: { url: upstream.url } },
      packages: {
        'up-lib': { access: '$all', publish: '$authenticated', proxy: 'up' },
        '**': { access: '$all', publish: '$authenticated' },
      },
      log: { type: 'stdout', format: 'pretty', level: 'warn' },
    })
    author = new NpmClient(verdaccio.url)
    ok(await author.login('alice', 'alice-pw-1'), 'npm adduser alice at verdaccio')
    for (const v of PLAIN_VERSIONS) {
      const dir = author.makePackage({ name: 'plain', version: v, description: `plain ${v}` }, { 'README.md': `# plain ${v}\n` })
      ok(await author.npm(['publish', ...(v.includes('-') ? ['--tag', 'next'] : [])], { cwd: dir }), `publish plain@${v}`)
    }
    for (const v of ['1.0.0', '1.1.0']) ok(await author.npm(['publish'], { cwd: author.makePackage({ name: '@acme/widget', version: v }) }), `publish @acme/widget@${v}`)
    ok(await author.npm(['deprecate', 'plain@1.0.0', 'use 1.4 or later']), 'deprecate')
    ok(await author.npm(['dist-tag', 'add', 'plain@1.2.0', 'stable']), 'dist-tag add')
    ok(await author.npm(['star', 'plain']), 'star')
    ok(await author.npm(['install'], { cwd: author.project({ 'up-lib': '1.0.0' }) }), 'install up-lib through verdaccio')
    // A user with a SHA1 hash, as `htpasswd -s` writes it.
    appendFileSync(htpasswd, `bob:{SHA}${createHash('sha1').update('bob-pw-1').digest('base64')}\n`)
    for (const name of ['plain', '@acme/widget']) {
      const doc = (await getJson(verdaccio.url, name.replace('/', '%2f'))).body
      sourceDocs[name] = doc
      integrity[name] = Object.fromEntries(Object.entries(doc.versions as Obj).map(([v, m]) => [v, (m as Obj).dist.integrity as string]))
    }
    // The Pier imported into serves on PostgreSQL, whose change notifications tell it of each import at once.
    database = await createTempDatabase({ prefix: 'pier_import' })
    pierDir = tempDir('pier-import-target-')
    pier = await spawnPier(
      { uplinks: { up: { url: upstream.url } }, logger: { level: 'warn' }, storage: { local: { path: join(pierDir, 'data') }, meta: { type: 'postgres', url: database.url } } },
      { dataDir: pierDir },
    )
    pierConfig = join(pier.dataDir, 'config.json')
  })

  after(async () => {
    await verdaccio?.stop()
    await pier?.stop()
    await upstream?.close()
    await database?.drop()
    for (const d of [tmp, pierDir]) if (d) rmSync(d, { recursive: true, force: true })
  })

  test('imports every package, version, tag, deprecation, star and user into a serving Pier', async () => {
    const s = summary(await pierImport(['verdaccio', storage, '--htpasswd', htpasswd, '--config', pierConfig, '--json']))
    assert.deepEqual(s.skipped, [])
    assert.equal(s.ok, true)
    assert.deepEqual(s.packages, { seen: 2, created: 2, changed: 0, unchanged: 0, failed: 0 })
    assert.deepEqual(s.versions, { added: PLAIN_VERSIONS.length + 2, updated: 0 })
    assert.equal(s.tarballs.count, PLAIN_VERSIONS.length + 2)
    assert.ok(s.tarballs.bytes > 0)
    assert.equal(s.cached.packages, 1)
    assert.equal(s.cached.tarballs, 1)
    assert.equal(s.cached.uplink, 'up')
    assert.deepEqual(s.users, { created: 2, updated: 0, unchanged: 0, kept: 0 })
    assert.equal(s.secret, true)

    // The packuments keep Verdaccio's times, tags, deprecation, star and readme.
    const plain = (await getJson(pier.url, 'plain')).body
    const src = sourceDocs.plain as Obj
    assert.deepEqual(plain['dist-tags'], src['dist-tags'])
    assert.deepEqual(plain['dist-tags'], { latest: '1.4.0', next: '2.0.0-beta.1', stable: '1.2.0' })
    for (const v of PLAIN_VERSIONS) assert.equal(plain.time[v], src.time[v], `time of ${v}`)
    assert.equal(plain.time.created, src.time.created)
    assert.equal(plain.time.modified, src.time.modified)
    assert.equal(plain.versions['1.0.0'].deprecated, 'use 1.4 or later')
    assert.equal(plain.versions['1.1.0'].deprecated, undefined)
    assert.deepEqual(plain.users, { alice: true })
    // Verdaccio keeps one readme, the last publish's; Pier serves it as the latest version's.
    assert.equal(plain.readme, src.readme)
    assert.equal(plain.readme, '# plain 2.0.0-beta.1\n')
    assert.equal((await getJson(pier.url, '@acme%2fwidget')).body['dist-tags'].latest, '1.1.0')

    // npm installs every version from Pier, with the integrity Verdaccio served.
    const client = new NpmClient(pier.url)
    const deps: Record<string, string> = {}
    for (const [name, versions] of Object.entries(integrity)) {
      for (const v of Object.keys(versions)) deps[`alias-${name.replace(/[@/]/g, '')}-${v}`] = `npm:${name}@${v}`
    }
    deps['up-lib'] = '1.0.0'
    const project = client.project(deps)
    // The cached package comes from the imported cache, with its upstream gone.
    await upstream.close()
    ok(await client.npm(['install'], { cwd: project }), 'npm install from pier')
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as Obj
    for (const [name, versions] of Object.entries(integrity)) {
      for (const [v, want] of Object.entries(versions)) {
        const entry = lock.packages[`node_modules/alias-${name.replace(/[@/]/g, '')}-${v}`] as Obj
        assert.equal(entry.integrity, want, `${name}@${v}`)
        assert.ok(String(entry.resolved).startsWith(pier.url), String(entry.resolved))
      }
    }
    assert.equal(readFileSync(join(project, 'node_modules/up-lib/index.js'), 'utf8'), 'module.exports = "up-lib@1.0.0"\n')

    // The users log in with their Verdaccio passwords; their hashes are then Pier's scrypt.
    for (const [user, pw] of [['alice', 'alice-pw-1'], ['bob', 'bob-pw-1']] as const) {
      const c = new NpmClient(pier.url)
      const wrong = await c.login(user, 'not-the-password', undefined, 'login')
      assert.notEqual(wrong.code, 0, `${user} with a wrong password`)
      ok(await c.login(user, pw, undefined, 'login'), `npm login ${user}`)
      assert.equal((await c.npm(['whoami'])).stdout.trim(), user)
    }
    const db = new pg.Client({ connectionString: database.url })
    await db.connect()
    try {
      const rows = (await db.query<{ name: string; password_hash: string }>('select name, password_hash from users order by name')).rows
      assert.deepEqual(
        rows.map((r) => [r.name, r.password_hash.split('$')[0]]),
        [
          ['alice', 'scrypt'],
          ['bob', 'scrypt'],
        ],
      )
    } finally {
      await db.end()
    }
    // After the upgrade the old password still works (now against scrypt).
    ok(await new NpmClient(pier.url).login('bob', 'bob-pw-1', undefined, 'login'), 'bob again')
  })

  test('a re-run writes nothing; a new version at the source is caught up', async () => {
    const before = (await getJson(pier.url, 'plain')).body._rev as string
    const again = summary(await pierImport(['verdaccio', storage, '--htpasswd', htpasswd, '--config', pierConfig, '--json']))
    assert.deepEqual(again.packages, { seen: 2, created: 0, changed: 0, unchanged: 2, failed: 0 })
    assert.equal(again.tarballs.count, 0)
    assert.equal(again.cached.changed, 0)
    assert.equal(again.cached.tarballs, 0)
    // alice and bob now have Pier passwords: kept.
    assert.deepEqual(again.users, { created: 0, updated: 0, unchanged: 0, kept: 2 })
    assert.equal((await getJson(pier.url, 'plain')).body._rev, before)

    ok(await author.npm(['publish'], { cwd: author.makePackage({ name: 'plain', version: '1.5.0' }) }), 'publish plain@1.5.0')
    ok(await author.npm(['deprecate', 'plain@1.1.0', 'also old']), 'deprecate 1.1.0')
    const catchUp = summary(await pierImport(['verdaccio', storage, '--config', pierConfig, '--json']))
    assert.deepEqual(catchUp.packages, { seen: 2, created: 0, changed: 1, unchanged: 1, failed: 0 })
    assert.deepEqual(catchUp.versions, { added: 1, updated: 1 })
    assert.equal(catchUp.tarballs.count, 1)
    const doc = (await getJson(pier.url, 'plain')).body
    assert.equal(doc['dist-tags'].latest, '1.5.0')
    assert.equal(doc.versions['1.1.0'].deprecated, 'also old')
    assert.equal(doc.time['1.5.0'], ((await getJson(verdaccio.url, 'plain')).body as Obj).time['1.5.0'])
    const client = new NpmClient(pier.url)
    ok(await client.npm(['install'], { cwd: client.project({ plain: '1.5.0' }) }), 'install plain@1.5.0 from pier')
    assert.notEqual((await getJson(pier.url, 'plain')).body._rev, before)
  })

  test('--dry-run writes nothing; a damaged tarball is skipped with its reason', async () => {
    const copy = join(tmp, 'storage-copy')
    cpSync(storage, copy, { recursive: true })
    const tgz = join(copy, 'plain/plain-1.3.0.tgz')
    const bytes = readFileSync(tgz)
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff
    writeFileSync(tgz, bytes)
    const fresh = await startPier({ uplinks: { up: { url: 'http://127.0.0.1:9/' } } })
    const config = join(fresh.dataDir, 'import.json')
    writeFileSync(config, JSON.stringify({ storage: { local: { path: fresh.dataDir } }, uplinks: { up: { url: 'http://127.0.0.1:9/' } } }))
    try {
      const dry = summary(await pierImport(['verdaccio', copy, '--config', config, '--dry-run', '--json']))
      assert.equal(dry.dryRun, true)
      assert.equal(dry.packages.created, 2)
      const db = new Database(join(fresh.dataDir, 'pier.sqlite'), { readonly: true })
      try {
        assert.deepEqual(db.prepare('select count(*) as n from packages').get(), { n: 0 }, 'a dry run writes nothing')
      } finally {
        db.close()
      }

      const r = summary(await pierImport(['verdaccio', copy, '--config', config, '--json']))
      const skip = (r.skipped as Obj[]).find((k) => k.package === 'plain' && k.version === '1.3.0')
      assert.ok(skip, JSON.stringify(r.skipped))
      assert.match(String(skip.reason), /does not match dist\.integrity/)
      const doc = (await getJson(fresh.url, 'plain')).body
      assert.equal(doc.versions['1.3.0'], undefined)
      assert.ok(doc.versions['1.4.0'])
      // The text summary lists it too.
      const text = await pierImport(['verdaccio', copy, '--config', config])
      ok(text, 'text summary')
      assert.match(text.stdout, /plain@1\.3\.0: the tarball does not match dist\.integrity/)
    } finally {
      await fresh.close()
    }
  })
})
