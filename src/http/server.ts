/**
 * The composition root of the HTTP layer: builds the Fastify app from explicit dependencies.
 *
 * One `node:http` handler takes every request: the request hooks first (request-hooks.ts: id,
 * logging; nothing can skip them), then the fast path (fast-path.ts), then Fastify's routes.
 */
import { createServer } from 'node:http'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { AuthService } from '../auth/auth-service.js'
import type { Config } from '../config/schema.js'
import type { Health } from '../ops/health.js'
import type { Registry } from '../registry/registry.js'
import type { Uplink } from '../uplink/uplink.js'
import { baseUrlResolver, lazyCaller, type RouteContext } from './context.js'
import { errorHandler, sendError } from './errors.js'
import { fastPath, type FastPath } from './fast-path.js'
import { registerLoadShedding } from './load-shedding.js'
import { jsonBodies } from './server-parsers.js'
import { requestHooks } from './request-hooks.js'
import { orgRoutes } from './routes/access.js'
import { adminRoutes } from './routes/admin.js'
import { auditRoutes } from './routes/audit.js'
import { distTagRoutes } from './routes/dist-tags.js'
import { healthRoutes } from './routes/health.js'
import { miscRoutes } from './routes/misc.js'
import { packageRoutes } from './routes/packages.js'
import { userRoutes } from './routes/users.js'
import { webRoutes, type WebDeps } from './routes/web.js'
import { webLoginApiRoutes } from './routes/web-login.js'
import { wantsHtmlRoot } from '../web/negotiate.js'

/** Body limit of every route but the publish PUT, bytes (issue 11: bounded before buffering). */
export const JSON_BODY_LIMIT = 1024 * 1024

/** Everything the server needs. */
export interface ServerDeps {
  config: Config
  registry: Registry
  auth: AuthService
  /** Where `npm audit` requests are forwarded (an uplink); none: 501. */
  auditUplink?: Uplink | undefined
  /** `GET /-/health`'s checks (ops/health.ts `checkHealth`, bound to the stores and uplinks). */
  health: () => Promise<Health>
  /** Pino logger for request and error logs; none when omitted. */
  logger?: FastifyBaseLogger | undefined
  /** The web UI's sessions and web logins (routes/web.ts); none: no UI, web login answers 404. */
  web?: WebDeps | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The fast path in front of the routes (fast-path.ts). */
    fastPath: FastPath
  }
}

/** Builds the Fastify app (not listening). */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config } = deps
  const prefix = config.url ? new URL(config.url).pathname.replace(/\/+$/, '') : ''
  const baseUrl = baseUrlResolver(config)
  const hooks = requestHooks({ logger: deps.logger, trustProxy: config.server.trust_proxy })
  let closing = false
  const fast = fastPath({ registry: deps.registry, prefix, baseUrl, requestId: (req) => hooks.id(req), closing: () => closing })
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    // Node's server with the request hooks and the fast path in front of Fastify's handler.
    // Timeouts (`server.*_timeout`) stop clients that send a byte at a time (slowloris); the
    // connections are checked every second so the header and request deadlines hold to ~1 s.
    serverFactory: (handler) => {
      // Host is not required (HTTP/1.1 clients without it get an answer, base URLs fall back to
      // the configured address); parser errors and unmet Expect headers answer in npm's shape.
      const server = createServer({ connectionsCheckingInterval: 1000, requireHostHeader: false }, (req, res) => {
        hooks.begin(req, res)
        // Under load the fast path steps aside: Fastify's under-pressure hook answers 503.
        if (pressured() || !fast.handle(req, res)) handler(req, res)
      })
      const s = config.server
      server.headersTimeout = Math.min(s.headers_timeout, s.request_timeout || Infinity)
      server.requestTimeout = s.request_timeout
      server.keepAliveTimeout = s.keep_alive_timeout
      server.setTimeout(s.socket_timeout)
      // A client that half-closes after sending its request still gets the answer (Node's
      // default aborts a request still in progress when the client's FIN arrives); the
      // connection closes once it is sent.
      ;(server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
      server.on('checkExpectation', (_req, res) => {
        const body = JSON.stringify({ error: 'Expectation failed: only "Expect: 100-continue" is supported.' })
        res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body)
      })
      return server
    },
    disableRequestLogging: true,
    // Malformed HTTP (bad request line, headers too large, a timeout): one answer in npm's shape,
    // then the connection closes (the client must not send its next request on it).
    clientErrorHandler: (err, socket) => {
      const code = (err as NodeJS.ErrnoException).code
      const [status, text, message] =
        code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT'
          ? [408, 'Request Timeout', 'The request took too long to arrive.']
          : code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large', 'The request headers are too large.']
            : [400, 'Bad Request', 'Malformed HTTP request.']
      if (socket.writable && !socket.writableEnded) {
        const body = JSON.stringify({ error: message, message })
        socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
      }
      socket.destroySoon()
    },
    // A URL Fastify cannot decode, or other framework errors: npm's shape, with the request id.
    frameworkErrors: (err, req, reply) => {
      void reply.header('x-request-id', req.id)
      sendError(reply, err.statusCode ?? 400, err.code === 'FST_ERR_BAD_URL' ? 'Bad request: the URL is not valid.' : err.message)
    },
    // Every JSON route but a publish (routes/packages.ts sets max_body_size there): 1 MiB.
    bodyLimit: JSON_BODY_LIMIT,
    trustProxy: config.server.trust_proxy,
    genReqId: (req) => hooks.id(req),
    requestIdHeader: false,
    routerOptions: { ignoreDuplicateSlashes: true, maxParamLength: 1000 },
    // Clients append paths to the configured base URL: strip its path prefix (docs/protocol.md §0.1).
    // A browser asking for the root gets the web UI's home page (docs/web.md).
    rewriteUrl: (req) => {
      const url = prefix ? (req.url?.startsWith(prefix + '/') ? req.url.slice(prefix.length) : (req.url ?? '/')) : (req.url ?? '/')
      return deps.web && config.web.enable && wantsHtmlRoot(req.method, url, req.headers.accept) ? '/-/web/' + url.slice(1) : url
    },
  })

  app.decorate('fastPath', fast)
  jsonBodies(app)
  let pressured = (): boolean => false
  registerLoadShedding(app, config.server.overload)
  void app.after(() => {
    pressured = () => app.isUnderPressure()
  })

  const principal: RouteContext['principal'] = (req) => deps.auth.authenticate(req.headers.authorization, req.ip)
  const ctx: RouteContext = {
    config,
    registry: deps.registry,
    auth: deps.auth,
    hooks,
    baseUrl,
    principal,
    caller: (req) => lazyCaller(() => principal(req)),
    auditUplink: deps.auditUplink,
    health: deps.health,
  }

  // Graceful shutdown: once closing, answers end their keep-alive connection, so `close()` does not
  // wait for clients to drop sockets whose in-flight request has finished (up to keepAliveTimeout).
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  app.addHook('onClose', (_app, done) => {
    hooks.flush()
    done()
  })
  // Callback-style (no promise per request): it runs on every answer Fastify sends.
  app.addHook('onSend', (req, reply, payload, done) => {
    void reply.header('x-request-id', req.id)
    if (closing) void reply.header('connection', 'close')
    done(null, payload)
  })
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, 'Not found'))

  miscRoutes(app, ctx)
  healthRoutes(app, ctx)
  userRoutes(app, ctx)
  webLoginApiRoutes(app, ctx, deps.web)
  if (deps.web) webRoutes(app, ctx, deps.web)
  adminRoutes(app, ctx)
  orgRoutes(app, ctx)
  distTagRoutes(app, ctx)
  auditRoutes(app, ctx)
  packageRoutes(app, ctx)
  return app
}
