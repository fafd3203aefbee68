/**
 * `npm run bench`: benchmarks Pier with the shared registry harness (`../shared/bench/run.sh`) in
 * several setups and prints them side by side with the stored Verdaccio and nginx baselines.
 *
 * Modes (`npm run bench -- --modes local,nginx,node,pg-s3,proxy,cluster,web,scale,soak`, or `BENCH_MODES=…`;
 * default all but scale and soak, nginx only when it is installed; always run in the order local,
 * nginx, node, proxy, pg-s3, cluster, web, scale, soak):
 * - `local`: one Pier on SQLite + local disk (`dist/src/cli/main.js start`, 127.0.0.1, random port,
 *   log level warn unless PIER_BENCH_LOG_LEVEL says otherwise, data in a temp folder); the harness
 *   seeds the corpus and measures everything.
 * - `nginx`: the local mode's corpus rendered to files and served by nginx
 *   (`../shared/bench/nginx-static.sh`), measured by the same harness in the same run: the physical
 *   limit on this machine today, which the proxy targets then use instead of the stored baseline.
 * - `node`: a bare `node:http` server sending the local Pier's own answers (node-mode.ts,
 *   bare-node.ts), measured with the harness's wrk settings in the same run: Node's own limit; the
 *   output then has a table of Pier ÷ nginx and Pier ÷ node for the small GETs.
 * - `web`: the web UI's package page of a 1,000-version package, rendered in process through
 *   Fastify's inject: cached and first-after-a-write server times (web-page.ts).
 * - `scale`: a registry-sized synthetic corpus loaded through the write path in process into SQLite
 *   and PostgreSQL, measured over HTTP at 10k, 100k and 1M versions (scale.ts; PIER_BENCH_SCALE_*).
 * - `soak`: mixed traffic for PIER_BENCH_SOAK_MINUTES (30) with RSS, heap, event-loop delay, p99
 *   and cache sizes sampled every minute, slopes reported (soak.ts; PIER_BENCH_SOAK_*).
 * - `pg-s3`: the same with `storage.meta.type: postgres` (a throwaway `pier_bench_<random>` database
 *   on 127.0.0.1:5432, dropped at the end) and `storage.type: s3` (s3rver in a child process, one
 *   bucket). The harness's `*_other_cpu` figures then include PostgreSQL's and s3rver's CPU, which
 *   its noise guard takes for other programs (it may measure such a run again, keeping the quietest).
 * - `proxy`: Pier B whose only uplink is Pier A (SQLite; the `local` mode's Pier when that mode ran,
 *   else a fresh one seeded by a short harness run saved as `proxy-upstream.txt`), proxying `**`.
 *   B's cache is warmed (every packument, full and abbreviated, and the tarballs the harness reads
 *   and the fixture installs), then the harness runs against B: it finds the corpus present through
 *   B and does not seed. Its `npm_install` is the warm proxied install of the 150-dependency
 *   fixture. `proxy_upstream_cpu` is A's CPU during that run (near 0 when B serves from its cache).
 *   Then the same fixture is installed interleaved from nginx (when the nginx mode ran), B and A,
 *   PIER_BENCH_INSTALL_ROUNDS (5) rounds, order rotating (install-duel.ts; `installs.txt`): the
 *   install target compares these medians, since installs measured mode after mode drift.
 * - `cluster`: BENCH_CLUSTER_NODES (3) Piers on one PostgreSQL database and one s3rver bucket;
 *   BENCH_CLUSTER_PUBLISHES (200) publishes at concurrency BENCH_CLUSTER_CONCURRENCY (16), spread
 *   round-robin over all nodes, against the same on the first node alone, alternating
 *   BENCH_CLUSTER_ROUNDS (3) times; medians of publishes/s, p50/p90 and CPU per publish (cluster.ts).
 *
 * Each mode saves its figures to `.bench/results/<UTC timestamp>/<mode>.txt` (Pier's output goes to
 * `<mode>.log`, s3rver's to `<mode>-s3rver.log`). The output, also saved as `table.md`, is the
 * harness's markdown table (columns Pier (SQLite+disk), Pier (PG+S3), Pier (proxied), Verdaccio,
 * nginx), the proxy targets (warm proxied packument req/s against the local one; warm proxied install
 * against nginx's, goal ≤ 1.05×) and the cluster's publish throughput table. A mode that fails is
 * reported and the others still run; the exit code is then 1. Every process started is stopped by
 * its PID (SIGTERM) and the temp folder removed, also on Ctrl-C. All traffic goes to 127.0.0.1 and
 * every load run is bounded in time or count.
 *
 * Needs wrk (`apt-get update && apt-get install -y wrk`) and, for pg-s3 and cluster, PostgreSQL on
 * 127.0.0.1:5432 with trust auth (`PIER_BENCH_PG_URL` overrides the maintenance database's URL).
 * Env (passed through to the harness, see ../shared/bench/BASELINE.md): BENCH_DURATION (s per load
 * run, default 10), BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_PUBLISHES, BENCH_INSTALL_RUNS, BENCH_SMALL,
 * BENCH_BIG_VERSIONS, BENCH_FIXTURE_DEPS, BENCH_AUTH_READS, BENCH_NOISE_MAX, BENCH_RETRIES, BENCH_QUIET_WAIT.
 * Quick smoke run: `BENCH_DURATION=3 BENCH_WARMUP=1 BENCH_INSTALL_RUNS=1 npm run bench`.
 * Extra node flags for every Pier (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): PIER_NODE_OPTIONS.
 * `logger.level` of every Pier: PIER_BENCH_LOG_LEVEL (default warn; `info` measures Pier with its
 * request log on, as the default configuration runs it).
 */
import { formatWebFigures, webPageBench } from './web-page.js'
import { spawnSync } from 'node:child_process'
import { appendFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { clusterPublish } from './cluster.js'
import { interleavedInstalls, type InstallTarget } from './install-duel.js'
import { createBenchDatabase } from './postgres.js'
import { modeNode } from './node-mode.js'
import { modeScale } from './scale.js'
import { modeSoak } from './soak.js'
import { cpuTicks, ROOT, runTo, startPier, type Service } from './proc.js'
import { startS3, type S3Settings } from './s3.js'

const HARNESS = resolve(ROOT, '../shared/bench')
const BASELINE = join(HARNESS, 'baseline-2026-11-22/jwt')
const env = process.env
const num = (name: string, dflt: number): number => (env[name] ? Number(env[name]) : dflt)
/** `logger.level` of every Pier the bench starts (PIER_BENCH_LOG_LEVEL; default warn: no request log lines). */
const LOG_LEVEL = env.PIER_BENCH_LOG_LEVEL ?? 'warn'

/** The setups `npm run bench` can measure, in the order they run. */
export const MODES = ['local', 'nginx', 'node', 'proxy', 'pg-s3', 'cluster', 'web', 'scale', 'soak'] as const
/** Modes run only when asked for (they take long: a registry-sized load, a 30-minute soak). */
const ON_DEMAND: readonly Mode[] = ['scale', 'soak']
/** One setup. */
export type Mode = (typeof MODES)[number]
/** Column label of each mode that the harness measures. */
const LABELS: Partial<Record<Mode, string>> = { local: 'Pier (SQLite+disk)', 'pg-s3': 'Pier (PG+S3)', proxy: 'Pier (proxied)', nginx: 'nginx, this run', node: 'bare node:http, this run' }
const ABBREV = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'

/** Where a run keeps its results and scratch files, and what to undo at the end. */
interface Run {
  /** `.bench/results/<stamp>` */
  results: string
  /** Temp folder for data, removed at the end. */
  tmp: string
  /** Undo steps (stop a process, drop a database), run last-first by `cleanup`. */
  undo: (() => Promise<void>)[]
}

const log = (msg: string): void => console.error(`bench: ${msg}`)

/** The modes asked for with `--modes a,b` / `--modes=a,b` or BENCH_MODES; default all. */
function parseModes(argv: string[]): Mode[] {
  let spec = env.BENCH_MODES
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? ''
    if (a === '--modes') spec = argv[++i]
    else if (a.startsWith('--modes=')) spec = a.slice('--modes='.length)
    else throw new Error(`unknown argument ${a} (usage: npm run bench -- --modes ${MODES.join(',')})`)
  }
  if (!spec) return MODES.filter((m) => (m !== 'nginx' || hasNginx()) && !ON_DEMAND.includes(m))
  const asked = spec.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = asked.filter((m) => !(MODES as readonly string[]).includes(m))
  if (unknown.length || !asked.length) throw new Error(`unknown mode(s) ${unknown.join(', ') || '(none)'}; modes: ${MODES.join(', ')}`)
  return MODES.filter((m) => asked.includes(m))
}

/** Whether nginx is installed (the `nginx` mode needs it; without it the stored baseline is the reference). */
function hasNginx(): boolean {
  return spawnSync('sh', ['-c', 'command -v nginx'], { stdio: 'ignore' }).status === 0
}

/** A free loopback port (asked of the kernel, then released). */
async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res))
  const { port } = srv.address() as AddressInfo
  await new Promise<void>((res) => srv.close(() => res()))
  return port
}

/** nginx serving the rendered corpus, kept for the interleaved installs. */
type StaticServer = Pick<Service, 'url' | 'pid' | 'stop'>

/**
 * Mode `nginx`: the physical limit measured in this run, on this machine: the local Pier's corpus
 * rendered to files and served by nginx (`../shared/bench/nginx-static.sh`, one worker), then the
 * same harness run. Makes the install and read targets compare like with like. With `keep`, nginx
 * stays up (for the proxy mode's interleaved installs) and the caller stops it.
 */
async function modeNginx(run: Run, source: Service | undefined, keep: boolean): Promise<{ figures: string; server?: StaticServer }> {
  if (!source) throw new Error('the nginx mode renders the local mode\'s corpus: run it with --modes local,nginx')
  if (!hasNginx()) throw new Error('nginx is not installed: apt-get update && apt-get install -y nginx')
  const script = join(HARNESS, 'nginx-static.sh')
  const port = await freePort()
  const started = spawnSync(script, ['start', source.url, String(port)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const [url, pid] = started.stdout.trim().split(/\s+/)
  if (started.status !== 0 || !url || !pid) throw new Error(`nginx-static.sh start failed (exit ${started.status})`)
  const stop = async (): Promise<void> => void spawnSync(script, ['stop'], { stdio: 'ignore' })
  run.undo.push(stop)
  log(`nginx: serving the rendered corpus (pid ${pid}) at ${url}`)
  let kept = false
  try {
    const figures = await harness(run, 'nginx', { url, pid: Number(pid) })
    kept = keep
    return kept ? { figures, server: { url, pid: Number(pid), stop } } : { figures }
  } finally {
    if (!kept) await stop()
  }
}

/** Config of a Pier with SQLite + local disk and no uplinks (never the npm default registry). */
function sqliteConfig(dataDir: string): Record<string, unknown> {
  return { server: { host: '127.0.0.1', port: 0 }, logger: { level: LOG_LEVEL }, uplinks: {}, storage: { local: { path: dataDir } } }
}

/** Config of a Pier node on PostgreSQL (`dbUrl`) + S3 (`s3`), no uplinks. */
function pgS3Config(dataDir: string, dbUrl: string, s3: S3Settings): Record<string, unknown> {
  return {
    server: { host: '127.0.0.1', port: 0 },
    logger: { level: LOG_LEVEL },
    uplinks: {},
    storage: { type: 's3', local: { path: dataDir }, s3, meta: { type: 'postgres', url: dbUrl } },
  }
}

/**
 * Config of a Pier (SQLite + disk) whose only uplink is `upstreamUrl`, proxying every name. Its
 * cached packuments stay fresh (`maxage`) for the whole run, so "warm" means served from the cache
 * with no revalidation (with the default 2 min, the later figures would include background
 * revalidations against the upstream).
 */
function proxyConfig(dataDir: string, upstreamUrl: string): Record<string, unknown> {
  return {
    ...sqliteConfig(dataDir),
    uplinks: { upstream: { url: upstreamUrl, maxage: '1h' } },
    packages: { '**': { access: '$all', publish: '$authenticated', proxy: 'upstream' } },
  }
}

/** Starts a Pier whose data lives in `<tmp>/<label>/`, logging to `<results>/<label>.log`; stopped by `cleanup`. */
async function pier(run: Run, label: string, config: (dataDir: string) => Record<string, unknown>): Promise<Service> {
  const dir = join(run.tmp, label)
  mkdirSync(dir, { recursive: true })
  const p = await startPier(config(join(dir, 'data')), dir, join(run.results, `${label}.log`))
  run.undo.push(p.stop)
  log(`${label}: pier (pid ${p.pid}) at ${p.url}`)
  return p
}

/**
 * Runs the shared harness against `target`, figures to `<results>/<name>.txt`.
 * @param opts.env harness env (default ours); opts.pid false: no server CPU figures or noise guard
 * @throws when the harness fails (partial figures stay in the file)
 */
async function harness(run: Run, name: string, target: Pick<Service, 'url' | 'pid'>, opts: { env?: NodeJS.ProcessEnv; pid?: boolean } = {}): Promise<string> {
  const figures = join(run.results, `${name}.txt`)
  const out = createWriteStream(figures)
  log(`${name}: running ../shared/bench/run.sh ${target.url}${opts.pid === false ? '' : ` ${target.pid}`}`)
  const args = [target.url, ...(opts.pid === false ? [] : [String(target.pid)])]
  const code = await runTo(join(HARNESS, 'run.sh'), args, out, opts.env)
  await new Promise<void>((res) => out.end(res))
  if (code !== 0) throw new Error(`run.sh failed (exit ${code}); partial figures in ${figures}`)
  return figures
}

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items]
  await Promise.all(Array.from({ length: Math.min(n, queue.length) }, async () => {
    for (let it = queue.shift(); it !== undefined; it = queue.shift()) await fn(it)
  }))
}

/** GET with the harness's headers (gzip), 30 s timeout; the body is read; throws unless 200. */
async function getOk(url: string, accept?: string): Promise<Buffer> {
  const res = await fetch(url, { headers: { 'accept-encoding': 'gzip,deflate', ...(accept ? { accept } : {}) }, signal: AbortSignal.timeout(30_000) })
  const body = Buffer.from(await res.arrayBuffer())
  if (res.status !== 200) throw new Error(`warming GET ${url}: HTTP ${res.status}`)
  return body
}

/**
 * Warms a proxying Pier's cache with the harness corpus: every packument (full and abbreviated), the
 * small packages' tarballs and the big package's latest tarball (what the fixture installs).
 */
async function warmProxy(base: string): Promise<number> {
  const names = [...Array.from({ length: num('BENCH_SMALL', 200) }, (_, i) => `bench-pkg-${String(i).padStart(3, '0')}`), 'bench-big']
  const tarballs: string[] = []
  await pool(names, 8, async (name) => {
    const doc = JSON.parse((await getOk(new URL(name, base).href, 'application/json')).toString()) as {
      'dist-tags': Record<string, string>
      versions: Record<string, { dist: { tarball: string } }>
    }
    await getOk(new URL(name, base).href, ABBREV)
    const versions = name === 'bench-big' ? [doc['dist-tags'].latest ?? ''] : Object.keys(doc.versions)
    for (const v of versions) {
      const t = doc.versions[v]?.dist.tarball
      if (t) tarballs.push(new URL(new URL(t).pathname.slice(1), base).href) // B's own path, whatever host it names
    }
  })
  await pool(tarballs, 8, async (t) => void (await getOk(t)))
  return names.length * 2 + tarballs.length
}

/** Mode `local`; returns the Pier, still running, when `keep` (the proxy mode's upstream). */
async function modeLocal(run: Run, keep: boolean): Promise<{ figures: string; pier?: Service }> {
  const p = await pier(run, 'local', sqliteConfig)
  let figures: string
  try {
    figures = await harness(run, 'local', p)
  } catch (e) {
    await p.stop()
    throw e
  }
  if (keep) return { figures, pier: p }
  await p.stop()
  return { figures }
}

/** Mode `pg-s3`. */
async function modePgS3(run: Run): Promise<string> {
  const db = await createBenchDatabase()
  run.undo.push(db.drop)
  const s3 = await startS3(join(run.tmp, 'pg-s3-objects'), join(run.results, 'pg-s3-s3rver.log'))
  run.undo.push(s3.service.stop)
  log(`pg-s3: database ${db.name}, s3rver (pid ${s3.service.pid}) at ${s3.service.url}`)
  const p = await pier(run, 'pg-s3', (dir) => pgS3Config(dir, db.url, s3.config))
  try {
    return await harness(run, 'pg-s3', p)
  } finally {
    await p.stop()
    await s3.service.stop()
    await db.drop()
  }
}

/**
 * Mode `proxy`, with `upstream` (a seeded Pier) or a new one seeded here. After the harness, the
 * fixture is installed interleaved from nginx (when `nginx` is serving), the proxy and the upstream
 * (install-duel.ts), figures in `installs.txt`.
 */
async function modeProxy(run: Run, upstream: Service | undefined, nginx: StaticServer | undefined): Promise<string> {
  let up = upstream
  if (!up) {
    up = await pier(run, 'proxy-upstream', sqliteConfig)
    log('proxy: seeding the upstream with a short harness run (figures in proxy-upstream.txt, not measured)')
    const short = { ...env, BENCH_DURATION: '1', BENCH_WARMUP: '0', BENCH_INSTALL_RUNS: '1', BENCH_PUBLISHES: '1' }
    await harness(run, 'proxy-upstream', up, { env: short, pid: false })
  }
  const upstreamUrl = up.url
  const b = await pier(run, 'proxy', (dir) => proxyConfig(dir, upstreamUrl))
  try {
    const t0 = performance.now()
    const n = await warmProxy(b.url)
    log(`proxy: warmed the cache with ${n} GETs in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    const upCpu0 = cpuTicks(up.pid)
    const figures = await harness(run, 'proxy', b)
    appendFileSync(figures, `proxy_upstream_cpu ${((cpuTicks(up.pid) - upCpu0) / 100).toFixed(2)} s\n`)
    const targets: InstallTarget[] = [...(nginx ? [{ label: 'nginx', url: nginx.url, pid: nginx.pid }] : []), { label: 'proxy', url: b.url, pid: b.pid }, { label: 'local', url: up.url, pid: up.pid }]
    const rounds = Math.max(1, num('PIER_BENCH_INSTALL_ROUNDS', 5))
    log(`proxy: installing the fixture interleaved from ${targets.map((t) => t.label).join(', ')}, ${rounds} rounds`)
    // The client's files on tmpfs when there is one: on this machine's disk (ext4, online discard),
    // install after install slows down whatever serves them (install-duel.ts).
    const scratch = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/pier-bench-installs-') : join(run.tmp, 'installs')
    run.undo.push(async () => rmSync(scratch, { recursive: true, force: true }))
    const times = await interleavedInstalls(targets, {
      dir: scratch,
      rounds,
      fixtureDeps: num('BENCH_FIXTURE_DEPS', 150),
      noiseMax: num('BENCH_NOISE_MAX', 15),
      log,
    })
    const lines = [`# npm install of the harness fixture, interleaved, ${rounds} rounds, client files in ${scratch.startsWith('/dev/shm') ? 'tmpfs' : 'the temp folder'}; medians`]
    for (const [label, secs] of times) lines.push(`# ${label} runs: ${secs.map((x) => x.toFixed(2)).join(' ')} s`, `install_${label} ${median(secs).toFixed(2)} s`)
    writeFileSync(join(run.results, 'installs.txt'), `${lines.join('\n')}\n`)
    return figures
  } finally {
    await b.stop()
    await up.stop()
  }
}

/** Mode `cluster`. */
async function modeCluster(run: Run): Promise<string> {
  const db = await createBenchDatabase()
  run.undo.push(db.drop)
  const s3 = await startS3(join(run.tmp, 'cluster-objects'), join(run.results, 'cluster-s3rver.log'))
  run.undo.push(s3.service.stop)
  log(`cluster: database ${db.name}, s3rver (pid ${s3.service.pid}) at ${s3.service.url}`)
  const count = Math.max(2, num('BENCH_CLUSTER_NODES', 3))
  const nodes: Service[] = []
  try {
    // Started together: the nodes take turns migrating the new database (an advisory lock).
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => pier(run, `cluster-node${i + 1}`, (dir) => pgS3Config(dir, db.url, s3.config))),
    )
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value)
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    const figures = join(run.results, 'cluster.txt')
    const text = await clusterPublish({
      nodes,
      s3: s3.service,
      publishes: num('BENCH_CLUSTER_PUBLISHES', 200),
      concurrency: num('BENCH_CLUSTER_CONCURRENCY', 16),
      rounds: Math.max(1, num('BENCH_CLUSTER_ROUNDS', 3)),
      noiseMax: num('BENCH_NOISE_MAX', 15),
      quietWait: Math.min(60, num('BENCH_QUIET_WAIT', 180)),
      log: (m) => log(m),
    })
    writeFileSync(figures, text)
    return figures
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
    await s3.service.stop()
    await db.drop()
  }
}

/** "name value unit" lines of a figures file → name → value (NaN for n/a). */
function readFigures(file: string): Map<string, { value: number; unit: string }> {
  const out = new Map<string, { value: number; unit: string }>()
  if (!existsSync(file)) return out
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, value, unit] = line.trim().split(/\s+/)
    if (name && value && unit && !name.startsWith('#')) out.set(name, { value: Number(value), unit })
  }
  return out
}

const median = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? NaN : s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2
}
const fmt = (v: number | undefined, digits = 2): string => (v === undefined || Number.isNaN(v) ? 'n/a' : String(+v.toFixed(digits)))
const baselineFiles = (name: string): string[] => [1, 2, 3].map((i) => join(BASELINE, `${name}-${i}.txt`))

/**
 * Markdown: the proxied figures against their targets. The install target uses the interleaved
 * installs (`installs`, install-duel.ts) when they ran; the harness's per-mode install figures
 * (measured one mode after the other, so subject to the machine's drift) are shown for reference.
 */
function targetsTable(proxy: string, local: string | undefined, nginxRun: string | undefined, installs: string | undefined): string {
  const p = readFigures(proxy)
  const l = local ? readFigures(local) : new Map<string, { value: number; unit: string }>()
  const i = installs ? readFigures(installs) : new Map<string, { value: number; unit: string }>()
  const sameRun = nginxRun ? readFigures(nginxRun).get('npm_install')?.value : undefined
  const nginx = sameRun ?? median(baselineFiles('nginx').map((f) => readFigures(f).get('npm_install')?.value ?? NaN))
  const nginxLabel = sameRun !== undefined ? 'nginx static, this run' : 'nginx static, baseline median'
  const rounds = installs ? (/(\d+) rounds/.exec(readFileSync(installs, 'utf8'))?.[1] ?? '?') : '?'
  const rows: [string, string, number | undefined, string, number | undefined, string][] = [
    ['warm proxied packument GET (packument_small_rps)', 'req/s', p.get('packument_small_rps')?.value, 'Pier (SQLite+disk), this run', l.get('packument_small_rps')?.value, 'the same (≈ 1)'],
    ['warm proxied abbreviated GET (abbrev_small_rps)', 'req/s', p.get('abbrev_small_rps')?.value, 'Pier (SQLite+disk), this run', l.get('abbrev_small_rps')?.value, 'the same (≈ 1)'],
  ]
  if (i.has('install_nginx')) {
    rows.push([`warm proxied npm install, interleaved, median of ${rounds} (install_proxy)`, 's', i.get('install_proxy')?.value, 'nginx static, interleaved', i.get('install_nginx')?.value, '≤ 1.05'])
  }
  if (i.has('install_local')) {
    rows.push([`warm proxied npm install, interleaved, median of ${rounds} (install_proxy)`, 's', i.get('install_proxy')?.value, 'Pier (SQLite+disk), interleaved', i.get('install_local')?.value, 'for reference'])
  }
  rows.push(
    ['warm proxied npm install, harness (npm_install)', 's', p.get('npm_install')?.value, nginxLabel, nginx, i.has('install_nginx') ? 'for reference (mode after mode)' : '≤ 1.05'],
    ['warm proxied npm install, harness (npm_install)', 's', p.get('npm_install')?.value, 'Pier (SQLite+disk), this run', l.get('npm_install')?.value, 'for reference (mode after mode)'],
  )
  const lines = ['| target | unit | Pier (proxied) | reference | reference value | ratio | goal |', '|---|---|---|---|---|---|---|']
  for (const [what, unit, v, ref, r, goal] of rows) {
    const ratio = v !== undefined && r !== undefined && r > 0 ? v / r : NaN
    lines.push(`| ${what} | ${unit} | ${fmt(v)} | ${ref} | ${fmt(r)} | ${fmt(ratio)} | ${goal} |`)
  }
  const up = p.get('proxy_upstream_cpu')?.value
  const runs = installs ? readFileSync(installs, 'utf8').split('\n').filter((x) => / runs: /.test(x)).map((x) => x.replace(/^# /, '- ')) : []
  const detail = runs.length ? `\nInterleaved installs (s, in round order):\n${runs.join('\n')}\n` : ''
  return `${lines.join('\n')}\n${detail}\nUpstream (Pier A) CPU while the harness ran against the proxy: ${fmt(up)} s.\n`
}

/**
 * Markdown: the local Pier's small-GET throughput as a fraction of nginx's and of a bare
 * `node:http` server's (node-mode.ts), all from this run, with issue 14's goals against nginx.
 */
function fastPathTable(local: string, nginxRun: string | undefined, nodeRun: string | undefined): string {
  const l = readFigures(local)
  const n = nginxRun ? readFigures(nginxRun) : new Map<string, { value: number; unit: string }>()
  const b = nodeRun ? readFigures(nodeRun) : new Map<string, { value: number; unit: string }>()
  const rows: [string, string][] = [
    ['packument_small', '≥ 0.6'],
    ['abbrev_small', '≥ 0.6'],
    ['tarball', '≥ 0.6'],
    ['notfound', '≥ 0.5'],
    ['abbrev_big', '≥ 0.8'],
    ['packument_big', ''],
  ]
  const lines = ['Pier (SQLite+disk) req/s against nginx and a bare node:http server sending the same bytes, this run', '',
    '| figure | Pier | nginx | bare node | Pier ÷ nginx | Pier ÷ node | goal (÷ nginx) |', '|---|---|---|---|---|---|---|']
  for (const [name, goal] of rows) {
    const v = l.get(`${name}_rps`)?.value
    const x = n.get(`${name}_rps`)?.value
    const y = b.get(`${name}_rps`)?.value
    const ratio = (a?: number, c?: number): string => (a !== undefined && c !== undefined && c > 0 ? fmt(a / c) : 'n/a')
    lines.push(`| ${name}_rps | ${fmt(v, 0)} | ${fmt(x, 0)} | ${fmt(y, 0)} | ${ratio(v, x)} | ${ratio(v, y)} | ${goal} |`)
  }
  return `${lines.join('\n')}\n`
}

/** Markdown: 1 node against N nodes from cluster.txt. */
function clusterTable(file: string): string {
  const f = readFigures(file)
  const n = [...f.keys()].map((k) => /^publish_(\d+)node_rps$/.exec(k)?.[1]).find((x) => x && x !== '1') ?? '3'
  const rows: [string, string, string][] = [
    ['publishes/s', 'rps', 'publishes/s'],
    ['publish p50', 'p50', 'ms'],
    ['publish p90', 'p90', 'ms'],
    ['Pier CPU per publish (all nodes)', 'pier_cpu', 'ms'],
    ['s3rver CPU per publish', 's3rver_cpu', 'ms'],
    ['load generator CPU per publish', 'client_cpu', 'ms'],
    ['rest of the machine per publish (PostgreSQL…)', 'rest_cpu', 'ms'],
    ['failed publishes (all rounds)', 'errors', 'count'],
  ]
  const pubs = num('BENCH_CLUSTER_PUBLISHES', 200)
  const conc = num('BENCH_CLUSTER_CONCURRENCY', 16)
  const rounds = Math.max(1, num('BENCH_CLUSTER_ROUNDS', 3))
  const lines = [
    `Publish throughput, PostgreSQL + S3 (s3rver): ${pubs} publishes at concurrency ${conc}, median of ${rounds} round(s)`,
    '',
    `| figure | unit | 1 node | ${n} nodes | ${n} nodes / 1 node |`,
    '|---|---|---|---|---|',
  ]
  for (const [label, key, unit] of rows) {
    const one = f.get(`publish_1node_${key}`)?.value
    const many = f.get(`publish_${n}node_${key}`)?.value
    const ratio = key === 'errors' || one === undefined || many === undefined || one === 0 ? '' : fmt(many / one)
    lines.push(`| ${label} | ${unit} | ${fmt(one)} | ${fmt(many)} | ${ratio} |`)
  }
  return lines.join('\n') + '\n'
}

async function cleanup(run: Run): Promise<void> {
  for (const undo of run.undo.reverse()) await undo().catch((e: unknown) => log(`cleanup: ${(e as Error).message}`))
  run.undo = []
  rmSync(run.tmp, { recursive: true, force: true })
}

async function main(): Promise<number> {
  const modes = parseModes(process.argv.slice(2))
  if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status !== 0) {
    console.error('bench: wrk is not installed. Install it with: apt-get update && apt-get install -y wrk')
    return 1
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  const run: Run = { results: join(ROOT, '.bench/results', stamp), tmp: mkdtempSync(join(tmpdir(), 'pier-bench-')), undo: [] }
  mkdirSync(run.results, { recursive: true })
  process.once('SIGINT', () => void cleanup(run).then(() => process.exit(130)))
  log(`modes ${modes.join(', ')}; results in ${run.results}`)

  const figures: Partial<Record<Mode, string>> = {}
  const failed: string[] = []
  const attempt = async (mode: Mode, fn: () => Promise<string>): Promise<void> => {
    if (!modes.includes(mode)) return
    const t0 = performance.now()
    try {
      figures[mode] = await fn()
      log(`${mode}: done in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
    } catch (e) {
      failed.push(mode)
      log(`${mode} FAILED: ${(e as Error).stack ?? String(e)}`)
    }
  }
  try {
    let upstream: Service | undefined
    await attempt('local', async () => {
      const r = await modeLocal(run, modes.includes('proxy') || modes.includes('nginx') || modes.includes('node'))
      upstream = r.pier
      return r.figures
    })
    let nginx: StaticServer | undefined
    await attempt('nginx', async () => {
      const r = await modeNginx(run, upstream, modes.includes('proxy'))
      nginx = r.server
      return r.figures
    })
    await attempt('node', async () => {
      if (!upstream) throw new Error("the node mode sends the local mode's answers: run it with --modes local,node")
      return modeNode(HARNESS, run.results, upstream, run.undo, log)
    })
    if (!modes.includes('proxy')) await upstream?.stop()
    await attempt('proxy', () => modeProxy(run, upstream, nginx))
    await nginx?.stop()
    await upstream?.stop()
    await attempt('pg-s3', () => modePgS3(run))
    await attempt('cluster', () => modeCluster(run))
    await attempt('web', async () => {
      // The web UI's package page of a 1,000-version package, server time in process (web-page.ts).
      const file = join(run.results, 'web.txt')
      writeFileSync(file, formatWebFigures(await webPageBench({ versions: 1000 })) + '\n')
      return file
    })
    await attempt('scale', () => modeScale({ ...run, log }))
    await attempt('soak', () => modeSoak({ ...run, log }))
  } finally {
    await cleanup(run)
  }

  let md = ''
  const columns = (['local', 'pg-s3', 'proxy', 'nginx', 'node'] as const).filter((m) => figures[m]).map((m) => `${LABELS[m]}=${figures[m]}`)
  if (columns.length) {
    const table = spawnSync(
      process.execPath,
      [join(HARNESS, 'bench.mjs'), 'table', ...columns, `Verdaccio=${baselineFiles('verdaccio').join(',')}`, `nginx=${baselineFiles('nginx').join(',')}`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    )
    if (table.status !== 0) failed.push('table')
    md += table.stdout
  }
  if (figures.local && (figures.nginx || figures.node)) md += `\n${fastPathTable(figures.local, figures.nginx, figures.node)}`
  if (figures.proxy) md += `\n${targetsTable(figures.proxy, figures.local, figures.nginx, existsSync(join(run.results, 'installs.txt')) ? join(run.results, 'installs.txt') : undefined)}`
  if (figures.cluster) md += `\n${clusterTable(figures.cluster)}`
  for (const m of ['web', 'scale', 'soak'] as const) {
    const f = figures[m]
    if (f) md += `\n${m} figures (${f}):\n\n\`\`\`\n${readFileSync(f, 'utf8').trim()}\n\`\`\`\n`
  }
  if (failed.length) md += `\nFailed: ${failed.join(', ')} (see the log above and ${run.results}).\n`
  writeFileSync(join(run.results, 'table.md'), md)
  process.stdout.write(md)
  log(`results in ${run.results}`)
  return failed.length ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
