/**
 * The `scale` mode's loader, a child process of the bench:
 *
 *   node dist/bench/scale-load.js CONFIG.json VERSIONS RESULT.json
 *
 * Builds Pier as `pier start` does (src/app.ts `createPier`: the stores, migrated, and the
 * registry; nothing listens) from CONFIG.json (a configuration file's contents, JSON) and
 * publishes the synthetic corpus of VERSIONS versions (scale-corpus.ts) through the registry's
 * write path, PIER_BENCH_SCALE_BATCH (200) versions per transaction, PIER_BENCH_SCALE_LOAD_CONCURRENCY
 * batches at once (default 4 on PostgreSQL, 1 on SQLite), (`Registry.publishBatch`:
 * every check, blob, `_rev`, change-feed row and audit entry of an HTTP publish, without HTTP).
 * The publisher is user `bench` (so the bench can later sign up as `bench` and publish into the
 * corpus's packages as their maintainer). Writes `{ versions, packages, seconds }` to RESULT.json;
 * progress on stderr.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import pino from 'pino'
import { createPier } from '../src/app.js'
import { ConfigSchema } from '../src/config/schema.js'
import type { Principal } from '../src/registry/types.js'
import { planCorpus, publishOf, type CorpusPublish } from './scale-corpus.js'

async function main(): Promise<void> {
  const [configFile, versionsArg, resultFile] = process.argv.slice(2)
  if (!configFile || !versionsArg || !resultFile) throw new Error('usage: scale-load.js CONFIG.json VERSIONS RESULT.json')
  const config = ConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')))
  const corpus = planCorpus(Number(versionsArg))
  const batchSize = Math.max(1, Number(process.env.PIER_BENCH_SCALE_BATCH ?? 200))
  // Batches in flight at once: PostgreSQL takes several connections' writes at a time (each
  // batch waits for the database in turn); SQLite has one writer, so one at a time.
  const concurrency = Math.max(1, Number(process.env.PIER_BENCH_SCALE_LOAD_CONCURRENCY ?? (config.storage.meta.type === 'postgres' ? 4 : 1)))
  const pier = await createPier(config, { logger: pino({ level: 'warn' }) })
  const principal: Principal = { name: 'bench', readonly: false, ip: '127.0.0.1' }
  const t0 = performance.now()
  let done = 0
  let nextReport = 0.1
  try {
    let batch: CorpusPublish[] = []
    const inFlight = new Set<Promise<void>>()
    let failed: unknown
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      const items = batch
      batch = []
      const p = pier.registry.publishBatch(items, principal).then(
        () => report(items.length),
        (e: unknown) => {
          failed ??= e
        },
      )
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
      while (inFlight.size >= concurrency) await Promise.race(inFlight)
      if (failed !== undefined) throw failed
    }
    const report = (n: number): void => {
      done += n
      if (done / corpus.versions >= nextReport) {
        console.error(`scale-load: ${done} of ${corpus.versions} versions in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
        nextReport += 0.1
      }
    }
    for (const [index, pkg] of corpus.packages.entries()) {
      for (let i = 0; i < pkg.versions; i++) {
        batch.push(publishOf(corpus, index, i))
        if (batch.length >= batchSize) await flush()
      }
    }
    await flush()
    await Promise.all(inFlight)
    if (failed !== undefined) throw failed
  } finally {
    await pier.close()
  }
  const seconds = (performance.now() - t0) / 1000
  writeFileSync(resultFile, JSON.stringify({ versions: done, packages: corpus.packages.length, seconds }))
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
