/**
 * Drives the real npm CLI (the pinned devDependency) with an isolated userconfig and cache,
 * pointed at one registry. Nothing reaches any other registry: `registry` is always set.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, tempDir } from './pier.js'

/** The npm CLI under test. */
export const NPM_CLI = join(ROOT, 'node_modules/npm/bin/npm-cli.js')

/** Outcome of one command. */
export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Options of one command. */
export interface RunOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Prompt/answer pairs: each answer is written when its prompt appears on stdout or stderr. */
  answers?: [RegExp, string][]
  /** Kill after this many ms (default 120 000). */
  timeoutMs?: number
}

/**
 * Runs a command, optionally answering prompts as they appear.
 * @returns exit code and output; never throws for a non-zero exit
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let seen = ''
    const answers = [...(opts.answers ?? [])]
    const onData = (which: 'out' | 'err') => (d: Buffer) => {
      const s = d.toString()
      if (which === 'out') stdout += s
      else stderr += s
      seen += s
      while (answers.length > 0 && answers[0]?.[0].test(seen)) {
        const [re, answer] = answers.shift() as [RegExp, string]
        seen = seen.replace(re, '')
        child.stdin.write(answer + '\n')
      }
    }
    child.stdout.on('data', onData('out'))
    child.stderr.on('data', onData('err'))
    if (!opts.answers) child.stdin.end()
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
}

/** An npm client with its own userconfig, cache and working folders, bound to one registry. */
export class NpmClient {
  readonly home: string
  readonly userconfig: string
  readonly cache: string

  constructor(readonly registry: string) {
    this.home = tempDir('pier-npm-')
    this.userconfig = join(this.home, '.npmrc')
    this.cache = join(this.home, 'cache')
    writeFileSync(this.userconfig, '')
  }

  /** Environment for any package manager run by this client. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {}
    // Keep PATH and the basics; drop every npm_* variable inherited from `npm test`.
    for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SystemRoot']) if (process.env[k] !== undefined) env[k] = process.env[k]
    return {
      ...env,
      HOME: this.home,
      npm_config_userconfig: this.userconfig,
      npm_config_globalconfig: join(this.home, 'npmrc-global'),
      npm_config_cache: this.cache,
      npm_config_registry: this.registry,
      npm_config_update_notifier: 'false',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_loglevel: 'warn',
      ...extra,
    }
  }

  /** Writes `token` as this client's credentials for its registry (what `npm login` stores). */
  setToken(token: string): void {
    const u = new URL(this.registry)
    writeFileSync(this.userconfig, `//${u.host}${u.pathname}:_authToken=${token}\n`)
  }

  /** Runs `npm <args>`. */
  npm(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(process.execPath, [NPM_CLI, ...args], { ...opts, env: this.env(opts.env) })
  }

  /**
   * `npm adduser` or `npm login` through npm's legacy prompts (`--auth-type=legacy`: Pier offers
   * web login, which test/browser/web.test.ts drives).
   */
  login(user: string, password: string, email = `${user}@example.com`, command: 'adduser' | 'login' = 'adduser'): Promise<RunResult> {
    return this.npm([command, '--auth-type=legacy'], {
      answers: [
        [/Username:/, user],
        [/Password:/, password],
        ...(command === 'adduser' ? ([[/Email[^:]*:/, email]] as [RegExp, string][]) : []),
      ],
    })
  }

  /** Creates a package folder with a package.json, README and index.js. */
  makePackage(pkg: Record<string, unknown>, files: Record<string, string> = {}): string {
    const dir = join(this.home, 'pkgs', String(pkg.name).replace('/', '__') + '-' + String(pkg.version) + '-' + Math.random().toString(36).slice(2, 8))
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2))
    writeFileSync(join(dir, 'README.md'), `# ${String(pkg.name)}\n`)
    writeFileSync(join(dir, 'index.js'), `module.exports = ${JSON.stringify(String(pkg.name) + '@' + String(pkg.version))}\n`)
    for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c)
    return dir
  }

  /** A fresh empty project folder. */
  project(deps: Record<string, string> = {}): string {
    const dir = join(this.home, 'proj-' + Math.random().toString(36).slice(2, 8))
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'proj', version: '1.0.0', private: true, dependencies: deps }, null, 2))
    return dir
  }
}
