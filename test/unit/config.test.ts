/**
 * Configuration loading: YAML and JSON files, defaults, environment overrides and error messages
 * that name the offending key.
 */
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import { parseSize } from '../../src/config/schema.js'
import { tempDir } from '../helpers/pier.js'

const dirs: string[] = []
function dir(): string {
  const d = tempDir('pier-config-')
  dirs.push(d)
  return d
}
/** An empty home and /etc, so no real ~/.pierrc or /etc/pierrc is read. */
const isolated = { home: dir(), etc: dir() }
/** Writes `text` as `name` in a fresh folder; returns the folder. */
function withFile(name: string, text: string): string {
  const d = dir()
  writeFileSync(join(d, name), text)
  return d
}

/** Asserts loadConfig throws a ConfigError whose message matches every pattern. */
function throwsConfig(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`)
    for (const p of patterns) assert.match(e.message, p)
    return true
  })
}

void describe('loadConfig', () => {
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  void test('defaults without any file or variable', () => {
    const { config, file } = loadConfig({ ...isolated, env: {}, cwd: dir() })
    assert.equal(file, undefined)
    assert.equal(config.server.port, 3000)
    assert.equal(config.server.host, '127.0.0.1')
    assert.equal(config.storage.local.path, './data')
    assert.equal(config.storage.type, 'local')
    assert.equal(config.auth.type, 'local')
    assert.equal(config.auth.local.allow_signup, true)
    assert.equal(config.max_body_size, 50 * 1024 * 1024)
    assert.equal(config.settings.allow_previous_version, false)
    assert.equal(config.logger.level, 'info')
    assert.equal(config.url, undefined)
  })

  void test('a YAML file', () => {
    const cwd = withFile(
      'pier.yaml',
      ['server:', '  port: 4873', '  host: 0.0.0.0', 'storage:', '  local:', '    path: /var/pier', 'max_body_size: 1mb', 'auth:', '  type: none', ''].join('\n'),
    )
    const { config, file } = loadConfig({ ...isolated, file: 'pier.yaml', env: {}, cwd })
    assert.equal(file, join(cwd, 'pier.yaml'))
    assert.equal(config.server.port, 4873)
    assert.equal(config.server.host, '0.0.0.0')
    assert.equal(config.storage.local.path, '/var/pier')
    assert.equal(config.max_body_size, 1024 * 1024)
    assert.equal(config.auth.type, 'none')
    assert.equal(config.logger.level, 'info', 'unspecified keys keep their defaults')
  })

  void test('a JSON file', () => {
    const cwd = withFile('pier.json', JSON.stringify({ server: { port: 5000 }, settings: { allow_previous_version: true }, url: 'https://npm.example.com/x/' }))
    const { config } = loadConfig({ ...isolated, file: join(cwd, 'pier.json'), env: {}, cwd: dir() })
    assert.equal(config.server.port, 5000)
    assert.equal(config.settings.allow_previous_version, true)
    assert.equal(config.url, 'https://npm.example.com/x/')
  })

  void test('./config.yaml is used when present; PIER_CONFIG names another file', () => {
    const cwd = withFile('config.yaml', 'server:\n  port: 4100\n')
    assert.equal(loadConfig({ ...isolated, env: {}, cwd }).config.server.port, 4100)
    writeFileSync(join(cwd, 'other.json'), '{"server":{"port":4200}}')
    assert.equal(loadConfig({ ...isolated, env: { PIER_CONFIG: 'other.json' }, cwd }).config.server.port, 4200)
  })

  void test('pier_server__port and PIER_SERVER__PORT override the file', () => {
    const cwd = withFile('config.yaml', 'server:\n  port: 4100\n')
    assert.equal(loadConfig({ ...isolated, env: { pier_server__port: '4000' }, cwd }).config.server.port, 4000)
    assert.equal(loadConfig({ ...isolated, env: { PIER_SERVER__PORT: '4000' }, cwd }).config.server.port, 4000)
    // Without a file too.
    assert.equal(loadConfig({ ...isolated, env: { PIER_SERVER__PORT: '4001' }, cwd: dir() }).config.server.port, 4001)
  })

  void test('boolean and string overrides', () => {
    const { config } = loadConfig({
      ...isolated,
      env: { PIER_SETTINGS__ALLOW_PREVIOUS_VERSION: 'true', PIER_STORAGE__LOCAL__PATH: '/srv/pier', PIER_MAX_BODY_SIZE: '2mb', HOME: '/x', npm_config_x: 'y' },
      cwd: dir(),
    })
    assert.equal(config.settings.allow_previous_version, true)
    assert.equal(config.storage.local.path, '/srv/pier')
    assert.equal(config.max_body_size, 2 * 1024 * 1024)
  })

  void test('an unknown key in a file is an error naming it; in the environment, a warning', () => {
    throwsConfig(() => loadConfig({ ...isolated, file: 'c.yaml', env: {}, cwd: withFile('c.yaml', 'server:\n  prot: 4000\n') }), /server\.prot/)
    throwsConfig(() => loadConfig({ ...isolated, file: 'c.yaml', env: {}, cwd: withFile('c.yaml', 'uplinkz: {}\n') }), /uplinkz/)
    const { config, warnings } = loadConfig({ ...isolated, env: { PIER_SERVER__PROT: '1' }, cwd: dir() })
    assert.equal(config.server.port, 3000)
    assert.deepEqual(warnings, ['ignoring environment variable PIER_SERVER__PROT: no config key "server.prot"'])
  })

  void test('a bad value is an error naming the key', () => {
    throwsConfig(() => loadConfig({ ...isolated, file: 'c.yaml', env: {}, cwd: withFile('c.yaml', 'server:\n  port: lots\n') }), /server\.port/)
    throwsConfig(() => loadConfig({ ...isolated, env: { PIER_SERVER__PORT: '70000' }, cwd: dir() }), /server\.port/)
    throwsConfig(() => loadConfig({ ...isolated, env: { PIER_AUTH__TYPE: 'ldap' }, cwd: dir() }), /auth\.type/)
    throwsConfig(() => loadConfig({ ...isolated, env: { PIER_SETTINGS__ALLOW_PREVIOUS_VERSION: 'yes' }, cwd: dir() }), /settings\.allow_previous_version/)
    throwsConfig(() => loadConfig({ ...isolated, file: 'c.yaml', env: {}, cwd: withFile('c.yaml', 'max_body_size: huge\n') }), /max_body_size/, /invalid size "huge"/)
  })

  void test('unreadable or unparsable files name the file', () => {
    const cwd = dir()
    throwsConfig(() => loadConfig({ ...isolated, file: 'missing.yaml', env: {}, cwd }), /cannot read config file .*missing\.yaml/)
    throwsConfig(() => loadConfig({ ...isolated, file: 'c.json', env: {}, cwd: withFile('c.json', '{nope') }), /invalid config file .*c\.json/)
    throwsConfig(() => loadConfig({ ...isolated, file: 'c.yaml', env: {}, cwd: withFile('c.yaml', '- a\n- b\n') }), /top level must be a mapping/)
  })
})

void describe('parseSize', () => {
  void test('units', () => {
    assert.equal(parseSize('1mb'), 1024 * 1024)
    assert.equal(parseSize('1MB'), 1024 * 1024)
    assert.equal(parseSize('50mb'), 50 * 1024 * 1024)
    assert.equal(parseSize('512kb'), 512 * 1024)
    assert.equal(parseSize('1kb'), 1024)
    assert.equal(parseSize('1.5k'), 1536)
    assert.equal(parseSize('2g'), 2 * 1024 ** 3)
    assert.equal(parseSize('100'), 100)
    assert.equal(parseSize(' 7 b '), 7)
    assert.equal(parseSize(4096), 4096)
  })
  void test('garbage is refused', () => {
    for (const v of ['', 'mb', '1tb', '-1mb', 'one mb']) assert.throws(() => parseSize(v), /invalid size/, v)
  })
})
