/**
 * Bearer tokens. A token is `pier_` + 32 random bytes (base64url); only its sha512 hex is stored,
 * which is also npm's token `key` (docs/protocol.md §1.7).
 */
import { createHash, randomBytes } from 'node:crypto'
import { BlockList, isIP } from 'node:net'

/** A new random token. */
export function newToken(): string {
  return `pier_${randomBytes(32).toString('base64url')}`
}

/** npm's token key: sha512 hex of the token. */
export function tokenKey(token: string): string {
  return createHash('sha512').update(token).digest('hex')
}

/**
 * Parses CIDR strings (`10.0.0.0/8`, `::1/128`, or a bare address) into a BlockList.
 * @throws Error naming the first invalid entry
 */
export function parseCidrs(cidrs: string[]): BlockList {
  const list = new BlockList()
  for (const c of cidrs) {
    const [addr, bits] = c.trim().split('/') as [string, string | undefined]
    const family = isIP(addr)
    if (family === 0) throw new Error(`invalid CIDR "${c}"`)
    const type = family === 4 ? 'ipv4' : 'ipv6'
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits)
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new Error(`invalid CIDR "${c}"`)
    list.addSubnet(addr, prefix, type)
  }
  return list
}

/** Whether `ip` (as Node reports it, possibly `::ffff:1.2.3.4`) is inside one of `cidrs`. */
export function ipAllowed(ip: string, cidrs: string[]): boolean {
  const list = parseCidrs(cidrs)
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip
  const family = isIP(v4)
  if (family === 0) return false
  return list.check(v4, family === 4 ? 'ipv4' : 'ipv6')
}
