/**
 * Mode `scale`: Pier with a registry-sized corpus (scale-corpus.ts), loaded into SQLite and into
 * PostgreSQL through Pier's own write path in process (scale-load.ts, batched transactions), then
 * measured over HTTP against `pier start` on that data, at each size step up to
 * PIER_BENCH_SCALE_VERSIONS (default 1,000,000; steps 10k, 100k, 1M, each loaded afresh).
 *
 * Figures, one `scale.<backend>.<versions>.<figure> <value> <unit>` line each (docs/performance.md):
 * - `load_s`, `load_versions_per_s`: the in-process load;
 * - `disk_bytes_per_version`: metadata bytes on disk (SQLite file + WAL, or `pg_database_size`)
 *   per version; `blob_bytes_per_version`: tarball bytes in the blob store per version;
 * - `startup_ms`: from spawning `pier start` to the first answered packument GET (a typical
 *   package, cold); `rss_rest_mib`: RSS right after it;
 * - `typical_abbrev_cold_p50/p99`, `typical_full_cold_p50/p99` (ms): one GET each of
 *   PIER_BENCH_SCALE_SAMPLES (300) random typical packages, none cached yet (render cache
 *   cold: the state is read from the store and rendered); `typical_abbrev_warm_p50/p99`: the same
 *   GETs again (served from the render cache);
 * - `huge_cold_max_ms`, `huge_warm_max_ms`: 20 parallel clients GET the full packument of a
 *   5,000-version package (about 20 MB) at once, cold and then warm: the slowest answer;
 *   `huge_rss_peak_mib`: the server's peak RSS (VmHWM) after them;
 * - `publish_big_p50/p90` (ms): PIER_BENCH_SCALE_PUBLISHES (30) sequential HTTP publishes of
 *   new versions into a 1,000-version package (npm's wire format, as user `bench`);
 * - `search_p50/p99/max` (ms): PIER_BENCH_SCALE_SEARCHES (500: with 100, the p99 was the slowest
 *   one, a single garbage collection or cold page) `GET /-/v1/search?text=<keyword>&size=20`, each
 *   keyword of the corpus's vocabulary matching about 3 % of the packages;
 * - `changes_page_p50/p99` (ms): 100 `GET /_changes?since=<random seq>&limit=1000` (1,000 rows
 *   of the change feed each, gzipped);
 * - `rss_after_mib`: RSS after all of it (caches full).
 * Every request goes to 127.0.0.1; every load step is bounded by the corpus size.
 *
 * PIER_BENCH_SCALE_KEEP=1 keeps each step's data for a look afterwards: the folder under
 * `.bench/keep/<label>/` (its `load-config.json` starts a Pier on it) and the PostgreSQL database
 * (its URL is logged); drop that by hand (`dropdb`) when done. A later run with the keep flag
 * finds a step's kept data (its `load-result.json`) and measures it again without loading; the
 * figures then include the first measurement's writes (its publishes, a bench user), and this
 * run's publishes take new version numbers.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import pg from 'pg'
import { createBenchDatabase } from './postgres.js'
import { ROOT, startPier, type Service } from './proc.js'
import { planCorpus, prng, publishOf, type Corpus } from './scale-corpus.js'

const num = (name: string, dflt: number): number => (process.env[name] ? Number(process.env[name]) : dflt)
const ABBREV = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'

/** What the scale mode needs from the bench run. */
export interface ScaleRun {
  results: string
  tmp: string
  undo: (() => Promise<void>)[]
  log(msg: string): void
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN
}
const ms = (x: number): string => x.toFixed(2)

/** One GET (or other request) over a keep-alive agent: status, body bytes and wall time in ms. */
function timed(agent: Agent, url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; bytes: number; ms: number; text: string }> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: opts.method ?? 'GET', headers: { 'accept-encoding': 'gzip,deflate', ...opts.headers }, timeout: 120_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        const isText = !res.headers['content-encoding']
        resolve({ status: res.statusCode ?? 0, bytes: body.length, ms: performance.now() - t0, text: isText ? body.toString() : '' })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** A package path as npm asks for it (`@scope%2fname`). */
const pathOf = (name: string): string => name.replace('/', '%2f')

/** Kilobytes of a /proc/<pid>/status field (VmRSS, VmHWM), as MiB. */
function memMiB(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Math.round(Number(m[1]) / 1024) : NaN
  } catch {
    return NaN
  }
}

/** Total bytes of the files under `dir` (0 when missing). */
function treeBytes(dir: string): number {
  let n = 0
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return 0
  }
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) n += treeBytes(p)
    else if (e.isFile()) n += statSync(p).size
  }
  return n
}

/** Runs the loader child process to its end; resolves with its result, rejects on failure. */
function load(configFile: string, versions: number, resultFile: string, logFile: string): Promise<{ versions: number; packages: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist/bench/scale-load.js'), configFile, String(versions), resultFile], {
      cwd: ROOT,
      // More threads for the blob writes' fsyncs (the prepares of a batch run concurrently).
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^pier_(?!bench_scale_(batch|load_concurrency)$)/i.test(k))), UV_THREADPOOL_SIZE: '16' },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let err = ''
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-8000)
      writeFileSync(logFile, err)
    })
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(readFileSync(resultFile, 'utf8')) as { versions: number; packages: number; seconds: number }) : reject(new Error(`scale-load exited ${code}: ${err.slice(-2000)}`))))
  })
}

/** Signs up (or logs in) `bench` with npm's legacy adduser call; returns the token. */
async function benchToken(agent: Agent, base: string): Promise<string> {
  const name = 'bench'
  const password = 'bench-password-1'
  const r = await timed(agent, new URL(`-/user/org.couchdb.user:${name}`, base).href, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}` },
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password, email: 'bench@example.invalid', type: 'user', roles: [], date: new Date().toISOString() }),
  })
  const token = (JSON.parse(r.text || '{}') as { token?: string }).token
  if (!token) throw new Error(`no token for bench: HTTP ${r.status} ${r.text.slice(0, 200)}`)
  return token
}

/** Measures one loaded database; returns the figure lines (without the `scale.<backend>.<versions>.` prefix). */
async function measure(run: ScaleRun, label: string, corpus: Corpus, config: Record<string, unknown>, dir: string, publishFrom = 1000): Promise<string[]> {
  const out: string[] = []
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const typical = corpus.packages.filter((p) => p.kind === 'typical')
  const r = prng(42)
  const sample = (n: number): string[] => Array.from({ length: n }, () => typical[Math.floor(r() * typical.length)]?.name ?? '')
  const t0 = performance.now()
  const server: Service = await startPier(config, dir, join(run.results, `${label}.log`))
  run.undo.push(server.stop)
  try {
    const base = server.url
    const first = await timed(agent, new URL(pathOf(sample(1)[0] ?? ''), base).href, { headers: { accept: ABBREV } })
    if (first.status !== 200) throw new Error(`first GET: HTTP ${first.status}`)
    out.push(`startup_ms ${Math.round(performance.now() - t0)} ms`, `rss_rest_mib ${memMiB(server.pid, 'VmRSS')} MiB`)
    const samples = num('PIER_BENCH_SCALE_SAMPLES', 300)
    const names = [...new Set(sample(samples * 3))]
    const abbrevNames = names.slice(0, samples)
    const fullNames = names.slice(samples, 2 * samples)
    const series = async (list: string[], accept: string): Promise<number[]> => {
      const t: number[] = []
      for (const n of list) {
        const a = await timed(agent, new URL(pathOf(n), base).href, { headers: { accept } })
        if (a.status !== 200) throw new Error(`GET ${n}: HTTP ${a.status}`)
        t.push(a.ms)
      }
      return t
    }
    const cold = await series(abbrevNames, ABBREV)
    const warm = await series(abbrevNames, ABBREV)
    const full = await series(fullNames, 'application/json')
    out.push(
      `typical_abbrev_cold_p50 ${ms(pct(cold, 50))} ms`,
      `typical_abbrev_cold_p99 ${ms(pct(cold, 99))} ms`,
      `typical_abbrev_warm_p50 ${ms(pct(warm, 50))} ms`,
      `typical_abbrev_warm_p99 ${ms(pct(warm, 99))} ms`,
      `typical_full_cold_p50 ${ms(pct(full, 50))} ms`,
      `typical_full_cold_p99 ${ms(pct(full, 99))} ms`,
    )
    run.log(`${label}: typical packuments cold p99 ${ms(pct(cold, 99))} ms (abbreviated), ${ms(pct(full, 99))} ms (full)`)

    const huge = corpus.packages.find((p) => p.kind === 'huge')
    if (huge) {
      const parallel = async (): Promise<{ max: number; bytes: number }> => {
        const answers = await Promise.all(Array.from({ length: 20 }, () => timed(agent, new URL(pathOf(huge.name), base).href, { headers: { accept: 'application/json' } })))
        for (const a of answers) if (a.status !== 200) throw new Error(`GET ${huge.name}: HTTP ${a.status}`)
        return { max: Math.max(...answers.map((a) => a.ms)), bytes: answers[0]?.bytes ?? 0 }
      }
      const c = await parallel()
      const w = await parallel()
      out.push(`huge_cold_max_ms ${Math.round(c.max)} ms`, `huge_warm_max_ms ${Math.round(w.max)} ms`, `huge_gzip_bytes ${c.bytes} bytes`, `huge_rss_peak_mib ${memMiB(server.pid, 'VmHWM')} MiB`)
      run.log(`${label}: 20 parallel GETs of ${huge.name} (5,000 versions): slowest ${Math.round(c.max)} ms cold, ${Math.round(w.max)} ms warm`)
    }

    const token = await benchToken(agent, base)
    const bigIndex = corpus.packages.findIndex((p) => p.kind === 'big')
    if (bigIndex >= 0) {
      const t: number[] = []
      const count = num('PIER_BENCH_SCALE_PUBLISHES', 30)
      for (let k = 0; k < count; k++) {
        const p = publishOf(corpus, bigIndex, publishFrom + k)
        const a = await timed(agent, new URL(pathOf(p.name), base).href, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(p.body),
        })
        if (a.status !== 201) throw new Error(`publish ${p.name}@${p.version}: HTTP ${a.status} ${a.text.slice(0, 300)}`)
        t.push(a.ms)
      }
      out.push(`publish_big_p50 ${ms(pct(t, 50))} ms`, `publish_big_p90 ${ms(pct(t, 90))} ms`)
    }

    const words = corpus.words
    const st: number[] = []
    for (let k = 0; k < num('PIER_BENCH_SCALE_SEARCHES', 500); k++) {
      const word = words[Math.floor(r() * words.length)] ?? 'kalomi'
      const a = await timed(agent, new URL(`-/v1/search?text=${encodeURIComponent(word)}&size=20`, base).href)
      if (a.status !== 200) throw new Error(`search ${word}: HTTP ${a.status}`)
      st.push(a.ms)
    }
    out.push(`search_p50 ${ms(pct(st, 50))} ms`, `search_p99 ${ms(pct(st, 99))} ms`, `search_max ${ms(Math.max(...st))} ms`)

    const ct: number[] = []
    for (let k = 0; k < 100; k++) {
      const since = Math.floor(r() * corpus.versions)
      const a = await timed(agent, new URL(`_changes?since=${since}&limit=1000`, base).href)
      if (a.status !== 200) throw new Error(`_changes since ${since}: HTTP ${a.status}`)
      ct.push(a.ms)
    }
    out.push(`changes_page_p50 ${ms(pct(ct, 50))} ms`, `changes_page_p99 ${ms(pct(ct, 99))} ms`)
    out.push(`rss_after_mib ${memMiB(server.pid, 'VmRSS')} MiB`)
  } finally {
    agent.destroy()
    await server.stop()
  }
  return out
}

/** Bytes of a PostgreSQL database. */
async function pgBytes(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    const r = await c.query<{ n: string }>('select pg_database_size(current_database()) as n')
    return Number(r.rows[0]?.n ?? NaN)
  } finally {
    await c.end()
  }
}

/**
 * The size steps up to `target`: 10k, 100k, 1M that are ≤ target, and target itself; or only
 * those PIER_BENCH_SCALE_STEPS lists (comma-separated version counts, e.g. `1000000` to load
 * only the largest step again).
 */
export function scaleSteps(target: number): number[] {
  const only = process.env.PIER_BENCH_SCALE_STEPS?.split(',').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0)
  if (only && only.length > 0) return only
  const steps = [10_000, 100_000, 1_000_000].filter((s) => s < target)
  return [...steps, target]
}

/**
 * Runs the scale mode: every step on SQLite, then on PostgreSQL (PIER_BENCH_SCALE_BACKENDS,
 * default `sqlite,postgres`). Figures go to `<results>/scale.txt`.
 * @returns the figures file
 */
export async function modeScale(run: ScaleRun): Promise<string> {
  const target = num('PIER_BENCH_SCALE_VERSIONS', 1_000_000)
  const backends = (process.env.PIER_BENCH_SCALE_BACKENDS ?? 'sqlite,postgres').split(',').map((s) => s.trim()).filter(Boolean)
  const file = join(run.results, 'scale.txt')
  const lines: string[] = [`# scale: ${backends.join(', ')}; steps ${scaleSteps(target).join(', ')} versions`]
  writeFileSync(file, `${lines.join('\n')}\n`)
  for (const backend of backends) {
    if (backend !== 'sqlite' && backend !== 'postgres') throw new Error(`PIER_BENCH_SCALE_BACKENDS: unknown backend ${backend}`)
    for (const versions of scaleSteps(target)) {
      const label = `scale-${backend}-${versions}`
      const keep = process.env.PIER_BENCH_SCALE_KEEP === '1'
      const dir = keep ? join(ROOT, '.bench/keep', label) : join(run.tmp, label)
      mkdirSync(dir, { recursive: true })
      const corpus = planCorpus(versions)
      let dbUrl: string | undefined
      let drop: (() => Promise<void>) | undefined
      const keptResult = join(dir, 'load-result.json')
      const kept = keep && existsSync(keptResult) ? (JSON.parse(readFileSync(join(dir, 'load-config.json'), 'utf8')) as { storage?: { meta?: { url?: string } } }) : undefined
      if (kept) dbUrl = kept.storage?.meta?.url
      else if (backend === 'postgres') {
        const db = await createBenchDatabase()
        dbUrl = db.url
        if (!keep) {
          run.undo.push(db.drop)
          drop = db.drop
        }
      }
      const config: Record<string, unknown> = {
        server: { host: '127.0.0.1', port: 0 },
        logger: { level: 'warn' },
        uplinks: {},
        storage: { local: { path: join(dir, 'data') }, ...(dbUrl ? { meta: { type: 'postgres', url: dbUrl } } : {}) },
      }
      const configFile = join(dir, 'load-config.json')
      if (!kept) writeFileSync(configFile, JSON.stringify(config))
      if (keep) run.log(`${label}: kept after the run (PIER_BENCH_SCALE_KEEP=1): config ${configFile}${dbUrl ? `, database ${dbUrl}` : ''}`)
      if (!kept) run.log(`${label}: loading ${versions} versions of ${corpus.packages.length} packages through the write path`)
      try {
        const loaded = kept
          ? (JSON.parse(readFileSync(keptResult, 'utf8')) as { versions: number; packages: number; seconds: number })
          : await load(configFile, versions, keptResult, join(run.results, `${label}-load.log`))
        // Each measurement of kept data publishes 30 (PIER_BENCH_SCALE_PUBLISHES) new versions.
        const measured = join(dir, 'measured-count')
        // Kept data without the count was measured once, by the run that loaded it.
        const runs = existsSync(measured) ? Number(readFileSync(measured, 'utf8')) : kept ? 1 : 0
        if (keep) writeFileSync(measured, String(runs + 1))
        const meta = dbUrl ? await pgBytes(dbUrl) : ['pier.sqlite', 'pier.sqlite-wal'].reduce((n, f) => n + (statSync(join(dir, 'data', f), { throwIfNoEntry: false })?.size ?? 0), 0)
        const blobs = treeBytes(join(dir, 'data', 'blobs'))
        const step: string[] = [
          `load_s ${loaded.seconds.toFixed(1)} s`,
          `load_versions_per_s ${Math.round(loaded.versions / loaded.seconds)} versions/s`,
          `packages ${loaded.packages} packages`,
          `disk_bytes_per_version ${Math.round(meta / loaded.versions)} bytes`,
          `blob_bytes_per_version ${Math.round(blobs / loaded.versions)} bytes`,
        ]
        run.log(kept ? `${label}: measuring the kept data again (its load took ${loaded.seconds.toFixed(1)} s)` : `${label}: loaded in ${loaded.seconds.toFixed(1)} s; measuring`)
        step.push(...(await measure(run, label, corpus, config, dir, 1000 + 1000 * runs)))
        const prefix = `scale.${backend}.${versions}.`
        const block = step.map((l) => prefix + l)
        lines.push(...block)
        writeFileSync(file, `${lines.join('\n')}\n`)
        for (const l of block) console.error(`bench: ${l}`)
      } finally {
        await drop?.()
      }
    }
  }
  return file
}
