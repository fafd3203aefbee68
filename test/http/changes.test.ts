/**
 * `GET /_changes` (docs/protocol.md §6, CouchDB's `feed=normal`) over real HTTP, on SQLite and on
 * PostgreSQL: one row per committed write in commit order with the new `_rev`, `deleted` on a
 * whole-package unpublish, paging with `since`/`limit` and `last_seq`, `since=now`, the root
 * document's `update_seq`; the read gate leaves out the rows of a package the caller may not read
 * (while `last_seq` still moves past them); unsupported options are refused with 400.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { addUser } from '../helpers/accounts.js'
import { raw } from '../helpers/http.js'
import { startPier, type TestPier } from '../helpers/pier.js'
import { createTempDatabase, type TempDatabase } from '../helpers/postgres.js'
import { publishBody } from '../helpers/publish-body.js'

interface Row {
  seq: number
  id: string
  changes: { rev: string }[]
  deleted?: true
}
interface Page {
  results: Row[]
  last_seq: number
}

for (const backend of ['sqlite', 'postgres'] as const) {
  void describe(`GET /_changes: ${backend}`, () => {
    let pier: TestPier
    let database: TempDatabase | undefined
    let alice = ''
    let bob = ''
    const as = (token?: string): Record<string, string> => ({ accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) })

    const get = async (path: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const r = await raw(pier.url, path, as(token))
      return { status: r.status, body: JSON.parse(r.body.toString()) as Record<string, unknown> }
    }
    const page = async (path: string, token?: string): Promise<Page> => {
      const r = await get(path, token)
      assert.equal(r.status, 200, JSON.stringify(r.body))
      return r.body as unknown as Page
    }
    const send = async (method: string, path: string, token: string, body?: unknown): Promise<Record<string, unknown>> => {
      const r = await raw(pier.url, path, { ...as(token), 'content-type': 'application/json' }, method, body === undefined ? undefined : JSON.stringify(body))
      assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.body.toString()}`)
      return JSON.parse(r.body.toString() || '{}') as Record<string, unknown>
    }
    const revOf = async (name: string): Promise<string> => (await get(`/${name.replace('/', '%2f')}?write=true`, alice)).body._rev as string

    before(async () => {
      database = backend === 'postgres' ? await createTempDatabase() : undefined
      pier = await startPier({
        packages: {
          '@secret/*': { access: 'alice', publish: 'alice' },
          '**': { access: '$all', publish: '$authenticated' },
        },
        ...(database ? { storage: { meta: { type: 'postgres', url: database.url } } } : {}),
      })
      alice = await addUser(pier.url, 'alice')
      bob = await addUser(pier.url, 'bob')
    })
    after(async () => {
      await pier?.close()
      await database?.drop()
    })

    void test('every write in commit order with its _rev; deletions; paging; the read gate; update_seq', async () => {
      const start = (await get('/')).body.update_seq as number
      assert.equal(typeof start, 'number')
      assert.deepEqual((await page('/_changes?since=now')).results, [])
      assert.equal((await page('/_changes?since=now')).last_seq, start)

      await send('PUT', '/feed-a', alice, publishBody({ name: 'feed-a', version: '1.0.0' }).body)
      const revA1 = await revOf('feed-a')
      await send('PUT', '/@secret%2ffeed', alice, publishBody({ name: '@secret/feed', version: '1.0.0' }).body)
      const revSecret = await revOf('@secret/feed')
      await send('PUT', '/feed-b', bob, publishBody({ name: 'feed-b', version: '1.0.0' }).body)
      await send('PUT', '/-/package/feed-a/dist-tags/beta', alice, '1.0.0')
      const revA2 = await revOf('feed-a')
      const revB = await revOf('feed-b')
      await send('DELETE', `/feed-b/-rev/${revB}`, bob)

      // The owner of the private package sees all five writes, in order, with the revs the
      // packuments had after each.
      const all = await page(`/_changes?since=${start}`, alice)
      assert.deepEqual(
        all.results.map((r) => [r.id, r.deleted === true]),
        [
          ['feed-a', false],
          ['@secret/feed', false],
          ['feed-b', false],
          ['feed-a', false],
          ['feed-b', true],
        ],
      )
      assert.deepEqual(all.results[0]?.changes, [{ rev: revA1 }])
      assert.deepEqual(all.results[1]?.changes, [{ rev: revSecret }])
      assert.deepEqual(all.results[3]?.changes, [{ rev: revA2 }])
      const seqs = all.results.map((r) => r.seq)
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y))
      assert.ok(seqs.every((s) => s > start))
      assert.equal(all.last_seq, seqs.at(-1))
      assert.equal((await get('/')).body.update_seq, all.last_seq)

      // Anonymous and bob: the private package's row is left out, as if it did not exist.
      for (const token of [undefined, bob]) {
        const p = await page(`/_changes?since=${start}`, token)
        assert.deepEqual(
          p.results,
          all.results.filter((r) => r.id !== '@secret/feed'),
        )
        assert.equal(p.last_seq, all.last_seq)
      }
      // A page of only the hidden row is empty, but last_seq moves past it.
      const hidden = await page(`/_changes?since=${seqs[0]}&limit=1`)
      assert.deepEqual(hidden.results, [])
      assert.equal(hidden.last_seq, seqs[1])

      // Paging: limit rows a page, each since the last page's last_seq, ends with an empty page.
      const paged: Row[] = []
      let since = start
      for (let i = 0; i < 10; i++) {
        const p = await page(`/_changes?since=${since}&limit=2`, alice)
        assert.ok(p.results.length <= 2)
        if (p.results.length === 0) {
          assert.equal(p.last_seq, since)
          break
        }
        paged.push(...p.results)
        since = p.last_seq
      }
      assert.deepEqual(paged, all.results)
      assert.deepEqual((await page(`/_changes?since=${all.last_seq}`, alice)).results, [])
    })

    void test('unsupported options and bad numbers: 400 in npm error shape', async () => {
      for (const q of ['feed=longpoll', 'feed=continuous', 'include_docs=true', 'descending=true', 'filter=x', 'since=-1', 'since=abc', 'since=1.5', 'limit=0', 'limit=10001', 'limit=x', 'since=1&since=2']) {
        const r = await get(`/_changes?${q}`)
        assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`)
        assert.equal(typeof r.body.error, 'string', q)
      }
      for (const q of ['feed=normal', 'include_docs=false', 'since=0&limit=10000', 'since=now&limit=1']) assert.equal((await get(`/_changes?${q}`)).status, 200, q)
    })
  })
}
