/**
 * Starts Pier for tests: in this process (fast, for most tests) or as a real child process
 * (`pier start`, for signals and crashes). Always on 127.0.0.1 with a random free port and a
 * temp data folder.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { createPier, type Pier } from '../../src/app.js'
import { ConfigSchema, type ConfigInput } from '../../src/config/schema.js'

/** Repository root (this file runs from dist/test/helpers). */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..')
/** The compiled CLI entry point. */
export const CLI = join(ROOT, 'dist/src/cli/main.js')

/** A temp folder removed by `cleanup`. */
export function tempDir(prefix = 'pier-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** A running in-process Pier. */
export interface TestPier {
  url: string
  dataDir: string
  pier: Pier
  close(): Promise<void>
}

/**
 * Starts Pier in this process on a random loopback port.
 * @param config overrides merged over `{ storage.local.path: <temp> }`
 * @param opts.logger Pier's logger (default: silent, or debug lines to the file $TEST_PIER_LOG)
 */
export async function startPier(config: ConfigInput = {}, opts: { logger?: pino.Logger } = {}): Promise<TestPier> {
  const dataDir = config.storage?.local?.path ?? tempDir()
  const parsed = ConfigSchema.parse({
    // No uplinks unless a test configures them: tests never reach beyond loopback.
    uplinks: {},
    ...config,
    server: { host: '127.0.0.1', port: 0, ...config.server },
    logger: { level: process.env.TEST_PIER_LOG ? 'debug' : 'silent' },
    storage: { ...config.storage, local: { path: dataDir } },
  })
  const logger = opts.logger ?? (process.env.TEST_PIER_LOG ? pino({ level: 'debug' }, pino.destination(process.env.TEST_PIER_LOG)) : pino({ level: 'silent' }))
  const pier = await createPier(parsed, { logger })
  const address = await pier.app.listen({ host: '127.0.0.1', port: 0 })
  return {
    url: address.replace('localhost', '127.0.0.1') + '/',
    dataDir,
    pier,
    async close() {
      await pier.close()
      if (!config.storage?.local?.path) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** A Pier child process. */
export interface PierProcess {
  url: string
  child: ChildProcess
  dataDir: string
  /** Everything the process wrote to stderr and stdout so far. */
  output(): string
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>
  /** SIGTERM and wait. */
  stop(): Promise<number | string>
}

/**
 * Starts `pier start --config <file>` as a child process and waits for its "listening" line.
 * @param config written to a YAML/JSON file; `server.port` defaults to 0 (random)
 */
export async function spawnPier(config: Record<string, unknown> = {}, opts: { env?: NodeJS.ProcessEnv; dataDir?: string } = {}): Promise<PierProcess> {
  const dataDir = opts.dataDir ?? tempDir()
  const file = join(dataDir, 'config.json')
  // No uplinks unless a test configures them: tests never reach beyond loopback.
  const full = { server: { host: '127.0.0.1', port: 0 }, logger: { level: 'info' }, storage: { local: { path: join(dataDir, 'data') } }, uplinks: {}, ...config }
  writeFileSync(file, JSON.stringify(full))
  const child = spawn(process.execPath, [CLI, 'start', '--config', file], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | string>((res) => child.on('exit', (code, sig) => res(code ?? sig ?? -1)))
  const url = await new Promise<string>((res, rej) => {
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /pier listening on (http:\/\/\S+)/.exec(out)
      if (m?.[1]) res(m[1].replace('localhost', '127.0.0.1') + '/')
    })
    void exited.then((c) => rej(new Error(`pier exited (${c}) before listening:\n${out}`)))
  })
  return {
    url,
    child,
    dataDir,
    output: () => out,
    exited,
    async stop() {
      child.kill('SIGTERM')
      return exited
    },
  }
}
