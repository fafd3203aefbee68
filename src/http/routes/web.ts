/**
 * The web UI (docs/web.md): server-rendered pages under `/-/web/` (and `/` for browsers, which
 * server.ts routes to `/-/web/`), readable without JavaScript. Every read goes through the
 * registry (its read gate) or the auth service, as the JSON API's do, with the caller taken from
 * the session cookie instead of the Authorization header: a package the viewer may not read is
 * answered exactly like an unknown name (the same status and page), and never appears in a list
 * or a count.
 *
 * Every answer of this scope carries a strict Content-Security-Policy (no inline script or style,
 * CSP Level 3), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
 * `Referrer-Policy`; forms that change something check the browser's CSRF token
 * (auth/sessions.ts) and that `Origin`, when sent, is this site (OWASP CSRF cheat sheet).
 * Cookies: signed (@fastify/cookie, HMAC-SHA-256 under the installation's secret), HttpOnly,
 * SameSite=Lax, Secure when `url` is https.
 */
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SESSION_DAYS } from '../../auth/sessions.js'
import { tokenOptions } from '../../auth/token-body.js'
import { notFound, RegistryError } from '../../registry/errors.js'
import { revOf } from '../../registry/packument.js'
import type { Principal } from '../../registry/types.js'
import { buildAssets } from '../../web/assets.js'
import { html } from '../../web/html.js'
import { page, type Chrome } from '../../web/layout.js'
import { readmeRenderer } from '../../web/markdown.js'
import { PageCache } from '../../web/page-cache.js'
import { packageLink, renderPackageBody } from '../../web/package-view.js'
import { adminBody, homeBody, messageBody, orgBody, SEARCH_PAGE, searchBody, teamBody, tokensBody, userBody } from '../../web/pages.js'
import type { RouteContext } from '../context.js'
import { sendError, statusOfError as statusOf } from '../errors.js'
import { signInRoutes } from './web-login.js'
import { BROWSER_COOKIE, CSP, formOf, SESSION_COOKIE, type WebDeps, type WebRequest } from './web-shared.js'

export { CSP, type WebDeps } from './web-shared.js'

/** Whether the client asked for HTML (browsers always do); others get JSON errors. */
function wantsHtml(req: FastifyRequest): boolean {
  return /text\/html|application\/xhtml\+xml/i.test(req.headers.accept ?? '')
}

const viewers = new WeakMap<FastifyRequest, Promise<Principal>>()

/** Registers the web UI under `/-/web/`; nothing when `web.enable` is false. */
export function webRoutes(app: FastifyInstance, ctx: RouteContext, deps: WebDeps): void {
  const { config, registry, auth } = ctx
  if (!config.web.enable) return
  const assets = buildAssets(config.web.primary_color)
  const cache = new PageCache()
  const secure = config.url?.startsWith('https:') === true
  const cookieBase = { path: '/', httpOnly: true, sameSite: 'lax' as const, secure, signed: true }

  void app.register(
    async (web) => {
      await web.register(cookie, { secret: deps.sessions.secret, hook: 'onRequest' })
      await web.register(formbody)

      web.addHook('onSend', (_req, reply, payload, done) => {
        void reply.header('content-security-policy', CSP)
        void reply.header('x-content-type-options', 'nosniff')
        void reply.header('x-frame-options', 'DENY')
        void reply.header('referrer-policy', 'strict-origin-when-cross-origin')
        if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-cache')
        done(null, payload)
      })

      const unsigned = (req: FastifyRequest, name: string): string | undefined => {
        // Absent when the cookie hook did not run (a URL Fastify could not decode reaches the 404 handler first).
        const raw = (req.cookies as Record<string, string | undefined> | undefined)?.[name]
        if (!raw) return undefined
        const u = req.unsignCookie(raw)
        return u.valid && u.value !== null ? u.value : undefined
      }

      const w: WebRequest = {
        sessionToken: (req) => unsigned(req, SESSION_COOKIE),
        viewer(req) {
          let p = viewers.get(req)
          if (!p) {
            p = deps.sessions.principal(w.sessionToken(req), req.ip)
            viewers.set(req, p)
          }
          return p
        },
        browserId(req, reply) {
          const have = unsigned(req, BROWSER_COOKIE)
          if (have && /^[A-Za-z0-9_-]{43}$/.test(have)) return have
          const id = deps.sessions.newBrowserId()
          void reply.setCookie(BROWSER_COOKIE, id, { ...cookieBase, maxAge: 365 * 24 * 3600 })
          // Later reads in this request see it too.
          if (req.cookies) req.cookies[BROWSER_COOKIE] = reply.signCookie(id)
          return id
        },
        csrfOk(req, form) {
          const origin = req.headers.origin
          if (origin !== undefined && origin !== 'null' && origin !== ctx.baseUrl(req)) return false
          if (origin === 'null') return false
          return deps.sessions.checkCsrf(unsigned(req, BROWSER_COOKIE), form.csrf)
        },
        setSession(reply, token) {
          void reply.setCookie(SESSION_COOKIE, token, { ...cookieBase, maxAge: SESSION_DAYS * 24 * 3600 })
        },
        async chrome(req, reply, query) {
          const p = await w.viewer(req)
          const c: Chrome = { title: config.web.title, logo: config.web.logo, css: assets.css.path, js: assets.js.path, query }
          if (p.name !== undefined) {
            c.viewer = { name: p.name, admin: p.admin === true }
            c.csrf = deps.sessions.csrfToken(w.browserId(req, reply))
          }
          return c
        },
        async send(req, reply, status, title, body, query) {
          const c = await w.chrome(req, reply, query)
          return reply.code(status).type('text/html; charset=utf-8').send(page(c, title, body))
        },
        actor: (req, name) => ({ name, ip: req.ip }),
      }

      // Errors as pages: what the JSON API would answer, in HTML with the same status.
      web.setErrorHandler(async (err, req, reply) => {
        const status = err instanceof RegistryError ? statusOf(err) : typeof (err as { statusCode?: unknown }).statusCode === 'number' && (err as { statusCode: number }).statusCode < 500 ? (err as { statusCode: number }).statusCode : 500
        if (status >= 500) req.log.error({ err }, 'web page failed')
        if (err instanceof RegistryError && err.retryAfter !== undefined) void reply.header('retry-after', String(err.retryAfter))
        // A client that did not ask for HTML (a script, curl) gets npm's JSON error shape.
        if (!wantsHtml(req)) return sendError(reply, status, status >= 500 ? `Internal server error (request id ${req.id}).` : err.message)
        const [title, text] =
          status === 404
            ? ['Not found', 'There is nothing here, or you may not see it.']
            : status === 401
              ? ['Sign in required', html`Sign in to see this page: <a href="/-/web/login?next=${encodeURIComponent(req.url)}">sign in</a>.`]
              : status === 403
                ? ['Not allowed', err.message]
                : status < 500
                  ? ['Something is wrong with the request', err.message]
                  : ['Something went wrong', `The server could not answer (request id ${req.id}).`]
        return w.send(req, reply, status, title, messageBody(title, text))
      })
      // Unknown addresses under /-/web/: a wildcard route, not setNotFoundHandler (Fastify hands URLs it
      // cannot decode to the last 404 handler set anywhere, which must stay the JSON API's).
      web.all('/*', async () => {
        throw notFound()
      })

      web.get<{ Params: { file: string } }>('/static/:file', async (req, reply) => {
        const a = assets.byFile.get(req.params.file)
        if (!a) return sendError(reply, 404, 'Not found')
        return reply.header('cache-control', 'public, max-age=31536000, immutable').type(a.type).send(a.body)
      })

      // ---- Reading ----

      web.get('/', async (req, reply) => {
        const caller = () => w.viewer(req)
        const { total, hits } = await registry.recentPackages(50, caller)
        void reply.header('vary', 'Accept, Cookie')
        return w.send(req, reply, 200, '', homeBody(total, hits))
      })

      web.get('/search', async (req, reply) => {
        const q = req.query as Record<string, unknown>
        const text = typeof q.q === 'string' ? q.q.slice(0, 500) : ''
        const pageNo = Math.min(10_000, Math.max(0, Math.trunc(Number(q.page ?? 1)) - 1 || 0))
        const { objects, total } = await registry.search({ text, size: SEARCH_PAGE, from: pageNo * SEARCH_PAGE }, () => w.viewer(req), ctx.baseUrl(req))
        return w.send(req, reply, 200, text ? `Search: ${text}` : 'Search', searchBody(text, objects, total, pageNo), text)
      })

      web.get('/suggest', async (req, reply) => {
        const q = req.query as Record<string, unknown>
        const text = typeof q.q === 'string' ? q.q.slice(0, 200) : ''
        const { objects } = text.trim() === '' ? { objects: [] } : await registry.search({ text, size: 8, from: 0 }, () => w.viewer(req), ctx.baseUrl(req))
        const out = objects.map((o) => ({ name: o.package.name, version: o.package.version, description: o.package.description, href: `/-/web/package/${o.package.name}` }))
        return reply.header('cache-control', 'no-store').type('application/json').send({ objects: out })
      })

      web.get('/package/*', async (req, reply) => {
        const m = /^(@[^/]+\/[^/]+|[^@/][^/]*)(?:\/v\/([^/]+))?\/?$/.exec((req.params as { '*': string })['*'])
        if (!m?.[1]) throw notFound()
        const name = m[1]
        const version = m[2]
        const caller = () => w.viewer(req)
        const state = await registry.packageState(name, caller, version)
        if (!state) throw notFound()
        const visibility = registry.gate.readableByAll(name) ? 'all' : 'readers'
        const render = await readmeRenderer()
        const body = cache.get(name, revOf(state), version, visibility, () => renderPackageBody(state, version, (row, repo) => cache.readme(row, repo, render)))
        if (!body) throw notFound(`${name} has no version ${version ?? ''}.`)
        const dependents = await registry.dependents(name, caller)
        const deps = html`<section aria-labelledby="dependents-h"><h2 id="dependents-h">Dependents (${dependents.length})</h2>${
          dependents.length === 0 ? html`<p class="muted">None here.</p>` : html`<ul class="plain">${dependents.slice(0, 100).map((n) => html`<li>${packageLink(n)}</li>`)}</ul>`
        }</section>`
        return w.send(req, reply, 200, body.title, html`<div class="grid"><div>${body.main}</div><aside aria-label="Package details">${body.aside}${deps}</aside></div>`)
      })

      web.get<{ Params: { user: string } }>('/user/:user', async (req, reply) => {
        const user = req.params.user
        const viewer = await w.viewer(req)
        if (config.auth.type !== 'github') await auth.userDoc(user)
        const packages = await registry.userPackages(user, viewer)
        return w.send(req, reply, 200, user, userBody(user, packages, viewer.name === user))
      })

      web.get<{ Params: { org: string } }>('/org/:org', async (req, reply) => {
        const org = req.params.org.replace(/^@/, '')
        const viewer = await w.viewer(req)
        const members = registry.orgs.members(org, viewer)
        const teams = registry.orgs.teams(org, viewer)
        const packages = await registry.orgPackages(org, viewer)
        return w.send(req, reply, 200, `@${org}`, orgBody(org, members, teams, packages))
      })

      web.get<{ Params: { org: string; team: string } }>('/org/:org/team/:team', async (req, reply) => {
        const org = req.params.org.replace(/^@/, '')
        const viewer = await w.viewer(req)
        const members = registry.orgs.teamMembers(org, req.params.team, viewer)
        const packages = await registry.orgs.teamPackages(org, req.params.team, viewer)
        return w.send(req, reply, 200, `@${org}:${req.params.team}`, teamBody(org, req.params.team, members, packages))
      })

      web.get('/admin', async (req, reply) => {
        const viewer = await w.viewer(req)
        const users = await auth.listUsers(viewer)
        const since = new Date(Date.now() - 30 * 24 * 3600_000).toISOString()
        const q = req.query as Record<string, unknown>
        const entries = await auth.readAudit(viewer, {
          since,
          limit: 1000,
          ...(typeof q.user === 'string' && q.user ? { user: q.user } : {}),
          ...(typeof q.package === 'string' && q.package ? { package: q.package } : {}),
        })
        return w.send(req, reply, 200, 'Administration', adminBody(users, entries.slice(-100).reverse()))
      })

      // ---- Tokens ----

      const tokensPage = async (req: FastifyRequest, reply: FastifyReply, status: number, created?: string, error?: string): Promise<FastifyReply> => {
        const viewer = await w.viewer(req)
        if (viewer.name === undefined) return reply.redirect('/-/web/login?next=%2F-%2Fweb%2Fsettings%2Ftokens', 303)
        const tokens = await auth.listTokens(viewer.name)
        const csrf = deps.sessions.csrfToken(w.browserId(req, reply))
        return w.send(req, reply, status, 'Access tokens', tokensBody(tokens, csrf, created, error, config.auth.type === 'github'))
      }
      web.get('/settings/tokens', async (req, reply) => tokensPage(req, reply, 200))
      web.post('/settings/tokens', async (req, reply) => {
        const form = formOf(req.body)
        const viewer = await w.viewer(req)
        if (viewer.name === undefined) return reply.redirect('/-/web/login?next=%2F-%2Fweb%2Fsettings%2Ftokens', 303)
        if (!w.csrfOk(req, form)) return tokensPage(req, reply, 403, undefined, 'The form expired. Please try again.')
        try {
          if (config.auth.type !== 'github') await auth.checkPassword(viewer.name, form.password ?? '', req.ip)
          const list = (v: string | undefined): string[] | undefined => {
            const items = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)
            return items.length > 0 ? items : undefined
          }
          const body: Record<string, unknown> = {
            name: form.name?.trim() || undefined,
            description: form.description?.trim() || undefined,
            expires: form.expires?.trim() ? Number(form.expires) : undefined,
            readonly: form.readonly === 'true',
            cidr_whitelist: list(form.cidr_whitelist),
            packages: list(form.packages),
            packages_all: form.packages_all === 'true',
            scopes: list(form.scopes),
            orgs: list(form.orgs),
          }
          // The permissions only matter for a granular token: sent when something is named.
          if (body.packages || body.packages_all || body.scopes) body.packages_and_scopes_permission = form.packages_and_scopes_permission
          if (body.orgs) body.orgs_permission = form.orgs_permission
          const { token } = await auth.createToken(viewer.name, tokenOptions(body), { name: viewer.name, tokenKey: viewer.tokenKey, ip: req.ip })
          return tokensPage(req, reply, 201, token)
        } catch (e) {
          if (e instanceof RegistryError && e.code !== 'UNAVAILABLE') return tokensPage(req, reply, statusOf(e), undefined, e.message)
          throw e
        }
      })
      web.post('/settings/tokens/revoke', async (req, reply) => {
        const form = formOf(req.body)
        const viewer = await w.viewer(req)
        if (viewer.name === undefined) return reply.redirect('/-/web/login?next=%2F-%2Fweb%2Fsettings%2Ftokens', 303)
        if (!w.csrfOk(req, form)) return tokensPage(req, reply, 403, undefined, 'The form expired. Please try again.')
        try {
          await auth.revokeToken(viewer.name, form.key ?? '', { name: viewer.name, tokenKey: viewer.tokenKey, ip: req.ip })
        } catch (e) {
          if (e instanceof RegistryError) return tokensPage(req, reply, statusOf(e), undefined, e.message)
          throw e
        }
        // Revoking the session's own token signs out.
        return reply.redirect(w.sessionToken(req) && (await deps.sessions.principal(w.sessionToken(req), req.ip)).name === undefined ? '/-/web/' : '/-/web/settings/tokens', 303)
      })

      // ---- Signing in and out (and the page npm's loginUrl opens) ----
      signInRoutes(web, ctx, deps, w)
    },
    { prefix: '/-/web' },
  )
}
