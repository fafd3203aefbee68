/**
 * rc-style configuration: the lookup order of rc 1.2.8 (/etc, home, the nearest .pierrc, the
 * explicit file, the environment), JSON/INI/YAML detection, deep merge, where each key came from,
 * unknown environment variables (a warning) against unknown file keys (an error), secret masking,
 * and `pier config` as a real child process. Every test reads temp folders only (LoadOptions
 * `home`, `etc`, `cwd`; `HOME` for the child process).
 */
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { after, describe, test } from 'node:test'
import { configJson, configText } from '../../src/cli/config.js'
import { ConfigError, loadConfig, type LoadOptions } from '../../src/config/load.js'
import { maskConfig, maskUrl, MASK } from '../../src/config/mask.js'
import { deepMerge, detectFormat } from '../../src/config/rc.js'
import { parseDuration } from '../../src/config/uplinks.js'
import { run } from '../helpers/npm.js'
import { CLI, tempDir } from '../helpers/pier.js'

const dirs: string[] = []
after(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A sandbox: empty `etc`, `home` and `proj/a/b` (the working folder) under a new temp folder. */
function sandbox(): { root: string; etc: string; home: string; proj: string; cwd: string; opts: Required<Pick<LoadOptions, 'etc' | 'home' | 'cwd'>> } {
  const root = tempDir('pier-rc-')
  dirs.push(root)
  const etc = join(root, 'etc')
  const home = join(root, 'home')
  const proj = join(root, 'proj')
  const cwd = join(proj, 'a', 'b')
  for (const d of [etc, home, cwd]) mkdirSync(d, { recursive: true })
  return { root, etc, home, proj, cwd, opts: { etc, home, cwd } }
}

/** Writes `text` to `path`, making its folders. */
function write(path: string, text: string): string {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
  return path
}

/** `s` with the characters special in a regular expression escaped. */
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** Asserts `fn` throws a ConfigError whose message matches every pattern. */
function throwsConfig(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`)
    for (const p of patterns) assert.match(e.message, p)
    return true
  })
}

void describe('rc lookup order', () => {
  void test('every location, lowest first: /etc/pier/config, /etc/pierrc, ~/.config/pier/config, ~/.pier/config, ~/.pierrc, .pierrc upward, --config, environment', () => {
    const s = sandbox()
    // Each layer sets server.port to its rank and adds its own uplink, in a different syntax.
    const layers: Array<{ path: string; text: string }> = [
      { path: join(s.etc, 'pier', 'config'), text: '[server]\nport = 4001\n[uplinks.l1]\nurl = https://l1.example.com/\n' },
      { path: join(s.etc, 'pierrc'), text: JSON.stringify({ server: { port: 4002 }, uplinks: { l2: { url: 'https://l2.example.com/' } } }) },
      { path: join(s.home, '.config', 'pier', 'config'), text: 'server:\n  port: 4003\nuplinks:\n  l3: { url: "https://l3.example.com/" }\n' },
      { path: join(s.home, '.pier', 'config'), text: '[server]\nport = 4005\n[uplinks.l5]\nurl = https://l5.example.com/\n' },
      { path: join(s.home, '.pierrc'), text: 'server: { port: 4006 }\nuplinks: { l6: { url: "https://l6.example.com/" } }\n' },
      { path: join(s.proj, '.pierrc'), text: '{ "server": { "port": 4007 }, "uplinks": { "l7": { "url": "https://l7.example.com/" } } }' },
      { path: join(s.cwd, 'pier.yaml'), text: 'server:\n  port: 4008\nuplinks:\n  l8: { url: "https://l8.example.com/" }\n' },
    ]
    for (const l of layers) write(l.path, l.text)
    const env = { PIER_SERVER__PORT: '4009', PIER_UPLINKS__L9__URL: 'https://l9.example.com/' }

    const all = loadConfig({ ...s.opts, file: 'pier.yaml', env })
    assert.equal(all.config.server.port, 4009)
    assert.deepEqual(Object.keys(all.config.uplinks ?? {}).sort(), ['l1', 'l2', 'l3', 'l5', 'l6', 'l7', 'l8', 'l9'], 'every layer is merged in')
    assert.deepEqual(
      all.files,
      layers.map((l) => l.path),
      'files in order; ~/.config/pier is a folder here, and skipped',
    )
    assert.equal(all.file, join(s.cwd, 'pier.yaml'))
    assert.equal(all.sources['server.port'], 'env PIER_SERVER__PORT')
    for (const [i, l] of layers.entries()) assert.equal(all.sources[`uplinks.l${[1, 2, 3, 5, 6, 7, 8][i]}.url`], l.path)

    // Take the layers away from the top: each time the next one down decides the port.
    assert.equal(loadConfig({ ...s.opts, file: 'pier.yaml', env: {} }).config.server.port, 4008)
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i] as { path: string }
      const { config, sources } = loadConfig({ ...s.opts, env: {}, file: i === layers.length - 1 ? 'pier.yaml' : undefined })
      assert.equal(sources['server.port'], layer.path)
      assert.equal(config.server.port, Number(/port\D*(\d+)/.exec(layers[i]?.text ?? '')?.[1]))
      rmSync(layer.path)
    }
    const none = loadConfig({ ...s.opts, env: {} })
    assert.equal(none.config.server.port, 3000)
    assert.deepEqual(none.files, [])
    assert.equal(none.sources['server.port'], 'default')
  })

  void test('~/.config/pier as a file sits between /etc/pierrc and ~/.pier/config', () => {
    const s = sandbox()
    const etcrc = write(join(s.etc, 'pierrc'), 'server:\n  port: 4002\n  host: 0.0.0.0\n')
    const xdg = write(join(s.home, '.config', 'pier'), '[server]\nport = 4004\n')
    const dotdir = write(join(s.home, '.pier', 'config'), '[server]\nport = 4005\n')
    const r = loadConfig({ ...s.opts, env: {} })
    assert.deepEqual(r.files, [etcrc, xdg, dotdir])
    assert.equal(r.config.server.port, 4005)
    assert.equal(r.config.server.host, '0.0.0.0')
    rmSync(dotdir)
    assert.equal(loadConfig({ ...s.opts, env: {} }).config.server.port, 4004)
    rmSync(xdg)
    assert.equal(loadConfig({ ...s.opts, env: {} }).config.server.port, 4002)
  })

  void test('only the nearest .pierrc walking up is read', () => {
    const s = sandbox()
    write(join(s.proj, '.pierrc'), 'server:\n  host: 0.0.0.0\n  port: 4100\n')
    const near = write(join(s.proj, 'a', '.pierrc'), 'server:\n  port: 4200\n')
    const r = loadConfig({ ...s.opts, env: {} })
    assert.deepEqual(r.files, [near])
    assert.equal(r.config.server.port, 4200)
    assert.equal(r.config.server.host, '127.0.0.1', 'the farther .pierrc is not merged')
  })

  void test('PIER_CONFIG and ./config.yaml are the explicit file as before; a file is read once', () => {
    const s = sandbox()
    const homerc = write(join(s.home, '.pierrc'), 'server:\n  port: 4100\n')
    write(join(s.cwd, 'config.yaml'), 'server:\n  port: 4200\n')
    write(join(s.cwd, 'other.json'), '{"server":{"port":4300}}')
    assert.equal(loadConfig({ ...s.opts, env: {} }).config.server.port, 4200)
    assert.equal(loadConfig({ ...s.opts, env: { PIER_CONFIG: 'other.json' } }).config.server.port, 4300)
    assert.equal(loadConfig({ ...s.opts, env: { pier_config: 'other.json' } }).config.server.port, 4300)
    assert.equal(loadConfig({ ...s.opts, file: 'other.json', env: { PIER_CONFIG: 'config.yaml' } }).config.server.port, 4300, '--config first')
    const twice = loadConfig({ ...s.opts, file: homerc, env: {} })
    assert.deepEqual(twice.files, [homerc])
    assert.equal(twice.file, homerc)
    throwsConfig(() => loadConfig({ ...s.opts, file: 'missing.yaml', env: {} }), /cannot read config file .*missing\.yaml/)
  })

  void test('an unparsable rc file is an error naming it', () => {
    const s = sandbox()
    const bad = write(join(s.home, '.pierrc'), '{ "server": ')
    throwsConfig(() => loadConfig({ ...s.opts, env: {} }), new RegExp(`invalid config file ${esc(bad)}`))
    write(bad, 'server:\n  port: [1\n')
    throwsConfig(() => loadConfig({ ...s.opts, env: {} }), /invalid config file .*\.pierrc/)
    write(bad, '- a\n- b\n')
    throwsConfig(() => loadConfig({ ...s.opts, env: {} }), /invalid config file .*\.pierrc: the top level must be a mapping/)
  })
})

void describe('file syntax', () => {
  void test('detectFormat: by extension, then a leading {, then INI-looking lines, else YAML', () => {
    const cases: Array<[string, string, string]> = [
      ['/x/pier.json', 'server:\n  port: 1\n', 'json'],
      ['/x/.pierrc', '{"server":{}}', 'json'],
      ['/x/config', '\n  {\n"a": 1}', 'json'],
      ['/x/pier.yaml', '{server: {port: 1}}', 'yaml'],
      ['/x/pier.yml', 'a = b', 'yaml'],
      ['/x/pier.ini', 'server:\n  port: 1\n', 'ini'],
      ['/x/.pierrc', '[server]\nport = 1\n', 'ini'],
      ['/x/.pierrc', '; comment\nmax_body_size=1mb\n', 'ini'],
      ['/x/config', 'server:\n  port: 1\nurl: https://npm.example.com/?a=b\n', 'yaml'],
      ['/x/.pierrc', '# port = 1\nserver:\n  port: 1\n', 'yaml'],
      ['/x/.pierrc', 'private_scopes:\n  - a=b\n', 'yaml'],
      ['/x/.pierrc', '', 'yaml'],
    ]
    for (const [path, text, format] of cases) assert.equal(detectFormat(path, text), format, `${path}: ${JSON.stringify(text)}`)
  })

  void test('INI: dotted sections nest, values are coerced like environment values, key[] makes a list', () => {
    const s = sandbox()
    write(
      join(s.home, '.pierrc'),
      [
        '; Pier',
        'max_body_size = 2mb',
        'private_scopes[] = @corp',
        'private_scopes[] = @team',
        '[server]',
        'port = 4873',
        'trust_proxy = true',
        '[auth.local]',
        'allow_signup = false',
        'max_users = -1',
        '[storage.meta]',
        'type = postgres',
        'url = postgres://pier:secret@db.example.com/pier',
        'max_staleness = 250',
        '[storage.s3]',
        'bucket = 12345',
        '',
      ].join('\n'),
    )
    const { config } = loadConfig({ ...s.opts, env: {} })
    assert.equal(config.max_body_size, 2 * 1024 * 1024)
    assert.deepEqual(config.private_scopes, ['@corp', '@team'])
    assert.equal(config.server.port, 4873)
    assert.equal(config.server.trust_proxy, true)
    assert.deepEqual(config.auth.local, { allow_signup: false, max_users: -1 })
    assert.equal(config.storage.meta.type, 'postgres')
    assert.equal(config.storage.meta.url, 'postgres://pier:secret@db.example.com/pier')
    assert.equal(config.storage.meta.max_staleness, 250)
    assert.equal(config.storage.s3?.bucket, '12345', 'a number-looking text key stays text')
  })

  void test('JSON and YAML rc files', () => {
    const s = sandbox()
    write(join(s.etc, 'pierrc'), '  {"logger": {"level": "warn"}, "settings": {"allow_previous_version": true}}')
    write(join(s.home, '.pierrc'), 'server:\n  host: 0.0.0.0\nuplinks: {}\n')
    const { config } = loadConfig({ ...s.opts, env: {} })
    assert.equal(config.logger.level, 'warn')
    assert.equal(config.settings.allow_previous_version, true)
    assert.equal(config.server.host, '0.0.0.0')
    assert.deepEqual(config.uplinks, {})
  })
})

void describe('merging and sources', () => {
  void test('deepMerge: mappings merge, arrays and scalars replace, copies are taken', () => {
    const list = ['@c']
    const target: Record<string, unknown> = { a: { b: 1, c: [1, 2] }, s: 'x', m: { k: 1 }, keep: true }
    const merged = deepMerge(target, { a: { c: [3], d: 2 }, s: { now: 'a mapping' }, m: 'now a scalar', l: list, e: {} })
    assert.equal(merged, target)
    assert.deepEqual(target, { a: { b: 1, c: [3], d: 2 }, s: { now: 'a mapping' }, m: 'now a scalar', keep: true, l: ['@c'], e: {} })
    assert.notEqual(target.l, list)
  })

  void test('layers deep-merge; sources name the file, the variable as spelled, or default', () => {
    const s = sandbox()
    const low = write(
      join(s.etc, 'pierrc'),
      'server: { host: 0.0.0.0, port: 4001 }\nprivate_scopes: ["@a", "@b"]\nuplinks:\n  up: { url: "https://registry.example.com/", timeout: 5s }\nstorage:\n  type: s3\n  s3: { bucket: b, accessKeyId: FILEKEY, secretAccessKey: FILESECRET }\n',
    )
    const high = write(join(s.home, '.pierrc'), 'server: { port: 4002 }\nprivate_scopes: ["@c"]\nuplinks:\n  up: { maxage: 1m }\n')
    const r = loadConfig({ ...s.opts, env: { pier_logger__level: 'debug', PIER_STORAGE__S3__ACCESSKEYID: 'ENVKEY' } })
    assert.equal(r.config.server.host, '0.0.0.0')
    assert.equal(r.config.server.port, 4002)
    assert.deepEqual(r.config.private_scopes, ['@c'])
    assert.equal(r.config.uplinks?.up?.url, 'https://registry.example.com/')
    assert.equal(r.config.uplinks?.up?.timeout, 5000)
    assert.equal(r.config.uplinks?.up?.maxage, 60_000)
    assert.equal(r.config.storage.s3?.accessKeyId, 'ENVKEY')
    assert.deepEqual(r.warnings, [])
    const expected: Record<string, string> = {
      'server.host': low,
      'server.port': high,
      'server.trust_proxy': 'default',
      'logger.level': 'env pier_logger__level',
      private_scopes: high,
      'uplinks.up.url': low,
      'uplinks.up.timeout': low,
      'uplinks.up.maxage': high,
      'uplinks.up.max_fails': 'default',
      'storage.type': low,
      'storage.s3.bucket': low,
      'storage.s3.accessKeyId': 'env PIER_STORAGE__S3__ACCESSKEYID',
      'storage.s3.secretAccessKey': low,
      'storage.s3.region': 'default',
      max_body_size: 'default',
    }
    for (const [k, v] of Object.entries(expected)) assert.equal(r.sources[k], v, k)
    assert.equal(r.sources['uplinks.up'], undefined, 'only leaves have sources')
  })
})

void describe('unknown keys', () => {
  void test('an environment variable that names no key is ignored with a warning', () => {
    const s = sandbox()
    write(join(s.home, '.pierrc'), 'uplinks:\n  up: { url: "https://registry.example.com/" }\n')
    const r = loadConfig({
      ...s.opts,
      env: {
        PIER_DIR: '/x',
        PIER_SERVER__NOPE: '1',
        pier_packages__x__nope: 'y',
        PIER_UPLINKS__UP__NOPE__DEEP: '1',
        PIER_SERVER__PORT: '4100',
        PIER_CONFIG: undefined,
      },
    })
    assert.equal(r.config.server.port, 4100)
    assert.equal(r.config.packages, undefined, 'the rule the variable would have created is not left behind')
    assert.equal(r.config.uplinks?.up?.url, 'https://registry.example.com/')
    assert.deepEqual(r.warnings.sort(), [
      'ignoring environment variable PIER_DIR: no config key "dir"',
      'ignoring environment variable PIER_SERVER__NOPE: no config key "server.nope"',
      'ignoring environment variable PIER_UPLINKS__UP__NOPE__DEEP: no config key "uplinks.up.nope.deep"',
      'ignoring environment variable pier_packages__x__nope: no config key "packages.x.nope"',
    ])
    assert.equal(r.sources['server.nope'], undefined)
  })

  void test('an unknown key in a file is an error naming the key and the file, even when a variable sets it too', () => {
    const s = sandbox()
    const rc = write(join(s.home, '.pierrc'), '[server]\nprot = 4000\n')
    throwsConfig(() => loadConfig({ ...s.opts, env: {} }), /server\.prot/, new RegExp(`from ${esc(rc)}`))
    throwsConfig(() => loadConfig({ ...s.opts, env: { PIER_SERVER__PROT: '1' } }), /server\.prot/, /\.pierrc/)
    write(rc, 'listen: 4000\n')
    throwsConfig(() => loadConfig({ ...s.opts, env: {} }), /\blisten\b/)
  })

  void test('a bad value from a variable names the key and the variable', () => {
    const s = sandbox()
    write(join(s.home, '.pierrc'), 'server:\n  port: 4000\n')
    throwsConfig(() => loadConfig({ ...s.opts, env: { PIER_SERVER__PORT: 'abc' } }), /server\.port/, /env PIER_SERVER__PORT/)
  })
})

void describe('masking and pier config output', () => {
  void test('maskUrl hides only the password', () => {
    assert.equal(maskUrl('postgres://pier:secret@db.example.com/pier'), `postgres://pier:${MASK}@db.example.com/pier`)
    assert.equal(maskUrl('postgresql://pier:p@ss@db.example.com:5432/pier?ssl=true'), `postgresql://pier:${MASK}@db.example.com:5432/pier?ssl=true`)
    assert.equal(maskUrl('https://registry.example.com/a@b'), 'https://registry.example.com/a@b')
    assert.equal(maskUrl('https://user@registry.example.com/'), 'https://user@registry.example.com/')
    assert.equal(maskUrl('plain text: a:b@c'), 'plain text: a:b@c')
  })

  void test('maskConfig hides S3 keys, tokens, passwords, secrets and URL passwords, and keeps the rest', () => {
    const masked = maskConfig({
      storage: { meta: { url: 'postgres://pier:secret@db.example.com/pier' }, s3: { bucket: 'b', accessKeyId: 'AK', secretAccessKey: 'SK' } },
      uplinks: { up: { url: 'https://registry.example.com/', auth: { type: 'bearer', token: 'T' } }, other: { auth: { type: 'basic', token_env: 'UP_TOKEN' } } },
      auth: { github: { client_secret: 'CS', clientSecret: 'CS', password: 'P', nested: { token: { any: 'thing' } } } },
      private_scopes: ['@corp'],
    })
    assert.deepEqual(masked, {
      storage: { meta: { url: `postgres://pier:${MASK}@db.example.com/pier` }, s3: { bucket: 'b', accessKeyId: MASK, secretAccessKey: MASK } },
      uplinks: { up: { url: 'https://registry.example.com/', auth: { type: 'bearer', token: MASK } }, other: { auth: { type: 'basic', token_env: 'UP_TOKEN' } } },
      auth: { github: { client_secret: MASK, clientSecret: MASK, password: MASK, nested: { token: MASK } } },
      private_scopes: ['@corp'],
    })
  })

  void test('configText: one masked line per leaf with its source; configJson: masked config and sources', () => {
    const s = sandbox()
    const rc = write(join(s.etc, 'pierrc'), 'storage:\n  meta: { type: postgres, url: "postgres://pier:secret@db.example.com/pier" }\n')
    const r = loadConfig({ ...s.opts, env: { PIER_SERVER__PORT: '4000' } })
    const lines = configText(r).split('\n')
    const line = (key: string) => lines.find((l) => l.startsWith(`${key} = `)) ?? assert.fail(`no line for ${key}:\n${lines.join('\n')}`)
    assert.match(line('storage.meta.url'), new RegExp(`^storage\\.meta\\.url = postgres://pier:\\*{4}@db\\.example\\.com/pier +\\(from ${esc(rc)}\\)$`))
    assert.match(line('server.port'), /^server\.port = 4000 +\(env PIER_SERVER__PORT\)$/)
    assert.match(line('server.host'), /^server\.host = 127\.0\.0\.1 +\(default\)$/)
    assert.match(line('private_scopes'), /^private_scopes = \[\] +\(default\)$/)
    assert.ok(!configText(r).includes('secret'))
    const json = JSON.parse(configJson(r)) as { config: { storage: { meta: { url: string } } }; sources: Record<string, string> }
    assert.equal(json.config.storage.meta.url, `postgres://pier:${MASK}@db.example.com/pier`)
    assert.deepEqual(json.sources, r.sources)
  })
})

void describe('durations', () => {
  void test('parseDuration: milliseconds, or ms, s, m, h, d in any case; nothing else', () => {
    assert.equal(parseDuration(250), 250)
    assert.equal(parseDuration('250'), 250)
    assert.equal(parseDuration('500ms'), 500)
    assert.equal(parseDuration('30s'), 30_000)
    assert.equal(parseDuration('2m'), 120_000)
    assert.equal(parseDuration('1.5h'), 5_400_000)
    assert.equal(parseDuration('1d'), 86_400_000)
    assert.equal(parseDuration(' 2H '), 7_200_000)
    assert.equal(parseDuration('5 s'), 5000)
    for (const bad of ['', 'soon', '-5s', '.5s', '2w', '1 hour', '1e3', 's']) assert.throws(() => parseDuration(bad), /invalid duration/, bad)
  })
})

void describe('pier config (child process)', () => {
  /** A clean environment for the CLI: this one's minus `pier_*`/`npm_*`, with `HOME` a temp folder. */
  const childEnv = (home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!/^(pier|npm)_/i.test(k)) env[k] = v
    return { ...env, HOME: home, USERPROFILE: home, ...extra }
  }

  void test('prints the merged configuration masked with sources; warnings go to stderr', async () => {
    const s = sandbox()
    const homerc = write(join(s.home, '.pierrc'), '[storage.meta]\ntype = postgres\nurl = postgres://pier:secret@db.example.com/pier\n')
    const file = write(join(s.cwd, 'pier.yaml'), 'server:\n  port: 4873\nuplinks:\n  up:\n    url: https://registry.example.com/\n    auth: { type: bearer, token: uplink-token }\n')
    const env = childEnv(s.home, { PIER_SERVER__HOST: '0.0.0.0', PIER_DIR: '/x' })
    const r = await run(process.execPath, [CLI, 'config', '--config', file], { cwd: s.cwd, env, timeoutMs: 60_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`^storage\\.meta\\.url = postgres://pier:\\*{4}@db\\.example\\.com/pier +\\(from ${esc(homerc)}\\)$`, 'm'))
    assert.match(r.stdout, /^server\.port = 4873 +\(from .*pier\.yaml\)$/m)
    assert.match(r.stdout, /^server\.host = 0\.0\.0\.0 +\(env PIER_SERVER__HOST\)$/m)
    assert.match(r.stdout, /^uplinks\.up\.auth\.token = \*{4} +\(from .*pier\.yaml\)$/m)
    assert.match(r.stdout, /^logger\.level = info +\(default\)$/m)
    assert.ok(!r.stdout.includes('secret') && !r.stdout.includes('uplink-token'), r.stdout)
    assert.ok(!r.stdout.includes('warning'), 'stdout has the configuration only')
    assert.match(r.stderr, /^pier: warning: ignoring environment variable PIER_DIR: no config key "dir"$/m)

    const j = await run(process.execPath, [CLI, 'config', '--json', '--config', file], { cwd: s.cwd, env, timeoutMs: 60_000 })
    assert.equal(j.code, 0, j.stderr)
    const out = JSON.parse(j.stdout) as { config: Record<string, any>; sources: Record<string, string> } // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(out.config.storage.meta.url, 'postgres://pier:****@db.example.com/pier')
    assert.equal(out.config.uplinks.up.auth.token, '****')
    assert.equal(out.sources['storage.meta.url'], homerc)
    assert.equal(out.sources['server.host'], 'env PIER_SERVER__HOST')
    assert.equal(out.sources['server.trust_proxy'], 'default')
  })

  void test('an unknown key in ~/.pierrc stops it, naming the key and the file', async () => {
    const s = sandbox()
    write(join(s.home, '.pierrc'), 'server:\n  prot: 1\n')
    const r = await run(process.execPath, [CLI, 'config'], { cwd: s.cwd, env: childEnv(s.home), timeoutMs: 60_000 })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /server\.prot/)
    assert.match(r.stderr, /\.pierrc/)
    assert.equal(r.stdout, '')
  })

  void test('pier config --help and pier --help describe it', async () => {
    const s = sandbox()
    const h = await run(process.execPath, [CLI, 'config', '--help'], { cwd: s.cwd, env: childEnv(s.home), timeoutMs: 60_000 })
    assert.equal(h.code, 0, h.stderr)
    assert.match(h.stdout, /^Usage: pier config \[--config FILE\] \[--json\]/)
    assert.match(h.stdout, /\/etc\/pierrc/)
    const g = await run(process.execPath, [CLI, '--help'], { cwd: s.cwd, env: childEnv(s.home), timeoutMs: 60_000 })
    assert.equal(g.code, 0, g.stderr)
    assert.match(g.stdout, /pier config \[--config FILE\] \[--json\]/)
    assert.match(g.stdout, /~\/\.pierrc/)
  })
})

void describe('lists from the environment', () => {
  void test('auth.admins and private_scopes take one space-separated string, as the packages lists do', () => {
    const cwd = tempDir()
    try {
      const { config } = loadConfig({ cwd, env: { PIER_AUTH__ADMINS: 'root ops', PIER_PRIVATE_SCOPES: '@corp @team' }, home: '', etc: '/nonexistent-etc' })
      assert.deepEqual(config.auth.admins, ['root', 'ops'])
      assert.deepEqual(config.private_scopes, ['@corp', '@team'])
      assert.throws(() => loadConfig({ cwd, env: { PIER_PRIVATE_SCOPES: 'corp' }, home: '', etc: '/nonexistent-etc' }), /a scope looks like @name/)
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})
