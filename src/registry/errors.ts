/**
 * Typed registry errors. Domain code throws these; only `http/errors.ts` maps them to an HTTP
 * status and npm's `{ "error": "..." }` body (npm prints `body.error`, see docs/protocol.md §0.3).
 */

/** Stable machine-readable error codes, one per failure a client can react to. */
export type RegistryErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHENTICATED'
  | 'IP_NOT_ALLOWED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'VERSION_EXISTS'
  | 'REV_CONFLICT'
  | 'CONFLICT'
  | 'GONE'
  | 'TOO_LARGE'
  /** 429: too many attempts (failed logins, sign-ups); `retryAfter` says when to try again. */
  | 'TOO_MANY_REQUESTS'
  | 'NOT_IMPLEMENTED'
  /** An outside authority (GitHub) cannot answer now and nothing usable is cached (503, `retryAfter`). */
  | 'UNAVAILABLE'
  /** An uplink failed and nothing usable is cached (502). */
  | 'UPLINK_UNAVAILABLE'
  /** An uplink did not answer in time and nothing usable is cached (504). */
  | 'UPLINK_TIMEOUT'

/**
 * Base class of every error the registry reports to a client.
 * `message` is the human-readable text npm shows after `<status> <statusText> - <METHOD> <url> - `.
 * It carries no stack trace: it is an answer, not a fault (a 404 or 410 is part of normal traffic,
 * and capturing a stack costs several µs per answer); faults are other errors, logged with theirs.
 */
export class RegistryError extends Error {
  readonly code: RegistryErrorCode
  /** For 401s: the `WWW-Authenticate` challenge npm reacts to (`Basic`, `Bearer`, `ipaddress`). */
  readonly challenge: string | undefined
  /** For 429s and 503s: seconds to wait, sent as `Retry-After`. */
  retryAfter?: number
  constructor(code: RegistryErrorCode, message: string, challenge?: string) {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = limit
    this.code = code
    this.challenge = challenge
    this.name = 'RegistryError'
  }
}

/** 400: malformed input (bad name, bad semver, integrity mismatch, manifest confusion...). */
export const badRequest = (message: string): RegistryError => new RegistryError('BAD_REQUEST', message)
/** 401: no or bad credentials. */
export const unauthenticated = (message = 'Authentication required', challenge = 'Basic realm="pier", Bearer'): RegistryError =>
  new RegistryError('UNAUTHENTICATED', message, challenge)
/** 403: the caller is known but not allowed. */
export const forbidden = (message: string): RegistryError => new RegistryError('FORBIDDEN', message)
/** 404: unknown (or invisible) resource; npm's wording is "Not found". */
export const notFound = (message = 'Not found'): RegistryError => new RegistryError('NOT_FOUND', message)
/** 409: `_rev` in the URL or body does not match the stored one (CouchDB "Document update conflict."). */
export const revConflict = (): RegistryError => new RegistryError('REV_CONFLICT', 'Document update conflict.')
/** 410: the version was unpublished. */
export const gone = (message: string): RegistryError => new RegistryError('GONE', message)
