/**
 * The layering of src/ (docs/architecture.md, "Layers"), read from the sources' own imports with
 * the TypeScript compiler's parser:
 * - no import cycle between layers (the top folders of src/, with storage/meta and storage/blobs
 *   apart; `import type` counts: a cycle of types is still two layers that need each other);
 * - no cycle between files through value imports (what would run at load time);
 * - the domain, src/registry/, imports no other layer and no framework, database or SDK;
 * - src/http/ never reaches a store (storage/), only the registry.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, test } from 'node:test'
import ts from 'typescript'
import { ROOT } from '../helpers/pier.js'

const SRC = join(ROOT, 'src')

/** One import of a source file. */
interface Edge {
  from: string
  /** A path below src/ for a relative import; the package name otherwise. */
  to: string
  typeOnly: boolean
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Every import, export-from and dynamic import of every file under src/. */
function edges(): Edge[] {
  const out: Edge[] = []
  for (const file of files(SRC)) {
    const from = relative(SRC, file)
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const add = (spec: string, typeOnly: boolean): void => {
      const to = spec.startsWith('.') ? relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts') : spec
      out.push({ from, to, typeOnly })
    }
    const visit = (n: ts.Node): void => {
      if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
        const c = n.importClause
        const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined
        const typeOnly = c !== undefined && (c.isTypeOnly || (!c.name && named !== undefined && named.length > 0 && named.every((e) => e.isTypeOnly)))
        add(n.moduleSpecifier.text, typeOnly)
      } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
        add(n.moduleSpecifier.text, n.isTypeOnly)
      } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) {
        add(n.arguments[0].text, false)
      }
      ts.forEachChild(n, visit)
    }
    visit(sf)
  }
  return out
}

/** The layer of a file below src/: its top folder (storage/meta, storage/blobs apart), or the file for top-level ones. */
function layer(path: string): string {
  const parts = path.split('/')
  if (parts.length === 1) return parts[0] as string
  return parts[0] === 'storage' ? `${parts[0]}/${parts[1]}` : (parts[0] as string)
}

/** Strongly connected components with more than one node (Tarjan), i.e. the cycles of a graph. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const on = new Set<string>()
  const found: string[][] = []
  const strong = (v: string): void => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v) as number, idx.get(w) as number))
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        on.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1) found.push(scc.sort())
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) strong(v)
  return found
}

function graphOf(es: Edge[], node: (path: string) => string): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>()
  for (const e of es) {
    if (!e.to.endsWith('.ts')) continue
    const a = node(e.from)
    const b = node(e.to)
    if (!g.has(a)) g.set(a, new Set())
    if (!g.has(b)) g.set(b, new Set())
    if (a !== b) g.get(a)?.add(b)
  }
  return g
}

void describe('layers of src/', () => {
  const all = edges()

  void test('the sources are found and their imports read', () => {
    assert.ok(all.some((e) => e.from === 'app.ts' && e.to === 'registry/registry.ts'), 'app.ts imports the registry')
    assert.ok(all.some((e) => e.from === 'storage/meta/open-meta-store.ts' && e.to === 'storage/meta/postgres-meta-store.ts' && !e.typeOnly), 'dynamic imports count')
    assert.ok(all.some((e) => e.from === 'http/context.ts' && e.typeOnly), 'type-only imports are told apart')
  })

  void test('no import cycle between layers', () => {
    const found = cycles(graphOf(all, layer))
    const witness = (c: string[]): string =>
      all
        .filter((e) => e.to.endsWith('.ts') && c.includes(layer(e.from)) && c.includes(layer(e.to)) && layer(e.from) !== layer(e.to))
        .map((e) => `${e.from} -> ${e.to}`)
        .join('\n    ')
    assert.deepEqual(found, [], found.map((c) => `${c.join(' ⇄ ')}:\n    ${witness(c)}`).join('\n'))
  })

  void test('no cycle between files through value imports', () => {
    const found = cycles(graphOf(all.filter((e) => !e.typeOnly), (p) => p))
    assert.deepEqual(found, [])
  })

  void test('src/registry/ (the domain) imports no other layer, and no framework, database or SDK', () => {
    const allowed = new Set(['lru-cache', 'minimatch', 'semver', 'ssri', 'tar', 'validate-npm-package-name'])
    const bad = all.filter(
      (e) => layer(e.from) === 'registry' && (e.to.endsWith('.ts') ? layer(e.to) !== 'registry' : !e.to.startsWith('node:') && !allowed.has(e.to)),
    )
    assert.deepEqual(bad, [])
  })

  void test('src/http/ reaches no store: only the registry (its read gate and write path)', () => {
    const bad = all.filter((e) => layer(e.from) === 'http' && e.to.startsWith('storage/'))
    assert.deepEqual(bad, [])
    const source = files(join(SRC, 'http')).map((f) => readFileSync(f, 'utf8'))
    assert.ok(!source.some((s) => /registry\.(meta|blobs|store)\b/.test(s)), 'no route calls the registry\'s stores')
  })
})
