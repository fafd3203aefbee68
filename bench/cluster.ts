/**
 * Publish throughput of several Pier nodes sharing one PostgreSQL database and one S3 bucket,
 * against one such node: the same count of concurrent publishes (distinct versions of distinct
 * packages, npm's wire format), spread round-robin over the nodes, timed from the first request
 * to the last answer. Every request has a timeout and the count is fixed, so a batch is bounded.
 */
import { cpuTicks, machineBusy, waitQuiet, type Service } from './proc.js'
import { publishRequest, type PublishRequest } from './publish-body.js'

/** Options of `clusterPublish`. */
export interface ClusterOptions {
  /** The running nodes; the 1-node batches use the first. */
  nodes: Service[]
  /** The S3 server, whose CPU is reported apart. */
  s3: Service
  /** Publishes per batch. */
  publishes: number
  /** Requests in flight at once. */
  concurrency: number
  /** Batches per node count (1 node, N nodes, 1 node, N nodes…); figures are medians over them. */
  rounds: number
  /** % of a core other processes may use before a batch starts (waits at most `quietWait` s). */
  noiseMax: number
  quietWait: number
  /** Progress lines. */
  log(msg: string): void
}

/** Figures of one batch. */
export interface BatchFigures {
  /** Successful publishes per second of wall time. */
  rps: number
  p50: number
  p90: number
  /** CPU of all Pier nodes per publish, ms. */
  pierCpu: number
  /** CPU of s3rver per publish, ms. */
  s3Cpu: number
  /** CPU of the load generator (this process: sending requests, reading answers) per publish, ms. */
  clientCpu: number
  /** CPU of the rest of the machine per publish (mostly PostgreSQL), ms. */
  restCpu: number
  /** Publishes that did not answer 2xx. */
  errors: number
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? 0

/** Logs in (or signs up) `bench` with npm's legacy adduser call and returns the bearer token. */
export async function login(base: string): Promise<string> {
  const name = process.env.BENCH_USER ?? 'bench'
  const password = process.env.BENCH_PASS ?? 'bench-password-1'
  const res = await fetch(new URL(`-/user/org.couchdb.user:${name}`, base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}` },
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password, email: `${name}@example.invalid`, type: 'user', roles: [], date: new Date().toISOString() }),
    signal: AbortSignal.timeout(30_000),
  })
  const body = (await res.json().catch(() => ({}))) as { token?: string }
  if (!body.token) throw new Error(`login as ${name} at ${base}: HTTP ${res.status}`)
  return body.token
}

/** Sends one publish; resolves with its wall time in ms, or rejects with the HTTP status. */
async function put(base: string, req: PublishRequest, token: string): Promise<number> {
  const t0 = performance.now()
  const res = await fetch(new URL(req.name, base), {
    method: 'PUT',
    body: req.json,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'npm-command': 'publish' },
    signal: AbortSignal.timeout(60_000),
  })
  const text = await res.text()
  const ms = performance.now() - t0
  if (!res.ok) throw new Error(`PUT ${req.name}@${req.version} to ${base}: HTTP ${res.status} ${text.slice(0, 200)}`)
  return ms
}

/**
 * The publishes of one batch: `count` versions over `count / 4` packages (at least 2 × concurrency),
 * publish i being version `1.0.<i / packages>` of package `i % packages`, so requests in flight
 * together nearly always name different packages. Request i is built for target `i % targets`.
 */
function plan(prefix: string, count: number, concurrency: number, targets: string[]): { base: string; req: PublishRequest }[] {
  const packages = Math.max(2 * concurrency, Math.ceil(count / 4))
  return Array.from({ length: count }, (_, i) => {
    const base = targets[i % targets.length] ?? ''
    return { base, req: publishRequest(base, `${prefix}-${String(i % packages).padStart(3, '0')}`, `1.0.${Math.floor(i / packages)}`) }
  })
}

async function batch(opts: ClusterOptions, prefix: string, targets: string[], token: string): Promise<BatchFigures> {
  const work = plan(prefix, opts.publishes, opts.concurrency, targets)
  const pierPids = opts.nodes.map((n) => n.pid)
  const waited = await waitQuiet([...pierPids, opts.s3.pid], opts.noiseMax, opts.quietWait)
  if (waited) opts.log(`waited ${waited} s for a quiet machine`)
  const pier0 = pierPids.reduce((s, p) => s + cpuTicks(p), 0)
  const s30 = cpuTicks(opts.s3.pid)
  const self0 = cpuTicks(process.pid)
  const busy0 = machineBusy()
  const ms: number[] = []
  let errors = 0
  let firstError = ''
  const queue = [...work]
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: Math.min(opts.concurrency, queue.length) }, async () => {
      for (let w = queue.shift(); w; w = queue.shift()) {
        try {
          ms.push(await put(w.base, w.req, token))
        } catch (e) {
          errors++
          firstError ||= (e as Error).message
        }
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const pier = pierPids.reduce((s, p) => s + cpuTicks(p), 0) - pier0
  const s3 = cpuTicks(opts.s3.pid) - s30
  const self = cpuTicks(process.pid) - self0
  const rest = machineBusy() - busy0 - pier - s3 - self
  if (errors) opts.log(`WARNING ${errors} of ${work.length} publishes failed; first: ${firstError}`)
  const per = (ticks: number): number => (ticks * 10) / Math.max(1, ms.length) // 1/100 s → ms per publish
  return { rps: ms.length / seconds, p50: median(ms), p90: pct(ms, 90), pierCpu: per(pier), s3Cpu: per(s3), clientCpu: per(self), restCpu: per(Math.max(0, rest)), errors }
}

const round2 = (v: number): number => Math.round(v * 100) / 100

/**
 * Runs the batches (warm-up first: a few untimed publishes per node) and returns the figures as
 * "name value unit" lines, medians over the rounds: `publish_1node_*`, `publish_<N>node_*` and
 * `publish_<N>node_vs_1node` (ratio of publishes/s).
 */
export async function clusterPublish(opts: ClusterOptions): Promise<string> {
  const urls = opts.nodes.map((n) => n.url)
  const token = await login(urls[0] ?? '')
  const run = Date.now().toString(36)
  for (const [k, url] of urls.entries()) {
    for (const w of plan(`bench-cl-${run}-warm${k}`, 3, 1, [url])) await put(w.base, w.req, token)
  }
  const configs: [string, string[]][] = [
    ['1node', urls.slice(0, 1)],
    [`${urls.length}node`, urls],
  ]
  const results = new Map<string, BatchFigures[]>(configs.map(([label]) => [label, []]))
  for (let r = 0; r < opts.rounds; r++) {
    for (const [label, targets] of configs) {
      const f = await batch(opts, `bench-cl-${run}-r${r}-${label}`, targets, token)
      results.get(label)?.push(f)
      opts.log(
        `cluster ${label} round ${r + 1}: ${f.rps.toFixed(1)} publishes/s, p50 ${f.p50.toFixed(1)} ms, p90 ${f.p90.toFixed(1)} ms, ` +
          `CPU per publish: pier ${f.pierCpu.toFixed(2)} ms, s3rver ${f.s3Cpu.toFixed(2)} ms, client ${f.clientCpu.toFixed(2)} ms, rest ${f.restCpu.toFixed(2)} ms` +
          (f.errors ? `, ${f.errors} errors` : ''),
      )
    }
  }
  const lines: string[] = []
  const rps: Record<string, number> = {}
  for (const [label] of configs) {
    const fs = results.get(label) ?? []
    const m = (pick: (f: BatchFigures) => number): number => round2(median(fs.map(pick)))
    rps[label] = m((f) => f.rps)
    lines.push(
      `publish_${label}_rps ${m((f) => f.rps)} publishes/s`,
      `publish_${label}_p50 ${m((f) => f.p50)} ms`,
      `publish_${label}_p90 ${m((f) => f.p90)} ms`,
      `publish_${label}_pier_cpu ${m((f) => f.pierCpu)} ms/publish`,
      `publish_${label}_s3rver_cpu ${m((f) => f.s3Cpu)} ms/publish`,
      `publish_${label}_client_cpu ${m((f) => f.clientCpu)} ms/publish`,
      `publish_${label}_rest_cpu ${m((f) => f.restCpu)} ms/publish`,
      `publish_${label}_errors ${fs.reduce((s, f) => s + f.errors, 0)} count`,
    )
  }
  const n = configs[1]?.[0] ?? ''
  lines.push(`publish_${n}_vs_1node ${round2((rps[n] ?? 0) / Math.max(1e-9, rps['1node'] ?? 0))} x`)
  return lines.join('\n') + '\n'
}
