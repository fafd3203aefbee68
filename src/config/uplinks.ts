/**
 * Configuration of uplinks and package rules, in the original registry's shape:
 *
 * ```yaml
 * uplinks:
 *   up: { url: https://registry.example.com/, timeout: 30s, maxage: 2m, fail_timeout: 5m, max_fails: 2 }
 * private_scopes: ['@corp']
 * packages:
 *   '@corp/*': { access: $authenticated, publish: $authenticated }     # no proxy: never asked upstream
 *   '**':      { access: $all, publish: $authenticated, proxy: up }
 * ```
 *
 * Durations are milliseconds, or a number with a unit (`500ms`, `30s`, `2m`, `1h`, `1d`); sizes are
 * bytes, or a number with a 1024-based unit (`512kb`, `200mb`, `1g`).
 */
import { z } from 'zod'
import { byteSize, duration } from './units.js'

export { byteSize, duration, parseByteSize, parseDuration } from './units.js'

/** Default `max_packument_size`: the biggest packuments of the public registry are tens of MiB. */
export const DEFAULT_MAX_PACKUMENT_SIZE = 200 * 1024 * 1024
/** Default `max_tarball_size`. */
export const DEFAULT_MAX_TARBALL_SIZE = 1024 * 1024 * 1024

/** A list of names written as a YAML list or as one space-separated string (`$all`, `up other`). */
export const names = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : v.split(/\s+/)).filter((s) => s !== ''))

const UplinkAuthSchema = z
  .object({
    /** `bearer`: `Authorization: Bearer <token>`; `basic`: `Authorization: Basic <token>` (base64 of user:password). */
    type: z.enum(['bearer', 'basic']),
    /** The token itself; give exactly one of `token` and `token_env`. */
    token: z.string().optional(),
    /** Name of an environment variable holding the token (read at start). */
    token_env: z.string().optional(),
  })
  .strict()
  .refine((a) => (a.token === undefined) !== (a.token_env === undefined), { message: 'give exactly one of token and token_env' })

/** One upstream registry. */
export const UplinkSchema = z
  .object({
    /** Base URL of the upstream registry. */
    url: z.url(),
    /** Idle time allowed while connecting, waiting for headers or between body chunks. */
    timeout: duration.default(30_000),
    /** How long a cached packument is served without asking the uplink again. */
    maxage: duration.default(120_000),
    /**
     * The longest wait between two probes of an open circuit breaker: probes go out 1 s after it
     * opened, then after 2, 4, 8 s… but never more than this apart; the first that succeeds closes it.
     */
    fail_timeout: duration.default(300_000),
    /** Failed requests in a row that open the circuit breaker; 0 never opens it. */
    max_fails: z.number().int().min(0).default(2),
    /** Keep the tarballs fetched from this uplink in the blob store. */
    cache: z.boolean().default(true),
    /** Largest packument accepted from this uplink, decompressed (bigger: 502, not cached). */
    max_packument_size: byteSize.default(DEFAULT_MAX_PACKUMENT_SIZE),
    /** Largest tarball accepted from this uplink (bigger: 502, or the download is cut; never cached). */
    max_tarball_size: byteSize.default(DEFAULT_MAX_TARBALL_SIZE),
    /** Credentials sent to this uplink with every request. */
    auth: UplinkAuthSchema.optional(),
  })
  .strict()

/** What a `packages` rule allows for the names its glob matches. */
export const PackageRuleSchema = z
  .object({
    /** Who may read: `$all`, `$anonymous`, `$authenticated` or user names. */
    access: names.default(['$all']),
    /** Who may publish (and change) packages: same vocabulary. */
    publish: names.default(['$authenticated']),
    /** Uplinks asked for names that are not local, in order; none: the names are private. */
    proxy: names.default([]),
    /** `proxy`: Pier fetches and caches; `redirect`: Pier answers 302 to the first uplink instead. */
    proxy_mode: z.enum(['proxy', 'redirect']).default('proxy'),
  })
  .strict()

/** `uplinks`: the upstream registries by name. */
export const UplinksSchema = z.record(z.string(), UplinkSchema)
/**
 * `npm search` through the uplinks: `uplink` (default true) also asks the first uplink the rules
 * proxy to, within `timeout` (default 2s), and lists its hits after the local ones.
 */
export const SearchSchema = z
  .object({
    /** `true`: `npm search` also asks the first uplink the rules proxy to; `false`: local hits only. */
    uplink: z.boolean().default(true),
    /** How long the uplink's answer is waited for; beyond, the local hits are served alone. */
    timeout: duration.default(2000)
  })
  .strict()
  .default({ uplink: true, timeout: 2000 })
/** `npm audit`: the uplink its requests are forwarded to (default: the first uplink; `false`: none, 501). */
export const AuditSchema = z
  .object({
    /** The uplink's name; default the first uplink; `false`: audits answer 501. */
    uplink: z.union([z.string(), z.literal(false)]).optional()
  })
  .strict()
/** `packages`: the rules by glob on the package name, first match wins. */
export const PackagesSchema = z.record(z.string(), PackageRuleSchema)
/** Scopes that never proxy, whether or not a package of theirs was published yet. */
export const PrivateScopesSchema = names.pipe(z.array(z.string().regex(/^@[^/@\s]+$/, 'a scope looks like @name'))).default([])

/** One validated uplink. */
export type UplinkConfig = z.infer<typeof UplinkSchema>
/** One validated `packages` rule. */
export type PackageRuleConfig = z.infer<typeof PackageRuleSchema>
