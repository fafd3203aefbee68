/**
 * The bodies of npm's audit requests (docs/protocol.md §4.2), and how to take names out of them
 * before they leave for an uplink: no name that is local to Pier, in a private scope, or not
 * proxied by the `packages` rules may reach the advisory source (a company's package names are
 * private data). Two shapes:
 *
 * - `advisories/bulk` (npm 7+, pnpm, yarn berry): `{ "<name>": ["<version>", …], … }`, gzipped by npm;
 * - `audits` and `audits/quick` (npm ≤ 10's fallback, classic pnpm): a tree
 *   `{ name, version, requires: { "<name>": "<range>" }, dependencies: { "<name>": { version,
 *   integrity, requires, dependencies, dev } }, metadata }`.
 *
 * pnpm sends the tree one level deeper (`@pnpm/audit`'s lockfile-to-tree): the root has no `name`,
 * has `install` and `remove` lists, and each key of its `dependencies` (and `requires`) is a
 * workspace importer (`.` for the root project, a folder path with `/` written `__`), whose node
 * holds that importer's `requires` and `dependencies`. Importers are containers, not package names:
 * they stay, and the names inside them are pruned.
 *
 * Pure functions: `auditNames` lists the package names a body mentions, `pruneAudit` keeps only
 * some of them. Decoding is bounded (`MAX_AUDIT_INFLATED` bytes after gunzip).
 */
import { gunzipSync, gzipSync } from 'node:zlib'
import { badRequest, RegistryError } from '../registry/errors.js'

/** Which body shape an audit endpoint takes. */
export type AuditKind = 'bulk' | 'tree'

/** Largest audit body once inflated, bytes (a big monorepo's bulk body is a few MiB). */
export const MAX_AUDIT_INFLATED = 64 * 1024 * 1024

/** The answer of a bulk audit with nothing to ask: no advisories. */
export const EMPTY_BULK_REPORT = {}

/** The answer of a tree audit with nothing to ask: the shape npm's `audits/quick` returns when clean. */
export function emptyTreeReport(): Record<string, unknown> {
  return {
    actions: [],
    advisories: {},
    muted: [],
    metadata: {
      vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 0 },
      dependencies: 0,
      devDependencies: 0,
      optionalDependencies: 0,
      totalDependencies: 0,
    },
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The body shape of an audit URL path (below the registry root). */
export function auditKind(path: string): AuditKind {
  return path.endsWith('/advisories/bulk') ? 'bulk' : 'tree'
}

/**
 * Parses an audit body as the client sent it.
 * @param encoding the request's Content-Encoding (`gzip` or none)
 * @throws RegistryError BAD_REQUEST (not gzip when it says so, not a JSON object), TOO_LARGE
 *   (more than `MAX_AUDIT_INFLATED` bytes once inflated)
 */
export function decodeAuditBody(body: Buffer, encoding: string | undefined): Record<string, unknown> {
  let text = body
  if (encoding === 'gzip') {
    try {
      text = gunzipSync(body, { maxOutputLength: MAX_AUDIT_INFLATED })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new RegistryError('TOO_LARGE', `The audit body inflates to more than ${MAX_AUDIT_INFLATED} bytes.`)
      throw badRequest('The audit body is not gzip data, though its Content-Encoding says gzip.')
    }
  } else if (encoding !== undefined && encoding !== 'identity') {
    throw badRequest(`Unsupported Content-Encoding "${encoding}" for an audit body (gzip or none).`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(text.toString('utf8'))
  } catch {
    throw badRequest('The audit body is not valid JSON.')
  }
  if (!isObject(doc)) throw badRequest('The audit body must be a JSON object.')
  return doc
}

/** Serialises a body back the way the client sent it (gzip when it was gzipped). */
export function encodeAuditBody(doc: Record<string, unknown>, encoding: string | undefined): Buffer {
  const json = Buffer.from(JSON.stringify(doc))
  return encoding === 'gzip' ? gzipSync(json) : json
}

/** Every package name in a tree's `requires` and `dependencies`, nested ones included. */
function treeNames(node: Record<string, unknown>, into: Set<string>): void {
  if (isObject(node.requires)) for (const n of Object.keys(node.requires)) into.add(n)
  if (isObject(node.dependencies)) {
    for (const [n, dep] of Object.entries(node.dependencies)) {
      into.add(n)
      if (isObject(dep)) treeNames(dep, into)
    }
  }
}

/** Whether a tree is pnpm's, whose root `dependencies` are workspace importers (see the file comment). */
function isImporterTree(doc: Record<string, unknown>): boolean {
  return doc.name === undefined && Array.isArray(doc.install) && isObject(doc.dependencies)
}

/** The importer nodes of a pnpm tree. */
function importers(doc: Record<string, unknown>): Record<string, unknown>[] {
  return Object.values(doc.dependencies as Record<string, unknown>).filter(isObject)
}

/** The package names an audit body asks about (for a tree: not the root project's own name, nor pnpm's importers). */
export function auditNames(kind: AuditKind, doc: Record<string, unknown>): string[] {
  if (kind === 'bulk') return Object.keys(doc)
  const names = new Set<string>()
  if (isImporterTree(doc)) for (const importer of importers(doc)) treeNames(importer, names)
  else treeNames(doc, names)
  return [...names]
}

/** A tree node with only the kept names in its `requires` and `dependencies`, recursively. */
function pruneTree(node: Record<string, unknown>, keep: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...node }
  if (isObject(node.requires)) out.requires = Object.fromEntries(Object.entries(node.requires).filter(([n]) => keep.has(n)))
  if (isObject(node.dependencies)) {
    out.dependencies = Object.fromEntries(
      Object.entries(node.dependencies)
        .filter(([n]) => keep.has(n))
        .map(([n, dep]) => [n, isObject(dep) ? pruneTree(dep, keep) : dep]),
    )
  }
  return out
}

/**
 * The body with only the names in `keep`. `empty`: nothing is left to ask about, so the answer can
 * be given locally (`EMPTY_BULK_REPORT` / `emptyTreeReport()`) without asking the uplink.
 */
export function pruneAudit(kind: AuditKind, doc: Record<string, unknown>, keep: ReadonlySet<string>): { doc: Record<string, unknown>; empty: boolean } {
  if (kind === 'bulk') {
    const kept = Object.fromEntries(Object.entries(doc).filter(([n]) => keep.has(n)))
    return { doc: kept, empty: Object.keys(kept).length === 0 }
  }
  const pruned = isImporterTree(doc)
    ? { ...doc, dependencies: Object.fromEntries(Object.entries(doc.dependencies as Record<string, unknown>).map(([id, node]) => [id, isObject(node) ? pruneTree(node, keep) : node])) }
    : pruneTree(doc, keep)
  return { doc: pruned, empty: auditNames('tree', pruned).length === 0 }
}
