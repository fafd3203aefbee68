/**
 * Temp files of FsBlobStore for tests: names as a writer on some host with some PID makes them,
 * the PID of a process that has exited, and a live process of our own whose PID owns files.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { utimesSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

/** This host's name as FsBlobStore writes it into temp-file names (percent-encoded). */
export const HOST_TAG = encodeURIComponent(hostname())

/** A temp-file name as `FsBlobStore.put` makes it: `<host>.<pid>.<16 hex>.part` (host default: this one's). */
export function tempName(pid: number, host = HOST_TAG): string {
  return `${host}.${pid}.${randomBytes(8).toString('hex')}.part`
}

/**
 * Writes `name` with some bytes in the temp folder `tmp`.
 * @param ageMs back-date its mtime (and atime) by this many ms
 * @returns its path
 */
export function plantTemp(tmp: string, name: string, ageMs = 0): string {
  const path = join(tmp, name)
  writeFileSync(path, randomBytes(100))
  if (ageMs > 0) {
    const t = new Date(Date.now() - ageMs)
    utimesSync(path, t, t)
  }
  return path
}

/**
 * The PID of a process that ran and has exited: a `node -e ''` run to completion and reaped by
 * `spawnSync`, so `process.kill(pid, 0)` fails with ESRCH (until the kernel reuses the PID, which
 * takes a full turn of the PID space).
 * @throws Error when the child could not be run
 */
export function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', ''])
  if (r.error) throw r.error
  if (typeof r.pid !== 'number' || r.status !== 0) throw new Error(`node -e '' failed: ${r.status}`)
  return r.pid
}

/** A live child process (an idle node) that owns temp files in a test; stop it with `stop()`. */
export interface Sleeper {
  child: ChildProcess
  pid: number
  /** SIGKILL by PID and wait for the exit: afterwards `pid` is a dead process's. */
  stop(): Promise<void>
}

/**
 * Spawns `node -e 'setInterval(() => {}, 1e9)'` and waits until it runs.
 * @throws Error when it cannot be spawned
 */
export async function spawnSleeper(): Promise<Sleeper> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' })
  await new Promise<void>((res, rej) => {
    child.once('spawn', res)
    child.once('error', rej)
  })
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  const pid = child.pid as number
  return {
    child,
    pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL')
      await exited
    },
  }
}
