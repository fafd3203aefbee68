/**
 * htpasswd hashes accepted by Pier's password check (src/auth/passwords.ts) and the htpasswd file
 * parser of `pier import` (src/ops/import/htpasswd.ts). The apr1 and crypt vectors were made with
 * other tools than the libraries Pier uses (`openssl passwd -apr1 -salt abcdefgh 'secret pw'`,
 * Python's crypt.crypt('secret', 'ab')), the bcrypt ones with bcryptjs and rewritten to `$2y$`
 * (Apache's prefix), the SHA1 one by hand: base64 of sha1('password').
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import bcrypt from 'bcryptjs'
import { hashPassword, legacyHashKind, needsRehash, verifyPassword } from '../../src/auth/passwords.js'
import { parseHtpasswd } from '../../src/ops/import/htpasswd.js'

const APR1 = '$apr1$abcdefgh$hI0fYJTl3mI2IQqENIv8//'
const CRYPT = 'abNANd1rDfiNc'
const SHA = '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g='

void describe('htpasswd hashes', () => {
  void test('each format is recognised, and nothing else is', async () => {
    const b = bcrypt.hashSync('pw', 4)
    assert.equal(legacyHashKind(b), 'bcrypt')
    assert.equal(legacyHashKind(b.replace(/^\$2b\$/, '$2y$')), 'bcrypt')
    assert.equal(legacyHashKind(b.replace(/^\$2b\$/, '$2a$')), 'bcrypt')
    assert.equal(legacyHashKind(SHA), 'sha1')
    assert.equal(legacyHashKind(APR1), 'apr1')
    assert.equal(legacyHashKind(CRYPT), 'crypt')
    for (const other of ['plaintext', '$1$abc$def', '$6$salt$hash', '{SSHA}abc', '', await hashPassword('x')]) assert.equal(legacyHashKind(other), undefined, other)
  })

  void test('the right password passes, a wrong one fails, for every format', async () => {
    const y = bcrypt.hashSync('s3cret bcrypt', 4).replace(/^\$2b\$/, '$2y$')
    const cases: [string, string][] = [
      [y, 's3cret bcrypt'],
      [SHA, 'password'],
      [APR1, 'secret pw'],
      [CRYPT, 'secret'],
    ]
    for (const [hash, pw] of cases) {
      assert.equal(await verifyPassword(pw, hash), true, hash)
      assert.equal(await verifyPassword(`${pw}x`.slice(0, 7) + 'Z', hash), false, `wrong password against ${hash}`)
      assert.equal(await verifyPassword('', hash), false)
    }
    assert.equal(await verifyPassword('anything', 'plaintext'), false, 'unknown formats never pass')
  })

  void test('imported hashes need a rehash, scrypt with today\'s costs does not', async () => {
    for (const h of [SHA, APR1, CRYPT, bcrypt.hashSync('a', 4)]) assert.equal(needsRehash(h), true)
    const ours = await hashPassword('pw')
    assert.equal(needsRehash(ours), false)
    assert.equal(needsRehash(ours.replace(/^scrypt\$32768\$/, 'scrypt$16384$')), true)
  })
})

void describe('htpasswd files', () => {
  void test('users, hashes, Verdaccio comments, blank and comment lines', () => {
    const text = [
      '# a comment',
      '',
      `alice:${APR1}`,
      `bob:${SHA}:autocreated 2024-05-01T10:20:30.000Z`,
      'carol:$6$salt$hash',
      'broken-line',
      `dave:${CRYPT}:autocreated Tue Dec 01 2026 14:00:00 GMT+0000 (Coordinated Universal Time)`,
    ].join('\r\n')
    const { entries, malformed } = parseHtpasswd(text)
    assert.deepEqual(malformed, [6])
    assert.deepEqual(
      entries.map((e) => [e.line, e.user, e.kind, e.created]),
      [
        [3, 'alice', 'apr1', undefined],
        [4, 'bob', 'sha1', '2024-05-01T10:20:30.000Z'],
        [5, 'carol', undefined, undefined],
        [7, 'dave', 'crypt', '2026-12-01T14:00:00.000Z'],
      ],
    )
    assert.equal(entries[1]?.hash, SHA)
  })
})
