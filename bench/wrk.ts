/**
 * One wrk load run with the shared harness's settings (`../shared/bench/bench.mjs`, `load`): one
 * thread, BENCH_CONNECTIONS (32) connections, a 10 s timeout, `Accept-Encoding: gzip,deflate`, the
 * harness's `wrk-report.lua` cycling through a list of paths, BENCH_WARMUP (2) s discarded first,
 * then BENCH_DURATION (10) s measured; the run is repeated (BENCH_RETRIES, 2) while other programs
 * took more than BENCH_NOISE_MAX (15) % of a core, keeping the quietest. So a figure measured here
 * (the `node` mode) compares with the harness's own figures of the same run.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cpuTicks, machineBusy, waitQuiet } from './proc.js'

const exec = promisify(execFile)
const num = (name: string, dflt: number): number => (process.env[name] ? Number(process.env[name]) : dflt)

/** What one load run measured, in the harness's figure names and units. */
export interface LoadFigures {
  /** `<name>_rps` req/s, `<name>_p99` ms, `<name>_resp_size` bytes, `<name>_cpu_per_req` µs, `<name>_other_cpu` %. */
  lines: string[]
  rps: number
  /** Answers with an unexpected status (any non-2xx/3xx except for a `notfound*` run, where any non-404 counts) plus socket errors. */
  bad: number
}

interface WrkReport {
  requests: number
  duration_us: number
  bytes: number
  status_errors: number
  socket_errors: number
  p50_us: number
  p99_us: number
}

/** The CPU (1/100 s) `wrk args` used, run under bash so that `times` reports it, and its stdout. */
async function timedWrk(args: string[]): Promise<{ stdout: string; ticks: number }> {
  const { stdout } = await exec('bash', ['-c', '"$@" && times', 'bash', 'wrk', ...args], { maxBuffer: 1 << 24 })
  const t = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(stdout.trim().split('\n').pop() ?? '')
  return { stdout, ticks: t ? (60 * Number(t[1]) + Number(t[2]) + 60 * Number(t[3]) + Number(t[4])) * 100 : 0 }
}

/**
 * Measures GETs of `paths` (below `base`, a loopback URL) with `headers`, as the harness does.
 * @param harness the shared harness's folder (for `wrk-report.lua`)
 * @param pid the server's PID (CPU per request, noise guard)
 * @throws when wrk fails or prints no report
 */
export async function wrkLoad(harness: string, name: string, base: string, paths: string[], headers: Record<string, string>, pid: number): Promise<LoadFigures> {
  const url = new URL(base)
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(url.hostname)) throw new Error(`not a loopback URL: ${base}`)
  const dir = mkdtempSync(join(tmpdir(), 'pier-bench-wrk-'))
  try {
    const file = join(dir, `${name}.paths`)
    writeFileSync(file, `${paths.join('\n')}\n`)
    const duration = num('BENCH_DURATION', 10)
    const warmup = num('BENCH_WARMUP', 2)
    const noiseMax = num('BENCH_NOISE_MAX', 15)
    const args = ['-t1', `-c${num('BENCH_CONNECTIONS', 32)}`, '--timeout', '10s', '-s', join(harness, 'wrk-report.lua'), '-H', 'Accept-Encoding: gzip,deflate']
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`)
    if (warmup > 0) await exec('wrk', [...args, `-d${warmup}s`, base, '--', file], { maxBuffer: 1 << 24 })
    let best: { r: WrkReport; server: number; other: number } | undefined
    for (let attempt = 0; attempt <= num('BENCH_RETRIES', 2); attempt++) {
      await waitQuiet([pid], noiseMax, num('BENCH_QUIET_WAIT', 180))
      const cpu0 = cpuTicks(pid)
      const busy0 = machineBusy()
      const { stdout, ticks } = await timedWrk([...args, `-d${duration}s`, base, '--', file])
      const server = cpuTicks(pid) - cpu0
      const other = Math.round((machineBusy() - busy0 - server - ticks) / duration)
      const line = stdout.split('\n').find((l) => l.startsWith('{"requests"'))
      if (!line) throw new Error(`wrk printed no report for ${name}: ${stdout.slice(-500)}`)
      const r = JSON.parse(line) as WrkReport
      if (!best || other < best.other) best = { r, server, other }
      if (other <= noiseMax) break
    }
    if (!best) throw new Error(`no wrk run for ${name}`)
    const { r, server, other } = best
    const rps = Math.round(r.requests / (r.duration_us / 1e6))
    const bad = (name.startsWith('notfound') ? r.requests - r.status_errors : r.status_errors) + r.socket_errors
    return {
      rps,
      bad,
      lines: [
        `${name}_rps ${rps} req/s`,
        `${name}_p99 ${(r.p99_us / 1000).toFixed(2)} ms`,
        `${name}_resp_size ${Math.round(r.bytes / Math.max(1, r.requests))} bytes`,
        `${name}_cpu_per_req ${Math.round((server * 1e4) / Math.max(1, r.requests))} us`,
        `${name}_other_cpu ${other} %`,
      ],
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
