/**
 * Web login (docs/protocol.md §1.1 and §9.6; docs/web.md) and the web UI's sign-in:
 * - `POST /-/v1/login` (npm 11's default `npm login` / `npm adduser`, body `{}` or
 *   `{"create": true}`): a new session (auth/web-login.ts), answered `{loginUrl, doneUrl}`:
 *   `<url>/-/web/login?session=<login secret>` and `<url>/-/v1/done?sessionId=<done secret>`.
 *   404 when the UI is off (`web.enable: false`), or with `auth.type: github` and no OAuth app
 *   configured, so npm falls back to its username and password prompts.
 * - `GET /-/v1/done?sessionId=…`: 202 `{"status":"pending"}` with `Retry-After: 1` (seconds; npm
 *   reads the header as seconds and parses the body before the status) until the person signed
 *   in, then 200 `{"token": …}` once; afterwards, and for unknown or expired sessions, 404 (npm then
 *   offers its password prompts). Never cached.
 * - `/-/web/login` (GET the form, POST it): fields "Username" and "Password", button "Sign in"; with
 *   `?session=` it completes that web login, bound to the browser that opened it first.
 *   `/-/web/login/authorize`: a signed-in viewer completes a web login in one click.
 *   `/-/web/signup`: sign-up when `auth.local.allow_signup`. `/-/web/logout`: revokes the session.
 * - `auth.type: github`: `/-/web/login/github` sends the browser to GitHub's authorize page
 *   (`auth.github.client_id`, scope `repo` so private repositories' permissions can be read), and
 *   `/-/web/login/github/callback` checks `state` against a signed cookie, exchanges the code
 *   (`client_secret`), and signs the person in with the GitHub token (GitHub docs, "Authorizing
 *   OAuth apps", web application flow).
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { exchangeGithubCode, githubOAuthBase } from '../../auth/web-login.js'
import { RegistryError } from '../../registry/errors.js'
import type { RouteContext } from '../context.js'
import { sendError, statusOfError } from '../errors.js'
import { loginBody, messageBody, signupBody, type LoginForm } from '../../web/pages.js'
import { BROWSER_COOKIE, formOf, SESSION_COOKIE, type Form, type WebDeps, type WebRequest } from './web-shared.js'

/** Seconds npm waits between polls of `doneUrl` (its `Retry-After`). */
export const POLL_RETRY_AFTER_SECONDS = 1

/** The OAuth state cookie: `state`, the web login it completes, where to go after. */
const OAUTH_COOKIE = 'pier_oauth'

/** Whether GitHub sign-in is configured (auth.type github with an OAuth app). */
function githubApp(ctx: RouteContext): { clientId: string; clientSecret: string } | undefined {
  const g = ctx.config.auth.github
  if (ctx.config.auth.type !== 'github' || !g.client_id || !g.client_secret) return undefined
  return { clientId: g.client_id, clientSecret: g.client_secret }
}

/** Whether web login can be offered at all. */
function webLoginAvailable(ctx: RouteContext): boolean {
  return ctx.config.web.enable && (ctx.config.auth.type !== 'github' || githubApp(ctx) !== undefined)
}

/** Registers `POST /-/v1/login` and `GET /-/v1/done` (root scope, JSON). */
export function webLoginApiRoutes(app: FastifyInstance, ctx: RouteContext, deps: WebDeps | undefined): void {
  app.post('/-/v1/login', async (req, reply) => {
    if (!deps || !webLoginAvailable(ctx)) {
      return sendError(reply, 404, 'Web login is not available on this registry; use username and password (npm falls back automatically).')
    }
    const body = typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {}
    const { loginSecret, doneSecret } = await deps.logins.start(body.create === true)
    const base = ctx.baseUrl(req)
    return reply
      .header('cache-control', 'no-store')
      .send({ loginUrl: `${base}/-/web/login?session=${loginSecret}`, doneUrl: `${base}/-/v1/done?sessionId=${doneSecret}` })
  })

  app.get('/-/v1/done', async (req, reply) => {
    void reply.header('cache-control', 'no-store')
    if (!deps || !webLoginAvailable(ctx)) return sendError(reply, 404, 'Web login is not available on this registry.')
    const q = req.query as Record<string, unknown>
    const answer = await deps.logins.poll(typeof q.sessionId === 'string' ? q.sessionId : '')
    if (answer.state === 'pending') return reply.code(202).header('retry-after', String(POLL_RETRY_AFTER_SECONDS)).send({ status: 'pending' })
    if (answer.state === 'gone') return sendError(reply, 404, 'This login session is unknown, expired, or was already used. Run `npm login` again.')
    const token = answer.external ?? (await ctx.auth.createToken(answer.user, { name: 'npm web login' }, { name: answer.user, ip: req.ip })).token
    return reply.code(200).send({ token })
  })
}

/** A path on this site to go to after signing in (anything else: the home page). */
function nextPath(v: string | undefined): string | undefined {
  return v && /^\/-\/web\/[^\s\\]*$/.test(v) && !v.startsWith('//') ? v : undefined
}

/** Registers the sign-in pages inside the web UI's scope (prefix `/-/web`). */
export function signInRoutes(web: FastifyInstance, ctx: RouteContext, deps: WebDeps, w: WebRequest): void {
  const { auth, config } = ctx
  const gh = githubApp(ctx)
  const signupAllowed = config.auth.type === 'local' && auth.signupAllowed

  /** The login page's state for this request, or a reply when the session link cannot be used. */
  const loginState = async (req: FastifyRequest, reply: FastifyReply, session: string | undefined): Promise<{ signup: boolean } | FastifyReply> => {
    if (session === undefined) return { signup: false }
    const st = await deps.logins.claim(session, w.browserId(req, reply))
    if (!st) return w.send(req, reply, 404, 'Login link not valid', messageBody('This login link cannot be used', 'It expired, was already used, or was opened in another browser. Run `npm login` again.'))
    if (st.done) return w.send(req, reply, 200, 'Signed in', messageBody('The npm CLI is signed in', 'You may close this window.'))
    return { signup: st.signup }
  }

  const form = async (req: FastifyRequest, reply: FastifyReply, status: number, f: Omit<LoginForm, 'csrf' | 'signup' | 'github' | 'as'> & { signup?: boolean }): Promise<FastifyReply> => {
    const viewer = await w.viewer(req)
    const q = new URLSearchParams()
    if (f.session) q.set('session', f.session)
    if (f.next) q.set('next', f.next)
    const body = loginBody({
      ...f,
      csrf: ctx.config.web.enable ? deps.sessions.csrfToken(w.browserId(req, reply)) : '',
      signup: !signupAllowed ? 'none' : f.signup ? 'first' : 'offer',
      github: gh ? `/-/web/login/github${q.size > 0 ? `?${q.toString()}` : ''}` : undefined,
      as: f.session && viewer.name !== undefined ? viewer.name : undefined,
    })
    return w.send(req, reply, status, 'Sign in', body)
  }

  /** Finishes a sign-in: completes the web login, or starts a UI session. */
  const finish = async (req: FastifyRequest, reply: FastifyReply, user: string, f: Form, uiToken: () => Promise<string>, external?: string): Promise<FastifyReply> => {
    if (f.session) {
      const ok = await deps.logins.complete(f.session, w.browserId(req, reply), user, external)
      if (!ok) return w.send(req, reply, 404, 'Login link not valid', messageBody('This login link cannot be used', 'It expired, was already used, or was opened in another browser. Run `npm login` again.'))
      return w.send(req, reply, 200, 'Signed in', messageBody('The npm CLI is signed in', `Signed in as ${user}. You may close this window and go back to the terminal.`))
    }
    w.setSession(reply, await uiToken())
    return reply.redirect(nextPath(f.next) ?? '/-/web/', 303)
  }

  web.get('/login', async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const session = typeof q.session === 'string' ? q.session : undefined
    const st = await loginState(req, reply, session)
    if (!('signup' in st)) return st
    return form(req, reply, 200, { session, signup: st.signup, next: nextPath(typeof q.next === 'string' ? q.next : undefined) })
  })

  web.post('/login', async (req, reply) => {
    const f = formOf(req.body)
    if (!w.csrfOk(req, f)) return form(req, reply, 403, { session: f.session, next: f.next, error: 'The form expired. Please sign in again.' })
    if (gh) return form(req, reply, 400, { session: f.session, error: 'Sign in with GitHub.' })
    const user = (f.username ?? '').trim()
    try {
      await auth.checkPassword(user, f.password ?? '', req.ip)
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e
      if (e.retryAfter !== undefined) void reply.header('retry-after', String(e.retryAfter))
      return form(req, reply, statusOfError(e), { session: f.session, next: f.next, error: e.message })
    }
    return finish(req, reply, user, f, () => deps.sessions.signIn(user, w.actor(req, user)))
  })

  web.post('/login/authorize', async (req, reply) => {
    const f = formOf(req.body)
    const viewer = await w.viewer(req)
    if (!w.csrfOk(req, f) || !f.session || viewer.name === undefined) return form(req, reply, 403, { session: f.session, error: 'The form expired. Please sign in again.' })
    const external = config.auth.type === 'github' ? w.sessionToken(req) : undefined
    return finish(req, reply, viewer.name, f, async () => '', external)
  })

  web.get('/signup', async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const session = typeof q.session === 'string' ? q.session : undefined
    if (!signupAllowed) return w.send(req, reply, 403, 'Sign-up closed', messageBody('Sign-up is closed', 'Ask an administrator for an account.'))
    const st = await loginState(req, reply, session)
    if (!('signup' in st)) return st
    return w.send(req, reply, 200, 'Create an account', signupBody({ csrf: deps.sessions.csrfToken(w.browserId(req, reply)), session }))
  })

  web.post('/signup', async (req, reply) => {
    const f = formOf(req.body)
    if (!signupAllowed) return w.send(req, reply, 403, 'Sign-up closed', messageBody('Sign-up is closed', 'Ask an administrator for an account.'))
    const again = (status: number, error: string): Promise<FastifyReply> =>
      w.send(req, reply, status, 'Create an account', signupBody({ csrf: deps.sessions.csrfToken(w.browserId(req, reply)), session: f.session, error }))
    if (!w.csrfOk(req, f)) return again(403, 'The form expired. Please try again.')
    const user = (f.username ?? '').trim()
    const email = (f.email ?? '').trim()
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) return again(400, 'Please give a valid e-mail address.')
    let token: string
    try {
      const exists = await auth.userDoc(user).then(
        () => true,
        () => false,
      )
      if (exists) return await again(409, `The username "${user}" is taken.`)
      ;({ token } = await auth.login(user, f.password ?? '', email, req.ip))
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e
      return again(statusOfError(e), e.message)
    }
    if (f.session) {
      // The CLI gets its own token when it polls; this one is not needed.
      await auth.logout(token, req.ip)
    }
    return finish(req, reply, user, f, async () => token)
  })

  web.post('/logout', async (req, reply) => {
    const f = formOf(req.body)
    if (!w.csrfOk(req, f)) return w.send(req, reply, 403, 'Not signed out', messageBody('Not signed out', 'The form expired. Please try again.'))
    if (config.auth.type !== 'github') await deps.sessions.signOut(w.sessionToken(req), req.ip)
    void reply.clearCookie(SESSION_COOKIE, { path: '/' })
    return reply.redirect('/-/web/', 303)
  })

  if (!gh) return
  const oauthBase = githubOAuthBase(config.auth.github.host)
  const cookieOpts = { path: '/-/web/login/github', httpOnly: true, sameSite: 'lax' as const, secure: config.url?.startsWith('https:') === true, signed: true, maxAge: 600 }

  web.get('/login/github', async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const session = typeof q.session === 'string' ? q.session : undefined
    const st = await loginState(req, reply, session)
    if (!('signup' in st)) return st
    const state = randomBytes(24).toString('base64url')
    void reply.setCookie(OAUTH_COOKIE, JSON.stringify({ state, session, next: nextPath(typeof q.next === 'string' ? q.next : undefined) }), cookieOpts)
    const u = new URL(`${oauthBase}/login/oauth/authorize`)
    u.searchParams.set('client_id', gh.clientId)
    u.searchParams.set('redirect_uri', `${ctx.baseUrl(req)}/-/web/login/github/callback`)
    u.searchParams.set('scope', 'repo')
    u.searchParams.set('state', state)
    return reply.redirect(u.href, 302)
  })

  web.get('/login/github/callback', async (req, reply) => {
    const q = req.query as Record<string, unknown>
    const raw = (req.cookies as Record<string, string | undefined> | undefined)?.[OAUTH_COOKIE]
    const un = raw ? req.unsignCookie(raw) : undefined
    void reply.clearCookie(OAUTH_COOKIE, { path: cookieOpts.path })
    let saved: { state?: unknown; session?: unknown; next?: unknown } = {}
    try {
      saved = un?.valid && un.value ? (JSON.parse(un.value) as typeof saved) : {}
    } catch {
      saved = {}
    }
    const fail = (text: string): Promise<FastifyReply> => w.send(req, reply, 400, 'Sign-in failed', messageBody('Sign-in with GitHub failed', text))
    if (typeof q.state !== 'string' || typeof saved.state !== 'string' || q.state !== saved.state) return fail('The sign-in expired or did not start here. Please try again.')
    if (typeof q.code !== 'string' || q.code === '') return fail(typeof q.error_description === 'string' ? q.error_description : 'GitHub did not approve the sign-in.')
    let token: string
    try {
      token = await exchangeGithubCode({
        base: oauthBase,
        clientId: gh.clientId,
        clientSecret: gh.clientSecret,
        code: q.code,
        redirectUri: `${ctx.baseUrl(req)}/-/web/login/github/callback`,
        timeoutMs: config.auth.github.timeout,
      })
    } catch (e) {
      return fail((e as Error).message)
    }
    const p = await auth.authenticate(`Bearer ${token}`, req.ip)
    if (p.name === undefined) return fail('GitHub did not say who you are.')
    const f: Form = { session: typeof saved.session === 'string' ? saved.session : undefined, next: typeof saved.next === 'string' ? saved.next : undefined }
    // The browser id cookie must be the one that opened the login link.
    if (f.session && !(req.cookies as Record<string, string | undefined> | undefined)?.[BROWSER_COOKIE]) return fail('This browser did not open the login link.')
    return finish(req, reply, p.name, f, async () => token, token)
  })
}
