/**
 * `npm run bench`: benchmarks Pier with the shared registry harness and prints Pier side by side with
 * the Verdaccio and nginx baselines.
 *
 * Starts a fresh Pier (`dist/src/cli/main.js start`, 127.0.0.1, random port, log level warn, data in
 * a temp folder), runs `../shared/bench/run.sh URL PID` against it (this seeds the corpus, so a full
 * run takes several minutes), saves the figures to `.bench/results/<UTC timestamp>/pier.txt` (Pier's
 * own output goes to `pier.log` beside it), prints the markdown table (also saved as `table.md`),
 * then stops Pier (SIGTERM) and removes the temp folder. All traffic goes to 127.0.0.1 and every
 * load run is time-bounded.
 *
 * Needs wrk (`apt-get update && apt-get install -y wrk`).
 * Env (passed through to the harness, see ../shared/bench/BASELINE.md): BENCH_DURATION (s per load
 * run, default 10), BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_PUBLISHES, BENCH_INSTALL_RUNS, BENCH_SMALL,
 * BENCH_BIG_VERSIONS, BENCH_FIXTURE_DEPS, BENCH_AUTH_READS, BENCH_NOISE_MAX, BENCH_RETRIES, BENCH_QUIET_WAIT.
 * Quick smoke run: `BENCH_DURATION=3 BENCH_WARMUP=1 BENCH_INSTALL_RUNS=1 npm run bench`.
 * Extra node flags for Pier (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): PIER_NODE_OPTIONS.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..') // this file runs from dist/bench
const HARNESS = resolve(ROOT, '../shared/bench')
const BASELINE = join(HARNESS, 'baseline-2026-11-22/jwt')

/** Runs a command with its stdout piped to `out`; resolves with its exit code. */
function run(cmd: string, args: string[], out: NodeJS.WritableStream): Promise<number> {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  child.stdout.pipe(out, { end: false })
  return new Promise((res, rej) => {
    child.on('error', rej)
    child.on('close', (code) => res(code ?? 1))
  })
}

async function main(): Promise<number> {
  if (spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status !== 0) {
    console.error('bench: wrk is not installed. Install it with: apt-get update && apt-get install -y wrk')
    return 1
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  const results = join(ROOT, '.bench/results', stamp)
  mkdirSync(results, { recursive: true })
  const tmp = mkdtempSync(join(tmpdir(), 'pier-bench-'))
  const config = join(tmp, 'config.json')
  writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, logger: { level: 'warn' }, uplinks: {}, storage: { local: { path: join(tmp, 'data') } } }))

  const nodeFlags = (process.env.PIER_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)
  const pier = spawn(process.execPath, [...nodeFlags, join(ROOT, 'dist/src/cli/main.js'), 'start', '--config', config], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const pierLog = createWriteStream(join(results, 'pier.log'))
  pier.stdout.pipe(pierLog, { end: false })
  const exited = new Promise<void>((res) => pier.on('exit', () => res()))
  const stop = async (): Promise<void> => {
    if (pier.exitCode === null && pier.signalCode === null) pier.kill('SIGTERM')
    await exited
    rmSync(tmp, { recursive: true, force: true })
  }
  process.once('SIGINT', () => void stop().then(() => process.exit(130)))

  try {
    const url = await new Promise<string>((res, rej) => {
      let err = ''
      pier.stderr.on('data', (d: Buffer) => {
        pierLog.write(d)
        err += d.toString()
        const m = /pier listening on (http:\/\/\S+)/.exec(err)
        if (m?.[1]) res(m[1].replace('localhost', '127.0.0.1') + '/')
      })
      void exited.then(() => rej(new Error(`pier exited before listening:\n${err}`)))
    })
    console.error(`bench: pier (pid ${pier.pid}) at ${url}; results in ${results}`)

    const figures = join(results, 'pier.txt')
    const out = createWriteStream(figures)
    const code = await run(join(HARNESS, 'run.sh'), [url, String(pier.pid)], out)
    await new Promise<void>((res) => out.end(res))
    if (code !== 0) {
      console.error(`bench: run.sh failed (exit ${code}); partial figures in ${figures}`)
      return code
    }
    const files = (name: string) => [1, 2, 3].map((i) => join(BASELINE, `${name}-${i}.txt`)).join(',')
    const table = spawnSync(process.execPath, [join(HARNESS, 'bench.mjs'), 'table', `Pier=${figures}`, `Verdaccio=${files('verdaccio')}`, `nginx=${files('nginx')}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    writeFileSync(join(results, 'table.md'), table.stdout)
    process.stdout.write(table.stdout)
    return table.status ?? 1
  } finally {
    await stop()
    await new Promise<void>((res) => pierLog.end(res))
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  },
)
