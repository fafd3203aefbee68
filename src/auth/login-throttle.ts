/**
 * Limits password guessing: failed logins (the legacy CouchDB login, Basic credentials, a token
 * request with a wrong password) are counted per user name and per client address over a sliding
 * window; once either count reaches the limit, further attempts for that name or from that address
 * are refused with 429 and `Retry-After` (RFC 6585 §4) before any password is checked, until the
 * oldest counted failure leaves the window. Sign-ups are counted per address the same way.
 *
 * Per process, in bounded LRU maps (an attacker cycling names or addresses evicts the oldest
 * counters, never grows memory): with several nodes behind a balancer the effective limit is
 * per node, which still bounds guessing to a small multiple of the limit.
 */
import { LRUCache } from 'lru-cache'
import { RegistryError } from '../registry/errors.js'

/** Limits (`auth.rate_limit`). */
export interface ThrottleOptions {
  /** Failures per name, and per address, within `windowMs` before attempts are refused. */
  maxFailures: number
  /** Sign-ups per address within `windowMs`; 0: no limit. */
  maxSignups: number
  /** ms */
  windowMs: number
  /** Clock, ms since the epoch. */
  now?: () => number
}

/** Default limits: 10 failures per 15 minutes; sign-ups not limited. */
export const DEFAULT_THROTTLE: ThrottleOptions = { maxFailures: 10, maxSignups: 0, windowMs: 15 * 60_000 }

/** Counters of failed logins and sign-ups. */
export class LoginThrottle {
  /** Key (`u:<name>`, `a:<address>`, `s:<address>`) → times of the events in the window, oldest first. */
  private readonly events = new LRUCache<string, number[]>({ max: 100_000 })
  private readonly now: () => number

  constructor(private readonly opts: ThrottleOptions = DEFAULT_THROTTLE) {
    this.now = opts.now ?? Date.now
  }

  /**
   * Refuses an attempt for `name` from `ip` when either has reached the limit.
   * @throws RegistryError TOO_MANY_REQUESTS (429) with `retryAfter` seconds
   */
  check(name: string, ip: string | undefined): void {
    const keys = ip === undefined ? [`u:${name}`] : [`u:${name}`, `a:${ip}`]
    this.refuseOver(keys, this.opts.maxFailures, 'Too many failed logins; try again later.')
  }

  /** Counts one failed attempt for `name` from `ip`. */
  failed(name: string, ip: string | undefined): void {
    this.add(`u:${name}`)
    if (ip !== undefined) this.add(`a:${ip}`)
  }

  /**
   * Counts one sign-up from `ip`, refusing it over the limit.
   * @throws RegistryError TOO_MANY_REQUESTS
   */
  signup(ip: string | undefined): void {
    if (ip === undefined || this.opts.maxSignups <= 0) return
    this.refuseOver([`s:${ip}`], this.opts.maxSignups, 'Too many sign-ups from this address; try again later.')
    this.add(`s:${ip}`)
  }

  private refuseOver(keys: string[], max: number, message: string): void {
    if (max <= 0) return
    const now = this.now()
    let wait = 0
    for (const k of keys) {
      const times = this.live(k, now)
      if (times.length >= max) wait = Math.max(wait, (times[times.length - max] as number) + this.opts.windowMs - now)
    }
    if (wait > 0) throw Object.assign(new RegistryError('TOO_MANY_REQUESTS', message), { retryAfter: Math.max(1, Math.ceil(wait / 1000)) })
  }

  private add(key: string): void {
    const now = this.now()
    const times = this.live(key, now)
    times.push(now)
    // Only the newest `max` events matter for the limit.
    if (times.length > Math.max(this.opts.maxFailures, this.opts.maxSignups)) times.shift()
    this.events.set(key, times)
  }

  /** The events of `key` still in the window. */
  private live(key: string, now: number): number[] {
    const times = this.events.get(key)
    if (!times) return []
    const from = now - this.opts.windowMs
    while (times.length > 0 && (times[0] as number) <= from) times.shift()
    return times
  }
}
