/**
 * SIGKILL in the middle of 1,000 concurrent publishes, on SQLite and on PostgreSQL: a real
 * `pier start` process takes publishes of 250 packages × 4 versions (small tarballs, 64 in flight,
 * in a shuffled order) and is killed after a random number of 2xx answers (1 to 900), twice per
 * backend, chosen by a seeded random printed as a diagnostic (`PIER_CRASH_SEED=<n>` replays the
 * kill points and orders). A new process on the same
 * data folder and database must then hold every acknowledged version with its tarball, have no
 * version without its tarball (every package the change feed names, every tarball downloaded and
 * checked against its integrity), have swept the temp files of the killed process's blob writes,
 * and accept publishes again (npm's retries of what got no answer: 200 when it had landed, 201
 * when not).
 */
import assert from 'node:assert/strict'
import { createHash, randomInt } from 'node:crypto'
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { after, before, describe, test, type TestContext } from 'node:test'
import { Header } from 'tar'
import { ConfigSchema } from '../../src/config/schema.js'
import { openMetaStore } from '../../src/storage/meta/open-meta-store.js'
import { addUser } from '../helpers/accounts.js'
import { plantTemp, tempName } from '../helpers/blob-temp.js'
import { spawnPier, tempDir, type PierProcess } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const PACKAGES = 250
const VERSIONS = 4
const IN_FLIGHT = 64
/** Kill points per backend; each run starts from an empty data folder and database (~10 s a run). */
const RUNS = 2
/** Largest number of 2xx answers before the kill (of PACKAGES × VERSIONS publishes). */
const MAX_KILL_AFTER = 900

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SEED = process.env.PIER_CRASH_SEED ? Number(process.env.PIER_CRASH_SEED) : randomInt(2 ** 31)

/** A publish: npm's wire body for name@version and the facts of its tarball. */
interface Pub {
  name: string
  version: string
  json: string
  tarball: Buffer
  integrity: string
}

const sha512 = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`
const id = (p: { name: string; version: string }): string => `${p.name}@${p.version}`

/** A .tgz holding only `package/package.json`, built in memory (ustar header by tar's `Header`). */
function tarballOf(pkg: Record<string, unknown>): Buffer {
  const content = Buffer.from(JSON.stringify(pkg))
  const header = Buffer.alloc(512)
  new Header({ path: 'package/package.json', mode: 0o644, size: content.length, mtime: new Date('2020-01-01T00:00:00Z'), type: 'File' }).encode(header, 0)
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512)
  return gzipSync(Buffer.concat([header, content, pad, Buffer.alloc(1024)]))
}

/** npm's publish body for name@version (docs/protocol.md §3.1) with a small tarball of its own. */
function pub(name: string, version: string): Pub {
  const pkg = { name, version, description: `${name} ${version} for the crash test` }
  const tarball = tarballOf(pkg)
  const integrity = sha512(tarball)
  const doc = {
    _id: name,
    name,
    'dist-tags': { latest: version },
    versions: { [version]: { ...pkg, _id: `${name}@${version}`, dist: { integrity, shasum: createHash('sha1').update(tarball).digest('hex') } } },
    access: null,
    _attachments: { [`${name}-${version}.tgz`]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
  }
  return { name, version, json: JSON.stringify(doc), tarball, integrity }
}

/** The URL path of a package: a scoped name's `/` as `%2f`, as npm sends it. */
const pathOf = (name: string): string => name.replace('/', '%2f')

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function bounded<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T)
  }
  await Promise.all(Array.from({ length: limit }, worker))
}

async function publish(base: string, p: Pub, token: string): Promise<number> {
  const res = await fetch(new URL(pathOf(p.name), base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}` },
    body: p.json,
  })
  // The status line left Pier after the commit: a 2xx here is an acknowledgement even if the body never arrives.
  const status = res.status
  await res.arrayBuffer().catch(() => undefined)
  return status
}

async function getJson(base: string, path: string): Promise<{ status: number; body: Obj }> {
  const res = await fetch(new URL(path, base), { headers: { accept: 'application/json' } })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Obj) }
}

/** Figures of one run, printed as diagnostics. */
interface Figures {
  backend: string
  killAfter: number
  sent: number
  acked: number
  refused: number
  tempLeftByKill: number
  /** ms from spawning the first process to its "listening" line (empty data). */
  startMs: number
  /** ms from the first publish sent to the kill. */
  publishMs: number
  /** ms from spawning the second process on the killed one's data to its "listening" line. */
  restartMs: number
  /** ms of the checks and retries after the restart. */
  verifyMs: number
  packages: number
  versions: number
}

/** Every package name the change feed holds (every write commits its change row with it). */
async function storedNames(config: Record<string, unknown>, dataDir: string): Promise<Set<string>> {
  const parsed = ConfigSchema.parse(config)
  const meta = await openMetaStore(parsed.storage.meta, join(dataDir, 'data'), dataDir)
  try {
    const names = new Set<string>()
    for (let since = 0; ; ) {
      const page = await meta.changesSince(since, 1000)
      if (page.length === 0) return names
      for (const c of page) names.add(c.name)
      since = page[page.length - 1]?.seq as number
    }
  } finally {
    await meta.close()
  }
}

/**
 * One kill point: publishes `pubs` (shuffled by `random`) into a fresh Pier, SIGKILLs it after
 * `killAfter` 2xx answers, restarts it on the same data and checks what survived.
 * @returns the run's figures (also printed as a diagnostic)
 */
async function crashRun(t: TestContext, backend: 'sqlite' | 'postgres', pubs: Pub[], killAfter: number, random: () => number): Promise<Figures> {
  const dataDir = tempDir(`pier-crash-${backend}-`)
  let database: TempDatabase | undefined
  let p1: PierProcess | undefined
  let p2: PierProcess | undefined
  try {
    const storage: Obj = { local: { path: join(dataDir, 'data') } }
    if (backend === 'postgres') {
      database = await createTempDatabase()
      storage.meta = { type: 'postgres', url: database.url }
    }
    const config = { logger: { level: 'warn' }, storage }
    const byId = new Map(pubs.map((p) => [id(p), p]))
    const order = [...pubs]
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[order[i], order[j]] = [order[j] as Pub, order[i] as Pub]
    }

    const tStart = performance.now()
    p1 = await spawnPier(config, { dataDir })
    const startMs = Math.round(performance.now() - tStart)
    const killed = p1
    const token = await addUser(p1.url, 'crash')
    const acked = new Set<string>()
    const sent = new Set<string>()
    const refused: string[] = []
    const unexpected: string[] = []
    let dead = false
    const kill = () => {
      if (dead) return
      dead = true
      killed.child.kill('SIGKILL')
    }
    const tPublish = performance.now()
    await bounded(order, IN_FLIGHT, async (p) => {
      if (dead) return
      sent.add(id(p))
      let status: number
      try {
        status = await publish(killed.url, p, token)
      } catch (e) {
        if (dead) return // cut off by the kill: no answer, outcome unknown
        throw e
      }
      if (status >= 200 && status < 300) acked.add(id(p))
      else if (status === 503) refused.push(id(p)) // shed under load: nothing promised
      else if (!dead) unexpected.push(`${id(p)}: ${status}`)
      if (acked.size >= killAfter) kill()
    })
    kill()
    const publishMs = Math.round(performance.now() - tPublish)
    assert.equal(await killed.exited, 'SIGKILL')
    assert.deepEqual(unexpected, [], 'every publish before the kill answered 2xx (or 503 when shed)')
    assert.ok(acked.size >= killAfter, `${acked.size} acknowledged, kill point ${killAfter}`)

    // The kill may or may not have caught blob writes between their temp file and the rename; plant
    // one of the killed process's (its PID is dead now) so the sweep always has something to do.
    const tmp = join(dataDir, 'data', 'blobs', '.tmp')
    const tempLeftByKill = readdirSync(tmp).length
    plantTemp(tmp, tempName(killed.child.pid as number))

    const t0 = performance.now()
    p2 = await spawnPier(config, { dataDir })
    const restartMs = Math.round(performance.now() - t0)
    const base = p2.url
    assert.deepEqual(readdirSync(tmp), [], `temp files swept at the restart (${tempLeftByKill} left by the kill, 1 planted)`)

    const tVerify = performance.now()
    // Every package the metadata holds, and every package anyone tried to publish.
    const names = await storedNames(config, dataDir)
    const sentNames = new Set([...sent].map((s) => (byId.get(s) as Pub).name))
    for (const n of names) assert.ok(sentNames.has(n), `${n} in the change feed was published`)
    const listed = new Map<string, Obj>()
    await bounded([...new Set([...sentNames, ...names])], 32, async (name) => {
      const r = await getJson(base, pathOf(name))
      if (names.has(name)) {
        assert.equal(r.status, 200, `GET ${name}: ${JSON.stringify(r.body)}`)
        for (const [v, m] of Object.entries(r.body.versions as Obj)) listed.set(`${name}@${v}`, m as Obj)
      } else {
        assert.equal(r.status, 404, `${name} has no change row, so no packument`)
      }
    })
    for (const a of acked) assert.ok(listed.has(a), `acknowledged ${a} survived the kill`)
    await bounded([...listed], 32, async ([key, m]) => {
      assert.ok(sent.has(key), `${key} was published`)
      const res = await fetch(String(m.dist.tarball))
      assert.equal(res.status, 200, `tarball of listed ${key}: ${String(m.dist.tarball)}`)
      const bytes = Buffer.from(await res.arrayBuffer())
      assert.equal(sha512(bytes), m.dist.integrity, `${key}: the tarball matches dist.integrity`)
      assert.equal(m.dist.integrity, byId.get(key)?.integrity, `${key}: it is the tarball that was sent`)
    })

    // npm retries what got no answer: 200 when it had landed, 201 when not; then a new package.
    const token2 = await addUser(base, 'after')
    const unknown = [...sent].filter((s) => !acked.has(s))
    await bounded(unknown, 16, async (s) => {
      const p = byId.get(s) as Pub
      const status = await publish(base, p, token)
      assert.equal(status, listed.has(s) ? 200 : 201, `retry of ${s} after the restart`)
    })
    const fresh = pub('crash-after-restart', '1.0.0')
    assert.equal(await publish(base, fresh, token2), 201, 'a new publish after the restart')
    const doc = await getJson(base, 'crash-after-restart')
    const res = await fetch(String(doc.body.versions['1.0.0'].dist.tarball))
    assert.equal(sha512(Buffer.from(await res.arrayBuffer())), fresh.integrity)

    const verifyMs = Math.round(performance.now() - tVerify)
    const figures: Figures = {
      backend,
      killAfter,
      sent: sent.size,
      acked: acked.size,
      refused: refused.length,
      tempLeftByKill,
      startMs,
      publishMs,
      restartMs,
      verifyMs,
      packages: names.size,
      versions: listed.size,
    }
    t.diagnostic(JSON.stringify(figures))
    return figures
  } finally {
    if (p1 && p1.child.exitCode === null && p1.child.signalCode === null) p1.child.kill('SIGKILL')
    if (p2) assert.equal(await p2.stop(), 0)
    await p1?.exited
    await database?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

void describe('SIGKILL during 1,000 concurrent publishes', () => {
  let pubs: Pub[]
  before(() => {
    pubs = []
    for (let i = 0; i < PACKAGES; i++) {
      const name = i % 5 === 0 ? `@crash/pkg-${i}` : `crash-pkg-${i}`
      for (let v = 0; v < VERSIONS; v++) pubs.push(pub(name, `1.0.${v}`))
    }
  })
  after(() => {
    pubs = []
  })

  for (const [i, backend] of (['sqlite', 'postgres'] as const).entries()) {
    void test(`${backend}: every acknowledged version survives with its tarball, no version lacks one, temp files swept`, { timeout: 240_000 }, async (t) => {
      // One stream per backend, so that either test alone replays its own kill points and orders.
      const random = seeded(SEED + i)
      t.diagnostic(`seed ${SEED} (PIER_CRASH_SEED=${SEED} replays the kill points and publish orders; not the timing)`)
      for (let run = 0; run < RUNS; run++) {
        const killAfter = 1 + Math.floor(random() * MAX_KILL_AFTER)
        await crashRun(t, backend, pubs, killAfter, random)
      }
    })
  }
})
