/**
 * Pier's configuration, validated with zod. Keeps the original registry's keys (`server.host/port`,
 * `logger.level`, `settings.allow_previous_version`, `auth.type`, `storage.type`,
 * `storage.local.path`) and adds `url`, `max_body_size` and `auth.local`.
 */
import { z } from 'zod'

/** Parses `50mb`, `512kb`, `1gb` or a number of bytes. */
export function parseSize(v: string | number): number {
  if (typeof v === 'number') return v
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$/i.exec(v)
  if (!m) throw new Error(`invalid size "${v}" (use bytes or e.g. 50mb)`)
  const unit = (m[2] ?? 'b').toLowerCase()
  const mult = unit.startsWith('g') ? 1024 ** 3 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('k') ? 1024 : 1
  return Math.floor(Number(m[1]) * mult)
}

const size = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  try {
    return parseSize(v)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
    return z.NEVER
  }
})

export const ConfigSchema = z
  .object({
    /** Public base URL (tarball URLs are built from it); default: the request's Host / X-Forwarded-* headers. */
    url: z.url().optional(),
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.coerce.number().int().min(0).max(65535).default(3000),
        /** Trust X-Forwarded-* headers (behind a proxy). */
        trust_proxy: z.boolean().default(false),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 3000, trust_proxy: false }),
    logger: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    /** Largest request body (publish), bytes or `50mb`. */
    max_body_size: size.default(50 * 1024 * 1024),
    settings: z
      .object({ allow_previous_version: z.boolean().default(false) })
      .strict()
      .default({ allow_previous_version: false }),
    auth: z
      .object({
        type: z.enum(['local', 'none', 'github']).default('local'),
        local: z
          .object({ allow_signup: z.boolean().default(true), max_users: z.number().int().min(-1).default(-1) })
          .strict()
          .default({ allow_signup: true, max_users: -1 }),
        github: z.record(z.string(), z.unknown()).optional(),
      })
      .strict()
      .default({ type: 'local', local: { allow_signup: true, max_users: -1 } }),
    storage: z
      .object({
        type: z.enum(['local', 's3']).default('local'),
        local: z.object({ path: z.string().default('./data') }).strict().default({ path: './data' }),
        s3: z.record(z.string(), z.unknown()).optional(),
        meta: z
          .object({
            type: z.enum(['sqlite']).default('sqlite'),
            /** SQLite file; default `<storage.local.path>/pier.sqlite`. */
            path: z.string().optional(),
            synchronous: z.enum(['full', 'normal']).default('full'),
          })
          .strict()
          .default({ type: 'sqlite', synchronous: 'full' }),
      })
      .strict()
      .default({ type: 'local', local: { path: './data' }, meta: { type: 'sqlite', synchronous: 'full' } }),
  })
  .strict()

/** Validated configuration. */
export type Config = z.infer<typeof ConfigSchema>
/** Configuration as written in a file (before defaults). */
export type ConfigInput = z.input<typeof ConfigSchema>
