/**
 * A cluster of real Pier processes for tests: N `pier start` children on random loopback ports
 * sharing ONE temp PostgreSQL database (`storage.meta.type: postgres`) and ONE s3rver bucket
 * (`storage.type: s3`), each with its own data folder. A node can be SIGKILLed and started again on
 * the same configuration and data folder. `close` stops every process ever started (by pid), closes
 * s3rver, drops the database and removes the folders, whatever state a failed test left.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { spawnPier, tempDir, type PierProcess } from './pier.js'
import { createTempDatabase, type TempDatabase } from './postgres.js'
import { startS3, type TestS3 } from './s3.js'

/** Options of `startCluster`. */
export interface ClusterOptions {
  /** Number of nodes (default 3). */
  size?: number
  /** `storage.meta.max_staleness`, ms (default 1000). */
  maxStalenessMs?: number
  /** `storage.s3.prefix` (default `cluster/`). */
  prefix?: string
  /** Further top-level config keys for every node (`uplinks`, `packages`, `auth`…); not `storage`. */
  config?: Record<string, unknown>
}

/** A running cluster. */
export interface Cluster {
  readonly size: number
  readonly database: TempDatabase
  readonly s3: TestS3
  readonly maxStalenessMs: number
  /** `storage.s3` of every node (the shared bucket, with the prefix). */
  readonly s3Config: TestS3['config'] & { prefix: string }
  /** The current process of node `i` (replaced by `restart`). */
  node(i: number): PierProcess
  /** Base URL of node `i`'s current process, with a trailing slash. */
  url(i: number): string
  /** The configuration node `i` is started with (the same on every start). */
  config(i: number): Record<string, unknown>
  /** SIGKILL node `i` and wait for it to be gone; resolves with its exit signal. */
  kill(i: number): Promise<number | string>
  /** Starts node `i` again on the same configuration and data folder (its process must have exited). */
  restart(i: number): Promise<PierProcess>
  /** Stops everything; safe to call after a partial start or a failed test. */
  close(): Promise<void>
}

const running = (p: PierProcess): boolean => p.child.exitCode === null && p.child.signalCode === null

/** This process's environment minus `pier_*` (they would be read as config overrides by the children). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const k of Object.keys(process.env)) if (/^pier_/i.test(k)) env[k] = undefined
  return env
}

/** SIGTERM (graceful drain), escalated to SIGKILL after `graceMs`. */
async function stopProcess(p: PierProcess, graceMs = 10_000): Promise<void> {
  if (!running(p)) return
  p.child.kill('SIGTERM')
  const timer = setTimeout(() => {
    if (running(p)) p.child.kill('SIGKILL')
  }, graceMs)
  try {
    await p.exited
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Creates the database and the bucket, then starts the nodes at once (they also migrate at once,
 * under Pier's advisory lock). On a failed start everything already started is stopped.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const size = opts.size ?? 3
  const maxStalenessMs = opts.maxStalenessMs ?? 1000
  const started: PierProcess[] = []
  const dataDirs = Array.from({ length: size }, () => tempDir('pier-cluster-node-'))
  const current: (PierProcess | undefined)[] = Array.from({ length: size }, () => undefined)
  let database: TempDatabase | undefined
  let s3: TestS3 | undefined
  let closed = false

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    const results = await Promise.allSettled(started.map((p) => stopProcess(p)))
    const more = await Promise.allSettled([s3?.close(), database?.drop()])
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true })
    const failed = [...results, ...more].find((r) => r.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
  }

  try {
    ;[database, s3] = await Promise.all([createTempDatabase(), startS3('pier-cluster')])
    const s3Config = { ...s3.config, prefix: opts.prefix ?? 'cluster/' }
    const db = database
    const config = (i: number): Record<string, unknown> => ({
      server: { host: '127.0.0.1', port: 0 },
      // Warnings and errors only: a node's output is kept in memory for diagnostics.
      logger: { level: 'warn' },
      uplinks: {},
      ...opts.config,
      storage: {
        type: 's3',
        s3: s3Config,
        local: { path: join(dataDirs[i] as string, 'data') },
        meta: { type: 'postgres', url: db.url, max_staleness: maxStalenessMs },
      },
    })
    const spawnNode = async (i: number): Promise<PierProcess> => {
      const p = await spawnPier(config(i), { dataDir: dataDirs[i], env: childEnv() })
      started.push(p)
      current[i] = p
      return p
    }
    // allSettled: a node that fails to start must not leave the others running unseen.
    const spawns = await Promise.allSettled(Array.from({ length: size }, (_, i) => spawnNode(i)))
    const failedSpawn = spawns.find((r) => r.status === 'rejected')
    if (failedSpawn) throw (failedSpawn as PromiseRejectedResult).reason
    const node = (i: number): PierProcess => {
      const p = current[i]
      if (!p) throw new Error(`cluster node ${i} was never started`)
      return p
    }
    const s3Server = s3
    return {
      size,
      database: db,
      s3: s3Server,
      maxStalenessMs,
      s3Config,
      node,
      url: (i) => node(i).url,
      config,
      async kill(i) {
        const p = node(i)
        if (running(p)) p.child.kill('SIGKILL')
        return p.exited
      },
      async restart(i) {
        const p = node(i)
        if (running(p)) throw new Error(`cluster node ${i} is still running (pid ${p.child.pid})`)
        return spawnNode(i)
      },
      close,
    }
  } catch (e) {
    await close().catch(() => undefined)
    throw e
  }
}
