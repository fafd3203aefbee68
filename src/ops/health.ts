/**
 * The checks behind `GET /-/health`: each backend's state, for load balancers and monitoring.
 * `/-/ping` stays the npm client's liveness check; this one asks the stores.
 *
 * - The metadata store runs `select 1`, the blob store its `ping` (disk: the folder is there and
 *   writable; S3: HeadBucket), at once, each bounded by `HEALTH_TIMEOUT_MS`, so a hung backend
 *   gives a 503 rather than a hanging health check.
 * - Uplinks are not asked (a check every few seconds must not reach the upstream registry): each
 *   reports its circuit breaker's state, as the last real requests left it.
 *
 * - The details (backends' error text, uplink URLs, caches, memory) are for operators only: the
 *   route (http/routes/health.ts) gives anyone else `{status}` alone.
 *
 * Status: `ok` (200) when both stores answer and every uplink's last requests succeeded;
 * `degraded` (200) when only uplinks fail (cached packages and local ones are still served);
 * `down` (503) when the metadata store or the blob store fails.
 */
import { performance } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import type { CacheSize } from '../registry/render-cache.js'
import type { BlobStore, PackageStore } from '../registry/stores.js'
import { HttpUplink } from '../uplink/http-uplink.js'
import type { Uplink } from '../uplink/uplink.js'

/** Longest wait for one store's answer, ms. */
export const HEALTH_TIMEOUT_MS = 2000

/** One store's check. `latency_ms` is the time until the answer (or the timeout), ms. */
export interface BackendHealth {
  type: string
  status: 'ok' | 'error'
  latency_ms: number
  /** Why the check failed (the backend's message, or the timeout). */
  error?: string
}

/**
 * One uplink, from its circuit breaker: `ok` (last request succeeded, or none yet), `failing`
 * (the last requests failed, the circuit still closed), `circuit-open` (requests fail at once; the
 * uplink probes itself in the background, next at `next_probe_at`), `half-open` (a probe is in
 * flight), `unknown` (an uplink without a breaker).
 */
export interface UplinkHealth {
  /** The uplink's base URL, without any user:password part. */
  url: string
  status: 'ok' | 'failing' | 'circuit-open' | 'half-open' | 'unknown'
  /** Failed requests in a row. */
  consecutive_failures?: number
  /** ISO 8601: `fail_timeout` after the last failure, the latest the next probe is due. */
  open_until?: string
  /** ISO 8601: when the next probe goes out (or the one in flight went out). */
  next_probe_at?: string
}

/** The body of `GET /-/health`. */
export interface Health {
  status: 'ok' | 'degraded' | 'down'
  meta: BackendHealth
  blobs: BackendHealth
  uplinks: Record<string, UplinkHealth>
  /** Every bounded in-memory cache: entries, bytes and bound (Registry.cacheSizes). */
  caches: Record<string, CacheSize>
  /** This process's memory, bytes (`process.memoryUsage()`). */
  memory: { rss_bytes: number; heap_used_bytes: number; heap_limit_bytes: number }
}

/** What the check reads. */
export interface HealthDeps {
  meta: Pick<PackageStore, 'ping'>
  blobs: Pick<BlobStore, 'ping'>
  /** The backends' names as reported (`sqlite` / `postgres`, `fs` / `s3`). */
  metaType: string
  blobsType: string
  uplinks: ReadonlyMap<string, Uplink>
  /** Per-store timeout, ms (default `HEALTH_TIMEOUT_MS`). */
  timeoutMs?: number
  /** The in-memory caches' sizes (Registry.cacheSizes); none: `{}`. */
  caches?: () => Record<string, CacheSize>
}

/** Runs `check` with a deadline; resolves with the outcome, never rejects. */
async function timed(type: string, timeoutMs: number, check: (signal: AbortSignal) => Promise<void>): Promise<BackendHealth> {
  const started = performance.now()
  const abort = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`no answer within ${timeoutMs} ms`)
      abort.abort(e)
      reject(e)
    }, timeoutMs)
  })
  const latency = () => Math.round((performance.now() - started) * 100) / 100
  try {
    await Promise.race([check(abort.signal), deadline])
    return { type, status: 'ok', latency_ms: latency() }
  } catch (e) {
    const err = e as Error & { name?: string }
    const message = err.message || err.name || String(e)
    return { type, status: 'error', latency_ms: latency(), error: message.slice(0, 500) }
  } finally {
    clearTimeout(timer)
  }
}

/** An uplink's base URL without credentials. */
function publicUrl(u: Uplink): string {
  const url = new URL(u.urlOf(''))
  url.username = ''
  url.password = ''
  return url.toString()
}

/** An uplink's entry, from its circuit breaker when it has one (HttpUplink). */
function uplinkHealth(u: Uplink): UplinkHealth {
  const url = publicUrl(u)
  if (!(u instanceof HttpUplink)) return { url, status: 'unknown' }
  const b = u.breaker
  const status = b.state === 'closed' ? 'ok' : b.state === 'open' ? 'circuit-open' : b.state
  const out: UplinkHealth = { url, status, consecutive_failures: b.failures }
  if (b.openUntil !== undefined) out.open_until = new Date(b.openUntil).toISOString()
  if (b.nextProbeAt !== undefined) out.next_probe_at = new Date(b.nextProbeAt).toISOString()
  return out
}

/**
 * Checks both stores (at once, each within the timeout) and reads every uplink's breaker.
 * Never throws: a failing store is reported in the result.
 */
export async function checkHealth(d: HealthDeps): Promise<Health> {
  const timeoutMs = d.timeoutMs ?? HEALTH_TIMEOUT_MS
  const [meta, blobs] = await Promise.all([
    timed(d.metaType, timeoutMs, () => d.meta.ping()),
    timed(d.blobsType, timeoutMs, (signal) => d.blobs.ping(signal)),
  ])
  const uplinks: Record<string, UplinkHealth> = {}
  for (const [name, u] of d.uplinks) uplinks[name] = uplinkHealth(u)
  const down = meta.status !== 'ok' || blobs.status !== 'ok'
  const degraded = Object.values(uplinks).some((u) => u.status !== 'ok' && u.status !== 'unknown')
  const mem = process.memoryUsage()
  return {
    status: down ? 'down' : degraded ? 'degraded' : 'ok',
    meta,
    blobs,
    uplinks,
    caches: d.caches?.() ?? {},
    memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed, heap_limit_bytes: getHeapStatistics().heap_size_limit },
  }
}

