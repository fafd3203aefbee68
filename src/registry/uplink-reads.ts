/**
 * What the registry asks of the uplinks (src/uplink/cached-packages.ts implements it): reads of
 * names that have no local package, served from uplinks' cached data. The registry calls these only
 * after its read gate admitted the caller, and only for names it found not local, so the uplink
 * code never decides access and never sees a local name (no dependency confusion: a local name
 * never takes versions from an uplink).
 */
import type { CacheSize } from './render-cache.js'
import type { LRUCache } from 'lru-cache'
import type { RenderedBody } from './render.js'
import type { SearchObject, SearchQuery } from './search.js'
import type { TarballData, TarballLookup } from './tarball.js'
import type { Manifest } from './types.js'

/** A tarball answer the fast path can send from memory. */
export interface PeekedTarball {
  lookup: TarballLookup
  bytes: Buffer
}

/** Reads served from uplinks. */
export interface UplinkReads {
  /**
   * The rendered packument, or `undefined` (404: not proxied, or unknown upstream).
   * @throws RegistryError UPLINK_UNAVAILABLE / UPLINK_TIMEOUT when the uplink fails and nothing is cached
   */
  packumentBody(name: string, abbreviated: boolean, baseUrl: string): Promise<RenderedBody | undefined>
  /** The rendered packument when everything needed is in memory and fresh; no I/O (the fast path). */
  peekPackumentBody(name: string, abbreviated: boolean, baseUrl: string): RenderedBody | undefined
  /**
   * Whether the packument of a proxied name (known not to be local) is known to be a 404 without
   * any I/O: its scope has a local package, or every uplink of its rule has a remembered 404 (the
   * fast path); false whenever unsure. Optional.
   */
  peekNotFound?(name: string): boolean
  /** One version's manifest by version or dist-tag. @throws RegistryError NOT_FOUND, UPLINK_* */
  manifest(name: string, spec: string, baseUrl: string): Promise<Manifest>
  /** The lookup of a cached name's tarball; `undefined` when not proxied or no such tarball. @throws UPLINK_* */
  tarball(name: string, file: string): Promise<TarballLookup | undefined>
  /** The tarball when its lookup and bytes are in memory; no I/O (the fast path). */
  peekTarball(name: string, file: string): PeekedTarball | undefined
  /**
   * The bytes of a looked-up cached tarball: from memory, the blob store, or the uplink (verified
   * against the manifest's integrity while streaming, kept only when it matched).
   * @throws RegistryError NOT_FOUND, UPLINK_*
   */
  tarballData(t: TarballLookup): Promise<TarballData>
  /** Whether a cached tarball's blob is known to be in the blob store (so it may be redirected to). */
  isStored(t: TarballLookup): boolean
  /**
   * `proxy_mode: redirect`: the uplink URL of `path` (below the registry root) for a name that is
   * not local, when the guards let the name go upstream; else `undefined`.
   */
  redirect(name: string, path: string): Promise<string | undefined>
  /** Told after every local write of `name`: its scope is local from now on. */
  localWrite(name: string): void
  /** How full each of its in-memory maps is (`GET /-/health`'s details); optional. */
  cacheSizes?(): Record<string, CacheSize>
  /**
   * Whether `name` (known not to be local) may be named to an uplink at all: its rule proxies it,
   * and its scope is neither private nor has any local package (an audit body, a search query).
   */
  mayAsk(name: string): Promise<boolean>
  /**
   * Search on the uplink (`GET /-/v1/search` with the same text, size and from), answered from a
   * short cache; hits whose names the rules would not proxy are left out. Never throws: an uplink
   * that fails or is slow gives no hits (the local ones are served alone).
   */
  search(q: SearchQuery): Promise<{ objects: SearchObject[]; total: number }>
}

/** What the registry shares with its uplink reads. */
export interface UplinkReadsShared {
  /** The render cache: a variant by key, rendered once; and without rendering (the fast path). */
  body(key: string, render: () => Promise<RenderedBody | undefined>): Promise<RenderedBody | undefined>
  peekBody(key: string): RenderedBody | undefined
  /** The memory cache of small tarballs (≤ 1 MiB), by blob key. */
  tarballBytes: LRUCache<string, Buffer>
  /** Whether any package of `scope` is local (`PackageStore.scopeHasPackages`). */
  scopeHasPackages(scope: string): Promise<boolean>
}
