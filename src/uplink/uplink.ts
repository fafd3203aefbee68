/**
 * An uplink: an upstream registry Pier asks for packages it does not have locally. Its answers are
 * "cached" data (uplink-cache.ts); what was published to Pier is "local".
 */
import type { Readable } from 'node:stream'

/** Answer to a packument request. */
export type PackumentFetch =
  /** `text` is the packument JSON as sent (decompressed). */
  | { kind: 'ok'; text: string; etag: string | undefined; lastModified: string | undefined }
  /** 304 to a conditional request: the cached copy is current. */
  | { kind: 'not-modified' }
  | { kind: 'not-found' }

/** A tarball download in progress. */
export interface TarballFetch {
  /**
   * The bytes as they arrive (never buffered whole). Without a Content-Length it fails with an
   * UplinkError `too-large` once more than the uplink's `max_tarball_size` went through.
   */
  body: Readable
  /** Content-Length, when the uplink sent one (never more than `max_tarball_size`). */
  size: number | undefined
}

/** An uplink's answer to a forwarded request. */
export interface ForwardedResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Why an uplink request failed. */
export type UplinkFailure =
  /** No answer in time (connect, headers or an idle body). */
  | 'timeout'
  /** Connection refused, reset, DNS failure. */
  | 'unreachable'
  /** An error status (5xx, 429, or an unexpected 4xx). */
  | 'status'
  /** The answer was not a packument. */
  | 'invalid'
  /**
   * The answer was bigger than the uplink's cap (`max_packument_size` for a packument, a search or
   * a forwarded answer; `max_tarball_size` for a tarball). The uplink is up: it does not count
   * towards the breaker.
   */
  | 'too-large'
  /** The circuit breaker is open: recent requests failed, no probe found the uplink up since, this one was not sent. */
  | 'circuit-open'

/** A failed uplink request. */
export class UplinkError extends Error {
  constructor(
    readonly uplink: string,
    readonly failure: UplinkFailure,
    message: string,
  ) {
    super(message)
    this.name = 'UplinkError'
  }
}

/** An upstream registry. */
export interface Uplink {
  readonly name: string
  /** How long a cached packument stays fresh, ms. */
  readonly maxage: number
  /** Whether tarballs from this uplink are kept in the blob store. */
  readonly cacheTarballs: boolean
  /**
   * Fetches the full packument of `name`; with `etag`/`lastModified` the request is conditional.
   * @throws UplinkError (`too-large`: the body, decompressed, exceeds the uplink's cap)
   */
  fetchPackument(name: string, o: { etag?: string | undefined; lastModified?: string | undefined; signal?: AbortSignal }): Promise<PackumentFetch>
  /**
   * Starts downloading a tarball from the URL the uplink's packument gave.
   * @returns `undefined` on 404
   * @throws UplinkError (`too-large`: its Content-Length exceeds the uplink's cap)
   */
  fetchTarball(url: string, o?: { signal?: AbortSignal }): Promise<TarballFetch | undefined>
  /**
   * Sends a request to a path below the uplink's URL and returns the whole answer (npm audit's
   * POSTs, forwarded as they came).
   * @throws UplinkError when no answer arrives (any status is an answer); `too-large` when the
   *   answer's body exceeds the uplink's `max_packument_size`
   */
  forward(path: string, o: { method: string; headers: Record<string, string>; body?: Buffer }): Promise<ForwardedResponse>
  /**
   * The uplink's search (`GET /-/v1/search?text=&size=&from=`, docs/protocol.md §4.1), bounded by
   * `timeoutMs`. It does not count towards the circuit breaker (a slow search must not stop
   * installs), and it is not sent while the circuit is open.
   * @returns the answer's `objects` (unchecked items) and `total`
   * @throws UplinkError (timeout, unreachable, a status other than 200, not a search answer, circuit open)
   */
  search(q: { text: string; size: number; from: number }, o: { timeoutMs: number }): Promise<{ objects: unknown[]; total: number }>
  /** Absolute URL of `path` (relative to the registry root, e.g. `@s%2fn`) on this uplink. */
  urlOf(path: string): string
  /** Closes idle connections. */
  close(): Promise<void>
}
