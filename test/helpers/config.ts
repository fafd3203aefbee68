/**
 * Config-test helpers: load a config written as a JSON file (with a given environment) and assert
 * a ConfigError whose message matches patterns. Temp folders are removed by `removeConfigDirs`.
 */
import assert from 'node:assert/strict'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { tempDir } from './pier.js'

const dirs: string[] = []

/** Writes `config` to `<temp>/pier.json` and loads it with `env` (nothing from process.env). */
export function loadConfigFile(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Config {
  const d = tempDir('pier-config-')
  dirs.push(d)
  writeFileSync(join(d, 'pier.json'), JSON.stringify(config))
  // home and etc inside the temp folder: no rc file of this machine's user or /etc is read.
  return loadConfig({ file: 'pier.json', env, cwd: d, home: d, etc: d }).config
}

/** Asserts `fn` throws a ConfigError whose message matches every pattern. */
export function throwsConfig(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`)
    for (const p of patterns) assert.match(e.message, p)
    return true
  })
}

/** Removes the temp folders made by `loadConfigFile` (call in `after`). */
export function removeConfigDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}
