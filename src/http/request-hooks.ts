/**
 * What happens to every request, whoever answers it: the fast path (fast-path.ts) or a Fastify
 * route. `begin` runs first, in the server's one `node:http` request handler (server.ts), before
 * either of them sees the request, so nothing per request can be skipped by the fast path: the
 * request id, the debug line of the incoming request, and the request log line written when the
 * response has gone out (method, url, status, ms, npm-command, npm-scope, CI marker, ip; the
 * fields npm's own headers carry, docs/protocol.md §0.2). Metrics and rate limits hook in here
 * too when they come.
 *
 * Request log lines are written through pino once per turn of the event loop (`setImmediate`),
 * for every response that finished in that turn, rather than one by one as each finishes: on the
 * bench machine (2 cores, wrk on loopback), the small-packument GET at logger.level info went from
 * 40k to 51k req/s this way, against 67k at warn (2026-12-01). A line still says when its
 * response finished: `ms` is measured then.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import pino from 'pino'

const ID = Symbol('pier.requestId')
const QUIET = Symbol('pier.quiet')

type Tagged = IncomingMessage & { [ID]?: string }
type Quietable = ServerResponse & { [QUIET]?: true }
const STARTED = Symbol('pier.started')
const FINISHED = Symbol('pier.finishedAfter')
const IP = Symbol('pier.ip')
type Timed = ServerResponse & { [STARTED]?: number; [FINISHED]?: number; [IP]?: string | undefined }

/** Request headers that carry secrets: never logged, at any level. */
export const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'npm-otp', 'proxy-authorization'] as const

/** `headers` with every secret header's value replaced by `[redacted]` (a copy; the request is untouched). */
export function redactHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  let out: IncomingHttpHeaders | undefined
  for (const h of SECRET_HEADERS) {
    if (headers[h] === undefined) continue
    out ??= { ...headers }
    ;(out as Record<string, unknown>)[h] = '[redacted]'
  }
  return out ?? headers
}

/**
 * A URL with a token in its path (`DELETE /-/user/token/<token>`, npm's logout) redacted, and the
 * web login's secrets in the query (`?session=` of `loginUrl`, `?sessionId=` of `doneUrl`:
 * whoever holds the latter could collect the token, docs/web.md).
 */
export function redactUrl(url: string | undefined): string | undefined {
  return url
    ?.replace(/^(\/-\/user\/token\/|\/-\/npm\/v1\/tokens\/token\/)[^/?]+/, '$1[redacted]')
    .replace(/([?&](?:session|sessionId)=)[^&#]*/g, '$1[redacted]')
}

/** Request ids: a random per-process prefix and a counter (unique across restarts and nodes, cheap). */
const REQ_PREFIX = randomBytes(4).toString('hex') + '-'
let reqSeq = 0

/** The npm CI marker: the user-agent's ` ci/<name>` suffix (npm ≥7), or the old `npm-in-ci` header. */
function ciOf(ua: string | undefined, inCi: string | string[] | undefined): string | undefined {
  const m = ua ? / ci\/([^\s]+)/.exec(ua) : null
  if (m) return m[1]
  return inCi === 'true' ? 'true' : undefined
}

/** The logger calls the hooks make (a pino logger, or Fastify's logger interface). */
export interface RequestLog {
  /** Current level name (`info`, `warn`, `silent`…). */
  level: string
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

/** Whether a logger at level `current` (a pino level name) writes `level`. */
function writes(current: string, level: 'debug' | 'info'): boolean {
  const v = pino.levels.values[current]
  return v !== undefined && v <= (pino.levels.values[level] as number)
}

/** What the hooks need. */
export interface RequestHooksOptions {
  /** The server's logger; none: nothing is logged. */
  logger?: RequestLog | undefined
  /** `server.trust_proxy`: the logged ip is the client's from `X-Forwarded-For`, as Fastify's `req.ip` is then. */
  trustProxy: boolean
}

/** The per-request hooks of one server. */
export interface RequestHooks {
  /** Runs first for every request (assigns its id, starts its clock, arranges its log line). */
  begin(req: IncomingMessage, res: ServerResponse): void
  /** The id `begin` gave `req` (a new one if it never ran), e.g. `1a2b3c4d-2s`. */
  id(req: IncomingMessage): string
  /** Leaves this response's request out of the info-level request log (`GET /-/health`, polled by monitors). */
  quiet(res: ServerResponse): void
  /** Writes the request lines still waiting for the end of this turn of the event loop (at close). */
  flush(): void
}

/** Builds the hooks. Whether to log is decided once, from the logger's level at build time. */
export function requestHooks(opts: RequestHooksOptions): RequestHooks {
  const log = opts.logger
  const info = log !== undefined && writes(log.level, 'info')
  const debug = log !== undefined && writes(log.level, 'debug')
  const ipOf = (req: IncomingMessage): string | undefined => {
    if (opts.trustProxy) {
      const fwd = req.headers['x-forwarded-for']
      const first = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim()
      if (first) return first
    }
    return req.socket.remoteAddress
  }
  let pending: ServerResponse[] = []
  const flush = (): void => {
    const batch = pending
    pending = []
    for (const res of batch) {
      const req = res.req
      const h = req.headers
      const t = res as Timed
      log?.info(
        {
          reqId: (req as Tagged)[ID],
          method: req.method,
          url: redactUrl(req.url),
          status: res.statusCode,
          ms: Math.round((t[FINISHED] ?? 0) * 100) / 100,
          npmCommand: h['npm-command'],
          npmScope: h['npm-scope'],
          ci: ciOf(h['user-agent'], h['npm-in-ci']),
          ip: t[IP],
        },
        'request',
      )
    }
  }
  /** The `finish` listener of every logged response (`this` is the response): one function, no closure per request. */
  function finished(this: ServerResponse): void {
    if ((this as Quietable)[QUIET]) return
    const t = this as Timed
    t[FINISHED] = performance.now() - (t[STARTED] ?? 0)
    // Read now: the socket may be gone by the end of the turn.
    t[IP] = ipOf(this.req)
    if (pending.push(this) === 1) setImmediate(flush)
  }
  const id = (req: IncomingMessage): string => ((req as Tagged)[ID] ??= `${REQ_PREFIX}${(++reqSeq).toString(36)}`)
  return {
    id,
    flush,
    quiet(res) {
      ;(res as Quietable)[QUIET] = true
    },
    begin(req, res) {
      const reqId = id(req)
      if (!log) return
      if (debug) log.debug({ reqId, method: req.method, url: redactUrl(req.url), headers: redactHeaders(req.headers) }, 'incoming request')
      if (!info) return
      ;(res as Timed)[STARTED] = performance.now()
      res.once('finish', finished)
    },
  }
}
