/**
 * An uplink over HTTP (undici, keep-alive). Packuments are fetched in full (npm install asks for
 * full documents; the abbreviated one is derived locally), conditionally when a cached copy has an
 * ETag or Last-Modified, gzip-compressed on the wire. `timeout` bounds each idle period: connect,
 * waiting for headers, and between body chunks (a hanging upstream fails, a slow big one does not).
 *
 * Caps on what the uplink sends: a packument body larger than `max_packument_size` once
 * decompressed, or a tarball larger than `max_tarball_size` (by its Content-Length up front, else
 * counted while it streams), fails with an UplinkError `too-large`; neither is ever cached.
 *
 * Circuit breaker (the original registry's `max_fails`/`fail_timeout`, with probes): after
 * `max_fails` failures in a row the circuit opens and requests fail at once. While it is open the
 * uplink probes itself in the background with `GET <url>-/ping` (npm's `npm ping`): the first probe
 * about a second after the circuit opened, each next one after twice the previous wait (2, 4, 8 s…),
 * never more than `fail_timeout`. A probe answered within `timeout` with any status but 5xx and 429
 * closes the circuit; otherwise the next one is scheduled. A request that arrives while a probe is
 * in flight (or due and not yet sent: it is sent then) waits for that probe, so for at most the
 * probe's own `timeout`, and goes out if the probe found the uplink up; otherwise it fails at once.
 * Requests never make probes more frequent than the backoff (one probe in flight at a time).
 */
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import { Agent, request, type Dispatcher } from 'undici'
import type { ForwardedResponse, PackumentFetch, TarballFetch, Uplink, UplinkFailure } from './uplink.js'
import { UplinkError } from './uplink.js'

/** Settings of one HTTP uplink (from `uplinks.<name>`). */
export interface HttpUplinkOptions {
  name: string
  url: string
  /** ms */
  timeout: number
  /** ms */
  maxage: number
  /** ms */
  failTimeout: number
  maxFails: number
  cache: boolean
  /** Largest packument body accepted, bytes after decompression (`max_packument_size`). */
  maxPackumentSize: number
  /** Largest tarball accepted, bytes (`max_tarball_size`). */
  maxTarballSize: number
  /** Value of the Authorization header, sent only to the uplink's own origin. */
  authorization?: string | undefined
  /** First wait of the probe backoff once the circuit opens, ms (default `FIRST_PROBE_MS`; tests shorten it). */
  firstProbeMs?: number
  /** Where the circuit's opening and closing are logged (a pino logger fits); default: nowhere. */
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }
}

/** The circuit breaker of an HttpUplink, as its `breaker` getter reports it (read-only). */
export interface UplinkBreakerState {
  /**
   * `closed`: the last request succeeded, or none failed yet; `failing`: the last requests failed,
   * fewer than `max_fails` in a row (or the breaker is off, `max_fails: 0`); `open`: requests fail
   * at once, and the next probe goes out at `nextProbeAt`; `half-open`: a probe is in flight (it
   * went out at `nextProbeAt`), and its answer closes the circuit or schedules the next one.
   */
  state: 'closed' | 'failing' | 'open' | 'half-open'
  /** Failed requests in a row, probes included. */
  failures: number
  /**
   * While open or half-open: `fail_timeout` after the last failure, ms since the epoch: the latest
   * time the next probe is due (the original registry's fixed wait; the backoff probes sooner).
   */
  openUntil: number | undefined
  /** While open: when the next probe goes out; while half-open: when the probe in flight went out; ms since the epoch. */
  nextProbeAt: number | undefined
}

const USER_AGENT = 'pier (npm registry uplink)'
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
/** First wait of the probe backoff after the circuit opens, ms; each failed probe doubles it, up to `fail_timeout`. */
export const FIRST_PROBE_MS = 1000
/** Most of a probe's answer that is read, bytes (npm's ping answers `{}`). */
const PING_BODY_MAX = 64 * 1024
/** Shortest wait between probes, ms, whatever `fail_timeout` says (a `fail_timeout: 0` must not probe in a busy loop). */
const MIN_PROBE_MS = 100

/**
 * The wait before a probe of an open circuit, ms: `first` × 2^`step` (`step`: probes failed since
 * it opened), at most `failTimeout`, at least `MIN_PROBE_MS`.
 */
export function probeDelay(step: number, first: number, failTimeout: number): number {
  return Math.max(MIN_PROBE_MS, Math.min(first * 2 ** Math.min(step, 40), failTimeout))
}

/** `n` bytes, as messages write sizes (`1048576 bytes (1 MiB)`). */
function bytesText(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let unit = ''
  for (const u of units) {
    if (v < 1024) break
    v /= 1024
    unit = u
  }
  return unit === '' ? `${n} bytes` : `${n} bytes (${Number(v.toFixed(1))} ${unit})`
}

/**
 * A pass-through that fails with `tooLarge()` once more than `max` bytes went through (a tarball
 * without Content-Length). Nothing is buffered.
 */
class ByteCap extends Transform {
  private seen = 0

  constructor(
    private readonly max: number,
    private readonly tooLarge: () => Error,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.max) return cb(this.tooLarge())
    cb(null, chunk)
  }
}

/** `@scope/name` → `@scope%2fname`, as npm requests scoped packuments. */
function packumentPath(name: string): string {
  return name.startsWith('@') ? name.replace('/', '%2f') : encodeURIComponent(name)
}

/** Decompresses a response body by its Content-Encoding. */
function decoded(body: Readable, encoding: string | string[] | undefined): Readable {
  const enc = (Array.isArray(encoding) ? encoding.join(',') : (encoding ?? '')).trim().toLowerCase()
  if (enc === '' || enc === 'identity') return body
  const z = enc === 'gzip' || enc === 'x-gzip' ? createGunzip() : enc === 'br' ? createBrotliDecompress() : enc === 'deflate' ? createInflate() : undefined
  if (!z) throw new Error(`unsupported content-encoding ${enc}`)
  body.on('error', (e) => z.destroy(e))
  return body.pipe(z)
}

const header = (h: Record<string, string | string[] | undefined>, k: string): string | undefined => {
  const v = h[k]
  return Array.isArray(v) ? v[0] : v
}

/** An upstream registry reached over HTTP(S). */
export class HttpUplink implements Uplink {
  readonly name: string
  readonly maxage: number
  readonly cacheTarballs: boolean
  private readonly base: string
  private readonly origin: string
  private readonly agent: Agent
  /** Failed requests in a row (probes included). */
  private fails = 0
  /** When the last failure happened, ms since the epoch. */
  private lastFailureAt = 0
  /** Probes failed since the circuit opened: the backoff's exponent. */
  private probeStep = 0
  /** When the next probe goes out (or the one in flight went out), ms since the epoch. */
  private nextProbeAt = 0
  private probeTimer: NodeJS.Timeout | undefined
  /** The probe in flight: resolves `true` when the uplink is up. */
  private probe: Promise<boolean> | undefined
  private closed = false
  /** Aborted by `close()`: a probe in flight gives up. */
  private readonly closing = new AbortController()

  constructor(private readonly opts: HttpUplinkOptions) {
    this.name = opts.name
    this.maxage = opts.maxage
    this.cacheTarballs = opts.cache
    this.base = opts.url.endsWith('/') ? opts.url : opts.url + '/'
    this.origin = new URL(this.base).origin
    this.agent = new Agent({
      connect: { timeout: opts.timeout },
      headersTimeout: opts.timeout,
      bodyTimeout: opts.timeout,
      keepAliveTimeout: 30_000,
      connections: 64,
    })
  }

  async fetchPackument(name: string, o: { etag?: string | undefined; lastModified?: string | undefined; signal?: AbortSignal } = {}): Promise<PackumentFetch> {
    const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'gzip', 'user-agent': USER_AGENT }
    if (o.etag) headers['if-none-match'] = o.etag
    if (o.lastModified) headers['if-modified-since'] = o.lastModified
    if (this.opts.authorization) headers.authorization = this.opts.authorization
    const res = await this.send(this.base + packumentPath(name), headers, o.signal)
    const status = res.statusCode
    if (status === 304) return this.succeeded(res, { kind: 'not-modified' })
    if (status === 404 || status === 410) return this.succeeded(res, { kind: 'not-found' })
    if (status !== 200) throw await this.badStatus(res)
    const max = this.opts.maxPackumentSize
    const tooLarge = (): UplinkError =>
      new UplinkError(this.name, 'too-large', `uplink "${this.name}" sent a packument for "${name}" larger than max_packument_size (${bytesText(max)})`)
    const encoding = res.headers['content-encoding']
    const length = header(res.headers, 'content-length')
    // Uncompressed and announced too large: refused before a byte of it is read.
    if ((encoding === undefined || encoding === 'identity') && length !== undefined && Number(length) > max) {
      discard(res.body)
      this.succeededNow()
      throw tooLarge()
    }
    let body: string
    try {
      body = await readCapped(decoded(res.body, encoding), max, tooLarge)
    } catch (e) {
      // Too large: the uplink answered (it is up), and this packument is refused.
      if (e instanceof UplinkError) {
        discard(res.body)
        this.succeededNow()
        throw e
      }
      throw this.failed(e)
    }
    this.succeededNow()
    return { kind: 'ok', text: body, etag: header(res.headers, 'etag'), lastModified: header(res.headers, 'last-modified') }
  }

  async fetchTarball(url: string, o: { signal?: AbortSignal } = {}): Promise<TarballFetch | undefined> {
    const headers: Record<string, string> = { accept: '*/*', 'accept-encoding': 'identity', 'user-agent': USER_AGENT }
    // Credentials go to the uplink's own origin only, as npm sends them only to the registry's host.
    if (this.opts.authorization && new URL(url).origin === this.origin) headers.authorization = this.opts.authorization
    const res = await this.send(url, headers, o.signal)
    if (res.statusCode === 404 || res.statusCode === 410) return this.succeeded(res, undefined)
    if (res.statusCode !== 200) throw await this.badStatus(res)
    this.succeededNow()
    const len = header(res.headers, 'content-length')
    const size = len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined
    const max = this.opts.maxTarballSize
    const tooLarge = (what: string): UplinkError => new UplinkError(this.name, 'too-large', `uplink "${this.name}" sent a tarball ${what} max_tarball_size (${bytesText(max)})`)
    if (size !== undefined) {
      if (size <= max) return { body: res.body, size }
      // Not a byte of it is read: the connection is dropped.
      discard(res.body)
      throw tooLarge(`of ${bytesText(size)}, more than`)
    }
    // No Content-Length: counted while it streams (undici stops a body at its Content-Length otherwise).
    const capped = new ByteCap(max, () => tooLarge('larger than'))
    return { body: pipeline(res.body, capped, () => undefined), size: undefined }
  }

  async forward(path: string, o: { method: string; headers: Record<string, string>; body?: Buffer }): Promise<ForwardedResponse> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...o.headers }
    if (this.opts.authorization) headers.authorization = this.opts.authorization
    const res = await this.send(this.base + path.replace(/^\/+/, ''), headers, undefined, o.method as Dispatcher.HttpMethod, o.body)
    const max = this.opts.maxPackumentSize
    let body: Buffer
    try {
      // Relayed as it came (still compressed, if it was): capped as it arrives, like a packument.
      body = await bufferCapped(res.body, max, () => new UplinkError(this.name, 'too-large', `uplink "${this.name}" sent an answer larger than max_packument_size (${bytesText(max)})`))
    } catch (e) {
      if (e instanceof UplinkError) {
        this.succeededNow()
        throw e
      }
      throw this.failed(e)
    }
    if (res.statusCode >= 500) this.failed(undefined, 'status')
    else this.succeededNow()
    const out: Record<string, string> = {}
    for (const k of ['content-type', 'content-encoding']) {
      const v = header(res.headers, k)
      if (v !== undefined) out[k] = v
    }
    return { status: res.statusCode, headers: out, body }
  }

  async search(q: { text: string; size: number; from: number }, o: { timeoutMs: number }): Promise<{ objects: unknown[]; total: number }> {
    if (this.tripped) throw new UplinkError(this.name, 'circuit-open', `uplink "${this.name}" is failing: not asked`)
    const url = new URL('-/v1/search', this.base)
    url.searchParams.set('text', q.text)
    url.searchParams.set('size', String(q.size))
    url.searchParams.set('from', String(q.from))
    const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'gzip', 'user-agent': USER_AGENT }
    if (this.opts.authorization) headers.authorization = this.opts.authorization
    let doc: unknown
    try {
      const res = await request(url, { headers, dispatcher: this.agent, signal: AbortSignal.timeout(o.timeoutMs) })
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined)
        throw new UplinkError(this.name, 'status', `uplink "${this.name}" answered ${res.statusCode} to a search`)
      }
      const max = this.opts.maxPackumentSize
      const tooLarge = () => new UplinkError(this.name, 'too-large', `uplink "${this.name}" sent a search answer larger than max_packument_size (${bytesText(max)})`)
      doc = JSON.parse(await readCapped(decoded(res.body, res.headers['content-encoding']), max, tooLarge))
    } catch (e) {
      if (e instanceof UplinkError) throw e
      const timeout = (e as Error).name === 'TimeoutError' || TIMEOUT_CODES.has((e as { code?: string }).code ?? '')
      const kind = timeout ? 'timeout' : e instanceof SyntaxError ? 'invalid' : 'unreachable'
      throw Object.assign(new UplinkError(this.name, kind, `uplink "${this.name}" search failed (${kind}): ${(e as Error).message}`), { cause: e })
    }
    const d = doc as { objects?: unknown; total?: unknown }
    if (typeof doc !== 'object' || doc === null || !Array.isArray(d.objects)) throw new UplinkError(this.name, 'invalid', `uplink "${this.name}" sent no search answer`)
    return { objects: d.objects, total: typeof d.total === 'number' ? d.total : d.objects.length }
  }

  /** The circuit breaker's current state, without side effects (for `GET /-/health`). */
  get breaker(): UplinkBreakerState {
    if (!this.tripped) return { state: this.fails === 0 ? 'closed' : 'failing', failures: this.fails, openUntil: undefined, nextProbeAt: undefined }
    return {
      state: this.probe ? 'half-open' : 'open',
      failures: this.fails,
      openUntil: this.lastFailureAt + this.opts.failTimeout,
      nextProbeAt: this.nextProbeAt,
    }
  }

  urlOf(path: string): string {
    return this.base + path.replace(/^\/+/, '')
  }

  /** Stops probing (the timer is cleared, a probe in flight aborted) and closes the connections. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.probeTimer)
    this.probeTimer = undefined
    this.closing.abort(new Error(`uplink "${this.name}" closed`))
    await this.agent.close()
  }

  /** Whether the circuit is open (or half-open): `max_fails` failures in a row, and no probe succeeded since. */
  private get tripped(): boolean {
    return this.opts.maxFails > 0 && this.fails >= this.opts.maxFails
  }

  /** Sends a request through the breaker. @throws UplinkError */
  private async send(
    url: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    method: Dispatcher.HttpMethod = 'GET',
    body?: Buffer,
  ): Promise<Dispatcher.ResponseData> {
    if (this.tripped) await this.admit()
    try {
      return await request(url, { method, headers, body, dispatcher: this.agent, signal })
    } catch (e) {
      throw this.failed(e)
    }
  }

  /**
   * With the circuit open: waits for the probe in flight, or sends the probe that is due (its
   * timer may not have fired yet), and returns when it found the uplink up.
   * @throws UplinkError `circuit-open` when no probe is due, or the probe failed
   */
  private async admit(): Promise<void> {
    const probe = this.probe ?? (Date.now() >= this.nextProbeAt ? this.runProbe() : undefined)
    if (probe && (await probe)) return
    if (!this.tripped) return
    const next = this.probe ? 'a probe is in flight' : `next probe at ${new Date(this.nextProbeAt).toISOString()}`
    throw new UplinkError(this.name, 'circuit-open', `uplink "${this.name}" failed ${this.fails} times in a row and is not asked until a probe finds it up (${next})`)
  }

  /** Schedules the next probe of an open circuit, after the current backoff step (unless one is scheduled or in flight). */
  private scheduleProbe(): void {
    if (this.closed || this.probeTimer !== undefined || this.probe !== undefined) return
    const wait = probeDelay(this.probeStep, this.opts.firstProbeMs ?? FIRST_PROBE_MS, this.opts.failTimeout)
    this.nextProbeAt = Date.now() + wait
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined
      void this.runProbe()
    }, wait)
    this.probeTimer.unref()
  }

  /**
   * Sends one probe (or returns the one in flight): resolves `true` when the uplink answered
   * `GET -/ping` within `timeout` with a status other than 5xx and 429 (the circuit is then
   * closed), `false` otherwise (the next probe is scheduled, one backoff step later). Never rejects.
   */
  private runProbe(): Promise<boolean> {
    if (this.probe) return this.probe
    clearTimeout(this.probeTimer)
    this.probeTimer = undefined
    this.nextProbeAt = Date.now()
    const probe = this.ping().then((up) => {
      this.probe = undefined
      if (this.closed) return false
      if (up) {
        if (this.tripped) this.opts.log?.info({ uplink: this.name, failures: this.fails }, 'uplink probe succeeded: circuit closed')
        this.succeededNow()
        return true
      }
      this.fails++
      this.lastFailureAt = Date.now()
      this.probeStep++
      if (this.tripped) this.scheduleProbe()
      return false
    })
    this.probe = probe
    return probe
  }

  /**
   * `GET <url>-/ping`: whether a whole answer (not 5xx, not 429) came within `timeout`. A body cut
   * or reset midway is no answer; past `PING_BODY_MAX` bytes the rest is not read.
   */
  private async ping(): Promise<boolean> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT }
    if (this.opts.authorization) headers.authorization = this.opts.authorization
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(this.opts.timeout), this.closing.signal])
      const res = await request(this.base + '-/ping', { headers, dispatcher: this.agent, signal })
      if (res.statusCode >= 500 || res.statusCode === 429) {
        await res.body.dump().catch(() => undefined)
        return false
      }
      let read = 0
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        read += chunk.length
        if (read > PING_BODY_MAX) break
      }
      return true
    } catch {
      return false
    }
  }

  private async succeeded<T>(res: Dispatcher.ResponseData, value: T): Promise<T> {
    await res.body.dump()
    this.succeededNow()
    return value
  }

  /** The uplink answered: the failure count restarts, the circuit is closed and no probe is pending. */
  private succeededNow(): void {
    this.fails = 0
    this.probeStep = 0
    this.nextProbeAt = 0
    clearTimeout(this.probeTimer)
    this.probeTimer = undefined
  }

  /** Counts a failure towards the breaker (opening it at `max_fails`) and describes it. */
  private failed(e: unknown, failure?: UplinkFailure, message?: string): UplinkError {
    this.fails++
    this.lastFailureAt = Date.now()
    if (this.tripped && this.probeTimer === undefined && this.probe === undefined) {
      if (this.fails === this.opts.maxFails) this.opts.log?.warn({ uplink: this.name, failures: this.fails }, 'uplink circuit opened: probing it')
      this.scheduleProbe()
    }
    if (e instanceof UplinkError) return e
    const code = (e as { code?: string } | undefined)?.code ?? 'ERROR'
    const kind = failure ?? (TIMEOUT_CODES.has(code) ? 'timeout' : 'unreachable')
    const text =
      message ?? (kind === 'timeout' ? `uplink "${this.name}" did not answer within ${this.opts.timeout} ms` : `uplink "${this.name}" is unreachable (${code})`)
    return Object.assign(new UplinkError(this.name, kind, text), { cause: e })
  }

  /** An unexpected status: 5xx and 429 count as failures, other 4xx do not (the uplink is up). */
  private async badStatus(res: Dispatcher.ResponseData): Promise<UplinkError> {
    await res.body.dump().catch(() => undefined)
    const status = res.statusCode
    const msg = `uplink "${this.name}" answered ${status}`
    if (status >= 500 || status === 429) return this.failed(undefined, 'status', msg)
    this.succeededNow()
    return new UplinkError(this.name, 'status', msg)
  }
}

/** Drops a body without reading it: the connection goes (undici's abort error is expected, not reported). */
function discard(body: Readable): void {
  body.on('error', () => undefined)
  body.destroy()
}

/**
 * Reads a whole (decoded) body as UTF-8 text (a leading BOM dropped, as `stream/consumers`' text()
 * does), failing with `tooLarge()` (and destroying the stream) as soon as more than `max` bytes arrived.
 */
async function readCapped(body: Readable, max: number, tooLarge: () => Error): Promise<string> {
  return new TextDecoder().decode(await bufferCapped(body, max, tooLarge))
}

/** Reads a whole body into memory, failing with `tooLarge()` (and destroying the stream) past `max` bytes. */
async function bufferCapped(body: Readable, max: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > max) {
      discard(body)
      throw tooLarge()
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, total)
}
