/**
 * The bodies of the web UI's other pages (docs/web.md lists their addresses): home, search
 * results, user, org, team, administration, tokens, sign-in and sign-up, and messages. Each is a
 * pure function of what the route read through the registry's read gate and the auth service, so
 * nothing here can show a package the viewer may not read. Every form that changes something
 * carries the browser's CSRF token (auth/sessions.ts) and posts to this site.
 */
import type { TokenView } from '../auth/auth-service.js'
import type { AuditRecord } from '../registry/audit-log.js'
import type { SearchObject } from '../registry/search.js'
import type { SearchHit } from '../registry/stores.js'
import { html, type Html } from './html.js'
import { dateOf, packageLink, userLink } from './package-view.js'

/** One line of a package list. */
function hitItem(name: string, version: string, description: string, when: string, whenLabel: string): Html {
  return html`<li><span class="name">${packageLink(name)}</span> <span class="muted">${version}</span>
${description ? html`<div>${description}</div>` : ''}<div class="muted">${whenLabel} ${dateOf(when)}</div></li>`
}

const descriptionOf = (h: SearchHit): string => {
  try {
    const m = JSON.parse(h.latest.manifest) as { description?: unknown }
    return typeof m.description === 'string' ? m.description : ''
  } catch {
    return ''
  }
}

/** The home page: counts and the recently published and recently updated packages. */
export function homeBody(total: number, hits: SearchHit[]): Html {
  const published = [...hits].sort((a, b) => b.latest.published.localeCompare(a.latest.published)).slice(0, 10)
  const updated = [...hits].sort((a, b) => b.modified.localeCompare(a.modified)).slice(0, 10)
  return html`<h1>Packages</h1>
<div class="counts" role="group" aria-label="Counts"><div>${total}<span>${total === 1 ? 'package' : 'packages'}</span></div></div>
<div class="cols">
<section aria-labelledby="pub-h"><h2 id="pub-h">Recently published</h2>
${published.length === 0 ? html`<p class="muted">Nothing published yet.</p>` : html`<ul class="results">${published.map((h) => hitItem(h.name, h.latest.version, descriptionOf(h), h.latest.published, 'published'))}</ul>`}
</section>
<section aria-labelledby="upd-h"><h2 id="upd-h">Recently updated</h2>
${updated.length === 0 ? html`<p class="muted">Nothing yet.</p>` : html`<ul class="results">${updated.map((h) => hitItem(h.name, h.latest.version, descriptionOf(h), h.modified, 'updated'))}</ul>`}
</section>
</div>`
}

/** Results per search page (npm's default size). */
export const SEARCH_PAGE = 20

/** The search results page: `total` matches, `objects` of page `pageNo` (0-based). */
export function searchBody(q: string, objects: SearchObject[], total: number, pageNo: number): Html {
  const href = (p: number): string => `/-/web/search?q=${encodeURIComponent(q)}${p > 0 ? `&page=${p + 1}` : ''}`
  const last = Math.max(0, Math.ceil(total / SEARCH_PAGE) - 1)
  return html`<h1>${q ? html`Search results for “${q}”` : 'All packages'}</h1>
<p class="muted" role="status">${total} ${total === 1 ? 'package' : 'packages'} found${total > SEARCH_PAGE ? ` · page ${pageNo + 1} of ${last + 1}` : ''}</p>
${objects.length === 0 ? html`<p>No packages match.</p>` : html`<ul class="results">${objects.map((o) => hitItem(o.package.name, o.package.version, o.package.description, o.package.date, 'updated'))}</ul>`}
${total > SEARCH_PAGE
    ? html`<nav class="pager" aria-label="Pages">${pageNo > 0 ? html`<a href="${href(pageNo - 1)}" rel="prev">Previous page</a>` : ''}${pageNo < last ? html`<a href="${href(pageNo + 1)}" rel="next">Next page</a>` : ''}</nav>`
    : ''}`
}

/** A user's page: the packages they maintain or are granted, as far as the viewer may read them. */
export function userBody(user: string, packages: Record<string, string>, isSelf: boolean): Html {
  const names = Object.keys(packages)
  return html`<h1>${user}</h1>
${isSelf ? html`<p><a href="/-/web/settings/tokens">Manage your tokens</a></p>` : ''}
<section aria-labelledby="pkgs-h"><h2 id="pkgs-h">Packages (${names.length})</h2>
${names.length === 0 ? html`<p class="muted">No packages.</p>` : html`<ul class="plain">${names.map((n) => html`<li>${packageLink(n)} <span class="muted">${packages[n] === 'write' ? 'read and write' : 'read'}</span></li>`)}</ul>`}
</section>`
}

/** An org's page: members with their roles, teams, and the org's packages the viewer may read. */
export function orgBody(org: string, members: Record<string, string>, teams: string[], packages: Record<string, string>): Html {
  return html`<h1>@${org}</h1>
<div class="cols">
<section aria-labelledby="mem-h"><h2 id="mem-h">Members (${Object.keys(members).length})</h2>
<ul class="plain">${Object.entries(members).map(([u, role]) => html`<li>${userLink(u)} <span class="muted">${role}</span></li>`)}</ul></section>
<section aria-labelledby="teams-h"><h2 id="teams-h">Teams (${teams.length})</h2>
<ul class="plain">${teams.map((t) => {
    const team = t.slice(t.indexOf(':') + 1)
    return html`<li><a href="/-/web/org/${encodeURIComponent(org)}/team/${encodeURIComponent(team)}">${t}</a></li>`
  })}</ul></section>
<section aria-labelledby="opk-h"><h2 id="opk-h">Packages (${Object.keys(packages).length})</h2>
<ul class="plain">${Object.keys(packages).map((n) => html`<li>${packageLink(n)}</li>`)}</ul></section>
</div>`
}

/** A team's page: members and the packages it is granted (those the viewer may read). */
export function teamBody(org: string, team: string, members: string[], packages: Record<string, string>): Html {
  return html`<h1>@${org}:${team}</h1>
<p><a href="/-/web/org/${encodeURIComponent(org)}">Back to @${org}</a></p>
<div class="cols">
<section aria-labelledby="tm-h"><h2 id="tm-h">Members (${members.length})</h2><ul class="plain">${members.map((u) => html`<li>${userLink(u)}</li>`)}</ul></section>
<section aria-labelledby="tp-h"><h2 id="tp-h">Packages (${Object.keys(packages).length})</h2>
<ul class="plain">${Object.entries(packages).map(([n, perm]) => html`<li>${packageLink(n)} <span class="muted">${perm}</span></li>`)}</ul></section>
</div>`
}

/** The administration page: users and the newest audit-log entries (newest first). */
export function adminBody(users: { name: string; email: string; admin: boolean; created: string }[], audit: AuditRecord[]): Html {
  return html`<h1>Administration</h1>
<section aria-labelledby="users-h"><h2 id="users-h">Users (${users.length})</h2>
<div class="table-scroll"><table><thead><tr><th scope="col">User</th><th scope="col">E-mail</th><th scope="col">Administrator</th><th scope="col">Created</th></tr></thead><tbody>
${users.map((u) => html`<tr><td>${userLink(u.name)}</td><td>${u.email}</td><td>${u.admin ? 'yes' : 'no'}</td><td>${dateOf(u.created)}</td></tr>`)}
</tbody></table></div></section>
<section aria-labelledby="audit-h"><h2 id="audit-h">Audit log (newest ${audit.length})</h2>
<div class="table-scroll"><table><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Package</th><th scope="col">Address</th><th scope="col">Details</th></tr></thead><tbody>
${audit.map((e) => html`<tr><td><time datetime="${e.at}">${e.at.replace('T', ' ').slice(0, 19)}</time></td><td>${e.actor ?? '—'}</td><td>${e.action}</td><td>${e.package ? packageLink(e.package) : '—'}</td><td>${e.ip ?? ''}</td><td><code>${JSON.stringify(e.details).slice(0, 300)}</code></td></tr>`)}
</tbody></table></div></section>`
}

/** The tokens page: the new token (shown once), the creation form with npm 11's options, the list. */
export function tokensBody(tokens: TokenView[], csrf: string, created: string | undefined, error: string | undefined, passwordless: boolean): Html {
  const perms = (name: string, label: string, dflt: string): Html =>
    html`<div class="field"><label for="${name}">${label}</label><select id="${name}" name="${name}">${['read-only', 'read-write', 'no-access'].map((p) => html`<option value="${p}"${p === dflt ? html` selected` : ''}>${p}</option>`)}</select></div>`
  return html`<h1>Access tokens</h1>
${error ? html`<div class="error" role="alert">${error}</div>` : ''}
${created ? html`<div class="notice" role="status"><p><strong>Your new token</strong> (shown once; copy it now):</p><p class="secret" id="new-token">${created}</p><button type="button" class="secondary" data-copy="${created}" hidden>Copy token</button></div>` : ''}
<section aria-labelledby="create-h"><h2 id="create-h">Create a token</h2>
<form method="post" action="/-/web/settings/tokens">
<input type="hidden" name="csrf" value="${csrf}">
<div class="field"><label for="t-name">Name</label><input type="text" id="t-name" name="name" maxlength="200"></div>
<div class="field"><label for="t-desc">Description</label><input type="text" id="t-desc" name="description" maxlength="500"></div>
<div class="field"><label for="t-expires">Expires after (days, 1–3650; empty: never)</label><input type="number" id="t-expires" name="expires" min="1" max="3650"></div>
<fieldset><legend>Granular access (npm 11; leave empty for a token with your own rights)</legend>
<div class="field"><label for="t-packages">Packages (comma-separated)</label><input type="text" id="t-packages" name="packages"></div>
<div class="checks"><label><input type="checkbox" name="packages_all" value="true"> All packages</label></div>
<div class="field"><label for="t-scopes">Scopes (comma-separated, e.g. @acme)</label><input type="text" id="t-scopes" name="scopes"></div>
${perms('packages_and_scopes_permission', 'Packages and scopes permission', 'read-only')}
<div class="field"><label for="t-orgs">Orgs (comma-separated)</label><input type="text" id="t-orgs" name="orgs"></div>
${perms('orgs_permission', 'Orgs permission', 'no-access')}
</fieldset>
<div class="checks"><label><input type="checkbox" name="readonly" value="true"> Read-only (a token with your own rights that cannot write)</label></div>
<div class="field"><label for="t-cidr">Allowed addresses (CIDR ranges, comma-separated; empty: anywhere)</label><input type="text" id="t-cidr" name="cidr_whitelist"></div>
${passwordless ? '' : html`<div class="field"><label for="t-password">Your password</label><input type="password" id="t-password" name="password" required autocomplete="current-password"></div>`}
<button type="submit">Create token</button>
</form></section>
<section aria-labelledby="list-h"><h2 id="list-h">Your tokens (${tokens.length})</h2>
${tokens.length === 0 ? html`<p class="muted">No tokens.</p>` : html`<div class="table-scroll"><table><thead><tr><th scope="col">Name</th><th scope="col">Token</th><th scope="col">Access</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
${tokens.map((t) => html`<tr><td>${t.name ?? '—'}</td><td><code>${t.token}</code></td><td>${accessOf(t)}</td><td>${dateOf(t.created)}</td><td>${t.expires ? dateOf(t.expires) : 'never'}</td><td>${t.last_used ? dateOf(t.last_used) : 'never'}</td>
<td><form method="post" action="/-/web/settings/tokens/revoke"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="key" value="${t.key}"><button type="submit" class="secondary" aria-label="Revoke token ${t.name ?? t.token}">Revoke</button></form></td></tr>`)}
</tbody></table></div>`}
</section>`
}

function accessOf(t: TokenView): string {
  if (t.packages_and_scopes_permission !== undefined) {
    const what = [t.packages_all ? 'all packages' : '', ...(t.packages ?? []), ...(t.scopes ?? []), ...(t.orgs ?? []).map((o) => `org ${o}`)].filter(Boolean).join(', ')
    return `granular ${t.packages_and_scopes_permission}${what ? `: ${what}` : ''}`
  }
  return t.readonly ? 'read-only' : 'read and write'
}

/** What the sign-in page shows. */
export interface LoginForm {
  csrf: string
  /** The web login (`npm login`) this sign-in completes; absent: a sign-in to the UI. */
  session?: string | undefined
  /** Offer the sign-up form (sign-up allowed; first for `npm adduser`). */
  signup: 'none' | 'offer' | 'first'
  /** `auth.type: github`: a "Sign in with GitHub" link instead of the password form. */
  github?: string | undefined
  /** Signed in already as this user: offer to authorise the CLI in one click. */
  as?: string | undefined
  error?: string | undefined
  /** Where to go after a UI sign-in (a path on this site). */
  next?: string | undefined
}

/** The sign-in page (also the page `loginUrl` opens). */
export function loginBody(f: LoginForm): Html {
  const hidden = html`<input type="hidden" name="csrf" value="${f.csrf}">${f.session ? html`<input type="hidden" name="session" value="${f.session}">` : ''}${f.next ? html`<input type="hidden" name="next" value="${f.next}">` : ''}`
  const cli = f.session !== undefined
  const signin = f.github
    ? html`<p><a class="button" href="${f.github}">Sign in with GitHub</a></p>`
    : html`<form method="post" action="/-/web/login">${hidden}
<div class="field"><label for="username">Username</label><input type="text" id="username" name="username" required autocomplete="username" autocapitalize="none" spellcheck="false"></div>
<div class="field"><label for="password">Password</label><input type="password" id="password" name="password" required autocomplete="current-password"></div>
<button type="submit">Sign in</button></form>`
  const signupHref = `/-/web/signup${f.session ? `?session=${encodeURIComponent(f.session)}` : ''}`
  const signup = f.signup === 'none' || f.github ? html`` : html`<p>${f.signup === 'first' ? 'New here? ' : 'No account yet? '}<a href="${signupHref}">Create an account</a></p>`
  const authorize = f.as
    ? html`<form method="post" action="/-/web/login/authorize">${hidden}<p>You are signed in as <strong>${f.as}</strong>.</p><button type="submit">Authorize the npm CLI as ${f.as}</button></form><p class="muted">Or sign in as someone else:</p>`
    : ''
  return html`<div class="card">
<h1>${cli ? (f.signup === 'first' ? 'Create your account for the npm CLI' : 'Sign in to the npm CLI') : 'Sign in'}</h1>
${cli ? html`<p>A command line (<code>npm login</code> or <code>npm adduser</code>) asked to sign in. Continue only if you started it.</p>` : ''}
${f.error ? html`<div class="error" role="alert">${f.error}</div>` : ''}
${f.signup === 'first' ? signup : ''}${authorize}${signin}${f.signup === 'offer' ? signup : ''}
</div>`
}

/** The sign-up page (`/-/web/signup`), for a UI visitor or a web login from `npm adduser`. */
export function signupBody(f: { csrf: string; session?: string | undefined; error?: string | undefined }): Html {
  return html`<div class="card">
<h1>Create an account</h1>
${f.session ? html`<p>The npm CLI (<code>npm adduser</code>) will be signed in as the new account. Continue only if you started it.</p>` : ''}
${f.error ? html`<div class="error" role="alert">${f.error}</div>` : ''}
<form method="post" action="/-/web/signup"><input type="hidden" name="csrf" value="${f.csrf}">${f.session ? html`<input type="hidden" name="session" value="${f.session}">` : ''}
<div class="field"><label for="username">Username</label><input type="text" id="username" name="username" required autocomplete="username" autocapitalize="none" spellcheck="false"></div>
<div class="field"><label for="email">E-mail</label><input type="email" id="email" name="email" required autocomplete="email"></div>
<div class="field"><label for="password">Password</label><input type="password" id="password" name="password" required autocomplete="new-password"></div>
<button type="submit">Create account</button></form>
<p><a href="/-/web/login${f.session ? `?session=${encodeURIComponent(f.session)}` : ''}">I have an account: sign in</a></p>
</div>`
}

/** A short message page (errors, "you may close this window"). */
export function messageBody(title: string, text: string | Html): Html {
  return html`<div class="card"><h1>${title}</h1><p>${text}</p><p><a href="/-/web/">Go to the home page</a></p></div>`
}
