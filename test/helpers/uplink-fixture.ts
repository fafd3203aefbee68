/**
 * A small HTTP server on loopback that stands in front of an upstream registry (another Pier): it
 * forwards every request, records it with the status it got, and misbehaves on demand (500, hang,
 * a body cut short, corrupted, reset mid-answer or trickled byte by byte; or nothing listening at
 * all), so tests can count upstream requests and break the uplink. The Host header is forwarded
 * unchanged, so the upstream's tarball URLs point back at the fixture.
 */
import { EventEmitter } from 'node:events'
import { createServer, request, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One request seen by the fixture. */
export interface Recorded {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** Status sent back; 0 when the request was hung or cut. */
  status: number
  /** The request body, for requests answered by `respond` (as received: still gzipped if it was). */
  body?: Buffer
}

/** An answer the fixture gives itself instead of forwarding. */
export interface FixtureAnswer {
  status: number
  headers?: Record<string, string>
  body: string | Buffer
}

/**
 * How to misbehave for one request:
 * - `status-500`: answer 500 at once, without asking the upstream;
 * - `hang`: never answer (the request is recorded when the client gives up);
 * - `truncate`: the upstream's headers, half its body, then the connection closed (FIN);
 * - `corrupt`: the upstream's headers and every body byte flipped;
 * - `reset`: the upstream's headers, half its body, then a TCP reset (RST);
 * - `trickle`: the upstream's headers, then its body one byte every `trickleMs`.
 *
 * (A refused connection is not a per-request fault: see `refuse()`.)
 */
export type Fault = 'status-500' | 'hang' | 'truncate' | 'corrupt' | 'reset' | 'trickle' | undefined

/** A running fixture. */
export interface UplinkFixture {
  url: string
  /** Every finished request, in order. */
  readonly requests: Recorded[]
  /** Requests whose URL path starts with `/<path>` (exactly, or followed by `/` or `?`). */
  countFor(path: string): number
  /** Decides per request how to misbehave (default: never). */
  fault: (method: string, url: string) => Fault
  /** With the `trickle` fault: the wait before each body byte, ms (default 100). */
  trickleMs: number
  /**
   * Requests the fixture answers itself instead of forwarding them (e.g. an advisory service's
   * audit endpoints): for such a request, a function from its whole body to the answer; else
   * `undefined` (forwarded). Default: everything is forwarded.
   */
  respond: (method: string, url: string) => ((body: Buffer) => FixtureAnswer) | undefined
  /** Resolves with the first request (already seen or future) that matches. */
  waitFor(pred: (r: Recorded) => boolean): Promise<Recorded>
  /**
   * Stops listening and closes every connection: connections to `url` are refused (nothing
   * listens on its port) until `accept()`.
   */
  refuse(): Promise<void>
  /** Listens again on the same port after `refuse()`. */
  accept(): Promise<void>
  close(): Promise<void>
}

/** `@s/n` → `@s%2fn`, as npm and Pier write scoped names in URLs. */
export const esc = (name: string): string => name.replace('/', '%2f')

/** Starts a fixture forwarding to `target` (e.g. `http://127.0.0.1:1234/`). */
export async function startUplinkFixture(target: string): Promise<UplinkFixture> {
  const events = new EventEmitter()
  const requests: Recorded[] = []
  const to = new URL(target)
  const record = (r: Recorded): void => {
    requests.push(r)
    events.emit('request', r)
  }
  let port = 0
  const fixture: UplinkFixture = {
    url: '',
    requests,
    fault: () => undefined,
    trickleMs: 100,
    respond: () => undefined,
    countFor(path) {
      const p = '/' + path
      return requests.filter((r) => r.url === p || r.url.startsWith(p + '/') || r.url.startsWith(p + '?')).length
    },
    waitFor(pred) {
      const seen = requests.find(pred)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve) => {
        const on = (r: Recorded) => {
          if (!pred(r)) return
          events.off('request', on)
          resolve(r)
        }
        events.on('request', on)
      })
    },
    refuse: async () => {
      if (!server.listening) return
      const closed = new Promise<void>((res) => server.close(() => res()))
      server.closeAllConnections()
      await closed
    },
    accept: async () => {
      if (server.listening) return
      await new Promise<void>((res, rej) => {
        server.once('error', rej)
        server.listen(port, '127.0.0.1', () => {
          server.off('error', rej)
          res()
        })
      })
    },
    close: async () => {
      if (!server.listening) return
      server.closeAllConnections()
      await new Promise<void>((res) => server.close(() => res()))
    },
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/'
    const method = req.method ?? 'GET'
    const rec: Recorded = { method, url, headers: req.headers, status: 0 }
    const responder = fixture.respond(method, url)
    if (responder) {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        rec.body = Buffer.concat(chunks)
        const answer = responder(rec.body)
        rec.status = answer.status
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers }).end(answer.body)
        record(rec)
      })
      return
    }
    const fault = fixture.fault(method, url)
    if (fault === 'hang') {
      req.socket.on('close', () => record(rec))
      return
    }
    if (fault === 'status-500') {
      rec.status = 500
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'fixture: internal error' }))
      record(rec)
      return
    }
    const up = request(
      { host: to.hostname, port: to.port, method, path: url, headers: req.headers },
      (upRes) => {
        rec.status = upRes.statusCode ?? 0
        if (fault === 'truncate' || fault === 'corrupt' || fault === 'reset' || fault === 'trickle') return damage(upRes, res, fault, rec, record, fixture.trickleMs)
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.pipe(res)
        res.on('close', () => record(rec))
      },
    )
    up.on('error', () => {
      rec.status = 502
      res.destroy()
      record(rec)
    })
    req.pipe(up)
  })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()))
  port = (server.address() as AddressInfo).port
  fixture.url = `http://127.0.0.1:${port}/`
  return fixture
}

/**
 * Sends the upstream's headers, then: half the body and a dropped connection (`truncate`), or a
 * reset one (`reset`); every byte flipped (`corrupt`); or the body one byte every `trickleMs`
 * (`trickle`, stopped when the client goes away).
 */
function damage(
  upRes: import('node:http').IncomingMessage,
  res: ServerResponse,
  fault: 'truncate' | 'corrupt' | 'reset' | 'trickle',
  rec: Recorded,
  record: (r: Recorded) => void,
  trickleMs: number,
): void {
  const chunks: Buffer[] = []
  upRes.on('data', (c: Buffer) => chunks.push(c))
  upRes.on('end', () => {
    const body = Buffer.concat(chunks)
    res.writeHead(upRes.statusCode ?? 200, upRes.headers)
    if (fault === 'corrupt') {
      res.end(Buffer.from(body.map((b) => b ^ 0xff)))
      record(rec)
    } else if (fault === 'trickle') {
      let sent = 0
      let timer: NodeJS.Timeout | undefined
      const next = (): void => {
        if (sent >= body.length) return void res.end()
        res.write(body.subarray(sent, ++sent))
        timer = setTimeout(next, trickleMs)
      }
      res.on('close', () => {
        clearTimeout(timer)
        if (sent < body.length) rec.status = 0
        record(rec)
      })
      next()
    } else {
      rec.status = 0
      const socket = res.socket
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => (fault === 'reset' ? socket?.resetAndDestroy() : res.destroy()))
      record(rec)
    }
  })
}
