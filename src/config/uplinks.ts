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
 * Durations are milliseconds, or a number with a unit (`500ms`, `30s`, `2m`, `1h`, `1d`).
 */
import ms from 'ms'
import { z } from 'zod'

/**
 * Parses a duration: a number of milliseconds (`1500`, `'1500'`), or a number with a unit `ms`, `s`,
 * `m`, `h` or `d` in any case (`500ms`, `30s`, `1.5h`, `2m`, `1d`), computed by the `ms` package and
 * rounded to whole milliseconds.
 * @returns milliseconds
 * @throws Error `invalid duration "…" (use milliseconds or e.g. 30s, 2m, 1h)` for anything else
 *   (no sign, none of ms's other units such as `w`, `y` or `hours`)
 */
export function parseDuration(v: string | number): number {
  if (typeof v === 'number') return v
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(v)
  // ms alone would also take `-5s`, `.5s`, `2 weeks`: only the forms above reach it.
  const n = m?.[1] === undefined ? undefined : (ms(`${m[1]}${(m[2] ?? 'ms').toLowerCase()}` as ms.StringValue) as number | undefined)
  if (n === undefined || !Number.isFinite(n)) throw new Error(`invalid duration "${v}" (use milliseconds or e.g. 30s, 2m, 1h)`)
  return Math.round(n)
}

export const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
    return z.NEVER
  }
})

/** A list of names written as a YAML list or as one space-separated string (`$all`, `up other`). */
const names = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : v.split(/\s+/)).filter((s) => s !== ''))

const UplinkAuthSchema = z
  .object({
    /** `bearer`: `Authorization: Bearer <token>`; `basic`: `Authorization: Basic <token>` (base64 of user:password). */
    type: z.enum(['bearer', 'basic']),
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
    /** How long the uplink is left alone once `max_fails` requests in a row failed. */
    fail_timeout: duration.default(300_000),
    /** Failed requests in a row that open the circuit breaker; 0 never opens it. */
    max_fails: z.number().int().min(0).default(2),
    /** Keep the tarballs fetched from this uplink in the blob store. */
    cache: z.boolean().default(true),
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

export const UplinksSchema = z.record(z.string(), UplinkSchema)
/**
 * `npm search` through the uplinks: `uplink` (default true) also asks the first uplink the rules
 * proxy to, within `timeout` (default 2s), and lists its hits after the local ones.
 */
export const SearchSchema = z
  .object({ uplink: z.boolean().default(true), timeout: duration.default(2000) })
  .strict()
  .default({ uplink: true, timeout: 2000 })
/** `npm audit`: the uplink its requests are forwarded to (default: the first uplink; `false`: none, 501). */
export const AuditSchema = z.object({ uplink: z.union([z.string(), z.literal(false)]).optional() }).strict()
export const PackagesSchema = z.record(z.string(), PackageRuleSchema)
/** Scopes that never proxy, whether or not a package of theirs was published yet. */
export const PrivateScopesSchema = z.array(z.string().regex(/^@[^/@\s]+$/, 'a scope looks like @name')).default([])

export type UplinkConfig = z.infer<typeof UplinkSchema>
export type PackageRuleConfig = z.infer<typeof PackageRuleSchema>
