/**
 * The package page and the version page (`/-/web/package/NAME`, `/-/web/package/NAME/v/VERSION`):
 * what the packument says, rendered once per package `_rev` (page-cache.ts) because it is the
 * same for everyone allowed to read the package. What depends on the viewer (the header, the
 * dependents the viewer may read) is added by the route around it, never cached inside it.
 *
 * Shown: the rendered README (readme-engine.ts), description, deprecation banner, install commands for
 * npm, pnpm, yarn and bun, versions with their publish dates, dist-tags, dependencies (linked),
 * maintainers (linked to their user pages), tarball size and unpacked size (bytes, shown in
 * KiB/MiB), file count, integrity, repository, homepage, license, keywords.
 */
import semver from 'semver'
import type { Person, StoredPackument, StoredVersion } from '../registry/types.js'
import { html, packagePath, safeHref, unsafeHtml, type Html } from './html.js'
import { repositoryUrl } from './repository.js'

/** A rendered package or version page body, in two columns. */
export interface PackageBody {
  /** The page title: `name` or `name@version`. */
  title: string
  /** The README column. */
  main: Html
  /** The facts column; the route appends the dependents after it. */
  aside: Html
  /** Bytes of both, for the cache's bound. */
  size: number
}

/** Bytes as people read them (1024-based, as npm prints `unpacked size`). */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return 'unknown'
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}

/** An ISO 8601 time as a `<time>` element showing the date (UTC). */
export function dateOf(iso: string | undefined): Html {
  if (!iso) return html`<span class="muted">unknown</span>`
  return html`<time datetime="${iso}">${iso.slice(0, 10)}</time>`
}

/** A link to a package's page. */
export function packageLink(name: string, version?: string): Html {
  const href = `/-/web/package/${packagePath(name)}${version === undefined ? '' : `/v/${encodeURIComponent(version)}`}`
  return html`<a href="${href}">${version === undefined ? name : `${name}@${version}`}</a>`
}

/** A link to a user's page. */
export function userLink(name: string): Html {
  return html`<a href="/-/web/user/${encodeURIComponent(name)}">${name}</a>`
}

/** The install commands of the four clients, each with a copy button (shown by the script). */
function installCommands(name: string, version: string | undefined): Html {
  const spec = version === undefined ? name : `${name}@${version}`
  const cmds: [string, string][] = [
    ['npm', `npm install ${spec}`],
    ['pnpm', `pnpm add ${spec}`],
    ['yarn', `yarn add ${spec}`],
    ['bun', `bun add ${spec}`],
  ]
  return html`<section aria-labelledby="install-h"><h2 id="install-h">Install</h2>
${cmds.map(([client, cmd]) => html`<div class="install"><code>${cmd}</code><button type="button" class="secondary" data-copy="${cmd}" hidden aria-label="Copy the ${client} command">Copy</button></div>`)}
</section>`
}

/** The string value of a manifest field, when it is one. */
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

/** A manifest's license as text (`license` string, or the old `{type}` / `licenses` forms). */
function licenseOf(m: Record<string, unknown>): string | undefined {
  if (typeof m.license === 'string') return m.license
  if (typeof m.license === 'object' && m.license !== null) return str((m.license as { type?: unknown }).type)
  if (Array.isArray(m.licenses)) return m.licenses.map((l) => (typeof l === 'object' && l !== null ? str((l as { type?: unknown }).type) : undefined)).filter(Boolean).join(' OR ') || undefined
  return undefined
}

/** A dependency list (`dependencies`, `peerDependencies`…) with links. */
function depList(title: string, id: string, deps: unknown): Html {
  const entries = typeof deps === 'object' && deps !== null ? Object.entries(deps as Record<string, unknown>) : []
  if (entries.length === 0) return html``
  return html`<section aria-labelledby="${id}"><h2 id="${id}">${title} (${entries.length})</h2><ul class="plain">
${entries.map(([n, range]) => html`<li>${packageLink(n)} <span class="muted">${typeof range === 'string' ? range : ''}</span></li>`)}
</ul></section>`
}

/**
 * Renders the body of a package page (`version` undefined: the `latest` version) or of one
 * version's page.
 * @param readmeOf the sanitised HTML of a version's README (the page cache's `readme`, with the
 *   renderer markdown.ts `readmeRenderer` loaded)
 * @returns undefined when `version` is not a live version of the package
 */
export function renderPackageBody(
  state: StoredPackument,
  version: string | undefined,
  readmeOf: (row: StoredVersion, repository: unknown) => string,
): PackageBody | undefined {
  const live = state.versions.filter((v) => v.unpublished === null)
  const byVersion = new Map(live.map((v) => [v.version, v]))
  const latestName = state.distTags.latest
  // Newest first; each version parsed once (semver.compare on strings parses on every call).
  const sorted = live
    .map((v) => ({ v, sv: semver.parse(v.version) }))
    .sort((a, b) => (a.sv && b.sv ? b.sv.compare(a.sv) : b.v.version.localeCompare(a.v.version)))
    .map((x) => x.v)
  const latestRow = (latestName !== undefined ? byVersion.get(latestName) : undefined) ?? sorted[0]
  const row: StoredVersion | undefined = version === undefined ? latestRow : byVersion.get(version)
  if (!row) return undefined
  const name = state.pkg.name
  const m = JSON.parse(row.manifest) as Record<string, unknown>
  const dist = (typeof m.dist === 'object' && m.dist !== null ? m.dist : {}) as Record<string, unknown>
  const repo = repositoryUrl(m.repository)
  const homepage = str(m.homepage)
  const license = licenseOf(m)
  const keywords = Array.isArray(m.keywords) ? m.keywords.filter((k): k is string => typeof k === 'string') : []
  const deprecated = str(m.deprecated)
  const readme = row.readme ? unsafeHtml(readmeOf(row, m.repository)) : html`<p class="muted">This package has no README.</p>`
  const isLatest = version === undefined || row.version === latestRow?.version
  const tags = Object.entries(state.distTags).sort(([a], [b]) => (a === 'latest' ? -1 : b === 'latest' ? 1 : a.localeCompare(b)))
  const tagsOf = new Map<string, string[]>()
  for (const [t, v] of tags) tagsOf.set(v, [...(tagsOf.get(v) ?? []), t])
  const maintainers: Person[] = state.maintainers

  const main = html`<h1>${version === undefined ? name : `${name}@${row.version}`}</h1>
<p class="muted">${row.version}${isLatest ? ' · latest' : ''} · published ${dateOf(row.published)}</p>
${deprecated ? html`<div class="deprecated" role="note"><strong>Deprecated:</strong> ${deprecated}</div>` : ''}
${str(m.description) ? html`<p>${str(m.description)}</p>` : ''}
${keywords.length > 0 ? html`<ul class="tags" aria-label="Keywords">${keywords.map((k) => html`<li><a href="/-/web/search?q=${encodeURIComponent(k)}">${k}</a></li>`)}</ul>` : ''}
<section aria-labelledby="readme-h"><h2 id="readme-h" class="visually-hidden">README</h2><div class="readme">${readme}</div></section>
<section aria-labelledby="versions-h"><h2 id="versions-h">Versions (${live.length})</h2>
<div class="table-scroll"><table><thead><tr><th scope="col">Version</th><th scope="col">Published</th><th scope="col">Tags</th></tr></thead><tbody>
${sorted.map((v) => html`<tr><td>${packageLink(name, v.version)}</td><td>${dateOf(v.published)}</td><td>${(tagsOf.get(v.version) ?? []).join(', ')}</td></tr>`)}
</tbody></table></div></section>`

  const aside = html`${installCommands(name, isLatest && version === undefined ? undefined : row.version)}
<section aria-labelledby="facts-h"><h2 id="facts-h">About</h2><dl class="facts">
<dt>Version</dt><dd>${row.version}</dd>
<dt>License</dt><dd>${license ?? 'none'}</dd>
${homepage ? html`<dt>Homepage</dt><dd><a href="${safeHref(homepage)}" rel="nofollow noopener noreferrer">${homepage}</a></dd>` : ''}
${repo ? html`<dt>Repository</dt><dd><a href="${safeHref(repo)}" rel="nofollow noopener noreferrer">${repo}</a></dd>` : ''}
<dt>Tarball size</dt><dd>${formatBytes(row.size)}</dd>
<dt>Unpacked size</dt><dd>${formatBytes(typeof dist.unpackedSize === 'number' ? dist.unpackedSize : undefined)}</dd>
${typeof dist.fileCount === 'number' ? html`<dt>Files</dt><dd>${dist.fileCount}</dd>` : ''}
<dt>Integrity</dt><dd><code>${row.integrity}</code></dd>
<dt>Published</dt><dd>${dateOf(row.published)}</dd>
</dl></section>
<section aria-labelledby="tags-h"><h2 id="tags-h">Dist-tags</h2><ul class="plain">${tags.map(([t, v]) => html`<li>${t}: ${packageLink(name, v)}</li>`)}</ul></section>
<section aria-labelledby="maint-h"><h2 id="maint-h">Maintainers</h2><ul class="plain">${maintainers.map((p) => html`<li>${userLink(p.name)}</li>`)}</ul></section>
${depList('Dependencies', 'deps-h', m.dependencies)}
${depList('Peer dependencies', 'peer-h', m.peerDependencies)}
${depList('Optional dependencies', 'opt-h', m.optionalDependencies)}`
  return { title: version === undefined ? name : `${name}@${row.version}`, main, aside, size: main.value.length + aside.value.length }
}
