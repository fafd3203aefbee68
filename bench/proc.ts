/**
 * Child processes for the bench (Pier nodes, the s3rver child, the shared harness) and the /proc
 * readings the cluster publish figures need. Every process started here is stopped by its own
 * handle (its PID), never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Repository root (this file runs from dist/bench). */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..')
/** The compiled `pier` CLI. */
export const CLI = join(ROOT, 'dist/src/cli/main.js')

/** A long-running child process that printed its "listening" line. */
export interface Service {
  /** Base URL (for Pier with a trailing slash; for s3rver without). */
  url: string
  pid: number
  child: ChildProcess
  /** Sends SIGTERM (SIGKILL after 20 s) and waits for the exit. Safe to call twice. */
  stop(): Promise<void>
}

/**
 * Starts `cmd args`, appending its stdout and stderr to `logFile`, and waits (at most 60 s) until
 * its output matches `ready`, whose first group is the URL.
 */
export async function startService(
  cmd: string,
  args: string[],
  logFile: string,
  ready: RegExp,
  fixUrl: (u: string) => string = (u) => u,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Service> {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const log = createWriteStream(logFile, { flags: 'a' })
  const exited = new Promise<void>((res) => child.on('exit', () => res()))
  const logClosed = exited.then(() => new Promise<void>((res) => log.end(res)))
  let seen = ''
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${cmd} ${args.join(' ')}: not ready after 60 s:\n${seen.slice(-2000)}`)), 60_000)
    const onData = (d: Buffer): void => {
      log.write(d)
      if (seen.length < 100_000) seen += d.toString()
      const m = ready.exec(seen)
      if (m?.[1]) {
        clearTimeout(timer)
        res(fixUrl(m[1]))
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', rej)
    void exited.then(() => {
      clearTimeout(timer)
      rej(new Error(`${cmd} ${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${seen.slice(-2000)}`))
    })
  }).catch(async (e: unknown) => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await logClosed
    throw e
  })
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await exited
      clearTimeout(timer)
    }
    await logClosed
  }
  return { url, pid: child.pid ?? 0, child, stop }
}

/**
 * Writes `config` as `<dir>/config.json` and starts `pier start` with it (node flags from
 * PIER_NODE_OPTIONS); the URL ends with a slash and names 127.0.0.1. The bench's own `PIER_*`
 * variables (PIER_NODE_OPTIONS, PIER_BENCH_*) are kept out of Pier's environment, where every
 * `PIER_*` variable is a configuration key and an unknown one stops the start.
 */
export function startPier(config: Record<string, unknown>, dir: string, logFile: string): Promise<Service> {
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify(config, null, 2))
  const nodeFlags = (process.env.PIER_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^pier_(node_options|bench_)/i.test(k)))
  return startService(process.execPath, [...nodeFlags, CLI, 'start', '--config', file], logFile, /pier listening on (http:\/\/\S+)/, (u) => u.replace('localhost', '127.0.0.1') + '/', env)
}

/** Runs a command to its end with stdout appended to `out` (stderr shown on ours); resolves with its exit code. */
export function runTo(cmd: string, args: string[], out: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] })
  child.stdout.pipe(out, { end: false })
  return new Promise((res, rej) => {
    child.on('error', rej)
    child.on('close', (code) => res(code ?? 1))
  })
}

/** CPU time (user + system) a process used so far, in 1/100 s; 0 when it is gone. */
export function cpuTicks(pid: number): number {
  try {
    const f = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ')
    return Number(f[11]) + Number(f[12])
  } catch {
    return 0
  }
}

/** Busy CPU time of the whole machine so far (user nice system irq softirq steal), in 1/100 s. */
export function machineBusy(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
  return [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (f[i] ?? 0), 0)
}

/**
 * Waits until the machine outside `pids` and this process is quiet (at most `maxPct` % of a core
 * over 1 s), for at most `maxWaitS` seconds; returns the seconds waited.
 */
export async function waitQuiet(pids: number[], maxPct: number, maxWaitS: number): Promise<number> {
  const ours = (): number => pids.reduce((s, p) => s + cpuTicks(p), cpuTicks(process.pid))
  for (let waited = 0; ; waited++) {
    const cpu0 = ours()
    const busy0 = machineBusy()
    await new Promise((r) => setTimeout(r, 1000))
    const other = machineBusy() - busy0 - (ours() - cpu0)
    if (other <= maxPct || waited >= maxWaitS) return waited
  }
}
