/**
 * Sessions of the web UI (docs/web.md, "Sessions"):
 * - A signed-in browser holds a Pier token in a signed, HttpOnly, SameSite=Lax cookie (Secure when
 *   the public URL is https; the HTTP layer sets the attributes). The token is an ordinary one
 *   (named `web session`, expiring after `SESSION_DAYS`), so it is authenticated like any bearer
 *   token, listed on the tokens page, and revoked by signing out, on every node at once. With
 *   `auth.type: github` the cookie holds the person's GitHub token instead (auth/github.ts checks it).
 * - Every browser gets a random browser id (another signed cookie). Forms carry a CSRF token,
 *   HMAC-SHA-256 of the browser id under the installation's secret (OWASP's "signed double-submit
 *   cookie"), and web logins are bound to the browser id (web-login.ts).
 * - The installation's secret is created by the first node that starts and shared through the
 *   metadata store (`web_secrets`, migration 0006).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Principal } from '../registry/types.js'
import type { Actor, AuthService } from './auth-service.js'
import { randomSecret, type WebLoginStore } from './web-login.js'

/** How long a web UI session lasts, days (its token's expiry and the cookie's Max-Age). */
export const SESSION_DAYS = 7

/** The name a session's token carries in `npm token list` and on the tokens page. */
export const SESSION_TOKEN_NAME = 'web session'

/** The web UI's sessions and CSRF tokens. */
export class WebSessions {
  private constructor(
    private readonly auth: AuthService,
    /** The installation's secret (cookie signatures, CSRF tokens, web login token boxes). */
    readonly secret: string,
  ) {}

  /**
   * Loads (or, on the first start, creates) the installation's secret.
   * @throws the store's error
   */
  static async open(store: Pick<WebLoginStore, 'webSecret'>, auth: AuthService): Promise<WebSessions> {
    return new WebSessions(auth, await store.webSecret('web', randomSecret()))
  }

  /** A new browser id (43 base64url characters). */
  newBrowserId(): string {
    return randomSecret()
  }

  /** The CSRF token of a browser: what its forms must send back. */
  csrfToken(browserId: string): string {
    return createHmac('sha256', this.secret).update(`csrf\u0000${browserId}`).digest('base64url')
  }

  /** Whether `sent` is the CSRF token of `browserId` (constant time). */
  checkCsrf(browserId: string | undefined, sent: unknown): boolean {
    if (!browserId || typeof sent !== 'string') return false
    const want = Buffer.from(this.csrfToken(browserId))
    const got = Buffer.from(sent)
    return want.length === got.length && timingSafeEqual(want, got)
  }

  /**
   * Starts a session for `user` (who proved a password or came back from GitHub).
   * @returns the token to put in the session cookie
   * @throws RegistryError from token creation
   */
  async signIn(user: string, actor: Actor): Promise<string> {
    const { token } = await this.auth.createToken(user, { name: SESSION_TOKEN_NAME, expiresDays: SESSION_DAYS }, actor)
    return token
  }

  /**
   * The principal of a session cookie's token; anonymous when there is none or it no longer works
   * (revoked, expired, its user removed): the page then shows "Sign in".
   * @param ip the client's address (CIDR checks, audit)
   */
  async principal(token: string | undefined, ip: string): Promise<Principal> {
    if (!token) return { name: undefined, readonly: false, ip }
    try {
      return await this.auth.authenticate(`Bearer ${token}`, ip)
    } catch {
      return { name: undefined, readonly: false, ip }
    }
  }

  /** Ends a session: its token is revoked (an unknown one is ignored, as `npm logout` does). */
  async signOut(token: string | undefined, ip: string): Promise<void> {
    if (token) await this.auth.logout(token, ip)
  }
}
