/**
 * The body of npm's `POST /-/npm/v1/tokens` (docs/protocol.md §1.7) as `TokenOptions`, for the
 * route and for `pier token create`, which takes the same options.
 */
import { badRequest } from '../registry/errors.js'
import type { GrantPermission } from '../registry/types.js'
import type { TokenOptions } from './auth-service.js'

/**
 * A token's `cidr_whitelist` from a request body: a list of strings, or absent (`null` too).
 * @throws RegistryError BAD_REQUEST for anything else (an object in the list cannot be a range)
 */
function cidrList(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((c): c is string => typeof c === 'string')) {
    throw badRequest('cidr_whitelist must be a list of CIDR strings, e.g. ["10.0.0.0/8"].')
  }
  return v
}

const PERMISSIONS = new Set<GrantPermission>(['read-only', 'read-write', 'no-access'])

/** A list of strings from a token body field, or undefined. @throws RegistryError BAD_REQUEST */
function stringList(body: Record<string, unknown>, key: string): string[] | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string' && s.length > 0 && s.length <= 214)) {
    throw badRequest(`${key} must be a list of names.`)
  }
  return v
}

/** A permission field of a token body. @throws RegistryError BAD_REQUEST */
function permission(body: Record<string, unknown>, key: string): GrantPermission | undefined {
  const v = body[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string' || !PERMISSIONS.has(v as GrantPermission)) throw badRequest(`${key} must be read-only, read-write or no-access.`)
  return v as GrantPermission
}

/**
 * `POST /-/npm/v1/tokens`'s body as TokenOptions: npm 11's granular shape (`name`, `description`,
 * `packages`, `packages_all`, `scopes`, `orgs`, `packages_and_scopes_permission`,
 * `orgs_permission`, `expires` in days, `cidr_whitelist`) or the legacy one (`readonly`,
 * `cidr_whitelist`); docs/protocol.md §1.7. A token naming packages, scopes or orgs is granular.
 * @throws RegistryError BAD_REQUEST for a field of the wrong type
 */
export function tokenOptions(body: Record<string, unknown>): TokenOptions {
  const o: TokenOptions = { readonly: body.readonly === true }
  const cidr = cidrList(body.cidr_whitelist)
  if (cidr) o.cidrWhitelist = cidr
  if (body.name !== undefined && body.name !== null) {
    if (typeof body.name !== 'string') throw badRequest('name must be a string.')
    o.name = body.name
  }
  if (body.description !== undefined && body.description !== null) {
    if (typeof body.description !== 'string') throw badRequest('description must be a string.')
    o.description = body.description
  }
  if (body.expires !== undefined && body.expires !== null) {
    if (typeof body.expires !== 'number' || !Number.isInteger(body.expires)) throw badRequest('expires must be a whole number of days.')
    o.expiresDays = body.expires
  }
  const packages = stringList(body, 'packages')
  const scopes = stringList(body, 'scopes')
  const orgs = stringList(body, 'orgs')
  const packagesAll = body.packages_all === true
  const perm = permission(body, 'packages_and_scopes_permission')
  const orgsPerm = permission(body, 'orgs_permission')
  if (packages || scopes || orgs || packagesAll || perm || orgsPerm) {
    o.grant = {
      packagesAll,
      packages: packages ?? [],
      scopes: (scopes ?? []).map((s) => (s.startsWith('@') ? s : `@${s}`)),
      permission: perm ?? 'read-only',
      orgs: (orgs ?? []).map((s) => s.replace(/^@/, '')),
      orgsPermission: orgsPerm ?? 'no-access',
    }
  }
  return o
}

