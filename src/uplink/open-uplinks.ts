/**
 * Builds the uplinks from configuration. Without an `uplinks` key, the one uplink is the registry
 * the npm client of this machine is configured with (`npm config get registry`, asked once at
 * start), unless that is Pier itself; `uplinks: {}` turns proxying off. No registry host is ever
 * built in.
 */
import { execFile } from 'node:child_process'
import type { Config } from '../config/schema.js'
import { DEFAULT_MAX_PACKUMENT_SIZE, DEFAULT_MAX_TARBALL_SIZE, type UplinkConfig } from '../config/uplinks.js'
import { PackageRules } from '../registry/package-rules.js'
import { HttpUplink } from './http-uplink.js'
import type { Uplink } from './uplink.js'

/** Name of the uplink taken from the npm client's configuration. */
export const DEFAULT_UPLINK = 'default'

/** What `openUplinks` logs. */
interface StartLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/**
 * The registry URL this machine's npm client uses, or `undefined` (npm missing, slow, or printing
 * something that is not an http(s) URL).
 */
export function npmConfiguredRegistry(timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('npm', ['config', 'get', 'registry'], { timeout: timeoutMs, windowsHide: true }, (err, stdout) => {
      const url = String(stdout ?? '').trim()
      resolve(!err && /^https?:\/\/\S+$/.test(url) ? url : undefined)
    })
  })
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1'])

/** Whether `url` points at this Pier (its configured `url`, or its listening address). */
export function isOwnUrl(url: string, config: { url?: Config['url']; server: Pick<Config['server'], 'host' | 'port'> }): boolean {
  const strip = (s: string) => s.replace(/\/+$/, '')
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return false
  }
  if (config.url) {
    const own = new URL(config.url)
    if (u.origin === own.origin && strip(u.pathname) === strip(own.pathname)) return true
  }
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80))
  if (port !== config.server.port) return false
  const host = config.server.host
  return u.hostname === host || LOOPBACK.has(u.hostname) || host === '0.0.0.0' || host === '::'
}

/** The Authorization header value of an uplink. @throws Error when `token_env` names an unset variable */
function authorization(name: string, c: UplinkConfig): string | undefined {
  if (!c.auth) return undefined
  const token = c.auth.token ?? (c.auth.token_env ? process.env[c.auth.token_env] : undefined)
  if (!token) throw new Error(`uplinks.${name}.auth.token_env: the environment variable ${c.auth.token_env ?? ''} is not set`)
  return `${c.auth.type === 'bearer' ? 'Bearer' : 'Basic'} ${token}`
}

/** The configured uplinks, by name, in configuration order. */
export async function openUplinks(config: Config, log: StartLog, npmRegistry: () => Promise<string | undefined> = npmConfiguredRegistry): Promise<Map<string, Uplink>> {
  let configs: Record<string, UplinkConfig> | undefined = config.uplinks
  if (configs === undefined) {
    const url = await npmRegistry()
    if (!url) {
      log.warn({}, 'no uplinks configured and `npm config get registry` gave no URL: proxying is off')
      configs = {}
    } else if (isOwnUrl(url, config)) {
      log.info({ url }, 'npm is configured to use this Pier: no default uplink')
      configs = {}
    } else {
      log.info({ uplink: DEFAULT_UPLINK, url }, 'default uplink from `npm config get registry`')
      configs = {
        [DEFAULT_UPLINK]: {
          url,
          timeout: 30_000,
          maxage: 120_000,
          fail_timeout: 300_000,
          max_fails: 2,
          cache: true,
          max_packument_size: DEFAULT_MAX_PACKUMENT_SIZE,
          max_tarball_size: DEFAULT_MAX_TARBALL_SIZE,
        },
      }
    }
  }
  const uplinks = new Map<string, Uplink>()
  for (const [name, c] of Object.entries(configs)) {
    uplinks.set(
      name,
      new HttpUplink({
        name,
        url: c.url,
        timeout: c.timeout,
        maxage: c.maxage,
        failTimeout: c.fail_timeout,
        maxFails: c.max_fails,
        cache: c.cache,
        maxPackumentSize: c.max_packument_size,
        maxTarballSize: c.max_tarball_size,
        authorization: authorization(name, c),
        log,
      }),
    )
  }
  return uplinks
}

/**
 * The `packages` rules for these uplinks.
 * @throws Error when a rule proxies to an uplink that is not configured (with explicit `uplinks`)
 */
export function packageRules(config: Config, uplinks: ReadonlyMap<string, Uplink>, log: StartLog): PackageRules {
  const names = [...uplinks.keys()]
  const rules = PackageRules.fromConfig(config.packages, names, config.private_scopes)
  const unknown = rules.unknownUplinks(names)
  if (unknown.length > 0) {
    const list = unknown.map((u) => `packages["${u.pattern}"].proxy: no uplink named "${u.uplink}"`).join('; ')
    // With the implicit default uplink missing (npm gave no URL), rules naming it just do not proxy.
    if (config.uplinks !== undefined) throw new Error(list)
    log.warn({}, list)
  }
  return rules
}

/**
 * The uplink `npm audit` requests go to: `audit.uplink`, else the first uplink; none with
 * `audit.uplink: false` or without uplinks.
 * @throws Error when `audit.uplink` names no configured uplink
 */
export function auditUplink(config: Config, uplinks: ReadonlyMap<string, Uplink>): Uplink | undefined {
  const name = config.audit?.uplink
  if (name === false) return undefined
  if (name === undefined) return uplinks.values().next().value
  const u = uplinks.get(name)
  if (!u) throw new Error(`audit.uplink: no uplink named "${name}"`)
  return u
}
