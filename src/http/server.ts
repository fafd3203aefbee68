/**
 * The composition root of the HTTP layer: builds the Fastify app from explicit dependencies.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import pino from 'pino'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AuthService } from '../auth/auth-service.js'
import type { Config } from '../config/schema.js'
import type { Registry } from '../registry/registry.js'
import type { Uplink } from '../uplink/uplink.js'
import { baseUrlResolver, type RouteContext } from './context.js'
import { errorHandler, sendError } from './errors.js'
import { fastPath, type FastPath } from './fast-path.js'
import { healthRoutes } from './routes/health.js'
import { miscRoutes } from './routes/misc.js'
import { packageRoutes } from './routes/packages.js'
import { userRoutes } from './routes/users.js'

/** Everything the server needs. */
export interface ServerDeps {
  config: Config
  registry: Registry
  auth: AuthService
  /** Where `npm audit` requests are forwarded (an uplink); none: 501. */
  auditUplink?: Uplink | undefined
  /** The configured uplinks by name, for `GET /-/health` (default none). */
  uplinks?: ReadonlyMap<string, Uplink>
  /** Pino logger instance for request and error logs; none when omitted. */
  logger?: FastifyServerOptions['loggerInstance']
}

/** The npm CI marker: the user-agent's ` ci/<name>` suffix (npm ≥7), or the old `npm-in-ci` header. */
function ciOf(ua: string | undefined, inCi: string | string[] | undefined): string | undefined {
  const m = ua ? / ci\/([^\s]+)/.exec(ua) : null
  if (m) return m[1]
  return inCi === 'true' ? 'true' : undefined
}

/** Whether the app's logger writes `level` (pino numeric levels; `silent` writes nothing). */
function levelEnabled(app: FastifyInstance, level: 'debug' | 'info'): boolean {
  return writesLevel(app.log.level, level)
}

/** Whether a logger at level `current` (a pino level name) writes `level`. */
function writesLevel(current: string, level: 'debug' | 'info'): boolean {
  const v = pino.levels.values[current]
  return v !== undefined && v <= (pino.levels.values[level] as number)
}

/** Request ids: a random per-process prefix and a counter (unique across restarts and nodes, cheap). */
const REQ_PREFIX = randomBytes(4).toString('hex') + '-'
let reqSeq = 0
/** The next request id (Fastify's `genReqId` and the fast path), e.g. `1a2b3c4d-2s`. */
const nextRequestId = (): string => `${REQ_PREFIX}${(++reqSeq).toString(36)}`

declare module 'fastify' {
  interface FastifyInstance {
    /** The fast path in front of the routes (fast-path.ts); `undefined` while requests are logged. */
    fastPath: FastPath | undefined
  }
}

/** Builds the Fastify app (not listening). */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config } = deps
  const prefix = config.url ? new URL(config.url).pathname.replace(/\/+$/, '') : ''
  const baseUrl = baseUrlResolver(config)
  // Request logging (info) and the debug hook see every request: the fast path is then off.
  const logsRequests = deps.logger !== undefined && writesLevel(deps.logger.level, 'info')
  let closing = false
  const fast = logsRequests
    ? undefined
    : fastPath({ registry: deps.registry, prefix, baseUrl, requestId: nextRequestId, closing: () => closing })
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    // Fastify's own server (its defaults: keep-alive 72 s, no request or socket timeout), with
    // the fast path (fast-path.ts) in front of its handler.
    serverFactory: (handler) => {
      const server = createServer(fast ? (req, res) => void (fast.handle(req, res) || handler(req, res)) : handler)
      server.keepAliveTimeout = 72_000
      server.requestTimeout = 0
      server.setTimeout(0)
      return server
    },
    disableRequestLogging: true,
    bodyLimit: config.max_body_size,
    trustProxy: config.server.trust_proxy,
    genReqId: nextRequestId,
    requestIdHeader: false,
    routerOptions: { ignoreDuplicateSlashes: true, maxParamLength: 1000 },
    // Clients append paths to the configured base URL: strip its path prefix (REGISTRY-API.md §0.1).
    rewriteUrl: prefix ? (req) => (req.url?.startsWith(prefix + '/') ? req.url.slice(prefix.length) : (req.url ?? '/')) : undefined,
  })

  app.decorate('fastPath', fast)

  // JSON bodies: empty → undefined (npm's DELETEs), any content type accepted as JSON.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string
    if (text.length === 0) return done(null, undefined)
    try {
      done(null, JSON.parse(text))
    } catch {
      done(Object.assign(new Error('The request body is not valid JSON.'), { statusCode: 400 }), undefined)
    }
  })

  const ctx: RouteContext = {
    config,
    registry: deps.registry,
    auth: deps.auth,
    baseUrl,
    principal: (req) => deps.auth.authenticate(req.headers.authorization, req.ip),
    auditUplink: deps.auditUplink,
    uplinks: deps.uplinks ?? new Map(),
  }

  // Hooks are callback-style (no promise per request): they run on every GET of the hot path.
  if (levelEnabled(app, 'debug')) {
    app.addHook('onRequest', (req, _reply, done) => {
      req.log.debug({ method: req.method, url: req.url, headers: req.headers }, 'incoming request')
      done()
    })
  }
  // Graceful shutdown: once closing, answers end their keep-alive connection, so `close()` does not
  // wait for clients to drop sockets whose in-flight request has finished (up to keepAliveTimeout).
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  app.addHook('onSend', (req, reply, payload, done) => {
    void reply.header('x-request-id', req.id)
    if (closing) void reply.header('connection', 'close')
    done(null, payload)
  })
  if (levelEnabled(app, 'info')) {
    app.addHook('onResponse', (req, reply, done) => {
      const h = req.headers
      req.log.info(
        {
          method: req.method,
          url: req.url,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 100) / 100,
          npmCommand: h['npm-command'],
          npmScope: h['npm-scope'],
          ci: ciOf(h['user-agent'], h['npm-in-ci']),
          ip: req.ip,
        },
        'request',
      )
      done()
    })
  }
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, 'Not found'))

  miscRoutes(app, ctx)
  healthRoutes(app, ctx)
  userRoutes(app, ctx)
  packageRoutes(app, ctx)
  return app
}
