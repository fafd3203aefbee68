/**
 * The render cache (src/registry/render-cache.ts): a write's invalidation drops the package's
 * rendered bodies of older revisions at once (the soak bench found them filling the cache), and
 * leaves every other package's alone; the serialised-manifest cache renders once per key.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { RenderCache, manifestKey } from '../../src/registry/render-cache.js'
import { renderBody, renderKey } from '../../src/registry/render.js'

const cache = (): RenderCache => new RenderCache({ maxStateBytes: 1 << 20, maxBodyBytes: 1 << 20 })

void describe('render cache', () => {
  void test('invalidating a package drops its bodies, of every revision and variant, and only its own', async () => {
    const c = cache()
    const keys: string[] = []
    for (const [name, rev, abbreviated] of [
      ['a', '1-aa', false],
      ['a', '1-aa', true],
      ['a', '2-bb', false],
      ['@s/a', '1-cc', false],
      ['ab', '1-dd', false],
    ] as const) {
      const key = renderKey(name, rev, abbreviated, 'http://h')
      keys.push(key)
      const b = await c.body(key, () => renderBody({ name, rev }, name, rev, abbreviated, 'http://h', Date.now()))
      assert.ok(b)
    }
    assert.equal(c.sizes().packument_bodies.entries, 5)
    c.invalidate('a')
    assert.deepEqual(
      keys.map((k) => c.peekBody(k) !== undefined),
      [false, false, false, true, true],
    )
    assert.equal(c.sizes().packument_bodies.entries, 2)
    // A body rendered after the write is kept and dropped by the next one.
    const k = renderKey('a', '3-ee', false, 'http://h')
    await c.body(k, () => renderBody({ name: 'a' }, 'a', '3-ee', false, 'http://h', Date.now()))
    assert.ok(c.peekBody(k))
    c.invalidate('a')
    assert.equal(c.peekBody(k), undefined)
  })

  void test('a serialised manifest is made once per key; undefined is not cached', () => {
    const c = cache()
    let made = 0
    const key = manifestKey('a', '1-aa', '1.0.0', 'http://h')
    const render = (): Buffer => (made++, Buffer.from('{}'))
    assert.equal(c.manifest(key, render)?.toString(), '{}')
    assert.equal(c.manifest(key, render)?.toString(), '{}')
    assert.equal(made, 1)
    let missing = 0
    assert.equal(c.manifest(manifestKey('a', '1-aa', '9.9.9', 'http://h'), () => void missing++), undefined)
    assert.equal(c.manifest(manifestKey('a', '1-aa', '9.9.9', 'http://h'), () => void missing++), undefined)
    assert.equal(missing, 2)
  })
})
