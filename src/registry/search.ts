/**
 * Search (`GET /-/v1/search`, docs/protocol.md §4.1; npm's `lib/commands/search.js` through
 * libnpmsearch): every word of `text` must occur in a package's name, description or keywords
 * (qualifiers such as `author:` are ignored). Only packages the caller may read are counted and
 * listed: the read gate's predicate filters before paging. Results are in npm's shape; npm needs
 * `package.maintainers` and parses `package.date`.
 */
import { badRequest } from './errors.js'
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

/**
 * Most distinct words a search may hold. Each becomes one condition of the store's query: SQLite
 * refuses an expression tree deeper than 1,000 (about 500 words), and building and running such a
 * query costs tens of milliseconds of CPU. npm users type a few words.
 */
export const MAX_SEARCH_WORDS = 32

/**
 * The words of a query (npm joins them with spaces); `key:value` qualifiers are dropped, and so
 * are repeats (matching ignores case, so `React react` is one word).
 * @throws RegistryError BAD_REQUEST beyond MAX_SEARCH_WORDS distinct words
 */
export function searchWords(text: string): string[] {
  const seen = new Set<string>()
  const words: string[] = []
  for (const w of text.trim().split(/\s+/)) {
    if (w === '' || w.includes(':') || seen.has(w.toLowerCase())) continue
    seen.add(w.toLowerCase())
    words.push(w)
    if (words.length > MAX_SEARCH_WORDS) throw badRequest(`A search may hold at most ${MAX_SEARCH_WORDS} words.`)
  }
  return words
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
