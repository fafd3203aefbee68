/**
 * Load shedding (`server.overload`): @fastify/under-pressure samples the event-loop delay, the V8
 * heap and the RSS once per `sample_interval`; beyond a limit, every request but `/-/ping` gets
 * 503 with `Retry-After` (RFC 9110 §10.2.3) in npm's `{ "error": "..." }` shape, so Pier sheds
 * work instead of queueing it until it runs out of memory. npm retries 503s (npm-registry-fetch's
 * `retry` settings) after its own backoff.
 *
 * The check runs in Fastify's `onRequest`, and the fast path steps aside while it is pressured
 * (server.ts), so no request skips it.
 */
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import { getHeapStatistics } from 'node:v8'
import type { Config } from '../config/schema.js'

/** Share of V8's heap limit beyond which requests are shed, when `max_heap_used` is not set. */
export const DEFAULT_HEAP_SHARE = 0.9

/** Paths answered even under pressure: npm's liveness check. */
const ALWAYS = new Set(['/-/ping'])

/**
 * Registers @fastify/under-pressure on `app` with `o`'s limits (durations ms, sizes bytes).
 * `app.isUnderPressure()` then tells whether requests are being shed.
 */
export function registerLoadShedding(app: FastifyInstance, o: Config['server']['overload']): void {
  const maxHeapUsedBytes = o.max_heap_used ?? Math.floor(getHeapStatistics().heap_size_limit * DEFAULT_HEAP_SHARE)
  void app.register(underPressure, {
    maxEventLoopDelay: o.max_event_loop_delay,
    maxHeapUsedBytes,
    maxRssBytes: o.max_rss ?? 0,
    sampleInterval: o.sample_interval,
    retryAfter: o.retry_after,
    pressureHandler: (req, reply, type) => {
      const q = req.url.indexOf('?')
      if (ALWAYS.has(q === -1 ? req.url : req.url.slice(0, q))) return undefined
      void reply
        .code(503)
        .header('retry-after', String(o.retry_after))
        .header('cache-control', 'no-store')
        .send({ error: `Pier is overloaded (${type}); retry in ${o.retry_after} s.` })
      // Sent: Fastify's hook runner skips the rest of the request's lifecycle.
      return undefined
    },
  })
}
