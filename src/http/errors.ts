/**
 * Maps errors to HTTP: RegistryError codes to statuses, Fastify's own errors (body too large,
 * bad JSON) to npm's `{ "error": "..." }` shape. Unexpected errors become 500 with the request id
 * and are logged; internals never reach the client.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError, type RegistryErrorCode } from '../registry/errors.js'

const STATUS: Record<RegistryErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  IP_NOT_ALLOWED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  VERSION_EXISTS: 409,
  REV_CONFLICT: 409,
  CONFLICT: 409,
  GONE: 410,
  TOO_LARGE: 413,
  TOO_MANY_REQUESTS: 429,
  NOT_IMPLEMENTED: 501,
  UNAVAILABLE: 503,
  UPLINK_UNAVAILABLE: 502,
  UPLINK_TIMEOUT: 504,
}

/** The HTTP status of a registry error's code (the table above; the web UI's pages use it too). */
export function statusOfError(e: RegistryError): number {
  return STATUS[e.code]
}

/** Sends `{error, message}` (npm prints `error`; the token/profile code reads `message`). */
export function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: message, message })
}

/** Fastify error handler. */
export function errorHandler(err: FastifyError | RegistryError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof RegistryError) {
    const status = STATUS[err.code]
    if (status === 401 && err.challenge) void reply.header('www-authenticate', err.challenge)
    if (err.retryAfter !== undefined) void reply.header('retry-after', String(err.retryAfter))
    return sendError(reply, status, err.message)
  }
  const fe = err as FastifyError
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    // The rest of the body is not read: the connection closes after the answer.
    void reply.header('connection', 'close')
    const key = req.method === 'PUT' ? ' (max_body_size)' : ''
    return sendError(reply, 413, `Request body too large: this route takes at most ${req.routeOptions.bodyLimit ?? 'a configured number of'} bytes${key}.`)
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return sendError(reply, fe.statusCode, fe.message)
  }
  req.log.error({ err }, 'request failed')
  return sendError(reply, 500, `Internal server error (request id ${req.id}).`)
}
