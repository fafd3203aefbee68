/**
 * The `soak` mode's Pier under test, a child process of the bench:
 *
 *   node dist/bench/soak-pier.js CONFIG.json SAMPLE_MS
 *
 * Pier built exactly as `pier start` builds it (src/app.ts `createPier`, then listening), plus a
 * sampler: every SAMPLE_MS it prints one line `soak-sample {json}` on stdout with `rss` and
 * `heapUsed` (bytes, `process.memoryUsage()`), the event-loop delay over the interval (`eldMean`,
 * `eldP99`, `eldMax`, ms; `perf_hooks.monitorEventLoopDelay` at a 20 ms resolution, whose
 * histogram holds the whole interval between its timer's turns: the resolution is subtracted, so
 * 0 means the loop was never late), the count of
 * active handles, and every in-memory cache's size (`Registry.cacheSizes`), so a map that grows
 * shows by name. Prints `pier listening on URL` once it listens; SIGTERM closes it.
 */
import { readFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pino from 'pino'
import { createPier } from '../src/app.js'
import { ConfigSchema } from '../src/config/schema.js'

/** The event-loop delay sampler's timer interval, ms. */
const RESOLUTION_MS = 20

async function main(): Promise<void> {
  const [configFile, sampleArg] = process.argv.slice(2)
  if (!configFile) throw new Error('usage: soak-pier.js CONFIG.json SAMPLE_MS')
  const config = ConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')))
  const pier = await createPier(config, { logger: pino({ level: config.logger.level }) })
  const address = await pier.app.listen({ host: config.server.host, port: config.server.port })
  console.error(`pier listening on ${address}`)
  const eld = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  eld.enable()
  const timer = setInterval(() => {
    const m = process.memoryUsage()
    const sample = {
      rss: m.rss,
      heapUsed: m.heapUsed,
      eldMean: Math.max(0, eld.mean / 1e6 - RESOLUTION_MS),
      eldP99: Math.max(0, eld.percentile(99) / 1e6 - RESOLUTION_MS),
      eldMax: Math.max(0, eld.max / 1e6 - RESOLUTION_MS),
      handles: (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length,
      caches: pier.registry.cacheSizes(),
    }
    eld.reset()
    console.log(`soak-sample ${JSON.stringify(sample)}`)
  }, Math.max(1000, Number(sampleArg ?? 60_000)))
  process.once('SIGTERM', () => {
    clearInterval(timer)
    eld.disable()
    void pier.close().then(() => process.exit(0))
  })
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
