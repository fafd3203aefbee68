/**
 * Sandboxes for the other package managers (pnpm, yarn berry, bun; all pinned devDependencies):
 * a fresh HOME with XDG folders and empty user/global npmrc files, so no setting of this machine's
 * user is read, and the project files that point a client at one registry on loopback.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { TestContext } from 'node:test'
import { ROOT, tempDir } from './pier.js'

/** pnpm's CLI. */
export const PNPM_CLI = join(ROOT, 'node_modules/pnpm/bin/pnpm.cjs')
/** yarn berry's CLI. */
export const YARN_CLI = join(ROOT, 'node_modules/@yarnpkg/cli-dist/bin/yarn.js')

/** A client sandbox. */
export interface Sandbox {
  home: string
  /** A project folder whose package.json depends on the given dependencies. */
  project: string
  /** The environment to run any client with (HOME, XDG dirs, npm-style settings pnpm and bun read too). */
  env: NodeJS.ProcessEnv
}

/**
 * Makes a sandbox below a new temp folder (the caller removes `home`).
 * @param registry the registry URL every client uses (ending in `/`)
 * @param dependencies the project's `dependencies`
 */
export function sandbox(client: string, registry: string, dependencies: Record<string, string>): Sandbox {
  const home = tempDir(`pier-${client}-`)
  const env: NodeJS.ProcessEnv = {
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    LANG: 'C.UTF-8',
    HOME: home,
    TMPDIR: join(home, 'tmp'),
    // npm-style settings that pnpm and bun also read; the machine's user/global npmrc is never seen.
    npm_config_userconfig: join(home, '.npmrc'),
    npm_config_globalconfig: join(home, 'npmrc-global'),
    npm_config_registry: registry,
    npm_config_update_notifier: 'false',
    DO_NOT_TRACK: '1',
  }
  const xdg = { XDG_CONFIG_HOME: '.config', XDG_CACHE_HOME: '.cache', XDG_DATA_HOME: '.local/share', XDG_STATE_HOME: '.local/state' }
  for (const [k, rel] of Object.entries(xdg)) {
    env[k] = join(home, rel)
    mkdirSync(join(home, rel), { recursive: true })
  }
  mkdirSync(join(home, 'tmp'))
  writeFileSync(join(home, '.npmrc'), '')
  writeFileSync(join(home, 'npmrc-global'), '')
  const project = join(home, 'proj')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'proj', version: '1.0.0', private: true, dependencies }, null, 2))
  return { home, project, env }
}

/**
 * The project's `.npmrc` for pnpm: the registry (and `@scope:registry` lines), an `https-proxy`
 * that catches any other host, and the store and cache inside the sandbox.
 * @param scopes scope names (without `@`) mapped to the same registry
 */
export function writePnpmrc(box: Sandbox, registry: string, httpsProxy: string, scopes: string[] = []): void {
  writeFileSync(
    join(box.project, '.npmrc'),
    [
      `registry=${registry}`,
      ...scopes.map((s) => `@${s}:registry=${registry}`),
      `https-proxy=${httpsProxy}`,
      // pnpm also uses https-proxy for plain http unless told otherwise.
      'noproxy=127.0.0.1',
      `store-dir=${join(box.home, 'pnpm-store')}`,
      `cache-dir=${join(box.home, 'pnpm-cache')}`,
      'update-notifier=false',
      '',
    ].join('\n'),
  )
}

/**
 * The project's `.yarnrc.yml` for yarn berry (node-modules linker, plain http to 127.0.0.1 allowed,
 * caches inside the sandbox, no telemetry) and an empty `yarn.lock`, which marks the project root
 * so yarn never looks at parent folders.
 * @param registry without trailing slash, as yarn writes it
 * @returns the environment to run yarn with
 */
export function writeYarnrc(box: Sandbox, registry: string, httpsProxy: string, scopes: string[] = []): NodeJS.ProcessEnv {
  writeFileSync(
    join(box.project, '.yarnrc.yml'),
    [
      `npmRegistryServer: "${registry}"`,
      ...(scopes.length > 0 ? ['npmScopes:', ...scopes.flatMap((s) => [`  ${s}:`, `    npmRegistryServer: "${registry}"`])] : []),
      'unsafeHttpWhitelist:',
      '  - "127.0.0.1"',
      `httpsProxy: "${httpsProxy}"`,
      'nodeLinker: node-modules',
      'enableTelemetry: false',
      'enableGlobalCache: false',
      'enableImmutableInstalls: false',
      'enableHardenedMode: false',
      'enableProgressBars: false',
      `cacheFolder: "${join(box.home, 'yarn-cache')}"`,
      `globalFolder: "${join(box.home, 'yarn-global')}"`,
      '',
    ].join('\n'),
  )
  writeFileSync(join(box.project, 'yarn.lock'), '')
  return { ...box.env, YARN_ENABLE_TELEMETRY: '0', YARN_IGNORE_PATH: '1' }
}

/** Runs `fn` and reports its duration (ms) as a diagnostic of test `t`. */
export async function timed<T>(t: TestContext, what: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now()
  try {
    return await fn()
  } finally {
    t.diagnostic(`${what}: ${Math.round(performance.now() - start)} ms`)
  }
}
