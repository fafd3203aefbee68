/**
 * The pure half of `pier import` (src/registry/import.ts): the tarball check against
 * `dist.integrity` and `dist.shasum`, and `planImport`'s comparison of a source's package with
 * Pier's copy: what a first import inserts, that a second one plans nothing, and what each kind
 * of difference at the source turns into (a deprecation, a tag moved or dropped, other bytes for
 * a version Pier holds, a tag naming a version that was skipped, maintainers).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { planChanges, planImport, storedManifest, verifyTarball, type ImportedPackage, type PreparedVersion } from '../../src/registry/import.js'
import type { StoredVersion } from '../../src/registry/types.js'

const bytesOf = (v: string): Buffer => Buffer.from(`tarball of ${v}`)
const sri = (b: Buffer): string => `sha512-${createHash('sha512').update(b).digest('base64')}`
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex')

function pkgOf(versions: string[], extra: Partial<ImportedPackage> = {}, deprecated: Record<string, string> = {}): ImportedPackage {
  return {
    name: 'demo',
    versions: versions.map((v) => ({
      version: v,
      manifest: { name: 'demo', version: v, dist: { integrity: sri(bytesOf(v)), shasum: sha1(bytesOf(v)) }, ...(deprecated[v] ? { deprecated: deprecated[v] } : {}) },
      published: `2020-01-0${versions.indexOf(v) + 1}T00:00:00.000Z`,
      tarball: () => Promise.resolve(bytesOf(v)),
    })),
    distTags: { latest: versions.at(-1) as string },
    maintainers: ['alice'],
    stars: [],
    ...extra,
  }
}

/** The rows a first import would insert (what `prepareImport` builds). */
function prepared(pkg: ImportedPackage): Map<string, PreparedVersion> {
  const m = new Map<string, PreparedVersion>()
  for (const v of pkg.versions) {
    const b = bytesOf(v.version)
    const row: StoredVersion = {
      name: pkg.name,
      version: v.version,
      manifest: JSON.stringify(storedManifest(v, { integrity: sri(b), shasum: sha1(b) })),
      readme: null,
      readme_filename: null,
      integrity: sri(b),
      shasum: sha1(b),
      tarball_key: `k/${v.version}`,
      size: b.length,
      published: v.published as string,
      unpublished: null,
    }
    m.set(v.version, { row })
  }
  return m
}

const empty = { versions: [], distTags: {}, maintainers: [], stars: [] }

void describe('verifyTarball', () => {
  const b = bytesOf('1.0.0')
  void test('accepts bytes that match integrity and shasum, and returns their digests', () => {
    const r = verifyTarball(b, { integrity: sri(b), shasum: sha1(b) })
    assert.ok(!('problem' in r))
    assert.equal(r.integrity, sri(b))
    assert.equal(r.shasum, sha1(b))
    assert.ok(!('problem' in verifyTarball(b, { shasum: sha1(b).toUpperCase() })), 'a shasum alone, any case')
  })
  void test('refuses other bytes, and a manifest that gives no digest', () => {
    const other = Buffer.from('other')
    assert.match((verifyTarball(other, { integrity: sri(b) }) as { problem: string }).problem, /does not match dist\.integrity/)
    assert.match((verifyTarball(b, { integrity: sri(b), shasum: sha1(other) }) as { problem: string }).problem, /does not match dist\.shasum/)
    assert.match((verifyTarball(b, {}) as { problem: string }).problem, /neither dist\.integrity nor dist\.shasum/)
  })
})

void describe('planImport', () => {
  const src = pkgOf(['1.0.0', '1.1.0'], { distTags: { latest: '1.1.0', old: '1.0.0' } })
  const first = planImport(empty, src, prepared(src), true)
  const rows = first.insert

  void test('a first import inserts every version with its tags and maintainers; the manifest keeps the source registry fields it should', () => {
    assert.deepEqual(
      rows.map((r) => r.version),
      ['1.0.0', '1.1.0'],
    )
    assert.deepEqual(first.setTags, { latest: '1.1.0', old: '1.0.0' })
    assert.deepEqual(first.maintainers, ['alice'])
    const m = JSON.parse(rows[0]?.manifest ?? '{}') as Record<string, unknown>
    assert.equal((m.dist as Record<string, unknown>).tarball, undefined, 'Pier builds dist.tarball itself')
    assert.equal(rows[0]?.published, '2020-01-01T00:00:00.000Z')
  })

  void test('a second import of the same source plans nothing', () => {
    const again = planImport({ versions: rows, distTags: first.setTags, maintainers: ['alice'], stars: [] }, src, new Map())
    assert.equal(planChanges(again), false, JSON.stringify(again))
  })

  void test('a deprecation, a dropped tag and a star at the source are brought over; latest is never dropped', () => {
    const changed = pkgOf(['1.0.0', '1.1.0'], { distTags: { latest: '1.1.0' }, stars: ['bob'] }, { '1.0.0': 'old' })
    const p = planImport({ versions: rows, distTags: { latest: '1.1.0', old: '1.0.0', local: '1.0.0' }, maintainers: ['alice'], stars: ['carol'] }, changed, new Map())
    assert.deepEqual(
      p.replace.map((r) => [r.version, (JSON.parse(r.manifest) as { deprecated?: string }).deprecated]),
      [['1.0.0', 'old']],
    )
    assert.deepEqual(p.deleteTags.sort(), ['local', 'old'])
    assert.deepEqual(p.starsAdd, ['bob'])
    assert.deepEqual(p.starsRemove, ['carol'])
    assert.equal(p.insert.length, 0)
    const noLatest = planImport({ versions: rows, distTags: { latest: '1.1.0' }, maintainers: ['alice'], stars: [] }, { ...src, distTags: {} }, new Map())
    assert.deepEqual(noLatest.deleteTags, [])
  })

  void test('other bytes for a version Pier holds, a skipped version and its tag are reported, not written', () => {
    const other = { ...(rows[0] as StoredVersion), integrity: sri(Buffer.from('x')), shasum: sha1(Buffer.from('x')) }
    const skipped = new Map<string, PreparedVersion>([['1.1.0', { skip: 'the tarball does not match dist.integrity' }]])
    const p = planImport({ versions: [other], distTags: {}, maintainers: [], stars: [] }, src, skipped)
    assert.deepEqual(
      p.skipped.map((k) => k.version ?? `tag ${k.tag ?? ''}`),
      ['1.0.0', '1.1.0', 'tag latest', 'tag old'],
    )
    assert.equal(p.insert.length + p.replace.length, 0)
  })

  void test('a source that names no maintainer leaves a created package with none (not the importer)', () => {
    const anon = pkgOf(['1.0.0'], { maintainers: [] })
    assert.deepEqual(planImport({ ...empty, maintainers: ['pier-import'] }, anon, prepared(anon), true).maintainers, [])
    assert.equal(planImport({ ...empty, maintainers: ['dave'] }, anon, prepared(anon), false).maintainers, undefined, 'an existing package keeps its own')
  })
})
