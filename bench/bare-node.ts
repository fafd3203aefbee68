/**
 * The `node` mode's server: a bare `node:http` server (no framework, no routing beyond one branch
 * per answer, no logging) sending fixed bytes, run as a child process of the bench:
 *
 *   node dist/bench/bare-node.js ANSWERS.json
 *
 * ANSWERS.json holds the four answers captured from the local Pier in the same run (bench/node-mode.ts):
 * `{ full, abbrev, tarball, notfound }`, each `{ status, headers: [name, value, …], body: base64 }`.
 * A path with `/-/` gets the tarball, a path with `-missing-` the 404, any other path the abbreviated
 * document when `Accept` names pacote's corgi type and the full one otherwise. So the bytes and headers
 * on the wire are Pier's own, and the difference left is Pier's per-request work: this is Node's own
 * limit for these answers on this machine. It listens on 127.0.0.1, port 0, and prints
 * `bare node listening on http://127.0.0.1:PORT` on stderr; SIGTERM stops it.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One captured answer. */
export interface CapturedAnswer {
  status: number
  /** Flat `[name, value, …]` list, as `writeHead` takes it (no date: Node adds its own). */
  headers: string[]
  /** The body, base64. */
  body: string
}

/** The four answers the bare server sends. */
export interface BareAnswers {
  full: CapturedAnswer
  abbrev: CapturedAnswer
  tarball: CapturedAnswer
  notfound: CapturedAnswer
}

const CORGI = 'application/vnd.npm.install-v1+json'

function main(): void {
  const file = process.argv[2]
  if (!file) throw new Error('usage: bare-node.js ANSWERS.json')
  const spec = JSON.parse(readFileSync(file, 'utf8')) as BareAnswers
  const ready = (a: CapturedAnswer): { status: number; headers: string[]; body: Buffer } => ({ status: a.status, headers: a.headers, body: Buffer.from(a.body, 'base64') })
  const full = ready(spec.full)
  const abbrev = ready(spec.abbrev)
  const tarball = ready(spec.tarball)
  const notfound = ready(spec.notfound)
  const server = createServer((req, res) => {
    const url = req.url ?? '/'
    const a = url.includes('/-/') ? tarball : url.includes('-missing-') ? notfound : (req.headers.accept ?? '').includes(CORGI) ? abbrev : full
    res.writeHead(a.status, a.headers)
    res.end(a.body)
  })
  server.keepAliveTimeout = 72_000
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo
    console.error(`bare node listening on http://127.0.0.1:${port}`)
  })
  process.once('SIGTERM', () => {
    server.close()
    server.closeAllConnections()
  })
}

main()
