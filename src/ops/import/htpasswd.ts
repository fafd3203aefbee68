/**
 * htpasswd files (Apache's format, which Verdaccio's and Sinopia's htpasswd plugins write): one
 * `user:hash` per line, Verdaccio appending `:autocreated <ISO time>`; blank lines and `#` lines
 * are ignored. The hash formats Pier accepts are passwords.ts `legacyHashKind`'s.
 */
import { legacyHashKind, type LegacyHashKind } from '../../auth/passwords.js'

/** One line of an htpasswd file. */
export interface HtpasswdEntry {
  /** 1-based line number. */
  line: number
  user: string
  /** The hash as written. */
  hash: string
  /** Its format, or `undefined` when Pier does not accept it (the user is skipped). */
  kind: LegacyHashKind | undefined
  /** The time in Verdaccio's `autocreated <time>` comment (any form `Date.parse` reads), as ISO 8601. */
  created?: string
}

/**
 * Parses the text of an htpasswd file.
 * @returns the entries in file order, and the lines that are not `user:hash` (by number)
 */
export function parseHtpasswd(text: string): { entries: HtpasswdEntry[]; malformed: number[] } {
  const entries: HtpasswdEntry[] = []
  const malformed: number[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const parts = line.split(':')
    const user = parts[0] ?? ''
    const hash = parts[1] ?? ''
    if (user === '' || hash === '') {
      malformed.push(i + 1)
      return
    }
    const comment = parts.slice(2).join(':')
    const m = /autocreated\s+(.+)$/.exec(comment)
    const created = m?.[1] && !Number.isNaN(Date.parse(m[1])) ? new Date(m[1]).toISOString() : undefined
    entries.push({ line: i + 1, user, hash, kind: legacyHashKind(hash), ...(created ? { created } : {}) })
  })
  return { entries, malformed }
}
