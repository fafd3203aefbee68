/**
 * Package URL parsing (docs/protocol.md §0.1): every spelling of a scoped name and every tail.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parsePackagePath, parsePackageSubpath } from '../../src/http/package-path.js'

void describe('parsePackagePath', () => {
  void test('unscoped name', () => {
    assert.deepEqual(parsePackagePath('/lodash'), { kind: 'packument', name: 'lodash' })
    assert.deepEqual(parsePackagePath('/lodash/'), { kind: 'packument', name: 'lodash' })
  })

  void test('every spelling of a scoped name', () => {
    for (const p of ['/@s%2fn', '/@s%2Fn', '/@s/n', '/%40s%2fn', '/%40s%2Fn', '/%40s/n']) {
      assert.deepEqual(parsePackagePath(p), { kind: 'packument', name: '@s/n' }, p)
    }
  })

  void test('version and dist-tag tails', () => {
    assert.deepEqual(parsePackagePath('/n/1.0.0'), { kind: 'manifest', name: 'n', spec: '1.0.0' })
    assert.deepEqual(parsePackagePath('/n/latest'), { kind: 'manifest', name: 'n', spec: 'latest' })
    assert.deepEqual(parsePackagePath('/@s%2fn/1.0.0'), { kind: 'manifest', name: '@s/n', spec: '1.0.0' })
    assert.deepEqual(parsePackagePath('/@s/n/latest'), { kind: 'manifest', name: '@s/n', spec: 'latest' })
  })

  void test('tarball tails', () => {
    assert.deepEqual(parsePackagePath('/n/-/n-1.0.0.tgz'), { kind: 'tarball', name: 'n', file: 'n-1.0.0.tgz' })
    for (const p of ['/@s/n/-/n-1.0.0.tgz', '/@s%2fn/-/n-1.0.0.tgz', '/@s%2Fn/-/n-1.0.0.tgz', '/%40s%2fn/-/n-1.0.0.tgz']) {
      assert.deepEqual(parsePackagePath(p), { kind: 'tarball', name: '@s/n', file: 'n-1.0.0.tgz' }, p)
    }
  })

  void test('-rev tails', () => {
    assert.deepEqual(parsePackagePath('/n/-rev/3-abc'), { kind: 'rev', name: 'n', rev: '3-abc' })
    assert.deepEqual(parsePackagePath('/@s%2fn/-rev/3-abc'), { kind: 'rev', name: '@s/n', rev: '3-abc' })
    assert.deepEqual(parsePackagePath('/n/-/n-1.0.0.tgz/-rev/3-abc'), { kind: 'tarball-rev', name: 'n', file: 'n-1.0.0.tgz', rev: '3-abc' })
    assert.deepEqual(parsePackagePath('/@s/n/-/n-1.0.0.tgz/-rev/3-abc'), {
      kind: 'tarball-rev',
      name: '@s/n',
      file: 'n-1.0.0.tgz',
      rev: '3-abc',
    })
  })

  void test('bad percent-encodings → undefined', () => {
    for (const p of ['/%zz', '/n%', '/@s%2', '/%E0%A4%A', '/n/%ff', '/@s/%c3%28']) {
      assert.equal(parsePackagePath(p), undefined, p)
    }
  })

  void test('paths that cannot address a package → undefined', () => {
    for (const p of [
      '/',
      '',
      '/@s', // scope without name
      '/@s/', // scope with empty name
      '/n/a/b', // unknown two-segment tail
      '/n/-', // bare dash
      '/n/-rev', // -rev without a rev
      '/n/-/n-1.0.0.zip', // not a .tgz
      '/n/-/n-1.0.0.tgz/extra',
      '/n/-/n-1.0.0.tgz/-rev/1-a/more',
      '/has space',
      '/@s/n/x/y/z/w',
    ]) {
      assert.equal(parsePackagePath(p), undefined, JSON.stringify(p))
    }
  })
})

void describe('parsePackageSubpath', () => {
  void test('names in /-/package/<name>/dist-tags[/<tag>]', () => {
    assert.deepEqual(parsePackageSubpath('n/dist-tags'), { name: 'n', rest: ['dist-tags'] })
    assert.deepEqual(parsePackageSubpath('@s%2fn/dist-tags/beta'), { name: '@s/n', rest: ['dist-tags', 'beta'] })
    assert.deepEqual(parsePackageSubpath('@s/n/dist-tags'), { name: '@s/n', rest: ['dist-tags'] })
    assert.deepEqual(parsePackageSubpath('%40s%2Fn/dist-tags/next%2Fone'), { name: '@s/n', rest: ['dist-tags', 'next/one'] })
  })

  void test('bad encodings and bad names → undefined', () => {
    assert.equal(parsePackageSubpath('%zz/dist-tags'), undefined)
    assert.equal(parsePackageSubpath('n/dist-tags/%E0%A4%A'), undefined)
    assert.equal(parsePackageSubpath('@s'), undefined)
  })
})
