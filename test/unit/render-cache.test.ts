/**
 * The render cache (src/registry/render-cache.ts): a write's invalidation drops the package's
 * rendered bodies of older revisions at once (the soak bench found them filling the cache), and
 * leaves every other package's alone; the serialised-manifest cache renders once per key.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { RenderCache, manifestKey } from '../../src/registry/render-cache.js'
import { renderBody, renderKey } from '../../src/registry/render.js'
import type { StoredPackument } from '../../src/registry/types.js'

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

  void test('an expired package state is kept when `unchanged` says so, and read again when not', async () => {
    // lru-cache reads a start time of 0 as none: the clock starts later.
    let t = 10_000
    const c = new RenderCache({ maxStateBytes: 1 << 20, maxBodyBytes: 1 << 20, stateTtlMs: 1000, clock: { now: () => t } })
    let loads = 0
    const state = (rev: number): StoredPackument => ({
      pkg: { name: 'a', rev_seq: rev, rev_hash: 'h', created: '2026-01-01T00:00:00.000Z', modified: '2026-01-01T00:00:00.000Z' },
      versions: [],
      distTags: {},
      maintainers: [],
      stars: [],
    })
    let stored = state(1)
    const load = async (): Promise<StoredPackument> => {
      loads++
      return stored
    }
    const checks: (StoredPackument | null)[] = []
    const unchanged = async (cached: StoredPackument | null): Promise<boolean> => {
      checks.push(cached)
      return cached?.pkg.rev_seq === stored.pkg.rev_seq
    }
    const first = await c.state('a', load, unchanged)
    assert.equal(loads, 1)
    assert.equal(c.peekState('a'), first)
    t = 11_500
    // Expired: the fast path's peek misses it, the next read revalidates it and keeps it.
    assert.equal(c.peekState('a'), undefined)
    assert.equal(await c.state('a', load, unchanged), first)
    assert.deepEqual([loads, checks.length], [1, 1])
    assert.equal(checks[0], first)
    assert.equal(c.peekState('a'), first, 'fresh again for another period')
    // Another node wrote: the revalidation fails and the state is read whole.
    stored = state(2)
    t = 13_000
    const second = await c.state('a', load, unchanged)
    assert.deepEqual([loads, second?.pkg.rev_seq], [2, 2])
    // Without `unchanged` (one node, or a caller that cannot tell), an expired state is read again.
    t = 14_500
    await c.state('a', load)
    assert.equal(loads, 3)
    // An invalidated state has nothing to revalidate: it is read whole.
    c.invalidate('a')
    await c.state('a', load, unchanged)
    assert.equal(loads, 4)
  })
})
