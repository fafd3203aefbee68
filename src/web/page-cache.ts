/**
 * The rendered bodies of package and version pages, cached per package `_rev` (an lru-cache bounded
 * in bytes). A key is name, `_rev`, the version asked (or the latest), and the viewer's visibility
 * class of the package (`all`: the read gate lets everyone read it; `readers`: only some), so a
 * body rendered for one class is never served to another. A new `_rev` is a new key: a write makes
 * the next view render afresh, and the old entry ages out. Per-viewer parts (the header, the
 * dependents) are never in here.
 *
 * Rendered READMEs are kept apart, keyed by the version's tarball integrity and the repository
 * they resolve against: a version's README never changes while its tarball stays, so a write that
 * does not touch it (a dist-tag, a deprecation, a new prerelease) renders the page without
 * rendering the README again.
 */
import { LRUCache } from 'lru-cache'
import type { StoredVersion } from '../registry/types.js'
import type { ReadmeRenderer } from './markdown.js'
import type { PackageBody } from './package-view.js'

/** Who may read the package: everyone, or only some callers (who all see the same body). */
export type VisibilityClass = 'all' | 'readers'

/** The cache of rendered package bodies. */
export class PageCache {
  private readonly lru: LRUCache<string, PackageBody | false>
  private readonly readmes: LRUCache<string, string>

  /** @param maxBytes bound on the bodies kept (characters of HTML, about bytes), default 16 MiB; READMEs get a quarter more */
  constructor(maxBytes = 16 * 1024 * 1024) {
    this.lru = new LRUCache({ maxSize: maxBytes, sizeCalculation: (b) => (b === false ? 64 : Math.max(64, b.size)) })
    this.readmes = new LRUCache({ maxSize: Math.max(1024, Math.floor(maxBytes / 4)), sizeCalculation: (h) => Math.max(64, h.length) })
  }

  /**
   * The sanitised HTML of a version's README, rendered once per tarball and repository.
   * @param render the renderer (markdown.ts `readmeRenderer`)
   */
  readme(row: StoredVersion, repository: unknown, render: ReadmeRenderer): string {
    const key = `${row.name}\u0000${row.integrity}\u0000${JSON.stringify(repository ?? null)}`
    let h = this.readmes.get(key)
    if (h === undefined) {
      h = render((row.readme ?? '').slice(0, 64 * 1024), repository)
      this.readmes.set(key, h)
    }
    return h
  }

  /**
   * The body for (name, rev, version, class), rendered by `render` on a miss.
   * @param render returns undefined for a version that does not exist (cached as such too)
   */
  get(name: string, rev: string, version: string | undefined, visibility: VisibilityClass, render: () => PackageBody | undefined): PackageBody | undefined {
    const key = `${name}\u0000${rev}\u0000${version ?? ''}\u0000${visibility}`
    const hit = this.lru.get(key)
    if (hit !== undefined) return hit === false ? undefined : hit
    const body = render()
    this.lru.set(key, body ?? false)
    return body
  }

  /** Entries and characters held (for tests and the bench). */
  get size(): { entries: number; bytes: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize }
  }
}
