/**
 * `storage.s3` configuration: defaults, errors that name the key, and environment overrides (whose
 * names arrive lowercased, so the camelCase keys match without regard to case).
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { loadConfigFile, removeConfigDirs, throwsConfig } from '../helpers/config.js'

const load = loadConfigFile

void describe('storage.s3 configuration', () => {
  after(removeConfigDirs)

  void test('defaults: no prefix, no redirect, 300 s presigned URLs, us-east-1, virtual-host style', () => {
    const c = load({ storage: { type: 's3', s3: { bucket: 'tarballs' } } })
    assert.equal(c.storage.type, 's3')
    assert.deepEqual(c.storage.s3, { bucket: 'tarballs', prefix: '', region: 'us-east-1', forcePathStyle: false, redirect: false, expires: 300 })
  })

  void test('every key', () => {
    const s3 = {
      bucket: 'b',
      prefix: 'pier/',
      region: 'eu-west-1',
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      redirect: true,
      expires: 60,
    }
    assert.deepEqual(load({ storage: { type: 's3', s3 } }).storage.s3, s3)
  })

  void test('type s3 without a bucket names storage.s3.bucket', () => {
    throwsConfig(() => load({ storage: { type: 's3' } }), /storage\.s3\.bucket/, /required when storage\.type is s3/)
    throwsConfig(() => load({ storage: { type: 's3', s3: { prefix: 'x/' } } }), /storage\.s3\.bucket/)
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: '' } } }), /storage\.s3\.bucket/)
  })

  void test('bad values and unknown keys name their key', () => {
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: 'b', expires: 0 } } }), /storage\.s3\.expires/)
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: 'b', expires: 'soon' } } }), /storage\.s3\.expires/)
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: 'b', redirect: 'yes' } } }), /storage\.s3\.redirect/)
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: 'b', endpoint: 'not a url' } } }), /storage\.s3\.endpoint/)
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: 'b', keyPrefix: 'x' } } }), /storage\.s3\.keyPrefix/)
  })

  void test('accessKeyId and secretAccessKey come together', () => {
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: 'b', accessKeyId: 'AK' } } }), /storage\.s3\.secretAccessKey/)
    throwsConfig(() => load({ storage: { type: 's3', s3: { bucket: 'b', secretAccessKey: 'SK' } } }), /storage\.s3\.accessKeyId/)
  })

  void test('environment overrides reach the camelCase keys; numeric-looking secrets stay strings', () => {
    const c = load(
      { storage: { type: 's3', s3: { bucket: 'from-file', accessKeyId: 'file-key', secretAccessKey: 'file-secret' } } },
      {
        PIER_STORAGE__S3__BUCKET: 'from-env',
        PIER_STORAGE__S3__ACCESSKEYID: 'AKENV',
        PIER_STORAGE__S3__SECRETACCESSKEY: '12345',
        PIER_STORAGE__S3__FORCEPATHSTYLE: 'true',
        PIER_STORAGE__S3__REDIRECT: 'true',
        PIER_STORAGE__S3__EXPIRES: '60',
        pier_storage__s3__endpoint: 'http://127.0.0.1:9000',
      },
    )
    assert.deepEqual(c.storage.s3, {
      bucket: 'from-env',
      prefix: '',
      region: 'us-east-1',
      accessKeyId: 'AKENV',
      secretAccessKey: '12345',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      redirect: true,
      expires: 60,
    })
    const fromEnvOnly = load({}, { PIER_STORAGE__TYPE: 's3', PIER_STORAGE__S3__BUCKET: 'b' })
    assert.equal(fromEnvOnly.storage.type, 's3')
    assert.equal(fromEnvOnly.storage.s3?.bucket, 'b')
  })

  void test('the local default needs no s3 section', () => {
    const c = load({})
    assert.equal(c.storage.type, 'local')
    assert.equal(c.storage.s3, undefined)
  })
})
