/**
 * What routes get: the services and two helpers derived from config (base URL, caller).
 */
import type { FastifyRequest } from 'fastify'
import type { AuthService } from '../auth/auth-service.js'
import type { Config } from '../config/schema.js'
import type { Registry } from '../registry/registry.js'
import type { Principal } from '../registry/types.js'
import type { Uplink } from '../uplink/uplink.js'

/** Shared route dependencies. */
export interface RouteContext {
  config: Config
  registry: Registry
  auth: AuthService
  /** Public base URL for this request, no trailing slash (config `url`, else Host / X-Forwarded-*). */
  baseUrl(req: FastifyRequest): string
  /** The caller, from the Authorization header. @throws RegistryError UNAUTHENTICATED on bad credentials */
  principal(req: FastifyRequest): Promise<Principal>
  /** Where `npm audit` requests are forwarded; none: they answer 501. */
  auditUplink?: Uplink | undefined
  /** The configured uplinks by name (reported by `GET /-/health`); empty without proxying. */
  uplinks: ReadonlyMap<string, Uplink>
}

/** Builds `baseUrl` for a config: fixed when `url` is set, else per request. */
export function baseUrlResolver(config: Config): (req: FastifyRequest) => string {
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
