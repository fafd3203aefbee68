/**
 * An outside authority over who may read and change each package: `auth.type: github`, where the
 * permission a GitHub user has on the repository named by the package's `repository` field
 * decides (pull → read; push, maintain, admin → write), as the original registry described. The
 * read gate and the write path ask it after the `packages` rules (which still only narrow).
 */
import type { Principal } from './types.js'

/** What the authority grants a caller on one package. */
export type ExternalRight = 'none' | 'read' | 'write'

/** The authority (auth/github.ts implements it). */
export interface PermissionSource {
  /**
   * The right of `p` on package `name`.
   * @param repository the package's `repository` field as published (a string or `{ type, url }`),
   *   from its `latest` manifest, or from the publish body for a first publish; undefined when the
   *   package is not local or names none
   * @throws RegistryError UNAVAILABLE (503 with `retryAfter`) when the authority cannot answer
   *   (rate-limited, down) and nothing usable is cached: never a guessed "allowed"
   */
  rightOn(p: Principal, name: string, repository: unknown): Promise<ExternalRight>
  /**
   * Further checks of a publish (GitHub: the package's scope must equal the repository owner).
   * @throws RegistryError FORBIDDEN naming what disagrees
   */
  checkPublish?(p: Principal, name: string, repository: unknown): void
}

/** The gate's view of the authority: the source and how to find a package's repository. */
export interface ExternalAccess {
  source: PermissionSource
  /** The `repository` field of the local package's `latest` manifest; undefined when not local or none. */
  repositoryOf(name: string): Promise<unknown>
}
