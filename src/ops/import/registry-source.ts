/**
 * Another registry as an import source (`pier import registry URL`): any registry that serves
 * packuments the way npm reads them (docs/protocol.md §2: `GET /<name>`, scoped names as
 * `@scope%2fname`), such as another Pier, Verdaccio, a Nexus or Artifactory npm repository.
 *
 * - Packuments are asked for in full (`Accept: application/json`), tarballs from each version's
 *   `dist.tarball`. `--token` goes as `Authorization: Bearer` to the source's own origin only,
 *   never to another host a `dist.tarball` may name.
 * - A scope's names: npm's org listing `GET /-/org/<scope>/package` (what `npm access list
 *   packages @scope` reads) when the source serves it, else the search endpoint
 *   `GET /-/v1/search?text=@scope` paged 250 at a time, keeping the names in the scope.
 */
import { request } from 'undici'
import type { ImportedPackage, ImportedVersion } from '../../registry/import.js'

/** How to reach the source. */
export interface RegistrySourceOptions {
  /** Base URL of the source registry (a trailing slash is added when missing). */
  url: string
  /** Bearer token for the source. */
  token?: string | undefined
  /** Bound on each request's headers and on gaps in its body, ms (default 60 000). */
  timeoutMs?: number
  /** Largest packument accepted, bytes (default 200 MiB, as an uplink's `max_packument_size`). */
  maxPackumentBytes?: number
}

/** A request to the source failed: the status, or the network error. */
export class SourceError extends Error {
  constructor(
    message: string,
    /** HTTP status, when the source answered. */
    readonly status?: number,
  ) {
    super(message)
    this.name = 'SourceError'
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A package's path below the registry root: `@scope%2fname` for scoped names (npm-package-arg's escapedName). */
export function packumentPath(name: string): string {
  return name.startsWith('@') ? `@${encodeURIComponent(name.slice(1))}` : encodeURIComponent(name)
}

/** User names of a list of npm persons. */
function personNames(v: unknown): string[] {
  if (!Array.isArray(v)) return []
  return v.map((p) => (isObject(p) ? p.name : typeof p === 'string' ? p.split(/\s</)[0] : undefined)).filter((n): n is string => typeof n === 'string' && n !== '')
}

/** Reads packuments and tarballs from a registry. */
export class RegistrySource {
  private readonly base: URL

  constructor(private readonly o: RegistrySourceOptions) {
    this.base = new URL(o.url.endsWith('/') ? o.url : `${o.url}/`)
  }

  /** The headers for a request to `url`: the token only for the source's own origin. */
  private headers(url: URL, accept: string): Record<string, string> {
    const h: Record<string, string> = { accept, 'user-agent': 'pier-import' }
    if (this.o.token && url.origin === this.base.origin) h.authorization = `Bearer ${this.o.token}`
    return h
  }

  /**
   * GETs `url`.
   * @returns the body, or `undefined` for a 404
   * @throws SourceError for any other status, a network error, a timeout, a body beyond `max` bytes
   */
  private async get(start: URL, accept: string, max: number): Promise<Buffer | undefined> {
    const timeout = this.o.timeoutMs ?? 60_000
    let url = start
    let res
    // Redirects (a tarball served from an object store) are followed, at most 5; the token stays with the source's origin.
    for (let hops = 0; ; hops++) {
      try {
        res = await request(url, { method: 'GET', headers: this.headers(url, accept), headersTimeout: timeout, bodyTimeout: timeout })
      } catch (e) {
        throw new SourceError(`GET ${url.href} failed: ${(e as Error).message}`)
      }
      const location = res.headers.location
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || typeof location !== 'string' || hops >= 5) break
      await res.body.dump()
      url = new URL(location, url)
    }
    if (res.statusCode === 404) {
      await res.body.dump()
      return undefined
    }
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new SourceError(`GET ${url.href} answered ${res.statusCode}`, res.statusCode)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of res.body) {
      const b = c as Buffer
      size += b.length
      if (size > max) {
        res.body.destroy()
        throw new SourceError(`GET ${url.href}: the body is larger than ${max} bytes`)
      }
      chunks.push(b)
    }
    return Buffer.concat(chunks)
  }

  /**
   * The full packument of `name`.
   * @returns `undefined` when the source does not know the name (404)
   * @throws SourceError (status, network, not JSON, another package's document)
   */
  async packument(name: string): Promise<Record<string, unknown> | undefined> {
    const url = new URL(packumentPath(name), this.base)
    const body = await this.get(url, 'application/json', this.o.maxPackumentBytes ?? 200 * 1024 * 1024)
    if (!body) return undefined
    let doc: unknown
    try {
      doc = JSON.parse(body.toString('utf8'))
    } catch {
      throw new SourceError(`GET ${url.href}: the packument is not JSON`)
    }
    if (!isObject(doc)) throw new SourceError(`GET ${url.href}: the packument is not a JSON object`)
    if (doc.name !== undefined && doc.name !== name) throw new SourceError(`GET ${url.href}: the packument is named ${String(doc.name)}`)
    return doc
  }

  /**
   * The names of a scope's packages (see the file comment for how they are listed).
   * @param scope `@acme` (or `acme`)
   * @returns sorted names, each in the scope
   * @throws SourceError when neither listing answers
   */
  async scopeNames(scope: string): Promise<string[]> {
    const bare = scope.replace(/^@/, '')
    const prefix = `@${bare}/`
    const org = await this.get(new URL(`-/org/${encodeURIComponent(bare)}/package`, this.base), 'application/json', 64 * 1024 * 1024).catch(() => undefined)
    if (org) {
      try {
        const doc = JSON.parse(org.toString('utf8')) as unknown
        if (isObject(doc)) return Object.keys(doc).filter((n) => n.startsWith(prefix)).sort()
      } catch {
        // not the org listing: search instead
      }
    }
    const names = new Set<string>()
    for (let from = 0; ; ) {
      const url = new URL(`-/v1/search?text=${encodeURIComponent(prefix.slice(0, -1))}&size=250&from=${from}`, this.base)
      const body = await this.get(url, 'application/json', 64 * 1024 * 1024)
      if (!body) throw new SourceError(`GET ${url.href} answered 404: the source cannot list ${prefix.slice(0, -1)}; pass --names`, 404)
      const doc = JSON.parse(body.toString('utf8')) as { objects?: { package?: { name?: unknown } }[]; total?: unknown }
      const objects = Array.isArray(doc.objects) ? doc.objects : []
      for (const o of objects) if (typeof o.package?.name === 'string' && o.package.name.startsWith(prefix)) names.add(o.package.name)
      from += objects.length
      if (objects.length === 0 || (typeof doc.total === 'number' && from >= doc.total)) break
    }
    return [...names].sort()
  }

  /** Reads one tarball: `undefined` for a 404. @throws SourceError */
  async tarball(url: string): Promise<Buffer | undefined> {
    return this.get(new URL(url, this.base), 'application/octet-stream', 1024 * 1024 * 1024)
  }

  /**
   * A packument as the import takes it: every version with its tarball fetched lazily from its
   * `dist.tarball`, `time` stamps, dist-tags, the readme (given to the `latest` version when its
   * manifest has none), maintainers and stars (`users`).
   */
  packageOf(name: string, doc: Record<string, unknown>): ImportedPackage {
    const versions = isObject(doc.versions) ? doc.versions : {}
    const time = isObject(doc.time) ? doc.time : {}
    const tags = isObject(doc['dist-tags']) ? doc['dist-tags'] : {}
    const distTags = Object.fromEntries(Object.entries(tags).filter((e): e is [string, string] => typeof e[1] === 'string'))
    const topReadme = typeof doc.readme === 'string' && doc.readme !== '' ? doc.readme : undefined
    const list: ImportedVersion[] = []
    for (const [version, m] of Object.entries(versions)) {
      if (!isObject(m)) continue
      const url = isObject(m.dist) && typeof m.dist.tarball === 'string' ? m.dist.tarball : undefined
      const published = typeof time[version] === 'string' ? (time[version] as string) : undefined
      const ownReadme = typeof m.readme === 'string' && m.readme !== ''
      list.push({
        version,
        manifest: m,
        ...(version === distTags.latest && !ownReadme && topReadme ? { readme: topReadme, readmeFilename: typeof doc.readmeFilename === 'string' ? doc.readmeFilename : undefined } : {}),
        ...(published ? { published } : {}),
        tarball: () => (url ? this.tarball(url) : Promise.resolve(undefined)),
      })
    }
    return {
      name,
      versions: list,
      distTags,
      maintainers: [...new Set(personNames(doc.maintainers))],
      stars: isObject(doc.users) ? Object.entries(doc.users).filter(([, v]) => v === true).map(([u]) => u) : [],
      created: typeof time.created === 'string' ? time.created : undefined,
      modified: typeof time.modified === 'string' ? time.modified : undefined,
    }
  }
}
