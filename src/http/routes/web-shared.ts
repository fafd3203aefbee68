/**
 * What the web UI's route files share (web.ts, web-login.ts): its services, cookie names, the
 * Content-Security-Policy, form parsing, and the per-request helpers web.ts builds.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Actor } from '../../auth/auth-service.js'
import type { WebSessions } from '../../auth/sessions.js'
import type { WebLogins } from '../../auth/web-login.js'
import type { Principal } from '../../registry/types.js'
import type { Html } from '../../web/html.js'
import type { Chrome } from '../../web/layout.js'

/** The web UI's services (app.ts builds them over the metadata store). */
export interface WebDeps {
  sessions: WebSessions
  logins: WebLogins
}

/** The session cookie (a Pier token, or a GitHub token with `auth.type: github`). */
export const SESSION_COOKIE = 'pier_session'
/** The browser id cookie (CSRF tokens and web logins are bound to it). */
export const BROWSER_COOKIE = 'pier_browser'

/** The Content-Security-Policy of every page: nothing but this origin, images also over https. */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/** A form body: fields as strings (a repeated field: its first value). */
export type Form = Record<string, string | undefined>

/** Reads a form-encoded body (`@fastify/formbody`) as single strings. */
export function formOf(body: unknown): Form {
  const out: Form = {}
  if (typeof body !== 'object' || body === null) return out
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    const first = Array.isArray(v) ? (v[0] as unknown) : v
    if (typeof first === 'string') out[k] = first
  }
  return out
}

/** What each web request can ask about its browser and viewer. */
export interface WebRequest {
  /** The session cookie's token, when signed and present. */
  sessionToken(req: FastifyRequest): string | undefined
  /** The viewer (anonymous without a working session), resolved once per request. */
  viewer(req: FastifyRequest): Promise<Principal>
  /** This browser's id, set as a cookie when it has none yet. */
  browserId(req: FastifyRequest, reply: FastifyReply): string
  /** Whether a form post carries this browser's CSRF token and no foreign Origin. */
  csrfOk(req: FastifyRequest, form: Form): boolean
  /** Sets the session cookie. */
  setSession(reply: FastifyReply, token: string): void
  /** The page frame for this request. */
  chrome(req: FastifyRequest, reply: FastifyReply, query?: string): Promise<Chrome>
  /** Sends a whole page. */
  send(req: FastifyRequest, reply: FastifyReply, status: number, title: string, body: Html, query?: string): Promise<FastifyReply>
  /** Who acts, for the audit log. */
  actor(req: FastifyRequest, name: string | null): Actor
}

