/**
 * planPublish: the checks on npm's publish body (docs/protocol.md §3.1), with real tarballs.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { RegistryError } from '../../src/registry/errors.js'
import { planPublish } from '../../src/registry/publish.js'
import { publishBody } from '../helpers/publish-body.js'

const PKG = { name: 'plan-me', version: '1.0.0', description: 'a package', main: 'index.js' }

/** Asserts a 400 (BAD_REQUEST) whose message matches `re`. */
async function rejects400(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof RegistryError, `expected a RegistryError, got ${String(e)}`)
    assert.equal(e.code, 'BAD_REQUEST')
    assert.match(e.message, re)
    return true
  })
}

void describe('planPublish', () => {
  void test('accepts npm’s body and recomputes dist', async () => {
    const { body, integrity, shasum, tarball } = publishBody(PKG, { files: { 'index.js': 'module.exports = 1\n' }, readme: 'Hello' })
    const plan = await planPublish(body, 'plan-me')
    assert.equal(plan.name, 'plan-me')
    assert.equal(plan.version, '1.0.0')
    assert.equal(plan.integrity, integrity)
    assert.equal(plan.shasum, shasum)
    assert.deepEqual(plan.tarball, tarball)
    assert.deepEqual(plan.tags, ['latest'])
    assert.equal(plan.access, null)
    assert.equal(plan.readme, 'Hello')
    assert.equal(plan.readmeFilename, 'README.md')
    assert.equal(plan.manifest.readme, undefined, 'readme is stored apart from the manifest')
    assert.equal(plan.manifest._id, undefined, '_id is server-owned')
    assert.equal(plan.manifest.dist.tarball, undefined, 'the client tarball URL is dropped')
    assert.equal(plan.manifest.dist.integrity, integrity)
    assert.equal(plan.manifest.dist.shasum, shasum)
    assert.equal(plan.manifest.dist.fileCount, 3)
    assert.equal(plan.manifest._hasShrinkwrap, false)
    assert.equal(plan.manifest.main, 'index.js')
  })

  void test('scoped packages: the full-name (npm) and unscoped attachment keys are both accepted', async () => {
    const pkg = { name: '@scope/plan-me', version: '2.0.0' }
    const full = publishBody(pkg)
    assert.ok('@scope/plan-me-2.0.0.tgz' in full.body._attachments)
    assert.equal((await planPublish(full.body, '@scope/plan-me')).version, '2.0.0')

    const short = publishBody(pkg)
    const att = short.body._attachments['@scope/plan-me-2.0.0.tgz']
    short.body._attachments = { 'plan-me-2.0.0.tgz': att as NonNullable<typeof att> }
    assert.equal((await planPublish(short.body, '@scope/plan-me')).integrity, short.integrity)
  })

  void test('--tag: only the named tag, which must not be a semver range', async () => {
    assert.deepEqual((await planPublish(publishBody(PKG, { tag: 'beta' }).body, 'plan-me')).tags, ['beta'])
    await rejects400(planPublish(publishBody(PKG, { tag: '1.x' }).body, 'plan-me'), /Tag "1\.x" is a semver range/)
    await rejects400(planPublish(publishBody(PKG, { tag: '^1.0.0' }).body, 'plan-me'), /semver range/)
  })

  void test('exactly one version', async () => {
    const two = publishBody(PKG)
    two.body.versions['1.0.1'] = { ...two.body.versions['1.0.0'], version: '1.0.1' }
    await rejects400(planPublish(two.body, 'plan-me'), /exactly one version/)
    const none = publishBody(PKG)
    none.body.versions = {}
    await rejects400(planPublish(none.body, 'plan-me'), /exactly one version/)
  })

  void test('the name in the body must match the URL', async () => {
    await rejects400(planPublish(publishBody(PKG).body, 'other-name'), /does not match the URL \(other-name\)/)
  })

  void test('invalid names and versions are refused', async () => {
    await rejects400(planPublish(publishBody({ name: 'Upper-Case', version: '1.0.0' }).body, 'Upper-Case'), /Invalid package name "Upper-Case"/)
    await rejects400(planPublish(publishBody({ name: '.hidden', version: '1.0.0' }).body, '.hidden'), /Invalid package name "\.hidden"/)
    await rejects400(planPublish(publishBody({ name: 'plan-me', version: '1.0' }).body, 'plan-me'), /Invalid version "1\.0"/)
    await rejects400(planPublish(publishBody({ name: 'plan-me', version: 'v1.0.0' }).body, 'plan-me'), /Invalid version "v1\.0\.0"/)
  })

  void test('the version key must match the manifest', async () => {
    const b = publishBody(PKG)
    b.body.versions = { '1.0.1': b.body.versions['1.0.0'] as Record<string, unknown> }
    await rejects400(planPublish(b.body, 'plan-me'), /manifest's version \(1\.0\.0\) does not match "1\.0\.1"/)
  })

  void test('attachment missing or misnamed', async () => {
    const missing = publishBody(PKG)
    delete (missing.body as Record<string, unknown>)._attachments
    await rejects400(planPublish(missing.body, 'plan-me'), /Missing "_attachments"/)

    const empty = publishBody(PKG)
    empty.body._attachments = {}
    await rejects400(planPublish(empty.body, 'plan-me'), /exactly one \.tgz attachment/)

    const misnamed = publishBody(PKG)
    const att = misnamed.body._attachments['plan-me-1.0.0.tgz']
    misnamed.body._attachments = { 'plan-me-9.9.9.tgz': att as NonNullable<typeof att> }
    await rejects400(planPublish(misnamed.body, 'plan-me'), /Attachment "plan-me-9\.9\.9\.tgz" does not match plan-me-1\.0\.0\.tgz/)

    const noData = publishBody(PKG)
    ;(noData.body._attachments['plan-me-1.0.0.tgz'] as Record<string, unknown>).data = undefined
    await rejects400(planPublish(noData.body, 'plan-me'), /has no base64 "data"/)
  })

  void test('length mismatch', async () => {
    const b = publishBody(PKG, { tamper: { length: 3 } })
    await rejects400(planPublish(b.body, 'plan-me'), new RegExp(`is ${b.tarball.length} bytes, but its "length" says 3`))
  })

  void test('integrity mismatch', async () => {
    const other = publishBody({ ...PKG, description: 'something else' })
    const b = publishBody(PKG, { tamper: { integrity: other.integrity } })
    await rejects400(planPublish(b.body, 'plan-me'), /does not match dist\.integrity/)
  })

  void test('shasum mismatch', async () => {
    const b = publishBody(PKG, { tamper: { shasum: 'a'.repeat(40) } })
    await rejects400(planPublish(b.body, 'plan-me'), new RegExp(`sha1 \\(${b.shasum}\\) does not match dist\\.shasum \\(a{40}\\)`))
  })

  void test('neither integrity nor shasum', async () => {
    const b = publishBody(PKG)
    const m = b.body.versions['1.0.0'] as { dist: Record<string, unknown> }
    m.dist = { tarball: 'http://x.example/plan-me/-/plan-me-1.0.0.tgz' }
    await rejects400(planPublish(b.body, 'plan-me'), /neither dist\.integrity nor dist\.shasum/)
  })

  void test('manifest confusion: the tarball’s package.json must say the same name and version', async () => {
    const wrongVersion = publishBody(PKG, { tamper: { tarballPackageJson: { ...PKG, version: '6.6.6' } } })
    await rejects400(planPublish(wrongVersion.body, 'plan-me'), /Manifest confusion: the tarball's package.json says plan-me@6\.6\.6/)
    const wrongName = publishBody(PKG, { tamper: { tarballPackageJson: { ...PKG, name: 'evil-pkg' } } })
    await rejects400(planPublish(wrongName.body, 'plan-me'), /Manifest confusion: the tarball's package.json says evil-pkg@1\.0\.0, but the manifest says plan-me@1\.0\.0/)
  })

  void test('attachment data that is not a gzipped tarball', async () => {
    const b = publishBody(PKG)
    const junk = Buffer.from('definitely not a tarball')
    const att = b.body._attachments['plan-me-1.0.0.tgz'] as { data: string; length: number }
    att.data = junk.toString('base64')
    att.length = junk.length
    const m = b.body.versions['1.0.0'] as { dist: Record<string, unknown> }
    m.dist = { shasum: (await import('node:crypto')).createHash('sha1').update(junk).digest('hex') }
    await rejects400(planPublish(b.body, 'plan-me'), /not gzip data/)
  })

  void test('restricted access on an unscoped package is refused', async () => {
    await rejects400(planPublish(publishBody(PKG, { access: 'restricted' }).body, 'plan-me'), /Unscoped packages cannot be restricted/)
    assert.equal((await planPublish(publishBody({ name: '@s/plan-me', version: '1.0.0' }, { access: 'restricted' }).body, '@s/plan-me')).access, 'restricted')
  })
})
