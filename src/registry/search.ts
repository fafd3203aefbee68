/**
 * Search (`GET /-/v1/search`, docs/protocol.md §4.1; npm's `lib/commands/search.js` through
 * libnpmsearch): every word of `text` must occur in a package's name, description or keywords
 * (qualifiers such as `author:` are ignored). Only packages the caller may read are counted and
 * listed: the read gate's predicate filters before paging. Results are in npm's shape; npm needs
 * `package.maintainers` and parses `package.date`.
 */
import { scopeOf } from './names.js'
import type { SearchHit } from './stores.js'

/** A search as asked. */
export interface SearchQuery {
  text: string
  /** Hits per page, 1–250 (npm's default 20). */
  size: number
  /** Hits to skip. */
  from: number
}

/** One result object, as the public registry's search API returns it. */
export interface SearchObject {
  package: {
    name: string
    scope: string
    version: string
    description: string
    keywords: unknown[]
    date: string
    links: { npm: string }
    publisher: { username: string; email: string } | undefined
    maintainers: { username: string; email: string }[]
  }
  score: { final: number; detail: { quality: number; popularity: number; maintenance: number } }
  searchScore: number
}

/** The words of a query (npm joins them with spaces); `key:value` qualifiers are dropped. */
export function searchWords(text: string): string[] {
  return text.trim().split(/\s+/).filter((w) => w !== '' && !w.includes(':'))
}

/**
 * One hit in npm's result shape.
 * @param baseUrl public base URL without trailing slash (for `links.npm`)
 */
export function searchObject(h: SearchHit, baseUrl: string): SearchObject {
  const m = JSON.parse(h.latest.manifest) as Record<string, unknown>
  const npmUser = m._npmUser as { name: string; email?: string } | undefined
  return {
    package: {
      name: h.name,
      scope: scopeOf(h.name)?.slice(1) ?? 'unscoped',
      version: h.latest.version,
      description: typeof m.description === 'string' ? m.description : '',
      keywords: Array.isArray(m.keywords) ? m.keywords : [],
      date: h.modified,
      links: { npm: `${baseUrl}/${h.name}` },
      publisher: npmUser ? { username: npmUser.name, email: npmUser.email ?? '' } : undefined,
      maintainers: h.maintainers.map((x) => ({ username: x.name, email: x.email ?? '' })),
    },
    score: { final: 1, detail: { quality: 1, popularity: 1, maintenance: 1 } },
    searchScore: 1,
  }
}
