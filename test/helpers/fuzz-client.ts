/**
 * Sends the fuzzer's requests (fuzz-requests.ts) and judges the answers: well-formed ones through
 * an undici Pool with keep-alive (for speed), malformed HTTP as raw bytes on a fresh socket
 * (node:net). `problemOf` states what Pier must never do: answer 5xx (501 and 503 are documented:
 * no advisory source, store down or overloaded), send an error whose body is not npm's
 * `{ "error": "<string>" }`, send a 2xx JSON answer that does not parse, or drop a well-formed
 * request without an answer.
 */
import { connect } from 'node:net'
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib'
import fc from 'fast-check'
import { Pool } from 'undici'
import { fuzzRequest, type FuzzRequest, type FuzzWorld } from './fuzz-requests.js'

/** One HTTP answer as it came back. */
export interface FuzzAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** What became of one request. */
export interface FuzzOutcome {
  /** The answers read (several for pipelined raw bytes; none when the connection just closed). */
  answers: FuzzAnswer[]
  /** Set when undici itself refused to send the request (a generator gap, not Pier's fault). */
  refused?: string
  /** Set when a well-formed request got no answer (connection reset or closed, guard expired). */
  dropped?: string
  /** Raw bytes that could not be read as HTTP/1.1 answers. */
  unparsed?: string
}

/** No answer after this long means a hung request (a liveness guard, not a measurement). */
const GUARD_MS = 60_000

/** Statuses ≥ 500 that Pier documents (docs/protocol.md §0.3, §4.2; README "Operating it"). */
export const DOCUMENTED_5XX = new Set([501, 503])

/** A client for one Pier. */
export class FuzzClient {
  private readonly pool: Pool
  private readonly host: string
  private readonly port: number

  /**
   * @param base the Pier's URL, ending in `/`
   * @param connections keep-alive connections of the pool (requests in flight at most)
   */
  constructor(base: string, connections: number) {
    const url = new URL(base)
    this.host = url.hostname
    this.port = Number(url.port)
    // Idle connections are dropped after 10 s, well before Pier's keep-alive timeout (72 s), so
    // that a request never races the server closing its connection (a reset that is no fault).
    this.pool = new Pool(url.origin, { connections, pipelining: 1, keepAliveTimeout: 10_000, keepAliveMaxTimeout: 10_000, headersTimeout: GUARD_MS, bodyTimeout: GUARD_MS })
  }

  /** Sends `req` and reads every answer to it. Never throws. */
  send(req: FuzzRequest): Promise<FuzzOutcome> {
    return req.raw ? this.sendRaw(req.raw) : this.sendPooled(req)
  }

  /** Closes the pool's connections. */
  async close(): Promise<void> {
    await this.pool.close()
  }

  private async sendPooled(req: FuzzRequest): Promise<FuzzOutcome> {
    let res
    try {
      res = await this.pool.request({ method: req.method as 'GET', path: req.path, headers: req.headers, body: req.body ?? null })
    } catch (e) {
      const err = e as Error & { code?: string }
      // undici refuses what it will not send before any byte goes out.
      if (err.code === 'UND_ERR_INVALID_ARG' || err.code === 'UND_ERR_NOT_SUPPORTED') return { answers: [], refused: err.message }
      return { answers: [], dropped: `${err.code ?? err.name}: ${err.message}` }
    }
    const chunks: Buffer[] = []
    try {
      for await (const c of res.body) chunks.push(c as Buffer)
    } catch (e) {
      const err = e as Error & { code?: string }
      return { answers: [{ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }], dropped: `body cut: ${err.code ?? err.name}: ${err.message}` }
    }
    return { answers: [{ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }] }
  }

  private sendRaw(bytes: Buffer): Promise<FuzzOutcome> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = []
      const socket = connect({ host: this.host, port: this.port })
      const guard = setTimeout(() => socket.destroy(new Error('no close within the guard')), GUARD_MS)
      socket.on('data', (c: Buffer) => chunks.push(c))
      // The server may close on its own (RST after an error answer): what was read counts.
      socket.on('error', () => undefined)
      socket.on('close', () => {
        clearTimeout(guard)
        resolve(parseAnswers(Buffer.concat(chunks), bytes.subarray(0, 5).toString('latin1') === 'HEAD '))
      })
      socket.end(bytes)
    })
  }
}

/**
 * Splits raw bytes into HTTP/1.x answers (Content-Length or chunked bodies; a body without either
 * runs to the end). Answers to HEAD carry no body.
 */
export function parseAnswers(data: Buffer, head: boolean): FuzzOutcome {
  const answers: FuzzAnswer[] = []
  let at = 0
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at)
    if (end === -1) return { answers, unparsed: data.subarray(at, at + 200).toString('latin1') }
    const lines = data.subarray(at, end).toString('latin1').split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')
    if (!m) return { answers, unparsed: data.subarray(at, at + 200).toString('latin1') }
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const colon = l.indexOf(':')
      if (colon > 0) headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim()
    }
    let body: Buffer
    at = end + 4
    const status = Number(m[1])
    // An answer to HEAD has no body, unless the parser refused the request (Node's error answers carry one).
    const bodyless = head && !(headers['content-length'] !== undefined && data.indexOf('HTTP/1.', at) !== at && data.length >= at + Number(headers['content-length']) && status === 400)
    if (bodyless || status === 304 || status === 204 || (status >= 100 && status < 200)) body = Buffer.alloc(0)
    else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length'])
      body = data.subarray(at, at + n)
      at += n
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = []
      for (;;) {
        const eol = data.indexOf('\r\n', at)
        if (eol === -1) return { answers, unparsed: 'chunked body cut' }
        const size = parseInt(data.subarray(at, eol).toString('latin1'), 16)
        at = eol + 2
        if (!(size > 0)) {
          at += 2
          break
        }
        parts.push(data.subarray(at, at + size))
        at += size + 2
      }
      body = Buffer.concat(parts)
    } else {
      body = data.subarray(at)
      at = data.length
    }
    answers.push({ status, headers, body })
  }
  return { answers }
}

const headerOf = (a: FuzzAnswer, name: string): string => {
  const v = a.headers[name]
  return Array.isArray(v) ? v.join(', ') : (v ?? '')
}

/** The body as text, decoded by its Content-Encoding. @throws when it does not decode */
export function decodedBody(a: FuzzAnswer): string {
  const enc = headerOf(a, 'content-encoding').trim().toLowerCase()
  const b = enc === 'gzip' ? gunzipSync(a.body) : enc === 'br' ? brotliDecompressSync(a.body) : enc === 'deflate' ? inflateSync(a.body) : a.body
  return b.toString('utf8')
}

/**
 * What is wrong with `answer` to `req`, or `undefined` when nothing is.
 * @param bodyless the request was a HEAD (no body may be checked)
 */
export function problemOf(answer: FuzzAnswer, bodyless: boolean): string | undefined {
  const { status } = answer
  if (status >= 500 && !DOCUMENTED_5XX.has(status)) return `status ${status}`
  if (bodyless || status === 204 || status === 304) return undefined
  const type = headerOf(answer, 'content-type')
  if (status >= 400) {
    if (!/json/i.test(type)) return `error ${status} with content-type "${type}", not JSON`
    let doc: unknown
    try {
      doc = JSON.parse(decodedBody(answer))
    } catch {
      return `error ${status} whose body is not JSON`
    }
    if (typeof doc !== 'object' || doc === null || typeof (doc as { error?: unknown }).error !== 'string') return `error ${status} without a string "error"`
    return undefined
  }
  if (status >= 200 && status < 300 && /json/i.test(type)) {
    try {
      JSON.parse(decodedBody(answer))
    } catch {
      return `${status} JSON answer that does not parse`
    }
  }
  return undefined
}

/** One generated request with where it came from, to regenerate it. */
export interface Numbered {
  /** Position in the run (`requestStream` regenerates it from the seed). */
  index: number
  req: FuzzRequest
}

/**
 * The run's requests, generated lazily in chunks of `chunkSize` (one `fc.sample` each, with a seed
 * derived from `seed` and the chunk's number), so a seed reproduces the same sequence.
 */
export function* requestStream(arb: fc.Arbitrary<FuzzRequest>, seed: number, count: number, chunkSize: number): Generator<Numbered> {
  for (let c = 0; c * chunkSize < count; c++) {
    const n = Math.min(chunkSize, count - c * chunkSize)
    // A different seed per chunk, mixed so that nearby run seeds do not share chunks.
    const batch = fc.sample(arb, { seed: Math.imul(seed, 0x9e3779b1) ^ Math.imul(c + 1, 0x85ebca6b), numRuns: n })
    for (let i = 0; i < batch.length; i++) yield { index: c * chunkSize + i, req: batch[i] as FuzzRequest }
  }
}

/** A request written out in full, to replay it (bodies as base64 and a text prefix). */
export function describeRequest(r: FuzzRequest): Record<string, unknown> {
  if (r.raw) return { kind: r.kind, rawBase64: r.raw.toString('base64'), rawPrefix: r.raw.subarray(0, 300).toString('latin1') }
  return {
    kind: r.kind,
    method: r.method,
    path: r.path.length > 400 ? `${r.path.slice(0, 400)}… (${r.path.length} chars)` : r.path,
    headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.length > 200 ? `${v.slice(0, 200)}… (${v.length} chars)` : v])),
    ...(r.body ? { bodyBytes: r.body.length, bodyPrefix: r.body.subarray(0, 400).toString('latin1') } : {}),
  }
}

/** One offending answer (or missing answer), as reported. */
export interface Offender {
  /** The request's position in the run (see `requestStream`). */
  index: number
  problem: string
  req: ReturnType<typeof describeRequest>
  /** The request in full: bodies and raw bytes as base64. */
  full: Record<string, unknown>
  status?: number
  /** The first 500 bytes of the answer's body. */
  body?: string
  /** Pier's `x-request-id`: its log line for a 500 has the stack. */
  requestId?: string
}

/** What a run found. Plain data (it crosses from a worker thread). */
export interface FuzzReport {
  sent: number
  seconds: number
  /** Requests undici refused to send (generator gaps). */
  refused: number
  /** Per route family: how many answers had each status (`closed`: none, for raw bytes). */
  byKind: Record<string, Record<string, number>>
  /** Each kind of problem (`<family>: <problem>`) with how often it was seen. */
  problems: Record<string, number>
  /** The first offenders, in full. */
  offenders: Offender[]
  /** V8 heap in use by the thread that ran the load (bytes), at its end. */
  heapUsed: number
}

/** Options of `runFuzz`. */
export interface FuzzRunOptions {
  /** The Pier's URL, ending in `/`. */
  base: string
  world: FuzzWorld
  seed: number
  count: number
  /** Requests in flight at once. */
  concurrency: number
  /** Requests per fast-check sample. */
  chunk: number
  /** How many offenders to keep in full (at most three of each kind of problem, 25 of each 5xx). */
  keep: number
  /** Called after every `progressEvery` requests (memory samples), with the number sent so far. */
  onProgress?: ((sent: number) => void) | undefined
  progressEvery?: number | undefined
}

/** Sends `count` generated requests to `base`, `concurrency` at a time, and judges every answer. */
export async function runFuzz(o: FuzzRunOptions): Promise<FuzzReport> {
  const client = new FuzzClient(o.base, o.concurrency)
  const report: FuzzReport = { sent: 0, seconds: 0, refused: 0, byKind: {}, problems: {}, offenders: [], heapUsed: 0 }
  const offend = (off: Omit<Offender, 'req' | 'full'>, req: FuzzRequest): void => {
    const key = `${req.kind}: ${off.problem}`
    report.problems[key] = (report.problems[key] ?? 0) + 1
    // The first few of each kind of problem, so that a frequent one does not hide the others; more
    // of the 5xx, whose causes (Pier's logged stacks) may differ.
    if (report.problems[key] <= (off.status !== undefined && off.status >= 500 ? 25 : 3) && report.offenders.length < o.keep) {
      const full = { ...req, body: req.body?.toString('base64'), raw: req.raw?.toString('base64') }
      report.offenders.push({ ...off, req: describeRequest(req), full })
    }
  }
  const judge = (index: number, req: FuzzRequest, out: FuzzOutcome): void => {
    const counts = (report.byKind[req.kind] ??= {})
    const count = (k: string): void => void (counts[k] = (counts[k] ?? 0) + 1)
    if (out.refused !== undefined) {
      report.refused++
      count('refused')
      return
    }
    if (out.dropped !== undefined && !req.raw) offend({ index, problem: `no answer (${out.dropped})`, ...(out.answers[0] ? { status: out.answers[0].status } : {}) }, req)
    if (out.unparsed !== undefined) offend({ index, problem: `unreadable answer: ${JSON.stringify(out.unparsed.slice(0, 80))}` }, req)
    if (out.answers.length === 0) count('closed')
    const head = req.raw ? req.raw.subarray(0, 5).toString('latin1') === 'HEAD ' : req.method === 'HEAD'
    out.answers.forEach((a) => {
      count(String(a.status))
      const problem = problemOf(a, head)
      if (problem === undefined) return
      const requestId = a.headers['x-request-id']
      offend({ index, problem, status: a.status, body: a.body.subarray(0, 500).toString('utf8'), ...(typeof requestId === 'string' ? { requestId } : {}) }, req)
    })
  }
  const started = performance.now()
  const stream = requestStream(fuzzRequest(o.world), o.seed, o.count, o.chunk)
  try {
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        for (let next = stream.next(); !next.done; next = stream.next()) {
          const { index, req } = next.value
          judge(index, req, await client.send(req))
          report.sent++
          if (o.progressEvery && report.sent % o.progressEvery === 0) o.onProgress?.(report.sent)
        }
      }),
    )
  } finally {
    report.seconds = (performance.now() - started) / 1000
    await client.close()
    report.heapUsed = process.memoryUsage().heapUsed
  }
  return report
}
