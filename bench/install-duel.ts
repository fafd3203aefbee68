/**
 * Interleaved `npm install` timings: the same fixture installed from several registries in turn,
 * round after round, so that a drift of the machine over the run weighs on every registry alike.
 *
 * Why: on this kind of machine, consecutive installs of the harness's fixture slow down run after
 * run whatever serves them (seen 2026-12-01: 3.43 → 3.75 s over 5 installs from one Pier, and the
 * same from nginx), and the harness measures its modes one after the other (local, nginx, proxy),
 * so the mode measured last pays the most. The drift is the client's disk: with the project and
 * the npm cache on tmpfs, 8 installs in a row took 2.97–3.09 s, against 3.01 → 3.54 s on the disk
 * (ext4 with online discard), `sync` before each install or not. The caller therefore gives a
 * folder on tmpfs when there is one. The harness's per-mode figures stay in the table; the
 * install target uses these.
 *
 * Each install is the harness's own (`../shared/bench/bench.mjs`, `npmInstall`): a `package.json`
 * with BENCH_FIXTURE_DEPS (150) small packages plus `bench-big`, all `^1.0.0`; `node_modules`, the
 * lockfile and the npm cache removed first; `npm install --prefer-online --package-lock=false
 * --ignore-scripts` with the npm on PATH (the pinned devDependency under `npm run bench`). The
 * order of the registries rotates each round. Before each install the run waits (at most 30 s)
 * for the rest of the machine to be quiet (≤ BENCH_NOISE_MAX % of a core over 1 s).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitQuiet } from './proc.js'

/** A registry the fixture is installed from. */
export interface InstallTarget {
  /** Short label, used in figure names (`install_<label>_s`): letters, digits and `_`. */
  label: string
  /** Registry URL, ending in `/`. */
  url: string
  /** The serving process (left out of the quiet-machine check). */
  pid: number
}

/** Options of {@link interleavedInstalls}. */
export interface InterleavedOptions {
  /** Scratch folder (created; the fixture and the npm cache live there). */
  dir: string
  /** Rounds: each installs once from every target (≥ 1). */
  rounds: number
  /** Direct small dependencies of the fixture (the harness's BENCH_FIXTURE_DEPS). */
  fixtureDeps: number
  /** Quiet-machine threshold, % of a core used by other processes. */
  noiseMax: number
  log: (msg: string) => void
}

/** Per target: every install's wall time in seconds, in round order. */
export type InstallTimes = Map<string, number[]>

/** Packages the fixture installs: `fixtureDeps` small ones, their dependencies and `bench-big`. */
function fixture(deps: number): Record<string, string> {
  const names = Array.from({ length: deps }, (_, i) => `bench-pkg-${String(i).padStart(3, '0')}`)
  return Object.fromEntries([...names, 'bench-big'].map((n) => [n, '^1.0.0']))
}

/**
 * Runs the machine's npm (`npm` on PATH) in `cwd`, resolving with its exit code and the last
 * 4,000 characters of its stderr (for the error message); rejects only when npm cannot be spawned.
 */
export function npm(args: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn('npm', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)))
    child.on('error', rej)
    child.on('close', (code) => res({ code: code ?? 1, stderr }))
  })
}

/**
 * Installs the fixture `rounds` times from each target, interleaved (round r starts at target
 * r mod n), and returns the wall times (s).
 * @throws when an install fails or installs fewer packages than the first one did
 */
export async function interleavedInstalls(targets: InstallTarget[], o: InterleavedOptions): Promise<InstallTimes> {
  const project = join(o.dir, 'fixture')
  const cache = join(o.dir, 'cache')
  const npmrc = join(o.dir, 'npmrc')
  mkdirSync(project, { recursive: true })
  writeFileSync(npmrc, '')
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'bench-fixture', private: true, dependencies: fixture(o.fixtureDeps) }, null, 2))
  const times: InstallTimes = new Map(targets.map((t) => [t.label, []]))
  let expected: number | undefined
  for (let round = 0; round < o.rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(round + k) % targets.length]
      if (!t) continue
      for (const p of [join(project, 'node_modules'), join(project, 'package-lock.json'), cache]) rmSync(p, { recursive: true, force: true })
      await waitQuiet(targets.map((x) => x.pid), o.noiseMax, 30)
      const t0 = performance.now()
      const r = await npm(
        ['install', '--userconfig', npmrc, '--registry', t.url, '--cache', cache, '--prefer-online', '--package-lock=false', '--ignore-scripts', '--loglevel=error'],
        project,
      )
      const s = (performance.now() - t0) / 1000
      if (r.code !== 0) throw new Error(`npm install from ${t.label} (${t.url}) failed (exit ${r.code}): ${r.stderr}`)
      const count = readdirSync(join(project, 'node_modules')).filter((n) => n.startsWith('bench-')).length
      expected ??= count
      if (count !== expected || count === 0) throw new Error(`npm install from ${t.label} installed ${count} bench packages, expected ${expected}`)
      times.get(t.label)?.push(s)
    }
    o.log(`interleaved installs, round ${round + 1}/${o.rounds}: ${targets.map((t) => `${t.label} ${(times.get(t.label)?.at(-1) ?? NaN).toFixed(2)} s`).join(', ')}`)
  }
  return times
}
