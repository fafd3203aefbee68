/**
 * Password hashing with scrypt (RFC 7914), a memory-hard KDF from Node's own crypto.
 * Stored form: `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>`.
 *
 * Hashes imported from an htpasswd file (`pier import verdaccio`, docs/moving-from-verdaccio.md)
 * are stored as they were and accepted too, in the formats Apache's htpasswd writes (its manual,
 * "htpasswd - Manage user files for basic authentication"): bcrypt `$2y$`/`$2a$`/`$2b$`
 * (bcryptjs), `{SHA}` + base64 sha1, `$apr1$` MD5 (apache-md5) and 13-character DES crypt
 * (unix-crypt-td-js). The login that succeeds with one rehashes the password with scrypt
 * (`needsRehash`, auth-service.ts).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import aprMd5 from 'apache-md5'
import bcrypt from 'bcryptjs'
import unixCrypt from 'unix-crypt-td-js'

/** Cost parameters: N=2^15, r=8 → 32 MiB and roughly 50–100 ms per hash on this class of machine. */
const N = 1 << 15
const R = 8
const P = 1
const KEYLEN = 32

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { ...opts, maxmem: 256 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

/** Hashes a password with a fresh 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, KEYLEN, { N, r: R, p: P })
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`
}

/** The htpasswd hash formats Pier accepts as imported (see the file comment). */
export type LegacyHashKind = 'bcrypt' | 'sha1' | 'apr1' | 'crypt'

/** A 13-character DES crypt(3) hash: two salt characters and eleven of hash, from `./0-9A-Za-z`. */
const CRYPT = /^[./0-9A-Za-z]{13}$/
/** bcrypt's modular crypt form: `$2a$`, `$2b$` or `$2y$`, two cost digits, 53 characters of salt and hash. */
const BCRYPT = /^\$2[aby]\$\d{2}\$[./0-9A-Za-z]{53}$/

/**
 * Which htpasswd format a stored hash is in.
 * @returns the kind, or `undefined` for a scrypt hash of Pier's own and for anything unknown
 *   (plain text, `$1$`, `$5$`, `$6$`… are not accepted: an import skips such users)
 */
export function legacyHashKind(stored: string): LegacyHashKind | undefined {
  if (BCRYPT.test(stored)) return 'bcrypt'
  if (/^\{SHA\}[A-Za-z0-9+/]{27}=$/.test(stored)) return 'sha1'
  if (/^\$apr1\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}$/.test(stored)) return 'apr1'
  if (CRYPT.test(stored)) return 'crypt'
  return undefined
}

/** Compares two strings in constant time for equal lengths (the length itself is not secret). */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Checks a password against an htpasswd hash of `kind` (constant-time comparison of the results). */
async function verifyLegacy(password: string, stored: string, kind: LegacyHashKind): Promise<boolean> {
  switch (kind) {
    case 'bcrypt':
      // bcryptjs compares in constant time; `$2y$` is PHP's and htpasswd's name for `$2b$`.
      return bcrypt.compare(password, stored)
    case 'sha1':
      return sameText(`{SHA}${createHash('sha1').update(password, 'utf8').digest('base64')}`, stored)
    case 'apr1':
      return sameText(aprMd5(password, stored), stored)
    case 'crypt':
      return sameText(unixCrypt(password, stored.slice(0, 2)), stored)
  }
}

/**
 * Whether a stored hash should be replaced by a fresh `hashPassword` at the next successful
 * login: every imported htpasswd hash, and scrypt hashes with other cost parameters than today's.
 */
export function needsRehash(stored: string): boolean {
  const parts = stored.split('$')
  return !(parts.length === 6 && parts[0] === 'scrypt' && Number(parts[1]) === N && Number(parts[2]) === R && Number(parts[3]) === P)
}

/**
 * Checks a password against a stored hash in constant time: Pier's scrypt form, or an imported
 * htpasswd hash (`legacyHashKind`); false for malformed or unknown hashes.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const legacy = legacyHashKind(stored)
  if (legacy) return verifyLegacy(password, stored, legacy)
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, n, r, p, saltB64, hashB64] = parts as [string, string, string, string, string, string]
  const expected = Buffer.from(hashB64, 'base64')
  const actual = await scryptAsync(password, Buffer.from(saltB64, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) })
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}
