/**
 * `pier init`: the real command as a child process. `--yes` writes a starter that passes the
 * configuration schema, takes its upstream from the npm client's own `registry` setting (here a
 * loopback address given as `npm_config_registry`, so nothing leaves the machine), refuses to
 * overwrite without `--force`, and `pier start` runs on it (sign-up closed, as the starter says).
 * On a terminal (a pseudo-terminal made by util-linux `script`) it asks its questions, asks again
 * after an answer it cannot use, and writes what was answered.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import YAML from 'yaml'
import { defaultAnswers, renderConfig } from '../../src/cli/init.js'
import { run } from '../helpers/npm.js'
import { CLI, tempDir } from '../helpers/pier.js'
import { loadConfigFile } from '../helpers/config.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const UPSTREAM = 'http://127.0.0.1:9/'
const env = (): NodeJS.ProcessEnv => ({ ...process.env, npm_config_registry: UPSTREAM, PIER_CONFIG: '' })

test('every answer set renders a configuration the schema accepts', () => {
  const a = defaultAnswers(undefined)
  const config = loadConfigFile(YAML.parse(renderConfig(a)) as Obj)
  assert.equal(config.server.port, 3000)
  assert.equal(config.auth.local.allow_signup, false)
  assert.deepEqual(Object.keys(config.uplinks ?? {}), [])
  const full = renderConfig({
    ...a,
    url: 'https://npm.acme.test/',
    meta: 'postgres',
    postgresUrl: 'postgres://pier@127.0.0.1:5432/pier',
    tarballs: 's3',
    s3: { bucket: 'tarballs', endpoint: 'http://127.0.0.1:9000/', region: 'eu-west-1' },
    admins: ['alice', 'bob'],
    uplink: UPSTREAM,
    privateScopes: ['@acme'],
  })
  const c = loadConfigFile(YAML.parse(full) as Obj)
  assert.equal(c.storage.meta.type, 'postgres')
  assert.equal(c.storage.s3?.bucket, 'tarballs')
  assert.deepEqual(c.auth.admins, ['alice', 'bob'])
  assert.equal(c.uplinks?.upstream?.url, UPSTREAM)
  assert.deepEqual(c.private_scopes, ['@acme'])
  // Every key written comes with a comment line above it somewhere in the file.
  assert.ok(full.split('\n').filter((l) => l.trimStart().startsWith('#')).length >= 20)
})

test('pier init --yes writes a starter that pier start runs on; an existing file is kept without --force', async () => {
  const dir = tempDir('pier-init-')
  const file = join(dir, 'config.yaml')
  const first = await run(process.execPath, [CLI, 'init', '--yes'], { cwd: dir, env: env() })
  assert.equal(first.code, 0, first.stderr)
  assert.match(first.stdout, /wrote .*config\.yaml/)
  assert.match(first.stdout, /pier user add NAME --admin/)
  const text = readFileSync(file, 'utf8')
  const doc = YAML.parse(text) as Obj
  assert.equal(doc.uplinks.upstream.url, UPSTREAM, 'the upstream is npm\'s own registry setting')
  assert.equal(doc.auth.local.allow_signup, false)
  assert.equal(doc.packages['**'].proxy, 'upstream')

  const again = await run(process.execPath, [CLI, 'init', '--yes'], { cwd: dir, env: env() })
  assert.equal(again.code, 1)
  assert.match(again.stderr, /exists; pier init --force/)
  assert.equal(readFileSync(file, 'utf8'), text)
  const forced = await run(process.execPath, [CLI, 'init', '--yes', '--force'], { cwd: dir, env: env() })
  assert.equal(forced.code, 0, forced.stderr)

  const usage = await run(process.execPath, [CLI, 'init', 'a.yaml', 'b.yaml'], { cwd: dir, env: env() })
  assert.equal(usage.code, 2)
  const help = await run(process.execPath, [CLI, 'init', '--help'], { cwd: dir, env: env() })
  assert.equal(help.code, 0)
  assert.match(help.stdout, /pier init \[--yes\]/)

  // pier start reads ./config.yaml from its working folder; only the port is overridden.
  const child = spawn(process.execPath, [CLI, 'start'], { cwd: dir, env: { ...env(), PIER_SERVER__PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    let out = ''
    const url = await new Promise<string>((res, rej) => {
      child.stderr.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /pier listening on (http:\/\/\S+)/.exec(out)
        if (m?.[1]) res(m[1].replace('localhost', '127.0.0.1'))
      })
      child.on('exit', (c) => rej(new Error(`pier exited (${c}):\n${out}`)))
    })
    assert.equal((await fetch(`${url}/-/ping`)).status, 200)
    const signup = await fetch(`${url}/-/user/org.couchdb.user:carol`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'carol', password: 'secret-password', email: 'c@example.test' }),
    })
    // An unknown user while sign-up is closed gets what a wrong password gets (auth-service.ts).
    assert.equal(signup.status, 401, 'sign-up is closed in the starter')
  } finally {
    const exited = new Promise((res) => child.on('exit', res))
    child.kill('SIGTERM')
    await exited
  }
})

test('on a terminal pier init asks, asks again after an answer it cannot use, and writes the answers', async () => {
  const dir = tempDir('pier-init-tty-')
  // util-linux script gives the command a pseudo-terminal, so standard input is a TTY.
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} init answered.yaml`
  const answers: [RegExp, string][] = [
    [/Address to listen on.*: $/m, '0.0.0.0'],
    [/Port \[3000\]: $/m, 'not-a-port'],
    [/not understood[\s\S]*Port \[3000\]: $/m, '4873'],
    [/Public URL.*: $/m, 'https://npm.acme.test/'],
    [/Data folder.*: $/m, './state'],
    [/Metadata store.*: $/m, 'postgres'],
    [/PostgreSQL connection string.*: $/m, ''],
    [/Tarballs.*: $/m, ''],
    [/npm adduser\? \(y\/n\) \[n\]: $/m, 'y'],
    [/Administrators.*: $/m, 'alice, bob'],
    [/Upstream registry.*: $/m, 'none'],
    [/Private scopes.*: $/m, '@acme @corp'],
  ]
  const r = await run('script', ['-qec', command, '/dev/null'], { cwd: dir, env: env(), answers, timeoutMs: 60_000 })
  assert.equal(r.code, 0, r.stdout + r.stderr)
  const config = loadConfigFile(YAML.parse(readFileSync(join(dir, 'answered.yaml'), 'utf8')) as Obj)
  assert.equal(config.server.host, '0.0.0.0')
  assert.equal(config.server.port, 4873)
  assert.equal(config.url, 'https://npm.acme.test/')
  assert.equal(config.storage.local.path, './state')
  assert.equal(config.storage.meta.type, 'postgres')
  assert.equal(config.storage.meta.url, 'postgres://pier@127.0.0.1:5432/pier')
  assert.equal(config.storage.type, 'local')
  assert.equal(config.auth.local.allow_signup, true)
  assert.deepEqual(config.auth.admins, ['alice', 'bob'])
  assert.deepEqual(Object.keys(config.uplinks ?? {}), [], 'none: no uplink')
  assert.deepEqual(config.private_scopes, ['@acme', '@corp'])
  assert.equal(config.packages?.['@acme/*']?.access[0], '$authenticated')
  assert.match(r.stdout, /pier user add alice --admin/)
})
