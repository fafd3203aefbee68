/**
 * The `web` figure: server time of the web UI's package page (`GET /-/web/package/NAME`, as a
 * browser asks for it) for a package of `versions` versions (default 1,000) with a README of
 * about 10 KB (tables, fenced code, links). Target (issue 12): under 50 ms.
 *
 * One Pier in this process (SQLite and disk in a temp folder, logger silent, no uplinks); the
 * versions are published through the real publish route (`PUT /<name>`, real tarballs). Each
 * request goes through Fastify's `inject` (the whole server path: request hooks, routing, the read
 * gate, the page cache, rendering, the CSP hook; no socket), timed with `process.hrtime`:
 * - `first_ms`: the very first view in the process (JIT and lazily loaded code included);
 * - `cold_p50_ms`, `cold_max_ms`: views right after a write (a dist-tag added: a new `_rev`, so the
 *   state is read from SQLite again, the README rendered and sanitised, the page rendered and
 *   cached), 10 of them; `state_read_p50_ms`: the state read alone (the same read a packument
 *   GET does after a write);
 * - `warm_p50_ms`, `warm_p90_ms`, `warm_max_ms`: `requests` views after it (default 200), each
 *   still reading the viewer, the dependents and writing the frame around the cached body;
 * - `html_bytes`: the page's size.
 *
 * Call: `const f = await webPageBench({ versions: 1000 })` (after `npm run build`, from
 * dist/bench/web-page.js); `formatWebFigures(f)` gives the lines for a results file. Run alone:
 * `node dist/bench/web-page.js [versions] [requests]`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { createPier } from '../src/app.js'
import { ConfigSchema } from '../src/config/schema.js'
import { publishBody } from '../test/helpers/publish-body.js'

/** What `webPageBench` measures (times in ms, sizes in bytes). */
export interface WebFigures {
  versions: number
  requests: number
  /** The very first view in this process (JIT, lazy loading of markdown-it and highlight.js included). */
  first_ms: number
  /** Views right after a write (a new `_rev`: state re-read, page rendered anew), median of 10. */
  cold_p50_ms: number
  cold_max_ms: number
  /** Of a cold view: reading the package's state from the metadata store, median of 10. */
  state_read_p50_ms: number
  warm_p50_ms: number
  warm_p90_ms: number
  warm_max_ms: number
  html_bytes: number
  /** Time spent publishing the versions, ms (setup, not part of the figure). */
  setup_ms: number
}

const README = `# big-package

A package with many versions, for the web page bench.

## Install

\`\`\`sh
npm install big-package
\`\`\`

## Usage

\`\`\`js
import { thing } from 'big-package'
const x = thing({ size: 3, name: 'widget' })
console.log(x.toString())
\`\`\`

| Option | Type | Default | Description |
|--------|------|---------|-------------|
${Array.from({ length: 40 }, (_, i) => `| option${i} | \`string\` | \`"v${i}"\` | What option ${i} does, in a sentence or so. |`).join('\n')}

${Array.from({ length: 30 }, (_, i) => `- [${i % 2 ? 'x' : ' '}] item ${i} with a [link](https://example.com/${i}) and \`code\``).join('\n')}
`

/** The `q`-quantile of sorted numbers. */
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

/**
 * Publishes `versions` versions of one package and times its page.
 * @param o.versions versions to publish (default 1,000)
 * @param o.requests warm views measured (default 200)
 */
export async function webPageBench(o: { versions?: number; requests?: number } = {}): Promise<WebFigures> {
  const versions = o.versions ?? 1000
  const requests = o.requests ?? 200
  const dir = mkdtempSync(join(tmpdir(), 'pier-bench-web-'))
  const config = ConfigSchema.parse({ uplinks: {}, logger: { level: 'silent' }, storage: { local: { path: dir } }, auth: { rate_limit: { max_failures: 0 } } })
  const pier = await createPier(config, { logger: pino({ level: 'silent' }), cwd: dir })
  try {
    const setup = process.hrtime.bigint()
    await pier.auth.addUser('bench', 'bench-pass-1', 'bench@example.com')
    const { token } = await pier.auth.createToken('bench', {})
    const name = 'big-package'
    for (let i = 0; i < versions; i++) {
      const version = `1.${Math.floor(i / 100)}.${i % 100}`
      const { body } = publishBody(
        { name, version, description: 'A package with many versions', license: 'MIT', repository: 'github:acme/big-package', keywords: ['bench', 'web'], dependencies: { 'left-pad': '^1.3.0' } },
        { files: { 'README.md': README } },
      )
      const r = await pier.app.inject({ method: 'PUT', url: `/${name}`, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) })
      if (r.statusCode !== 201) throw new Error(`publish ${version}: ${r.statusCode} ${r.body}`)
    }
    const setupMs = Number(process.hrtime.bigint() - setup) / 1e6
    const view = async (): Promise<{ ms: number; bytes: number }> => {
      const t = process.hrtime.bigint()
      const r = await pier.app.inject({ method: 'GET', url: `/-/web/package/${name}`, headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
      const ms = Number(process.hrtime.bigint() - t) / 1e6
      if (r.statusCode !== 200) throw new Error(`page: ${r.statusCode}`)
      return { ms, bytes: r.rawPayload.length }
    }
    const first = await view()
    // A write gives the package a new _rev: the next view reads the state again and renders anew.
    const colds: number[] = []
    for (let i = 0; i < 10; i++) {
      const r = await pier.app.inject({ method: 'PUT', url: `/-/package/${name}/dist-tags/t${i}`, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, payload: JSON.stringify('1.0.0') })
      if (r.statusCode >= 300) throw new Error(`dist-tag: ${r.statusCode} ${r.body}`)
      colds.push((await view()).ms)
    }
    colds.sort((a, b) => a - b)
    // What part of a cold view is reading the package's state (1,000 version rows, each with its readme).
    const states: number[] = []
    for (let i = 0; i < 10; i++) {
      pier.registry.forget(name)
      const t = process.hrtime.bigint()
      await pier.registry.packageState(name, { name: undefined, readonly: false })
      states.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
    states.sort((a, b) => a - b)
    const cold = first
    const warm: number[] = []
    for (let i = 0; i < requests; i++) warm.push((await view()).ms)
    warm.sort((a, b) => a - b)
    return {
      versions,
      requests,
      first_ms: cold.ms,
      cold_p50_ms: quantile(colds, 0.5),
      cold_max_ms: colds.at(-1) ?? NaN,
      state_read_p50_ms: quantile(states, 0.5),
      warm_p50_ms: quantile(warm, 0.5),
      warm_p90_ms: quantile(warm, 0.9),
      warm_max_ms: warm.at(-1) ?? NaN,
      html_bytes: cold.bytes,
      setup_ms: setupMs,
    }
  } finally {
    await pier.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The figures as `key value` lines (ms with two decimals). */
export function formatWebFigures(f: WebFigures): string {
  const ms = (n: number): string => n.toFixed(2)
  return [
    `web_page_versions ${f.versions}`,
    `web_page_first_ms ${ms(f.first_ms)}`,
    `web_page_cold_p50_ms ${ms(f.cold_p50_ms)}`,
    `web_page_cold_max_ms ${ms(f.cold_max_ms)}`,
    `web_page_state_read_p50_ms ${ms(f.state_read_p50_ms)}`,
    `web_page_warm_p50_ms ${ms(f.warm_p50_ms)}`,
    `web_page_warm_p90_ms ${ms(f.warm_p90_ms)}`,
    `web_page_warm_max_ms ${ms(f.warm_max_ms)}`,
    `web_page_html_bytes ${f.html_bytes}`,
  ].join('\n')
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [versions, requests] = process.argv.slice(2).map(Number)
  const f = await webPageBench({ versions: versions || undefined, requests: requests || undefined })
  process.stdout.write(formatWebFigures(f) + '\n')
}
