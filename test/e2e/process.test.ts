/**
 * Pier as a real process: crash safety (SIGKILL during publishes, restart on the same data),
 * graceful SIGTERM (in-flight request completes, exit 0), and the CLI/config interface scripts
 * rely on (`npm start -- --config`, PIER_CONFIG, env overrides, config errors, `pier --help`,
 * `pier user add`, `pier token create`, the `auth.type: none` warning).
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { create as tarCreate } from 'tar'
import { NPM_CLI, run } from '../helpers/npm.js'
import { CLI, ROOT, spawnPier, tempDir, type PierProcess } from '../helpers/pier.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const sha512 = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`

/** A publish body (npm's wire format, docs/protocol.md §3.1) and the facts of its tarball. */
interface Body {
  version: string
  json: string
  tarball: Buffer
  integrity: string
}

/** npm's publish body for `name@version`, whose tarball carries `payload` random (incompressible) bytes. */
function publishBody(name: string, version: string, payload = 1024): Body {
  const dir = tempDir('pier-proc-pack-')
  let tarball: Buffer
  try {
    mkdirSync(join(dir, 'package'))
    writeFileSync(join(dir, 'package', 'package.json'), JSON.stringify({ name, version }))
    writeFileSync(join(dir, 'package', 'data.bin'), randomBytes(payload))
    tarCreate({ gzip: true, cwd: dir, sync: true, file: join(dir, 'p.tgz'), portable: true }, ['package'])
    tarball = readFileSync(join(dir, 'p.tgz'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const integrity = sha512(tarball)
  const doc = {
    _id: name,
    name,
    'dist-tags': { latest: version },
    versions: {
      [version]: { name, version, _id: `${name}@${version}`, dist: { integrity, shasum: createHash('sha1').update(tarball).digest('hex') } },
    },
    access: null,
    _attachments: { [`${name}-${version}.tgz`]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
  }
  return { version, json: JSON.stringify(doc), tarball, integrity }
}

async function call(base: string, method: string, path: string, opts: { body?: string; token?: string } = {}): Promise<{ status: number; body: Obj }> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  const res = await fetch(new URL(path, base), { method, headers, body: opts.body })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Obj) }
}

/** `npm adduser` over the wire; returns the token. */
async function addUser(base: string, name: string): Promise<string> {
  const r = await call(base, 'PUT', `-/user/org.couchdb.user:${name}`, {
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password: `${name}-pass-1`, email: `${name}@example.com`, type: 'user', roles: [] }),
  })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  return String(r.body.token)
}

/** Unsets every `pier_*` variable of this process (they would be read as config overrides). */
function withoutPierEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const k of Object.keys(process.env)) if (/^pier_/i.test(k)) env[k] = undefined
  return { ...env, ...extra }
}

/** A clean environment for child processes: this one's minus `pier_*` and `npm_*`. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^(pier|npm)_/i.test(k)) env[k] = v
  return { ...env, ...extra }
}

/** A free loopback port (listen on 0, read it, close). */
async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res))
  const addr = srv.address()
  await new Promise<void>((res) => srv.close(() => res()))
  assert.ok(addr && typeof addr === 'object')
  return addr.port
}

/** Resolves when `child`'s output (as read by `output`) matches `re`; rejects if it exits first. */
function waitForOutput(child: ChildProcess, output: () => string, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = re.exec(output())
      if (!m) return false
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
      resolve(m)
      return true
    }
    // Listeners added after the collector's, so `output()` already includes the chunk.
    const onData = () => void check()
    const onExit = () => {
      // Output still in the pipes arrives before 'close'.
      child.once('close', () => {
        if (!check()) reject(new Error(`process exited before printing ${String(re)}:\n${output()}`))
      })
    }
    if (check()) return
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Every process these tests start, stopped (by pid) in `after` if a failed test left it running. */
const live = new Map<ChildProcess, { group: boolean }>()
const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null
/** Temp folders removed in `after`. */
const temps: string[] = []
const temp = (prefix: string): string => {
  const d = tempDir(prefix)
  temps.push(d)
  return d
}

/** spawnPier, remembered in `live`. */
async function startPier(config: Record<string, unknown>, opts: { dataDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<PierProcess> {
  const p = await spawnPier(config, { ...opts, env: withoutPierEnv(opts.env) })
  live.set(p.child, { group: false })
  return p
}

/** A process started by these tests (not through spawnPier). */
interface Started {
  child: ChildProcess
  output(): string
  /** Exit code or signal, after all output was read. */
  closed: Promise<number | string>
}

function startProcess(cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv; detached?: boolean }): Started {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, detached: opts.detached, stdio: ['ignore', 'pipe', 'pipe'] })
  live.set(child, { group: opts.detached === true })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const closed = new Promise<number | string>((res) => child.on('close', (code, sig) => res(code ?? sig ?? -1)))
  return { child, output: () => out, closed }
}

/** Resolves when the spawned Pier's stdio is closed (all its output read). */
const closedOf = (p: PierProcess): Promise<void> =>
  new Promise((res) => {
    if (p.child.stdout?.readableEnded && p.child.stderr?.readableEnded) res()
    else p.child.once('close', () => res())
  })

describe('Pier as a process', () => {
  after(() => {
    for (const [c, { group }] of live) {
      // A detached child leads its own process group (npm → sh → node): stop the group.
      if (running(c) && c.pid !== undefined) process.kill(group ? -c.pid : c.pid, 'SIGKILL')
    }
    for (const d of temps) rmSync(d, { recursive: true, force: true })
  })

  test('SIGKILL during publishes: after restart every listed version has its tarball, every acknowledged one is there, temp files are gone', { timeout: 120_000 }, async (t) => {
    const dataDir = tempDir('pier-crash-')
    const name = 'crash-pkg'
    const bodies = Array.from({ length: 80 }, (_, i) => publishBody(name, `1.0.${i}`, 192 * 1024))
    const byVersion = new Map(bodies.map((b) => [b.version, b]))
    const p1 = await startPier({}, { dataDir })
    const acked: string[] = []
    const attempted: string[] = []
    let killed = false
    try {
      const token = await addUser(p1.url, 'alice')
      let next = 0
      const worker = async () => {
        while (!killed && next < bodies.length) {
          const b = bodies[next++] as Body
          attempted.push(b.version)
          try {
            const r = await call(p1.url, 'PUT', name, { body: b.json, token })
            assert.equal(r.status, 201, `publish ${b.version} before the kill: ${JSON.stringify(r.body)}`)
            acked.push(b.version)
          } catch (e) {
            if (!killed) throw e
            continue
          }
          if (acked.length === 12 && !killed) {
            killed = true
            p1.child.kill('SIGKILL')
          }
        }
      }
      await Promise.all(Array.from({ length: 4 }, worker))
      assert.equal(await p1.exited, 'SIGKILL')
    } finally {
      if (!killed) p1.child.kill('SIGKILL')
      await p1.exited
    }
    assert.ok(acked.length >= 12)

    // Temp files of interrupted blob writes are removed at start-up when their writer (named in the
    // file name: host and pid) is dead; plant one of the killed process to be sure there is one.
    const tmp = join(dataDir, 'data', 'blobs', '.tmp')
    const leftover = readdirSync(tmp).length
    writeFileSync(join(tmp, `${encodeURIComponent(hostname())}.${p1.child.pid}.0123456789abcdef.part`), randomBytes(1000))

    const p2 = await startPier({}, { dataDir })
    try {
      assert.deepEqual(readdirSync(tmp), [], `blob temp folder cleaned (had ${leftover + 1} files)`)
      const doc = (await call(p2.url, 'GET', name)).body
      const listed = Object.keys(doc.versions as Obj)
      t.diagnostic(`acknowledged ${acked.length}, sent ${attempted.length}, listed after restart ${listed.length}, temp files left by the kill ${leftover}`)
      for (const v of acked) assert.ok(listed.includes(v), `acknowledged ${v} survived the crash`)
      for (const v of listed) assert.ok(attempted.includes(v), `${v} was published`)
      const check = async (v: string, m: Obj) => {
        const res = await fetch(String(m.dist.tarball))
        assert.equal(res.status, 200, `tarball of listed version ${v}`)
        const bytes = Buffer.from(await res.arrayBuffer())
        assert.equal(sha512(bytes), m.dist.integrity, `${v}: tarball matches dist.integrity`)
        assert.equal(m.dist.integrity, byVersion.get(v)?.integrity, `${v}: it is the tarball that was sent`)
      }
      await Promise.all(Object.entries(doc.versions as Obj).map(([v, m]: [string, Obj]) => check(v, m)))

      // npm retries what got no answer: 200 if it had landed (same tarball), 201 if not.
      const token = await call(p2.url, 'PUT', '-/user/org.couchdb.user:alice', {
        body: JSON.stringify({ name: 'alice', password: 'alice-pass-1', type: 'user', roles: [] }),
      })
      const unknown = attempted.filter((v) => !acked.includes(v))
      for (const v of unknown) {
        const r = await call(p2.url, 'PUT', name, { body: (byVersion.get(v) as Body).json, token: String(token.body.token) })
        assert.equal(r.status, listed.includes(v) ? 200 : 201, `retry of ${v}: ${JSON.stringify(r.body)}`)
      }
      const after = (await call(p2.url, 'GET', name)).body
      assert.deepEqual(Object.keys(after.versions as Obj).sort(), [...attempted].sort())
      assert.deepEqual(readdirSync(tmp), [])
    } finally {
      assert.equal(await p2.stop(), 0)
    }
    rmSync(dataDir, { recursive: true, force: true })
  })

  test('SIGTERM while a large publish is in flight: the publish completes (201) and the process exits 0', { timeout: 120_000 }, async () => {
    const dataDir = tempDir('pier-term-')
    const big = publishBody('term-pkg', '1.0.0', 4 * 1024 * 1024)
    const p = await startPier({ logger: { level: 'debug' } }, { dataDir })
    const token = await addUser(p.url, 'alice')
    const payload = Buffer.from(big.json)
    const url = new URL('term-pkg', p.url)
    const response = new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
      const req = request(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', 'content-length': payload.length, authorization: `Bearer ${token}` },
      })
      req.on('response', (res) => {
        let text = ''
        res.on('data', (d: Buffer) => (text += d.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: text }))
        res.on('error', reject)
      })
      req.on('error', reject)
      // First part of the body; the rest only once the server is draining.
      req.write(payload.subarray(0, 64 * 1024))
      void (async () => {
        await waitForOutput(p.child, p.output, /"url":"\/term-pkg"[^\n]*"msg":"incoming request"/)
        p.child.kill('SIGTERM')
        await waitForOutput(p.child, p.output, /draining in-flight requests/)
        req.end(payload.subarray(64 * 1024))
      })().catch(reject)
    })
    const r = await response
    assert.equal(r.status, 201, r.body)
    assert.equal((JSON.parse(r.body) as Obj).ok, true)
    // The draining server ends the keep-alive connection instead of waiting for the client to drop it.
    assert.equal(r.connection, 'close')
    assert.equal(await p.exited, 0, p.output())

    // It was committed: visible after a restart, with its tarball.
    const p2 = await startPier({}, { dataDir })
    try {
      const doc = (await call(p2.url, 'GET', 'term-pkg')).body
      assert.equal(doc.versions['1.0.0'].dist.integrity, big.integrity)
      const res = await fetch(String(doc.versions['1.0.0'].dist.tarball))
      assert.equal(sha512(Buffer.from(await res.arrayBuffer())), big.integrity)
    } finally {
      assert.equal(await p2.stop(), 0)
    }
    rmSync(dataDir, { recursive: true, force: true })
  })

  describe('CLI and configuration', { timeout: 300_000 }, () => {
    /** A config file in a new temp folder; returns its path. */
    const configFile = (config: Record<string, unknown>, fileName = 'config.json'): string => {
      const dir = temp('pier-cfg-')
      const file = join(dir, fileName)
      // No uplinks (no default one from `npm config get registry`): tests stay on loopback.
      const full = { storage: { local: { path: join(dir, 'data') } }, uplinks: {}, ...config }
      writeFileSync(file, fileName.endsWith('.json') ? JSON.stringify(full) : String(config.yaml))
      return file
    }
    const LISTENING = /pier listening on (http:\/\/\S+)/

    test('npm start -- --config FILE starts Pier on the file’s port (and SIGTERM ends it with exit 0)', async () => {
      const port = await freePort()
      const file = configFile({ server: { host: '127.0.0.1', port } })
      const home = temp('pier-npm-home-')
      const s = startProcess(process.execPath, [NPM_CLI, 'start', '--', '--config', file], {
        cwd: ROOT,
        env: childEnv({ HOME: home, npm_config_userconfig: join(home, '.npmrc'), npm_config_update_notifier: 'false', npm_config_cache: join(home, 'cache') }),
        // Its own process group: if the test fails, the whole npm → sh → node tree is stopped.
        detached: true,
      })
      try {
        const m = await waitForOutput(s.child, s.output, LISTENING)
        assert.equal(new URL(String(m[1])).port, String(port))
        const ping = await call(`http://127.0.0.1:${port}/`, 'GET', '-/ping')
        assert.deepEqual(ping, { status: 200, body: {} })
        // npm does not forward SIGTERM to the script: stop the Pier process itself, by its logged pid.
        const pid = Number((await waitForOutput(s.child, s.output, /"pid":(\d+)[^\n]*"msg":"pier listening"/))[1])
        assert.notEqual(pid, s.child.pid)
        process.kill(pid, 'SIGTERM')
        assert.equal(await s.closed, 0, s.output())
      } finally {
        if (s.child.exitCode === null && s.child.signalCode === null && s.child.pid) process.kill(-s.child.pid, 'SIGKILL')
        await s.closed
      }
    })

    test('PIER_CONFIG=FILE node dist/src/cli/main.js start uses the file', async () => {
      const port = await freePort()
      const file = configFile({ server: { host: '127.0.0.1', port } })
      const s = startProcess(process.execPath, [CLI, 'start'], { cwd: temp('pier-cwd-'), env: childEnv({ PIER_CONFIG: file }) })
      try {
        const m = await waitForOutput(s.child, s.output, LISTENING)
        assert.equal(new URL(String(m[1])).port, String(port))
        assert.deepEqual(await call(String(m[1]) + '/', 'GET', '-/ping'), { status: 200, body: {} })
      } finally {
        s.child.kill('SIGTERM')
        assert.equal(await s.closed, 0, s.output())
      }
    })

    for (const variable of ['pier_server__port', 'PIER_SERVER__PORT']) {
      test(`${variable}=NNNN wins over the file's port`, async () => {
        const filePort = await freePort()
        const envPort = await freePort()
        const p = await startPier({ server: { host: '127.0.0.1', port: filePort } }, { env: { [variable]: String(envPort) } })
        try {
          assert.equal(new URL(p.url).port, String(envPort))
          assert.deepEqual(await call(p.url, 'GET', '-/ping'), { status: 200, body: {} })
        } finally {
          assert.equal(await p.stop(), 0)
        }
        await closedOf(p)
        assert.doesNotMatch(p.output(), /auth\.type is/)
        rmSync(p.dataDir, { recursive: true, force: true })
      })
    }

    test('an invalid configuration exits non-zero naming the key', async () => {
      const cases: { what: string; file?: string; env?: NodeJS.ProcessEnv; key: RegExp }[] = [
        { what: 'unknown key', file: configFile({ server: { host: '127.0.0.1', port: 0, prot: 4000 } }), key: /server\.prot\b/ },
        { what: 'unknown top-level key', file: configFile({ server: { port: 0 }, listen: 4000 }), key: /\blisten\b/ },
        { what: 'port "abc" (JSON)', file: configFile({ server: { host: '127.0.0.1', port: 'abc' } }), key: /server\.port/ },
        { what: 'port abc (YAML)', file: configFile({ yaml: 'server:\n  port: abc\n' }, 'config.yaml'), key: /server\.port/ },
        { what: 'port abc (env)', file: configFile({ server: { port: 0 } }), env: { PIER_SERVER__PORT: 'abc' }, key: /server\.port/ },
      ]
      for (const c of cases) {
        const r = await run(process.execPath, [CLI, 'start', '--config', c.file as string], { env: childEnv(c.env), timeoutMs: 30_000 })
        assert.notEqual(r.code, 0, `${c.what}: exit code`)
        assert.match(r.stderr, c.key, `${c.what}: message names the key:\n${r.stderr}`)
        assert.doesNotMatch(r.stderr, /listening/)
      }
    })

    test('pier --help exits 0 and lists start, user add, token create', async () => {
      const r = await run(process.execPath, [join(ROOT, 'bin/pier.js'), '--help'], { env: childEnv() })
      assert.equal(r.code, 0, r.stderr)
      for (const cmd of ['pier start', 'pier user add', 'pier token create']) assert.ok(r.stdout.includes(cmd), `--help mentions ${cmd}`)
    })

    test('pier user add + pier token create give a token Pier accepts; --read-only tokens cannot publish', async () => {
      const dataDir = tempDir('pier-cli-users-')
      // The same file spawnPier writes for this data folder.
      const file = join(dataDir, 'config.json')
      writeFileSync(file, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, logger: { level: 'info' }, storage: { local: { path: join(dataDir, 'data') } } }))
      const pier = (args: string[]) => run(process.execPath, [join(ROOT, 'bin/pier.js'), ...args, '--config', file], { env: childEnv(), timeoutMs: 60_000 })

      const added = await pier(['user', 'add', 'carol', '--password', 'carol-pass-1', '--email', 'carol@example.com'])
      assert.equal(added.code, 0, added.stderr)
      const created = await pier(['token', 'create', 'carol'])
      assert.equal(created.code, 0, created.stderr)
      // Scripts do TOKEN=$(pier token create NAME): stdout is the token and nothing else.
      assert.match(created.stdout, /^\S+\n$/)
      const token = created.stdout.trim()
      const missing = await pier(['token', 'create', 'nobody'])
      assert.notEqual(missing.code, 0)
      assert.match(missing.stderr, /nobody/)

      const p = await startPier({}, { dataDir })
      try {
        assert.deepEqual(await call(p.url, 'GET', '-/whoami', { token }), { status: 200, body: { username: 'carol' } })
        // Created while the server runs, on the same database.
        const ro = await pier(['token', 'create', 'carol', '--read-only'])
        assert.equal(ro.code, 0, ro.stderr)
        const roToken = ro.stdout.trim()
        assert.deepEqual(await call(p.url, 'GET', '-/whoami', { token: roToken }), { status: 200, body: { username: 'carol' } })
        const b = publishBody('cli-pkg', '1.0.0')
        const refused = await call(p.url, 'PUT', 'cli-pkg', { body: b.json, token: roToken })
        assert.equal(refused.status, 403, JSON.stringify(refused.body))
        assert.equal((await call(p.url, 'GET', 'cli-pkg')).status, 404)
        assert.equal((await call(p.url, 'PUT', 'cli-pkg', { body: b.json, token })).status, 201)
      } finally {
        assert.equal(await p.stop(), 0)
      }
      rmSync(dataDir, { recursive: true, force: true })
    })

    test('auth.type: none prints a warning at start', async () => {
      const p = await startPier({ auth: { type: 'none' } })
      assert.equal(await p.stop(), 0)
      await closedOf(p)
      const line = p.output().split('\n').find((l) => l.includes('auth.type is'))
      assert.ok(line, `no auth.type warning in:\n${p.output()}`)
      const entry = JSON.parse(line) as Obj
      assert.equal(entry.level, 40, 'logged as a warning')
      assert.match(String(entry.msg), /auth\.type is "none"/)
      rmSync(p.dataDir, { recursive: true, force: true })
    })
  })
})
