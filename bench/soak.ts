/**
 * Mode `soak`: mixed traffic against one Pier for PIER_BENCH_SOAK_MINUTES (default 30), sampled
 * every PIER_BENCH_SOAK_SAMPLE_S (default 60) seconds, to show that memory, event-loop delay and
 * latency stay flat over time (issue 14).
 *
 * Setup: Pier A (SQLite, `pier start`) holds 60 packages of 2 versions (chains of dependencies)
 * and is the only uplink of Pier B (soak-pier.ts: Pier as `pier start` builds it, plus a sampler),
 * which proxies every name but `@soak/*`, whose 10 packages are local to B. The uplink's `maxage`
 * is PIER_BENCH_SOAK_MAXAGE (default `2m`, Pier's default), so B revalidates with A during the run.
 *
 * Traffic against B, all at once until the time is up:
 * - installs through the uplink: `npm install` of a fixture naming the 60 proxied packages (clean
 *   `node_modules` and npm cache each time; client files on tmpfs when there is one), one after the
 *   other: each install's wall time is recorded;
 * - a paced mix at PIER_BENCH_SOAK_RATE (default 40) requests/s: local packuments, manifests and
 *   tarballs, proxied packuments, 404s of unknown names, token checks (`GET /-/whoami` with a
 *   token), and every 100 requests a publish and a dist-tag move; each request's latency and kind
 *   are recorded. The publishes all go to `@soak/local-0` (the mix's request number is a multiple
 *   of both 10 and 100). By default each takes a new version, so that package gains a version
 *   per publish (about 720 over 30 minutes). With PIER_BENCH_SOAK_VERSIONS=K (K > 0) they cycle
 *   through K version numbers (`1.1.0` … `1.1.<K-1>`) and B runs with
 *   `settings.allow_previous_version: true`: once the cycle wraps, each publish replaces a
 *   version, and the package stays at K + 1 versions. Latency that grows with the data then
 *   stops growing; a leak does not.
 *
 * Figures (`soak.txt`; one `soak.<figure> <value> <unit>` line each, per-sample detail as `#`
 * lines): the minutes run, installs done, the first and last install, and the slopes over the run
 * after its first third (at most 2 minutes) is left out as warm-up, by least squares: install time
 * and the Pier's CPU during each install (ms per install: something that builds up per request
 * shows here first), RSS and heap (MiB per minute), the mix's p99 (ms per minute), and the p99 of
 * its reads alone and of its writes (publishes, dist-tag moves) alone: the writes are 2 % of the
 * mix, so they are most of its p99; the highest event-loop delay p99 of any sample; RSS, heap and
 * p99 of the first and last sample kept; the versions of `@soak/local-0` at the end. Each
 * sample's `#` line also gives the size of B's SQLite file and of its write-ahead log (bytes).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { npm } from './install-duel.js'
import { cpuTicks, ROOT, startPier, startService, type Service } from './proc.js'
import { publishBodyFor } from './scale-corpus.js'

const env = process.env
const num = (name: string, dflt: number): number => (env[name] ? Number(env[name]) : dflt)

/** What the soak mode needs from the bench run. */
export interface SoakRun {
  results: string
  tmp: string
  undo: (() => Promise<void>)[]
  log(msg: string): void
}

/** One sample of the Pier under test (soak-pier.ts). */
interface Sample {
  /** Seconds since the traffic started. */
  at: number
  rss: number
  heapUsed: number
  eldMean: number
  eldP99: number
  eldMax: number
  handles: number
  caches: Record<string, { entries: number; bytes?: number; max: number }>
  /** Size of B's SQLite file and of its write-ahead log when the sample arrived, bytes (0: none). */
  dbBytes: number
  walBytes: number
}

/** The mix's request kinds; `publish` and `tag` are its writes. */
type MixKind = 'publish' | 'tag' | 'packument' | 'manifest' | 'tarball' | 'proxied' | 'notfound' | 'whoami'
const WRITES: ReadonlySet<MixKind> = new Set(['publish', 'tag'])

/** Size of `file` in bytes, 0 when it does not exist. */
const sizeOf = (file: string): number => statSync(file, { throwIfNoEntry: false })?.size ?? 0

const UP_PACKAGES = 60
const LOCAL_PACKAGES = 10
const MiB = 1024 * 1024

/** Least-squares slope of y over x (NaN with fewer than 2 points). */
export function slope(points: [number, number][]): number {
  const n = points.length
  if (n < 2) return NaN
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  let num_ = 0
  let den = 0
  for (const [x, y] of points) {
    num_ += (x - mx) * (y - my)
    den += (x - mx) ** 2
  }
  return den === 0 ? NaN : num_ / den
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN
}

/** One request over a keep-alive agent; resolves with status and ms (the body is read). */
function call(agent: Agent, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; ms: number; text: string }> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: opts.method ?? 'GET', headers: opts.headers, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, text: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** Signs up `soak` on a Pier; returns its token. */
async function token(agent: Agent, base: string): Promise<string> {
  const r = await call(agent, new URL('-/user/org.couchdb.user:soak', base).href, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ _id: 'org.couchdb.user:soak', name: 'soak', password: 'soak-password-1', email: 'soak@example.invalid', type: 'user', roles: [], date: new Date().toISOString() }),
  })
  const t = (JSON.parse(r.text || '{}') as { token?: string }).token
  if (!t) throw new Error(`no token: HTTP ${r.status} ${r.text.slice(0, 200)}`)
  return t
}

/** Publishes `name@version` (with `deps`) to `base`; throws unless 201 (or 200 with `replace`: a version replaced, `settings.allow_previous_version`). */
async function publish(agent: Agent, base: string, tok: string, name: string, version: string, deps: Record<string, string> = {}, replace = false): Promise<number> {
  const body = publishBodyFor({ name, version, description: `soak ${name}`, main: 'index.js', license: 'MIT', dependencies: deps })
  const r = await call(agent, new URL(name.replace('/', '%2f'), base).href, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify(body),
  })
  if (r.status !== 201 && !(replace && r.status === 200)) throw new Error(`publish ${name}@${version}: HTTP ${r.status} ${r.text.slice(0, 300)}`)
  return r.ms
}

/** Runs the soak mode; returns the figures file. */
export async function modeSoak(run: SoakRun): Promise<string> {
  const minutes = num('PIER_BENCH_SOAK_MINUTES', 30)
  const sampleS = num('PIER_BENCH_SOAK_SAMPLE_S', 60)
  const rate = num('PIER_BENCH_SOAK_RATE', 40)
  /** Version numbers the publishes cycle through (0: a new one each time). */
  const versions = num('PIER_BENCH_SOAK_VERSIONS', 0)
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  const dirA = join(run.tmp, 'soak-upstream')
  const dirB = join(run.tmp, 'soak-pier')
  mkdirSync(dirA, { recursive: true })
  mkdirSync(dirB, { recursive: true })
  const a = await startPier({ server: { host: '127.0.0.1', port: 0 }, logger: { level: 'warn' }, uplinks: {}, storage: { local: { path: join(dirA, 'data') } } }, dirA, join(run.results, 'soak-upstream.log'))
  run.undo.push(a.stop)
  let b: Service | undefined
  try {
    const upToken = await token(agent, a.url)
    const upNames = Array.from({ length: UP_PACKAGES }, (_, i) => `soak-up-${i}`)
    // Chains of three: soak-up-0 → 1 → 2, 3 → 4 → 5, …
    for (const [i, name] of upNames.entries()) {
      const deps = i % 3 !== 2 && i + 1 < UP_PACKAGES ? { [`soak-up-${i + 1}`]: '^1.0.0' } : {}
      for (const v of ['1.0.0', '1.0.1']) await publish(agent, a.url, upToken, name, v, deps)
    }
    run.log(`soak: upstream (pid ${a.pid}) holds ${UP_PACKAGES} packages`)
    const configFile = join(dirB, 'config.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0 },
        logger: { level: 'warn' },
        uplinks: { up: { url: a.url, maxage: env.PIER_BENCH_SOAK_MAXAGE ?? '2m' } },
        packages: { '@soak/*': { access: '$all', publish: '$authenticated' }, '**': { access: '$all', publish: '$authenticated', proxy: 'up' } },
        storage: { local: { path: join(dirB, 'data') } },
        ...(versions > 0 ? { settings: { allow_previous_version: true } } : {}),
      }),
    )
    const env0 = Object.fromEntries(Object.entries(env).filter(([k]) => !/^pier_/i.test(k)))
    b = await startService(process.execPath, [join(ROOT, 'dist/bench/soak-pier.js'), configFile, String(sampleS * 1000)], join(run.results, 'soak.log'), /pier listening on (http:\/\/\S+)/, (u) => `${u.replace('localhost', '127.0.0.1')}/`, env0)
    run.undo.push(b.stop)
    const base = b.url
    run.log(`soak: pier under test (pid ${b.pid}) at ${base}, ${minutes} min, samples every ${sampleS} s, mix at ${rate} req/s, ${versions > 0 ? `publishes cycling through ${versions} versions` : 'a new version per publish'}`)
    const dbFile = join(dirB, 'data', 'pier.sqlite')
    const samples: Sample[] = []
    let t0 = performance.now()
    let pendingLine = ''
    b.child.stdout?.on('data', (d: Buffer) => {
      pendingLine += d.toString()
      const lines = pendingLine.split('\n')
      pendingLine = lines.pop() ?? ''
      for (const l of lines) {
        if (!l.startsWith('soak-sample ')) continue
        samples.push({ at: (performance.now() - t0) / 1000, dbBytes: sizeOf(dbFile), walBytes: sizeOf(`${dbFile}-wal`), ...(JSON.parse(l.slice('soak-sample '.length)) as Omit<Sample, 'at' | 'dbBytes' | 'walBytes'>) })
      }
    })
    const tok = await token(agent, base)
    const localNames = Array.from({ length: LOCAL_PACKAGES }, (_, i) => `@soak/local-${i}`)
    for (const n of localNames) await publish(agent, base, tok, n, '1.0.0')

    // The install fixture, on tmpfs when there is one (install-duel.ts: the disk drifts otherwise).
    const scratch = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/pier-bench-soak-') : join(run.tmp, 'soak-installs')
    run.undo.push(async () => rmSync(scratch, { recursive: true, force: true }))
    const project = join(scratch, 'fixture')
    const cache = join(scratch, 'cache')
    const npmrc = join(scratch, 'npmrc')
    mkdirSync(project, { recursive: true })
    writeFileSync(npmrc, '')
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'soak-fixture', private: true, dependencies: Object.fromEntries(upNames.map((n) => [n, '^1.0.0'])) }))
    const pid = b.pid
    /** CPU of the Pier under test during each install, ms (the mix's share included: it is paced, so constant per second). */
    const installCpu: number[] = []
    const install = async (): Promise<number> => {
      for (const p of [join(project, 'node_modules'), join(project, 'package-lock.json'), cache]) rmSync(p, { recursive: true, force: true })
      const cpu0 = cpuTicks(pid)
      const s0 = performance.now()
      const r = await npm(['install', '--userconfig', npmrc, '--registry', base, '--cache', cache, '--prefer-online', '--package-lock=false', '--ignore-scripts', '--loglevel=error'], project)
      if (r.code !== 0) throw new Error(`npm install through the proxy failed (exit ${r.code}): ${r.stderr}`)
      const count = readdirSync(join(project, 'node_modules')).filter((n) => n.startsWith('soak-up-')).length
      if (count !== UP_PACKAGES) throw new Error(`npm install installed ${count} of ${UP_PACKAGES} packages`)
      installCpu.push((cpuTicks(pid) - cpu0) * 10)
      return (performance.now() - s0) / 1000
    }
    await install() // warms the proxy's cache: not counted
    installCpu.length = 0

    t0 = performance.now()
    const deadline = t0 + minutes * 60_000
    const installs: [number, number][] = []
    const latencies: [number, number, MixKind][] = []
    let errors = 0
    const installLoop = async (): Promise<void> => {
      while (performance.now() < deadline) installs.push([(performance.now() - t0) / 1000, await install()])
    }
    const mixLoop = async (): Promise<void> => {
      const auth = { authorization: `Bearer ${tok}` }
      const abbrev = { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*', 'accept-encoding': 'gzip,deflate' }
      let seq = 0
      let localVersion = 1
      for (let i = 0; performance.now() < deadline; i++) {
        const local = localNames[i % LOCAL_PACKAGES] ?? '@soak/local-0'
        const esc = local.replace('/', '%2f')
        let r: { status: number; ms: number }
        const kind: MixKind = i % 100 === 0 ? 'publish' : i % 100 === 50 ? 'tag' : ((['packument', 'manifest', 'tarball', 'proxied', 'notfound', 'whoami'] as const)[i % 6] ?? 'whoami')
        if (kind === 'publish') {
          const n = localVersion++
          r = { status: 201, ms: await publish(agent, base, tok, local, `1.1.${versions > 0 ? n % versions : n}`, {}, versions > 0 && n >= versions) }
        } else if (kind === 'tag') {
          r = await call(agent, new URL(`-/package/${esc}/dist-tags/beta`, base).href, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify('1.0.0') })
        } else if (kind === 'packument') r = await call(agent, new URL(esc, base).href, { headers: abbrev })
        else if (kind === 'manifest') r = await call(agent, new URL(`${esc}/latest`, base).href)
        else if (kind === 'tarball') r = await call(agent, new URL(`${local}/-/${local.split('/')[1] ?? ''}-1.0.0.tgz`, base).href)
        else if (kind === 'proxied') r = await call(agent, new URL(`soak-up-${i % UP_PACKAGES}`, base).href, { headers: abbrev })
        else if (kind === 'notfound') r = await call(agent, new URL(`soak-missing-${seq++ % 500}`, base).href, { headers: abbrev })
        else r = await call(agent, new URL('-/whoami', base).href, { headers: auth })
        const expected = kind === 'notfound' ? 404 : kind === 'publish' ? 201 : 200
        if (kind === 'tag' ? r.status < 200 || r.status > 299 : r.status !== expected) errors++
        latencies.push([(performance.now() - t0) / 1000, r.ms, kind])
        // Pacing (rate control, not synchronisation): the next request's slot.
        const wait = t0 + ((i + 1) * 1000) / rate - performance.now()
        if (wait > 0) await new Promise((res) => setTimeout(res, wait))
      }
    }
    await Promise.all([installLoop(), mixLoop()])
    // One more sample after the end (the child samples on its own clock).
    const kept = samples.filter((s) => s.at <= minutes * 60 + sampleS)
    const warm = Math.min(120, (minutes * 60) / 3)
    const after = kept.filter((s) => s.at >= warm)
    /** p99 of the mix's requests in [from, to) s, of the reads or writes only when `only` says so. */
    const p99Of = (from: number, to: number, only?: 'reads' | 'writes'): number =>
      pct(
        latencies.filter(([t, , k]) => t >= from && t < to && (only === undefined || WRITES.has(k) === (only === 'writes'))).map(([, x]) => x),
        99,
      )
    const localVersions = Object.keys((JSON.parse((await call(agent, new URL(localNames[0]?.replace('/', '%2f') ?? '', base).href)).text || '{}') as { versions?: object }).versions ?? {}).length
    const lines: string[] = [
      `# soak: ${minutes} min, samples every ${sampleS} s, mix ${rate} req/s, uplink maxage ${env.PIER_BENCH_SOAK_MAXAGE ?? '2m'}, ${versions > 0 ? `publishes cycling through ${versions} versions` : 'a new version per publish'}; first ${warm} s left out of the slopes`,
    ]
    for (const s of kept) {
      const sizes = Object.entries(s.caches)
        .map(([k, c]) => `${k}=${c.entries}${c.bytes !== undefined ? `/${Math.round(c.bytes / 1024)}KiB` : ''}`)
        .join(' ')
      const p99s = `p99=${p99Of(s.at - sampleS, s.at).toFixed(2)}ms reads_p99=${p99Of(s.at - sampleS, s.at, 'reads').toFixed(2)}ms writes_p99=${p99Of(s.at - sampleS, s.at, 'writes').toFixed(2)}ms`
      lines.push(`# t=${Math.round(s.at)}s rss=${(s.rss / MiB).toFixed(1)}MiB heap=${(s.heapUsed / MiB).toFixed(1)}MiB eld_p99=${s.eldP99.toFixed(1)}ms handles=${s.handles} ${p99s} db=${s.dbBytes} wal=${s.walBytes} ${sizes}`)
    }
    lines.push(`# installs (s since start: wall s/server CPU ms): ${installs.map(([t, s], i) => `${Math.round(t)}:${s.toFixed(2)}/${installCpu[i] ?? NaN}`).join(' ')}`)
    const installsAfter = installs.filter(([t]) => t >= warm)
    const first = after[0]
    const last = after.at(-1)
    const fig = (name: string, value: number, unit: string, digits = 2): void => void lines.push(`soak.${name} ${Number.isNaN(value) ? 'n/a' : value.toFixed(digits)} ${unit}`)
    fig('minutes', minutes, 'min', 0)
    fig('installs', installs.length, 'installs', 0)
    fig('install_first_s', installs[0]?.[1] ?? NaN, 's')
    fig('install_last_s', installs.at(-1)?.[1] ?? NaN, 's')
    fig('install_median_s', pct(installs.map(([, s]) => s), 50), 's')
    fig('install_slope', slope(installsAfter.map(([, s], i) => [i, s * 1000])), 'ms/install', 1)
    const cpuAfter = installCpu.slice(installs.length - installsAfter.length)
    fig('install_cpu_median', pct(installCpu, 50), 'ms')
    fig('install_cpu_slope', slope(cpuAfter.map((c, i) => [i, c])), 'ms/install', 2)
    fig('rss_first_mib', (first?.rss ?? NaN) / MiB, 'MiB', 1)
    fig('rss_last_mib', (last?.rss ?? NaN) / MiB, 'MiB', 1)
    fig('rss_slope', slope(after.map((s) => [s.at / 60, s.rss / MiB])), 'MiB/min')
    fig('heap_first_mib', (first?.heapUsed ?? NaN) / MiB, 'MiB', 1)
    fig('heap_last_mib', (last?.heapUsed ?? NaN) / MiB, 'MiB', 1)
    fig('heap_slope', slope(after.map((s) => [s.at / 60, s.heapUsed / MiB])), 'MiB/min')
    fig('eld_p99_max', Math.max(...kept.map((s) => s.eldP99)), 'ms', 1)
    fig('p99_first', first ? p99Of(first.at - sampleS, first.at) : NaN, 'ms')
    fig('p99_last', last ? p99Of(last.at - sampleS, last.at) : NaN, 'ms')
    fig('p99_slope', slope(after.map((s) => [s.at / 60, p99Of(s.at - sampleS, s.at)])), 'ms/min', 3)
    fig('reads_p99_first', first ? p99Of(first.at - sampleS, first.at, 'reads') : NaN, 'ms')
    fig('reads_p99_last', last ? p99Of(last.at - sampleS, last.at, 'reads') : NaN, 'ms')
    fig('reads_p99_slope', slope(after.map((s) => [s.at / 60, p99Of(s.at - sampleS, s.at, 'reads')])), 'ms/min', 3)
    fig('writes_p99_first', first ? p99Of(first.at - sampleS, first.at, 'writes') : NaN, 'ms')
    fig('writes_p99_last', last ? p99Of(last.at - sampleS, last.at, 'writes') : NaN, 'ms')
    fig('writes_p99_slope', slope(after.map((s) => [s.at / 60, p99Of(s.at - sampleS, s.at, 'writes')])), 'ms/min', 3)
    fig('local_versions', localVersions, 'versions', 0)
    fig('requests', latencies.length, 'requests', 0)
    fig('unexpected_answers', errors, 'requests', 0)
    const file = join(run.results, 'soak.txt')
    writeFileSync(file, `${lines.join('\n')}\n`)
    for (const l of lines.filter((x) => x.startsWith('soak.'))) run.log(l)
    return file
  } finally {
    agent.destroy()
    await b?.stop()
    await a.stop()
  }
}
