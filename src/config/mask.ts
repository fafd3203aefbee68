/**
 * Masks secrets in a configuration before it is shown (`pier config`): the values of secret keys
 * (`storage.s3.secretAccessKey`, `storage.s3.accessKeyId`, an uplink's `auth.token`, any key named
 * like a password, secret or token) and the password inside URLs
 * (`postgres://pier:secret@db.example.com/pier` → `postgres://pier:****@db.example.com/pier`).
 */
import { isMapping, type KeyPath } from './rc.js'

/** What a masked value is shown as. */
export const MASK = '****'

/** Keys masked by name, lowercased, besides those ending in password/passwd/secret/token. */
const SECRET_KEYS = new Set(['secretaccesskey', 'accesskeyid'])

/**
 * Whether a key's value is secret: `secretAccessKey`, `accessKeyId`, or a name ending in
 * `password`, `passwd`, `secret` or `token` in any case (`token`, `client_secret`, `authToken`;
 * not `token_env`, which names a variable).
 */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase()) || /(password|passwd|secret|token)$/i.test(key)
}

/**
 * Masks the password of a URL's user information (`scheme://user:password@host…` →
 * `scheme://user:****@host…`); other strings, and URLs without a password, are returned unchanged.
 * The user information ends at the authority's last `@` (a password may hold a raw `@`).
 */
export function maskUrl(s: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i.exec(s)
  if (!m?.[1] || m[2] === undefined) return s
  const colon = m[2].indexOf(':')
  if (colon < 0 || colon === m[2].length - 1) return s
  return `${m[1]}${m[2].slice(0, colon)}:${MASK}@${s.slice(m[0].length)}`
}

/**
 * The value at `path` as it may be shown: `MASK` when any key of `path` is secret (`isSecretKey`;
 * a secret mapping is masked whole), else `value` with `maskUrl` applied to every string in it.
 * @returns a masked copy; `value` is not changed
 */
export function maskValue(path: KeyPath, value: unknown): unknown {
  if (value === undefined || value === null) return value
  if (path.some((k) => isSecretKey(k))) return MASK
  if (typeof value === 'string') return maskUrl(value)
  if (Array.isArray(value)) return value.map((v) => maskValue(path, v))
  if (isMapping(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskValue([...path, k], v)]))
  return value
}

/**
 * A copy of a configuration (or any part of it) with secrets masked (`maskValue` from the top).
 * @returns the same shape, with secret values replaced by `MASK`
 */
export function maskConfig<T>(config: T): T {
  return maskValue([], config) as T
}
