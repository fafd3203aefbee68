/**
 * The units of Pier's configuration, shared by every section (schema.ts, uplinks.ts): durations
 * (`500ms`, `30s`, `2m`, `1h`, `1d`, or milliseconds) and sizes (`512kb`, `50mb`, `1g`, or bytes,
 * 1024-based).
 */
import bytes from 'bytes'
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

/** A duration in ms (a non-negative number, or a string `parseDuration` takes). */
export const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
    return z.NEVER
  }
})

/** Units `parseByteSize` accepts, as the `bytes` package spells them (1024-based). */
const SIZE_UNITS: Record<string, string> = { b: '', k: 'kb', kb: 'kb', m: 'mb', mb: 'mb', g: 'gb', gb: 'gb' }

/**
 * Parses a size (`max_body_size`, `max_unpacked_size`, `max_packument_size`…): a number of bytes (`4096`,
 * `'4096'`, `'7 b'`), or a number with a 1024-based unit `kb`/`k`, `mb`/`m`, `gb`/`g` in any case
 * (`512kb`, `200mb`, `1.5k`, `1g`), computed by the `bytes` package and rounded down.
 * @returns bytes
 * @throws Error `invalid size "…" (use bytes or e.g. 50mb)` for anything else (no sign, no `tb`)
 */
export function parseByteSize(v: string | number): number {
  if (typeof v === 'number') return v
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$/i.exec(v)
  const n = m?.[1] === undefined ? null : bytes.parse(`${m[1]}${SIZE_UNITS[(m[2] ?? 'b').toLowerCase()] ?? ''}`)
  if (n === null || !Number.isFinite(n)) throw new Error(`invalid size "${v}" (use bytes or e.g. 50mb)`)
  return Math.floor(n)
}

/** A size in bytes (a positive integer, or a string `parseByteSize` takes). */
export const byteSize = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  try {
    const n = parseByteSize(v)
    if (n > 0) return n
    ctx.addIssue({ code: 'custom', message: `a size must be more than 0 bytes, not "${v}"` })
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
  }
  return z.NEVER
})
