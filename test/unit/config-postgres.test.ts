/**
 * `storage.meta` configuration: SQLite by default, `type: postgres` with `url`, errors that name
 * the key, and environment overrides.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { loadConfigFile, removeConfigDirs, throwsConfig } from '../helpers/config.js'

const load = loadConfigFile

void describe('storage.meta configuration', () => {
  after(removeConfigDirs)

  void test('SQLite by default, keys unchanged', () => {
    const c = load({})
    assert.deepEqual(c.storage.meta, { type: 'sqlite', synchronous: 'full', max_staleness: 1000, prepared_statements: true })
    assert.deepEqual(load({ storage: { meta: { path: 'x.sqlite', synchronous: 'normal' } } }).storage.meta, {
      type: 'sqlite',
      path: 'x.sqlite',
      synchronous: 'normal',
      max_staleness: 1000,
      prepared_statements: true,
    })
  })

  void test('prepared_statements: off in a file, and from the environment', () => {
    assert.equal(load({ storage: { meta: { type: 'postgres', url: 'postgres://db/pier', prepared_statements: false } } }).storage.meta.prepared_statements, false)
    throwsConfig(() => load({ storage: { meta: { prepared_statements: 'sometimes' } } }), /storage\.meta\.prepared_statements/)
    assert.equal(load({}, { PIER_STORAGE__META__PREPARED_STATEMENTS: 'false' }).storage.meta.prepared_statements, false)
  })

  void test('postgres with url and pool_size', () => {
    const c = load({ storage: { meta: { type: 'postgres', url: 'postgres://pier:secret@db:5432/pier', pool_size: 20 } } })
    assert.equal(c.storage.meta.type, 'postgres')
    assert.equal(c.storage.meta.url, 'postgres://pier:secret@db:5432/pier')
    assert.equal(c.storage.meta.pool_size, 20)
    assert.equal(load({ storage: { meta: { type: 'postgres', url: 'postgresql://db/pier' } } }).storage.meta.url, 'postgresql://db/pier')
  })

  void test('postgres without url: the error names storage.meta.url', () => {
    throwsConfig(() => load({ storage: { meta: { type: 'postgres' } } }), /storage\.meta\.url: required when storage\.meta\.type is postgres/)
  })

  void test('a url that is not postgres://, an unknown type, a pool of one: errors name the key', () => {
    throwsConfig(() => load({ storage: { meta: { type: 'postgres', url: 'mysql://db/pier' } } }), /storage\.meta\.url: expected a postgres:\/\/ connection string/)
    throwsConfig(() => load({ storage: { meta: { type: 'mysql' } } }), /storage\.meta\.type/)
    throwsConfig(() => load({ storage: { meta: { type: 'postgres', url: 'postgres://db/pier', pool_size: 1 } } }), /storage\.meta\.pool_size/)
  })

  void test('environment overrides', () => {
    const c = load({}, { PIER_STORAGE__META__TYPE: 'postgres', PIER_STORAGE__META__URL: 'postgres://db:5432/pier', PIER_STORAGE__META__POOL_SIZE: '5' })
    assert.equal(c.storage.meta.type, 'postgres')
    assert.equal(c.storage.meta.url, 'postgres://db:5432/pier')
    assert.equal(c.storage.meta.pool_size, 5)
  })
})
