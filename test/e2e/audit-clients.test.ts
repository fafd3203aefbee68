/**
 * Audit with the real clients (the pinned npm CLI, pnpm and yarn berry): a project depending on a
 * public package with a known advisory (`vuln-pkg`), a harmless public one (`safe-pkg`), a package
 * published to Pier itself (`our-secret-local-lib`) and one in Pier's private scope
 * (`@corp/private-thing`) is installed through Pier, then audited through Pier.
 *
 * Proven for each client: its audit reaches the advisory source (a fixture in front of an
 * upstream Pier that answers the audit endpoints itself), the advisory for `vuln-pkg` comes back
 * and the client reports it, the public names still reach the advisory source, and no audit body
 * the advisory source receives (gunzipped when gzipped) mentions the local name or the `@corp/`
 * scope anywhere. No request of any kind to the uplink names them either. Everything runs on
 * 127.0.0.1; the clients get a dead loopback HTTPS proxy, so any other registry is unreachable.
 */
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { after, before, describe, test, type TestContext } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { addUser } from '../helpers/accounts.js'
import { PNPM_CLI, sandbox as makeSandbox, timed, writePnpmrc, writeYarnrc, YARN_CLI, type Sandbox } from '../helpers/clients.js'
import { NpmClient, run, type RunResult } from '../helpers/npm.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'
import { esc, startUplinkFixture, type FixtureAnswer, type Recorded, type UplinkFixture } from '../helpers/uplink-fixture.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any


const BULK = '/-/npm/v1/security/advisories/bulk'
const AUDITS = '/-/npm/v1/security/audits'
const QUICK = '/-/npm/v1/security/audits/quick'
const AUDIT_PATHS = [BULK, AUDITS, QUICK]

const VULN = 'vuln-pkg'
const SAFE = 'safe-pkg'
const LOCAL = 'our-secret-local-lib'
const PRIVATE = '@corp/private-thing'
const DEPS = { [VULN]: '^1.0.0', [SAFE]: '^1.0.0', [LOCAL]: '^1.0.0', [PRIVATE]: '^1.0.0' }
/** Text that must never reach the advisory source. */
const SECRETS = [LOCAL, '@corp/']

const TITLE = 'Prototype pollution in vuln-pkg'
const ADVISORY = {
  id: 1001,
  url: 'https://advisories.example.com/1001',
  title: TITLE,
  severity: 'high',
  vulnerable_versions: '<2.0.0',
  cwe: ['CWE-1321'],
  cvss: { score: 7.5, vectorString: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N' },
}

/** A dead HTTPS proxy on loopback: a client trying any https registry fails instead of leaving. */
const DEAD_PROXY = 'http://127.0.0.1:9'

const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
const isAudit = (r: Recorded) => r.method === 'POST' && AUDIT_PATHS.includes(r.url.split('?')[0] ?? '')
const inflate = (body: Buffer, gzip: boolean): string => (gzip ? gunzipSync(body) : body).toString('utf8')
/** npm gzips without telling the responder; gzip data starts with 1f 8b. */
const parseAny = (body: Buffer): Obj => JSON.parse(inflate(body, body[0] === 0x1f && body[1] === 0x8b)) as Obj

/** Every `[path, version]` of `name` in an audit tree (`a > b > name`, as npm's reports write paths). */
function findInTree(node: Obj, name: string, path: string[] = []): { version: string; path: string }[] {
  const out: { version: string; path: string }[] = []
  const deps = (node.dependencies ?? {}) as Obj
  for (const [n, dep] of Object.entries(deps)) {
    const here = [...path, n]
    if (n === name && typeof (dep as Obj).version === 'string') out.push({ version: (dep as Obj).version as string, path: here.join('>') })
    out.push(...findInTree(dep as Obj, name, here))
  }
  return out
}

/** The advisory source: the bulk answer, or npm's classic report for a tree. */
function answerAudit(url: string, body: Buffer): FixtureAnswer {
  const doc = parseAny(body)
  if (url.startsWith(BULK)) return { status: 200, body: JSON.stringify(VULN in doc ? { [VULN]: [ADVISORY] } : {}) }
  const found = findInTree(doc, VULN)
  const advisories: Obj = {}
  if (found.length > 0) {
    advisories[String(ADVISORY.id)] = {
      ...ADVISORY,
      module_name: VULN,
      github_advisory_id: 'GHSA-0000-0000-1001',
      cves: [],
      access: 'public',
      patched_versions: '>=2.0.0',
      overview: 'A crafted object pollutes Object.prototype.',
      recommendation: 'Upgrade to version 2.0.0 or later',
      references: '- https://advisories.example.com/1001',
      created: '2024-01-01T00:00:00.000Z',
      updated: '2024-01-01T00:00:00.000Z',
      deleted: null,
      findings: [...new Set(found.map((f) => f.version))].map((version) => ({ version, paths: found.filter((f) => f.version === version).map((f) => f.path) })),
    }
  }
  const names = new Set<string>()
  const walk = (n: Obj) => {
    for (const [k, d] of Object.entries((n.dependencies ?? {}) as Obj)) {
      names.add(k)
      walk(d as Obj)
    }
  }
  walk(doc)
  return {
    status: 200,
    body: JSON.stringify({
      actions: [],
      advisories,
      muted: [],
      metadata: {
        vulnerabilities: { info: 0, low: 0, moderate: 0, high: found.length > 0 ? 1 : 0, critical: 0 },
        dependencies: names.size,
        devDependencies: 0,
        optionalDependencies: 0,
        totalDependencies: names.size,
      },
    }),
  }
}

/** Publishes `pkg` over HTTP as npm does. */
async function publish(base: string, pkg: Record<string, unknown>, token: string): Promise<void> {
  const res = await fetch(new URL(esc(String(pkg.name)), base), {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(publishBody(pkg).body),
  })
  assert.equal(res.status, 201, await res.text())
}

/** Parses a client's JSON output, failing with the whole output when it is not JSON. */
function json(text: string, r: RunResult, what: string): Obj {
  try {
    return JSON.parse(text) as Obj
  } catch {
    assert.fail(`${what} printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
}

describe('audit with npm, pnpm and yarn berry: the advisory comes back, local names never leave', { timeout: 300_000 }, () => {
  let upstream: TestPier
  let fixture: UplinkFixture
  let pier: TestPier
  const temps: string[] = []

  before(async () => {
    upstream = await startPier()
    const upToken = await addUser(upstream.url, 'public-publisher')
    for (const name of [VULN, SAFE]) await publish(upstream.url, { name, version: '1.0.0' }, upToken)
    fixture = await startUplinkFixture(upstream.url)
    fixture.respond = (method, url) => (method === 'POST' && AUDIT_PATHS.includes(url.split('?')[0] ?? '') ? (body) => answerAudit(url, body) : undefined)
    pier = await startPier({ uplinks: { up: { url: fixture.url } }, private_scopes: ['@corp'] })
    const token = await addUser(pier.url, 'insider')
    for (const name of [LOCAL, PRIVATE]) await publish(pier.url, { name, version: '1.0.0' }, token)
  })

  after(async () => {
    await pier?.close()
    await fixture?.close()
    await upstream?.close()
    for (const dir of temps) rmSync(dir, { recursive: true, force: true })
  })

  /**
   * The audit requests the fixture got since `from`: at least one, on the expected endpoints, each
   * naming the public packages and neither the local name nor `@corp/` (raw text, inflated).
   * No other request to the uplink names them either.
   */
  function assertAuditRequests(t: TestContext, from: number, endpoints: string[]): void {
    const all = fixture.requests.slice(from)
    const audits = all.filter(isAudit)
    t.diagnostic(`audit requests: ${audits.map((r) => `${r.method} ${r.url}${r.headers['content-encoding'] ? ` (${String(r.headers['content-encoding'])})` : ''}`).join(', ') || 'none'}`)
    assert.ok(audits.length > 0, `no audit request reached the advisory source; uplink requests: ${all.map((r) => `${r.method} ${r.url}`).join(', ')}`)
    assert.deepEqual([...new Set(audits.map((r) => r.url.split('?')[0]))].sort(), [...endpoints].sort())
    for (const r of audits) {
      assert.ok(r.body, 'the fixture recorded the body')
      const text = inflate(r.body, r.headers['content-encoding'] === 'gzip')
      for (const secret of SECRETS) assert.ok(!text.includes(secret), `${r.url} carried "${secret}" to the advisory source:\n${text}`)
      for (const pub of [VULN, SAFE]) assert.ok(text.includes(`"${pub}"`), `${r.url} lost the public name ${pub}:\n${text}`)
    }
    for (const r of all) {
      const url = decodeURIComponent(r.url)
      for (const secret of SECRETS) assert.ok(!url.includes(secret), `the uplink was asked ${r.method} ${r.url}`)
    }
  }

  /** A fresh client sandbox (helpers/clients.ts) with a project depending on DEPS. */
  function sandbox(client: string): Sandbox {
    const box = makeSandbox(`audit-${client}`, pier.url, DEPS)
    temps.push(box.home)
    return box
  }

  test('npm audit --json reports the advisory; the bulk body it sends on has no local name', async (t) => {
    const npm = new NpmClient(pier.url)
    temps.push(npm.home)
    const env = { npm_config_https_proxy: DEAD_PROXY, npm_config_noproxy: '127.0.0.1' }
    const project = npm.project(DEPS)
    ok(await timed(t, 'npm install', () => npm.npm(['install'], { cwd: project, env })), 'npm install')
    const from = fixture.requests.length
    const r = await timed(t, 'npm audit', () => npm.npm(['audit', '--json'], { cwd: project, env }))
    assert.notEqual(r.code, 0, 'npm audit exits non-zero when it finds a vulnerability')
    const report = json(r.stdout, r, 'npm audit --json')
    const vuln = report.vulnerabilities?.[VULN] as Obj | undefined
    assert.ok(vuln, `npm audit reports no vulnerability of ${VULN}:\n${r.stdout}`)
    assert.equal(vuln.severity, 'high')
    assert.ok(
      (vuln.via as unknown[]).some((v) => typeof v === 'object' && (v as Obj).source === ADVISORY.id && (v as Obj).title === TITLE && (v as Obj).url === ADVISORY.url),
      `the advisory is not among the causes: ${JSON.stringify(vuln.via)}`,
    )
    assert.deepEqual(Object.keys(report.vulnerabilities as Obj), [VULN])
    assertAuditRequests(t, from, [BULK])
    const bulk = fixture.requests.slice(from).filter(isAudit)
    for (const b of bulk) assert.equal(b.headers['content-encoding'], 'gzip', 'npm gzips its bulk body and Pier re-encodes it the same way')
  })

  test('pnpm audit --json reports the advisory; the tree it sends on has no local name', async (t) => {
    const box = sandbox('pnpm')
    writePnpmrc(box, pier.url, DEAD_PROXY)
    const pnpm = (args: string[]) => run(process.execPath, [PNPM_CLI, ...args], { cwd: box.project, env: box.env })
    const version = await pnpm(['--version'])
    ok(version, 'pnpm --version')
    t.diagnostic(`pnpm ${version.stdout.trim()}`)
    ok(await timed(t, 'pnpm install', () => pnpm(['install', '--no-frozen-lockfile', '--reporter=append-only', `--registry=${pier.url}`])), 'pnpm install')
    const from = fixture.requests.length
    const r = await timed(t, 'pnpm audit', () => pnpm(['audit', '--json', `--registry=${pier.url}`]))
    const report = json(r.stdout, r, 'pnpm audit --json')
    const advisory = report.advisories?.[String(ADVISORY.id)] as Obj | undefined
    assert.ok(advisory, `pnpm audit reports no advisory ${ADVISORY.id} (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
    assert.equal(advisory.title, TITLE)
    assert.equal(advisory.module_name, VULN)
    assert.equal(report.metadata?.vulnerabilities?.high, 1)
    assert.notEqual(r.code, 0, 'pnpm audit exits non-zero when it finds a vulnerability')
    assertAuditRequests(t, from, [AUDITS])
  })

  test('yarn npm audit --json reports the advisory; the bulk body it sends on has no local name', async (t) => {
    const box = sandbox('yarn')
    const registry = pier.url.replace(/\/$/, '')
    const env = writeYarnrc(box, registry, DEAD_PROXY)
    const yarn = (args: string[]) => run(process.execPath, [YARN_CLI, ...args], { cwd: box.project, env })
    const version = await yarn(['--version'])
    ok(version, 'yarn --version')
    t.diagnostic(`yarn ${version.stdout.trim()}`)
    ok(await timed(t, 'yarn install', () => yarn(['install'])), 'yarn install')
    const from = fixture.requests.length
    const r = await timed(t, 'yarn npm audit', () => yarn(['npm', 'audit', '--all', '--recursive', '--json']))
    assert.notEqual(r.code, 0, `yarn npm audit exits non-zero when it finds a vulnerability:\n${r.stdout}\n${r.stderr}`)
    // One JSON object per line, one line per (package, advisory).
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => json(l, r, 'yarn npm audit --json'))
    const hit = lines.find((l) => l.value === VULN && l.children?.ID === ADVISORY.id)
    assert.ok(hit, `yarn npm audit reports no advisory ${ADVISORY.id} for ${VULN}:\n${r.stdout}`)
    assert.equal(hit.children.Issue, TITLE)
    assert.equal(hit.children.Severity, 'high')
    assert.equal(lines.length, 1, `only ${VULN} is reported:\n${r.stdout}`)
    assertAuditRequests(t, from, [BULK])
  })
})
