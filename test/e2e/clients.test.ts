/**
 * pnpm, yarn berry and bun (all pinned devDependencies) install what the real npm CLI published
 * to Pier: an unscoped package and a scoped one that depends on it. Each client runs in a fresh
 * project with a fresh cache/store, a temp HOME and temp XDG dirs, with the registry set
 * explicitly (default and `@team` scope) so nothing falls back to the machine's config.
 *
 * Every client is also given an HTTPS proxy that is a local trap: any request to a registry
 * other than Pier (they are all https) lands there, is refused, and fails the test.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { PNPM_CLI, sandbox as makeSandbox, timed, writePnpmrc, writeYarnrc, YARN_CLI, type Sandbox } from '../helpers/clients.js'
import { NpmClient, run, type RunResult } from '../helpers/npm.js'
import { ROOT, startPier, type TestPier } from '../helpers/pier.js'


const DEP = 'pier-dep'
const SCOPED = '@team/x'
/** What `@team/x` asks for: `^1.0.0`, so the right answer is 1.1.0, not `latest` (2.0.0). */
const DEP_WANTED = '1.1.0'
const SCOPED_VERSION = '2.0.0'

let pier: TestPier
let trap: Trap
/** `dist.integrity` Pier serves, by `name@version`. */
const served: Record<string, string> = {}
const temps: string[] = []

const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
const readJson = (p: string): Record<string, unknown> => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>

/** An HTTP(S) proxy on loopback that refuses and records everything sent through it. */
interface Trap {
  url: string
  hits: string[]
  close(): Promise<void>
}

async function startTrap(): Promise<Trap> {
  const hits: string[] = []
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method ?? '?'} ${req.url ?? ''}`)
    res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"trap: no other registry"}')
  })
  server.on('connect', (req, socket) => {
    socket.on('error', () => {}) // clients may reset the refused tunnel
    hits.push(`CONNECT ${req.url ?? ''}`)
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n')
  })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((res) => {
        server.closeAllConnections()
        server.close(() => res())
      }),
  }
}

/** A fresh client sandbox: HOME, XDG dirs and a project depending on `@team/x`. */
function sandbox(client: string): Sandbox {
  trap.hits.length = 0
  const box = makeSandbox(client, pier.url, { [SCOPED]: `^${SCOPED_VERSION}` })
  temps.push(box.home)
  return box
}

/** Both packages are installed with the right versions and load through Node's resolution. */
function assertInstalled(project: string, depDir: string): void {
  assert.equal(readJson(join(project, 'node_modules', SCOPED, 'package.json')).version, SCOPED_VERSION)
  assert.equal(readJson(join(depDir, 'package.json')).version, DEP_WANTED)
  const loaded = execFileSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(SCOPED)}))`], { cwd: project, encoding: 'utf8' })
  assert.equal(loaded, `${SCOPED}@${SCOPED_VERSION} uses ${DEP}@${DEP_WANTED}`)
}

function assertNoOtherHost(): void {
  assert.deepEqual(trap.hits, [], 'a client tried to reach a registry other than Pier')
}

void describe('pnpm, yarn berry and bun install what npm published to Pier', () => {
  before(async () => {
    pier = await startPier()
    trap = await startTrap()
    const npm = new NpmClient(pier.url)
    temps.push(npm.home)
    ok(await npm.login('publisher', 'publisher-pass-1'), 'npm adduser')
    for (const version of ['1.0.0', DEP_WANTED, '2.0.0']) {
      ok(await npm.npm(['publish'], { cwd: npm.makePackage({ name: DEP, version }) }), `publish ${DEP}@${version}`)
    }
    const scoped = npm.makePackage(
      { name: SCOPED, version: SCOPED_VERSION, main: 'index.js', dependencies: { [DEP]: '^1.0.0' } },
      { 'index.js': `module.exports = ${JSON.stringify(`${SCOPED}@${SCOPED_VERSION} uses `)} + require(${JSON.stringify(DEP)})\n` },
    )
    ok(await npm.npm(['publish', '--access', 'public'], { cwd: scoped }), `publish ${SCOPED}`)
    for (const [name, version] of [[DEP, DEP_WANTED], [SCOPED, SCOPED_VERSION]] as const) {
      const res = await fetch(new URL(name.replace('/', '%2f'), pier.url))
      assert.equal(res.status, 200)
      const doc = (await res.json()) as { versions: Record<string, { dist: { integrity: string; tarball: string } }> }
      const dist = doc.versions[version]?.dist
      assert.match(dist?.integrity ?? '', /^sha512-[A-Za-z0-9+/]+={0,2}$/)
      served[`${name}@${version}`] = dist?.integrity ?? ''
    }
  })

  after(async () => {
    await trap?.close()
    await pier?.close()
    for (const dir of temps) rmSync(dir, { recursive: true, force: true })
  })

  void test('pnpm install: isolated node_modules, integrity in pnpm-lock.yaml', async (t) => {
    const box = sandbox('pnpm')
    writePnpmrc(box, pier.url, trap.url, ['team'])
    const version = await run(process.execPath, [PNPM_CLI, '--version'], { env: box.env })
    ok(version, 'pnpm --version')
    t.diagnostic(`pnpm ${version.stdout.trim()}`)
    const r = await timed(t, 'pnpm install', () =>
      run(process.execPath, [PNPM_CLI, 'install', '--no-frozen-lockfile', '--reporter=append-only', `--registry=${pier.url}`], { cwd: box.project, env: box.env }),
    )
    ok(r, 'pnpm install')
    assertInstalled(box.project, join(box.project, `node_modules/.pnpm/${DEP}@${DEP_WANTED}/node_modules/${DEP}`))

    const lock = parseYaml(readFileSync(join(box.project, 'pnpm-lock.yaml'), 'utf8')) as {
      packages: Record<string, { resolution: { integrity?: string; tarball?: string } }>
      snapshots: Record<string, { dependencies?: Record<string, string> }>
    }
    for (const [id, integrity] of Object.entries(served)) {
      const resolution = lock.packages[id]?.resolution
      assert.equal(resolution?.integrity, integrity, `pnpm-lock.yaml integrity of ${id}`)
      // A tarball URL is only recorded when it is not the conventional one under the registry.
      assert.equal(resolution?.tarball, undefined, `pnpm-lock.yaml records a non-standard tarball URL for ${id}`)
    }
    assert.equal(lock.snapshots[`${SCOPED}@${SCOPED_VERSION}`]?.dependencies?.[DEP], DEP_WANTED)
    assertNoOtherHost()
  })

  void test('yarn berry install: node-modules linker, checksums in yarn.lock', async (t) => {
    const box = sandbox('yarn')
    const registry = pier.url.replace(/\/$/, '')
    const cacheFolder = join(box.home, 'yarn-cache')
    const env = writeYarnrc(box, registry, trap.url, ['team'])
    const version = await run(process.execPath, [YARN_CLI, '--version'], { cwd: box.project, env })
    ok(version, 'yarn --version')
    t.diagnostic(`yarn ${version.stdout.trim()}`)
    const r = await timed(t, 'yarn install', () => run(process.execPath, [YARN_CLI, 'install'], { cwd: box.project, env }))
    ok(r, 'yarn install')
    assertInstalled(box.project, join(box.project, 'node_modules', DEP))

    // yarn berry does not copy dist.integrity into yarn.lock: it records the sha512 of the zip it
    // builds in its cache (`<cacheKey>/<hex>`), after checking the download against the registry.
    const lock = parseYaml(readFileSync(join(box.project, 'yarn.lock'), 'utf8')) as Record<string, { version?: string; resolution?: string; checksum?: string }>
    const zips = readdirSync(cacheFolder).filter((f) => f.endsWith('.zip'))
    for (const [name, version] of [[DEP, DEP_WANTED], [SCOPED, SCOPED_VERSION]] as const) {
      const entry = Object.entries(lock).find(([key]) => key.split(/,\s*/).some((d) => d.startsWith(`${name}@npm:`)))?.[1]
      assert.ok(entry, `yarn.lock has no entry for ${name}:\n${JSON.stringify(lock, null, 2)}`)
      assert.equal(entry.version, version)
      assert.equal(entry.resolution, `${name}@npm:${version}`)
      const m = /^(\w+)\/([0-9a-f]{128})$/.exec(entry.checksum ?? '')
      assert.ok(m, `yarn.lock checksum of ${name}: ${entry.checksum}`)
      const prefix = `${name.replace('/', '-')}-npm-${version}-`
      const zip = zips.find((f) => f.startsWith(prefix))
      assert.ok(zip, `no cache archive ${prefix}* in ${zips.join(', ')}`)
      assert.equal(createHash('sha512').update(readFileSync(join(cacheFolder, zip))).digest('hex'), m[2], `checksum of ${zip}`)
    }
    assertNoOtherHost()
  })

  void test('bun install: hoisted node_modules, integrity in bun.lock', async (t) => {
    const bun = bunBinary()
    const box = sandbox('bun')
    const cache = join(box.home, 'bun-cache')
    writeFileSync(
      join(box.project, 'bunfig.toml'),
      [
        'telemetry = false',
        '[install]',
        `registry = "${pier.url}"`,
        '[install.scopes]',
        `team = "${pier.url}"`,
        '[install.cache]',
        `dir = "${cache}"`,
        '',
      ].join('\n'),
    )
    const env = {
      ...box.env,
      BUN_CONFIG_REGISTRY: pier.url,
      BUN_INSTALL: join(box.home, '.bun'),
      BUN_INSTALL_CACHE_DIR: cache,
      HTTPS_PROXY: trap.url,
      https_proxy: trap.url,
    }
    const version = await run(bun, ['--version'], { cwd: box.project, env })
    ok(version, 'bun --version')
    t.diagnostic(`bun ${version.stdout.trim()}`)
    const r = await timed(t, 'bun install', () => run(bun, ['install', '--no-progress'], { cwd: box.project, env }))
    ok(r, 'bun install')
    assertInstalled(box.project, join(box.project, 'node_modules', DEP))

    // bun.lock is JSONC (trailing commas); a package entry is [id, registry, info, integrity].
    const text = readFileSync(join(box.project, 'bun.lock'), 'utf8')
    const lock = JSON.parse(text.replace(/,(\s*[}\]])/g, '$1')) as { packages: Record<string, [string, string, unknown, string]> }
    for (const [name, version] of [[DEP, DEP_WANTED], [SCOPED, SCOPED_VERSION]] as const) {
      const entry = lock.packages[name]
      assert.ok(entry, `bun.lock has no entry for ${name}:\n${text}`)
      assert.equal(entry[0], `${name}@${version}`)
      // '' means "the configured registry"; anything else must be Pier.
      assert.ok(entry[1] === '' || entry[1].startsWith(pier.url), `bun.lock registry of ${name}: ${entry[1]}`)
      assert.equal(entry[3], served[`${name}@${version}`], `bun.lock integrity of ${name}`)
    }
    assertNoOtherHost()
  })
})

/**
 * The bun executable of the `bun` devDependency: its postinstall moves the platform binary over
 * the placeholder `bin/bun.exe`; without install scripts it is still in `@oven/bun-<platform>`.
 */
function bunBinary(): string {
  const main = join(ROOT, 'node_modules/bun/bin/bun.exe')
  if (existsSync(main) && statSync(main).size > 1_000_000) return main
  const oven = join(ROOT, 'node_modules/@oven')
  const candidates = existsSync(oven) ? readdirSync(oven).map((d) => join(oven, d, 'bin/bun')) : []
  const found = candidates.find((p) => existsSync(p))
  assert.ok(found, 'no bun binary: is the bun devDependency installed (with its @oven/bun-<platform> package)?')
  return found
}
