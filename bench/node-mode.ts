/**
 * Mode `node`: Node's own limit for the small GETs, measured in the same run as Pier and nginx.
 *
 * The answers of the local Pier are captured once (status, headers and bytes of a small full
 * packument, a small abbreviated one, a small tarball and a 404, as the harness asks for them), a
 * bare `node:http` server (bare-node.ts) sends exactly those, and the harness's load runs are
 * repeated against it with the same wrk settings (wrk.ts) over the same path lists: every small
 * packument, every small tarball, the 200 missing names. The figures have the harness's names
 * (`packument_small_rps`, …) in `node.txt`, so the report can print Pier ÷ node and Pier ÷ nginx.
 */
import { request } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BareAnswers, CapturedAnswer } from './bare-node.js'
import { ROOT, startService, type Service } from './proc.js'
import { wrkLoad } from './wrk.js'

const ABBREV = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
/** Headers Node's server writes itself. */
const NODE_OWN = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding'])

/** One GET as it came off the socket, with the raw header list. */
function capture(url: string, headers: Record<string, string>): Promise<CapturedAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { 'accept-encoding': 'gzip,deflate', ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const list: string[] = []
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          const k = res.rawHeaders[i] ?? ''
          if (!NODE_OWN.has(k.toLowerCase())) list.push(k, res.rawHeaders[i + 1] ?? '')
        }
        resolve({ status: res.statusCode ?? 0, headers: list, body: Buffer.concat(chunks).toString('base64') })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The harness's path lists for a registry seeded with its corpus (`BENCH_SMALL` small packages). */
async function pathLists(base: string, small: number): Promise<{ pkg: string[]; tgz: string[]; missing: string[] }> {
  const names = Array.from({ length: small }, (_, i) => `bench-pkg-${String(i).padStart(3, '0')}`)
  const tgz: string[] = []
  for (const n of names) {
    const res = await fetch(new URL(n, base), { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(30_000) })
    const doc = (await res.json()) as { 'dist-tags': Record<string, string>; versions: Record<string, { dist: { tarball: string } }> }
    tgz.push(new URL(doc.versions[doc['dist-tags'].latest ?? '']?.dist.tarball ?? '').pathname)
  }
  return { pkg: names.map((n) => `/${n}`), tgz, missing: names.map((n) => `/${n.replace('pkg', 'missing')}`) }
}

/**
 * Runs the `node` mode against the answers of `source` (the local mode's Pier, seeded).
 * @param results the run's results folder (`node.txt`, `node.log`, `node-answers.json`)
 * @returns the figures file
 */
export async function modeNode(harness: string, results: string, source: Service, undo: (() => Promise<void>)[], log: (m: string) => void): Promise<string> {
  const small = Number(process.env.BENCH_SMALL ?? 200)
  const lists = await pathLists(source.url, small)
  const first = (xs: string[]): string => new URL((xs[0] ?? '/').slice(1), source.url).href
  const answers: BareAnswers = {
    full: await capture(first(lists.pkg), { accept: 'application/json' }),
    abbrev: await capture(first(lists.pkg), { accept: ABBREV }),
    tarball: await capture(first(lists.tgz), {}),
    notfound: await capture(first(lists.missing), { accept: ABBREV }),
  }
  const spec = join(results, 'node-answers.json')
  writeFileSync(spec, JSON.stringify(answers, null, 1))
  const server = await startService(process.execPath, [join(ROOT, 'dist/bench/bare-node.js'), spec], join(results, 'node.log'), /bare node listening on (http:\/\/\S+)/, (u) => `${u}/`)
  undo.push(server.stop)
  log(`node: bare node:http server (pid ${server.pid}) at ${server.url}, sending the local Pier's bytes`)
  const lines: string[] = ['# bare node:http sending the local Pier\'s answers (bench/bare-node.ts), harness wrk settings']
  try {
    const runs: [string, string[], Record<string, string>][] = [
      ['packument_small', lists.pkg, { Accept: 'application/json' }],
      ['abbrev_small', lists.pkg, { Accept: ABBREV }],
      ['tarball', lists.tgz, {}],
      ['notfound', lists.missing, { Accept: ABBREV }],
    ]
    for (const [name, paths, headers] of runs) {
      const f = await wrkLoad(harness, name, server.url, paths, headers, server.pid)
      if (f.bad) log(`WARNING node ${name}: ${f.bad} unexpected answers`)
      lines.push(...f.lines)
      log(`node: ${name} ${f.rps} req/s`)
    }
  } finally {
    await server.stop()
  }
  const file = join(results, 'node.txt')
  writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}
