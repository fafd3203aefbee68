/**
 * The disk store's temp files across processes sharing one data folder (two or three Pier nodes
 * on one PostgreSQL database, as a cluster on a shared disk runs): the one-shot commands
 * (`pier migrate`, `pier user add`, `pier token create`, `pier gc`) remove none, and `pier start`
 * removes only those of processes of this host that have exited and those older than 24 h, never
 * a live process's write in progress (another node's, or any other process's) nor a young file of
 * another host.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { deadPid, plantTemp, spawnSleeper, tempName, type Sleeper } from '../helpers/blob-temp.js'
import { run } from '../helpers/npm.js'
import { CLI, spawnPier, tempDir, type PierProcess } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'

/** The environment without `pier_*` / `npm_*` variables, which would override the config file. */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(pier|npm)_/i.test(k)))
}

void describe('blob temp files shared by several processes', () => {
  let database: TempDatabase
  let dir: string
  let configFile: string
  let config: Record<string, unknown>
  let tmp: string
  let sleeper: Sleeper | undefined
  const nodes: PierProcess[] = []

  before(async () => {
    database = await createTempDatabase()
    dir = tempDir('pier-blob-temp-')
    config = { storage: { local: { path: join(dir, 'data') }, meta: { type: 'postgres', url: database.url } } }
    // The same settings spawnPier writes, for the one-shot commands.
    configFile = join(dir, 'one-shot.json')
    writeFileSync(configFile, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, logger: { level: 'info' }, uplinks: {}, ...config }))
    tmp = join(dir, 'data', 'blobs', '.tmp')
    mkdirSync(tmp, { recursive: true })
  })
  after(async () => {
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL')
    await Promise.all(nodes.map((n) => n.exited))
    await sleeper?.stop()
    await database.drop()
    rmSync(dir, { recursive: true, force: true })
  })

  const names = (): string[] => readdirSync(tmp).sort()
  const pier = (args: string[]) => run(process.execPath, [CLI, ...args, '--config', configFile], { env: childEnv(), timeoutMs: 60_000 })
  const start = async (): Promise<PierProcess> => {
    const p = await spawnPier(config, { dataDir: dir })
    nodes.push(p)
    return p
  }

  void test('one-shot commands remove none; a start removes dead processes’ and old files only; another node’s start leaves a live node’s writes', async () => {
    sleeper = await spawnSleeper()
    const dead = deadPid()
    const liveWrite = plantTemp(tmp, tempName(sleeper.pid))
    const deadWrite = plantTemp(tmp, tempName(dead))
    const otherHost = plantTemp(tmp, tempName(dead, 'other-host.example'))
    const otherHostOld = plantTemp(tmp, tempName(sleeper.pid, 'other-host.example'), 25 * 3600_000)
    const all = names()
    assert.equal(all.length, 4)

    // One-shot commands beside the serving nodes: not one file removed, not even a dead process's.
    const migrated = await pier(['migrate'])
    assert.equal(migrated.code, 0, migrated.stderr)
    assert.deepEqual(names(), all, 'after pier migrate')
    const added = await pier(['user', 'add', 'tess', '--password', 'tess-pass-1', '--email', 'tess@example.com'])
    assert.equal(added.code, 0, added.stderr)
    assert.deepEqual(names(), all, 'after pier user add')
    const token = await pier(['token', 'create', 'tess'])
    assert.equal(token.code, 0, token.stderr)
    assert.deepEqual(names(), all, 'after pier token create')
    const gc = await pier(['gc', '--dry-run'])
    assert.equal(gc.code, 0, gc.stderr)
    assert.deepEqual(names(), all, 'after pier gc')

    // Node A starts: the dead process's file and the day-old one go; the live process's write and
    // another host's young file stay.
    const a = await start()
    assert.ok(!existsSync(deadWrite), 'a dead process’s temp file is swept at start')
    assert.ok(!existsSync(otherHostOld), 'a temp file older than 24 h is swept at start, whatever its host')
    assert.ok(existsSync(liveWrite), 'a live process’s temp file survives a start')
    assert.ok(existsSync(otherHost), 'another host’s young temp file survives a start')
    const line = a.output().split('\n').find((l) => l.includes('removed temp files of interrupted blob writes'))
    assert.ok(line, `the sweep is logged:\n${a.output()}`)
    const entry = JSON.parse(line) as Record<string, unknown>
    assert.deepEqual([entry.deadOwner, entry.expired, entry.kept], [1, 1, 2], 'counts in the log line: dead owner, expired, kept')

    // A write in progress of node A (its PID, this host); node B starts on the same folder.
    const aWrite = plantTemp(tmp, tempName(a.child.pid as number))
    const b = await start()
    assert.deepEqual(names(), [aWrite, liveWrite, otherHost].map((p) => p.slice(tmp.length + 1)).sort(), 'node B’s start leaves node A’s write and the others')
    assert.equal(await b.stop(), 0)

    // Node A crashes and the other writer exits: the next start sweeps both their files.
    a.child.kill('SIGKILL')
    assert.equal(await a.exited, 'SIGKILL')
    await sleeper.stop()
    const c = await start()
    assert.deepEqual(names(), [otherHost.slice(tmp.length + 1)], 'only the other host’s young file is left')
    assert.equal(await c.stop(), 0)
  })
})
