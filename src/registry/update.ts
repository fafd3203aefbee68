/**
 * Document writes without attachments (`PUT /:name`, `PUT /:name/-rev/:rev`; docs/protocol.md
 * §3.2): npm sends the whole packument it fetched with `?write=true`, changed in one place, for
 * `deprecate` (a version's `deprecated`; `""` removes it), `star`/`unstar` (the caller's entry in
 * `users`), `owner add/rm` (`maintainers`) and a one-version `unpublish` (the version missing from
 * `versions`). The registry never trusts the rest of the body: `diffUpdate` compares it with what
 * is stored and keeps only those four kinds of difference; everything else (another version's
 * `dist`, a tarball URL, `time`, `_npmUser`) is ignored.
 */
import { badRequest, notFound, revConflict } from './errors.js'
import type { Manifest } from './types.js'
import { unpublishVersions } from './unpublish.js'
import type { Mutation, WriteContext } from './write-path.js'

/** What `diffUpdate` compares a body with: the stored state, as far as a PUT may change it. */
export interface UpdateBase {
  /** `_rev` stored now. */
  rev: string
  /** Published versions with their stored `deprecated` message; omit when the body has no `versions`. */
  live?: readonly { version: string; deprecated: string | undefined }[]
  /** Users who starred the package; omit when the body has no `users`. */
  stars?: readonly string[]
  /** Maintainer user names. */
  maintainers: readonly string[]
}

/** The changes a PUT body asks for, each only where it differs from the stored state. */
export interface UpdatePlan {
  /** The writer's own star: `true` to add it, `false` to remove it; absent when unchanged. */
  star?: boolean
  /** Deprecation messages to store (`undefined` message: undeprecate), in stored version order. */
  deprecations: { version: string; message: string | undefined }[]
  /** Versions to unpublish (published now, missing from the body's `versions`). */
  unpublish: string[]
  /** The new maintainer list, sorted and without repeats; absent when unchanged. */
  maintainers?: string[]
  /**
   * Why the plan cannot be applied (every version removed, or no maintainer left): reported as
   * 400 only after the maintainer check, so a caller who may not change the package learns nothing
   * from it.
   */
  invalid?: string
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Compares a PUT body with the stored state. Pure.
 * @param writer the user the write is recorded under (whose star `users` may change)
 * @throws RegistryError REV_CONFLICT when the body's `_rev` is not the stored one (CouchDB's
 *   "Document update conflict.": the client edited an older copy)
 */
export function diffUpdate(stored: UpdateBase, body: Record<string, unknown>, writer: string): UpdatePlan {
  if (typeof body._rev === 'string' && body._rev !== stored.rev) throw revConflict()
  const plan: UpdatePlan = { deprecations: [], unpublish: [] }
  if (isObject(body.users) && stored.stars) {
    const want = body.users[writer] === true
    if (want !== stored.stars.includes(writer)) plan.star = want
  }
  if (isObject(body.versions) && stored.live) {
    const versions = body.versions
    for (const v of stored.live) {
      const m = versions[v.version]
      if (!Object.hasOwn(versions, v.version)) {
        plan.unpublish.push(v.version)
        continue
      }
      if (!isObject(m) || typeof m.deprecated !== 'string') continue
      const message = m.deprecated === '' ? undefined : m.deprecated
      if (message !== v.deprecated) plan.deprecations.push({ version: v.version, message })
    }
    if (plan.unpublish.length > 0 && plan.unpublish.length === stored.live.length) {
      plan.invalid = 'Cannot remove every version this way: unpublish the whole package instead.'
    }
  }
  if (Array.isArray(body.maintainers)) {
    const names = [...new Set(body.maintainers.map((m) => (isObject(m) ? m.name : m)).filter((n): n is string => typeof n === 'string'))].sort()
    if (names.join('\n') !== [...stored.maintainers].sort().join('\n')) {
      plan.maintainers = names
      if (names.length === 0) plan.invalid ??= 'A package must keep at least one maintainer.'
    }
  }
  return plan
}

/** Whether a plan changes anything a maintainer must approve (everything but the writer's star). */
export function needsMaintainer(plan: UpdatePlan): boolean {
  return plan.deprecations.length > 0 || plan.unpublish.length > 0 || plan.maintainers !== undefined
}

/** Whether a plan changes nothing. */
export function isEmpty(plan: UpdatePlan): boolean {
  return plan.star === undefined && !needsMaintainer(plan)
}

/**
 * The update mutation: reads what the body may change, diffs, checks, applies.
 * @throws RegistryError REV_CONFLICT, FORBIDDEN (not a maintainer, for anything but a star),
 *   BAD_REQUEST (`invalid`), NOT_FOUND (a new maintainer who has no account)
 */
export async function applyUpdate(w: WriteContext, body: Record<string, unknown>): Promise<Mutation<undefined>> {
  const { tx, name } = w
  const rows = isObject(body.versions) ? (await tx.listVersions(name)).filter((v) => v.unpublished === null) : undefined
  // A manifest published with `"deprecated": ""` is not deprecated (npm's own reading of "").
  const live = rows?.map((r) => ({ version: r.version, deprecated: (JSON.parse(r.manifest) as Manifest).deprecated || undefined }))
  const stars = isObject(body.users) ? await tx.getStars(name) : undefined
  const plan = diffUpdate({ rev: w.rev, maintainers: w.maintainers, ...(live ? { live } : {}), ...(stars ? { stars } : {}) }, body, w.writer)
  if (needsMaintainer(plan)) w.requireMaintainer()
  if (plan.invalid !== undefined) throw badRequest(plan.invalid)
  if (plan.star !== undefined) await tx.setStar(name, w.writer, plan.star)
  for (const d of plan.deprecations) {
    const row = rows?.find((r) => r.version === d.version)
    if (!row) continue
    const stored = JSON.parse(row.manifest) as Manifest
    if (d.message === undefined) delete stored.deprecated
    else stored.deprecated = d.message
    await tx.updateManifest(name, d.version, JSON.stringify(stored))
  }
  if (plan.unpublish.length > 0 && rows) await unpublishVersions(tx, name, plan.unpublish, rows, w.now)
  if (plan.maintainers) {
    for (const n of plan.maintainers) {
      if (!w.maintainers.includes(n) && !(await tx.userExists(n))) throw notFound(`User "${n}" does not exist.`)
    }
    await tx.setMaintainers(name, plan.maintainers)
  }
  const audit: Record<string, unknown> = {}
  if (plan.star !== undefined) audit.star = plan.star
  if (plan.deprecations.length > 0) audit.deprecations = plan.deprecations.map((d) => ({ version: d.version, message: d.message ?? null }))
  if (plan.unpublish.length > 0) audit.unpublished = plan.unpublish
  if (plan.maintainers) audit.maintainers = plan.maintainers
  return { changed: !isEmpty(plan), value: undefined, audit }
}
