/**
 * An uplink over HTTP (undici, keep-alive). Packuments are fetched in full (npm install asks for
 * full documents; the abbreviated one is derived locally), conditionally when a cached copy has an
 * ETag or Last-Modified, gzip-compressed on the wire. `timeout` bounds each idle period: connect,
 * waiting for headers, and between body chunks (a hanging upstream fails, a slow big one does not).
 *
 * Circuit breaker (the original registry's `max_fails`/`fail_timeout`): after `max_fails` failures
 * in a row, requests fail at once for `fail_timeout`; then one probe request goes out, and its
 * outcome closes the circuit or opens it again.
 */
import type { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
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
  /** Value of the Authorization header, sent only to the uplink's own origin. */
  authorization?: string | undefined
  /** Clock, ms (tests of the breaker may pass their own). */
  now?: () => number
}

/** The circuit breaker of an HttpUplink, as its `breaker` getter reports it (read-only). */
export interface UplinkBreakerState {
  /**
   * `closed`: the last request succeeded, or none failed yet; `failing`: the last requests failed,
   * fewer than `max_fails` in a row (or the breaker is off, `max_fails: 0`); `open`: requests fail
   * at once until `openUntil`; `half-open`: `fail_timeout` has passed, and the next request (or the
   * one in flight) is the probe that closes or reopens the circuit.
   */
  state: 'closed' | 'failing' | 'open' | 'half-open'
  /** Failed requests in a row. */
  failures: number
  /** While open or half-open: when the circuit lets a probe through, ms since the epoch. */
  openUntil: number | undefined
}

const USER_AGENT = 'pier (npm registry uplink)'
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

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
  private readonly now: () => number
  private fails = 0
  private openUntil = 0
  private probing = false

  constructor(private readonly opts: HttpUplinkOptions) {
    this.name = opts.name
    this.maxage = opts.maxage
    this.cacheTarballs = opts.cache
    this.base = opts.url.endsWith('/') ? opts.url : opts.url + '/'
    this.origin = new URL(this.base).origin
    this.now = opts.now ?? Date.now
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
    let body: string
    try {
      body = await text(decoded(res.body, res.headers['content-encoding']))
    } catch (e) {
      throw this.failed(e)
    }
    this.fails = 0
    this.probing = false
    return { kind: 'ok', text: body, etag: header(res.headers, 'etag'), lastModified: header(res.headers, 'last-modified') }
  }

  async fetchTarball(url: string, o: { signal?: AbortSignal } = {}): Promise<TarballFetch | undefined> {
    const headers: Record<string, string> = { accept: '*/*', 'accept-encoding': 'identity', 'user-agent': USER_AGENT }
    // Credentials go to the uplink's own origin only, as npm sends them only to the registry's host.
    if (this.opts.authorization && new URL(url).origin === this.origin) headers.authorization = this.opts.authorization
    const res = await this.send(url, headers, o.signal)
    if (res.statusCode === 404 || res.statusCode === 410) return this.succeeded(res, undefined)
    if (res.statusCode !== 200) throw await this.badStatus(res)
    this.fails = 0
    this.probing = false
    const len = header(res.headers, 'content-length')
    return { body: res.body, size: len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined }
  }

  async forward(path: string, o: { method: string; headers: Record<string, string>; body?: Buffer }): Promise<ForwardedResponse> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...o.headers }
    if (this.opts.authorization) headers.authorization = this.opts.authorization
    const res = await this.send(this.base + path.replace(/^\/+/, ''), headers, undefined, o.method as Dispatcher.HttpMethod, o.body)
    let body: Buffer
    try {
      body = Buffer.from(await res.body.arrayBuffer())
    } catch (e) {
      throw this.failed(e)
    }
    if (res.statusCode >= 500) this.failed(undefined, 'status')
    else {
      this.fails = 0
      this.probing = false
    }
    const out: Record<string, string> = {}
    for (const k of ['content-type', 'content-encoding']) {
      const v = header(res.headers, k)
      if (v !== undefined) out[k] = v
    }
    return { status: res.statusCode, headers: out, body }
  }

  async search(q: { text: string; size: number; from: number }, o: { timeoutMs: number }): Promise<{ objects: unknown[]; total: number }> {
    if (this.breaker.state === 'open') throw new UplinkError(this.name, 'circuit-open', `uplink "${this.name}" is failing: not asked`)
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
      doc = JSON.parse(await text(decoded(res.body, res.headers['content-encoding'])))
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
    const tripped = this.opts.maxFails > 0 && this.fails >= this.opts.maxFails
    if (!tripped) return { state: this.fails === 0 ? 'closed' : 'failing', failures: this.fails, openUntil: undefined }
    return { state: this.now() < this.openUntil ? 'open' : 'half-open', failures: this.fails, openUntil: this.openUntil }
  }

  urlOf(path: string): string {
    return this.base + path.replace(/^\/+/, '')
  }

  async close(): Promise<void> {
    await this.agent.close()
  }

  /** Sends a request through the breaker. @throws UplinkError */
  private async send(
    url: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    method: Dispatcher.HttpMethod = 'GET',
    body?: Buffer,
  ): Promise<Dispatcher.ResponseData> {
    this.admit()
    try {
      return await request(url, { method, headers, body, dispatcher: this.agent, signal })
    } catch (e) {
      throw this.failed(e)
    }
  }

  /** Lets a request through, or throws while the circuit is open. */
  private admit(): void {
    if (this.opts.maxFails === 0 || this.fails < this.opts.maxFails) return
    if (this.now() < this.openUntil || this.probing) {
      throw new UplinkError(this.name, 'circuit-open', `uplink "${this.name}" failed ${this.fails} times in a row and is not asked again before ${new Date(this.openUntil).toISOString()}`)
    }
    this.probing = true
  }

  private async succeeded<T>(res: Dispatcher.ResponseData, value: T): Promise<T> {
    await res.body.dump()
    this.fails = 0
    this.probing = false
    return value
  }

  /** Counts a failure towards the breaker and describes it. */
  private failed(e: unknown, failure?: UplinkFailure, message?: string): UplinkError {
    this.fails++
    this.probing = false
    if (this.opts.maxFails > 0 && this.fails >= this.opts.maxFails) this.openUntil = this.now() + this.opts.failTimeout
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
    this.fails = 0
    this.probing = false
    return new UplinkError(this.name, 'status', msg)
  }
}
