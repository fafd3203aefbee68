/**
 * What routes get: the services, and helpers derived from config (base URL, caller). Routes reach
 * packages only through `registry` (its read gate and write path), never a store.
 */
import type { FastifyRequest } from 'fastify'
import type { AuthService } from '../auth/auth-service.js'
import type { Config } from '../config/schema.js'
import type { Health } from '../ops/health.js'
import type { Registry } from '../registry/registry.js'
import type { Caller, Principal } from '../registry/types.js'
import type { Uplink } from '../uplink/uplink.js'
import type { RequestHooks } from './request-hooks.js'

/** Shared route dependencies. */
export interface RouteContext {
  config: Config
  registry: Registry
  auth: AuthService
  hooks: RequestHooks
  /** Public base URL for this request, no trailing slash (config `url`, else Host / X-Forwarded-*). */
  baseUrl(req: FastifyRequest): string
  /** The caller, from the Authorization header. @throws RegistryError UNAUTHENTICATED on bad credentials */
  principal(req: FastifyRequest): Promise<Principal>
  /**
   * The caller of a read: resolved from the credentials only if the read gate asks (names readable
   * by all never do), at most once per request.
   */
  caller(req: FastifyRequest): Caller
  /** Where `npm audit` requests are forwarded; none: they answer 501. */
  auditUplink?: Uplink | undefined
  /** `GET /-/health`'s checks (ops/health.ts). */
  health(): Promise<Health>
}

/** Builds `baseUrl` for a config: fixed when `url` is set, else per request. */
export function baseUrlResolver(config: Config): (req: Pick<FastifyRequest, 'headers' | 'protocol'>) => string {
  if (config.url) {
    const fixed = config.url.replace(/\/+$/, '')
    return () => fixed
  }
  return (req) => {
    const h = req.headers
    const fwdProto = config.server.trust_proxy ? (h['x-forwarded-proto'] as string | undefined)?.split(',')[0]?.trim() : undefined
    const fwdHost = config.server.trust_proxy ? (h['x-forwarded-host'] as string | undefined)?.split(',')[0]?.trim() : undefined
    const host = fwdHost || h.host || `${config.server.host}:${config.server.port}`
    return `${fwdProto || req.protocol}://${host}`
  }
}

/** A `Caller` that resolves `principal(req)` once, when first asked. */
export function lazyCaller(resolve: () => Promise<Principal>): Caller {
  let p: Promise<Principal> | undefined
  return () => (p ??= resolve())
}
