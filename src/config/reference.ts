/**
 * The configuration reference (docs/configuration.md), generated from the configuration schema
 * itself. Each key's type, default, whether it is required and the environment variable that sets
 * it come from the zod schema (`ConfigSchema`, schema.ts and uplinks.ts, with units.ts's `duration`
 * and `byteSize`); each key's description is the doc comment written above it in schema.ts and
 * uplinks.ts, read with TypeScript's parser. `npm run docs:config` (cli/config-reference.ts) writes
 * the file, and test/unit/config-reference.test.ts fails when it is not current.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import YAML from 'yaml'
import type { z } from 'zod'
import { ConfigSchema } from './schema.js'
import { byteSize, duration } from './units.js'

/** The sources whose doc comments describe the keys, relative to the repository root. */
export const CONFIG_SOURCES = ['src/config/schema.ts', 'src/config/uplinks.ts']

/** The file `configReference` is written to, relative to the repository root. */
export const REFERENCE_FILE = 'docs/configuration.md'

/** How the entries of each map (a `z.record`) are written in a dotted key; any other map: `<name>`. */
const MAP_ENTRY_NAMES: Record<string, string> = { uplinks: '<name>', packages: '<pattern>' }

/** The type in words of a duration and of a size (units.ts). */
const DURATION_WORDS = 'duration (ms or `30s`)'
const SIZE_WORDS = 'size (bytes or `50mb`)'

/** How a value is written, which decides how its default is shown and whether the environment can set it. */
type ValueKind = 'duration' | 'size' | 'names' | 'list' | 'value'

/** One documented key: a value (`leaf`), or a mapping of further keys (`group`). */
export interface ReferenceEntry {
  /** Dotted path, a map's entries written `<name>` / `<pattern>`: `uplinks.<name>.timeout`. */
  key: string
  /** The same path as segments. */
  path: string[]
  /** `leaf`: a value; `group`: an object or a map of further keys. */
  kind: 'leaf' | 'group'
  /** The doc comment above the key in the sources (Markdown), or undefined when there is none. */
  description: string | undefined
  /** Leaves: the type in words, e.g. `duration (ms or \`30s\`), at least \`100ms\``. */
  type?: string
  /** Leaves: the default as it is written in YAML (`30s`, `50mb`, `[]`), or undefined when there is none. */
  default?: string
  /** Leaves: `no`, `yes`, `yes, when \`storage.s3\` is given` or `yes, in each \`uplinks.<name>\``. */
  required?: string
  /** Leaves: the environment variable that sets the key, e.g. `PIER_UPLINKS__<NAME>__TIMEOUT`. */
  env?: string
  /** Leaves: false for lists, which a variable (one string) cannot give. */
  envSettable?: boolean
}

/**
 * The repository root: the nearest folder above this module holding `src/config/schema.ts` (this
 * module runs from dist/src/config, or from src/config).
 * @throws Error when there is none (e.g. in a container image, which ships dist/ only)
 */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'src/config/schema.ts'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the repository (src/config/schema.ts) above ' + fileURLToPath(import.meta.url))
    dir = up
  }
}

/** Dotted key of a path. */
function dotted(path: readonly string[]): string {
  return path.join('.')
}

/** How the entries of the map at `path` are written (`<name>`, `<pattern>`). */
function mapEntryName(path: readonly string[]): string {
  return MAP_ENTRY_NAMES[dotted(path)] ?? '<name>'
}

/** A doc comment's text: the `/** … *\/` markers and leading `*` removed, lines joined, paragraphs kept. */
function commentText(raw: string): string {
  const lines = raw
    .slice(3, -2)
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, '').trim())
  const paragraphs: string[][] = [[]]
  for (const line of lines) {
    if (line === '') paragraphs.push([])
    else paragraphs.at(-1)?.push(line)
  }
  return paragraphs
    .filter((p) => p.length > 0)
    .map((p) => p.join(' '))
    .join('\n\n')
}

/** The text of the last doc comment (`/** … *\/`) right above `node`, or undefined. */
function docOf(node: ts.Node): string | undefined {
  const text = node.getSourceFile().getFullText()
  const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? []
  const doc = ranges.filter((r) => r.kind === ts.SyntaxKind.MultiLineCommentTrivia && text.startsWith('/**', r.pos)).at(-1)
  return doc === undefined ? undefined : commentText(text.slice(doc.pos, doc.end))
}

/** A top-level `const` of a source file: its initializer and the doc comment above its statement. */
interface ConstDecl {
  init: ts.Expression
  doc: string | undefined
  file: ts.SourceFile
}

/**
 * The doc comment of every key of `ConfigSchema`, keyed by dotted path (`server.headers_timeout`,
 * `uplinks.<name>.timeout`), read with TypeScript's parser from `CONFIG_SOURCES` under `root`.
 * Starting at `const ConfigSchema`, it follows `z.object({ key: … })` (a key's comment is the one
 * above it), `z.record(…, value)`, `z.preprocess(…, schema)`, method chains (`.strict()`,
 * `.default(…)`, `.optional()`) and names of other top-level consts in these files. The comment
 * above such a const describes the key when the key has none of its own, unless the const is used
 * more than once (then it is a type, such as `text`, not a key).
 * @throws Error when a source is missing or has no `ConfigSchema`
 */
export function readKeyDocs(root: string = repositoryRoot()): Map<string, string> {
  const files = CONFIG_SOURCES.map((rel) => {
    const path = join(root, rel)
    return ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true)
  })
  const consts = new Map<ts.SourceFile, Map<string, ConstDecl>>()
  for (const file of files) {
    const decls = new Map<string, ConstDecl>()
    for (const st of file.statements) {
      if (!ts.isVariableStatement(st)) continue
      for (const d of st.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && d.initializer) decls.set(d.name.text, { init: d.initializer, doc: docOf(st), file })
      }
    }
    consts.set(file, decls)
  }
  // How often each name is used as a value (declarations, imports, exports and types apart): a
  // const used once is one key's schema.
  const uses = new Map<string, number>()
  const count = (n: ts.Node): void => {
    if (ts.isTypeNode(n) || ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) return
    if (ts.isIdentifier(n) && !(ts.isVariableDeclaration(n.parent) && n.parent.name === n)) uses.set(n.text, (uses.get(n.text) ?? 0) + 1)
    ts.forEachChild(n, count)
  }
  for (const file of files) count(file)
  /** A const by name: this file's first, then the other sources' (imports between them). */
  const lookup = (name: string, from: ts.SourceFile): ConstDecl | undefined =>
    consts.get(from)?.get(name) ?? files.map((f) => consts.get(f)?.get(name)).find((c) => c !== undefined)

  const docs = new Map<string, string>()
  const setDoc = (path: string[], doc: string | undefined): void => {
    if (doc !== undefined && doc !== '' && path.length > 0 && !docs.has(dotted(path))) docs.set(dotted(path), doc)
  }
  const walk = (node: ts.Expression, path: string[], file: ts.SourceFile, depth: number): void => {
    if (depth > 64) return
    let e = node
    while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isNonNullExpression(e)) e = e.expression
    if (ts.isIdentifier(e)) {
      const c = lookup(e.text, file)
      if (c === undefined) return
      if (uses.get(e.text) === 1) setDoc(path, c.doc)
      walk(c.init, path, c.file, depth + 1)
      return
    }
    if (!ts.isCallExpression(e) || !ts.isPropertyAccessExpression(e.expression)) return
    const target = e.expression.expression
    const method = e.expression.name.text
    if (!ts.isIdentifier(target) || target.text !== 'z') {
      walk(target, path, file, depth + 1) // a method chain: `.strict()`, `.default(…)`, `.optional()`…
      return
    }
    const [first, second] = e.arguments
    if (method === 'object' && first !== undefined && ts.isObjectLiteralExpression(first)) {
      for (const p of first.properties) {
        if (!ts.isPropertyAssignment(p) || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) continue
        const child = [...path, p.name.text]
        setDoc(child, docOf(p))
        walk(p.initializer, child, file, depth + 1)
      }
    } else if (method === 'record' && second !== undefined) {
      walk(second, [...path, mapEntryName(path)], file, depth + 1)
    } else if (method === 'preprocess' && second !== undefined) {
      walk(second, path, file, depth + 1)
    }
  }
  const start = files.map((f) => consts.get(f)?.get('ConfigSchema')).find((c) => c !== undefined)
  if (start === undefined) throw new Error(`no ConfigSchema in ${CONFIG_SOURCES.join(', ')}`)
  walk(start.init, [], start.file, 0)
  return docs
}

/** A schema as zod's internals describe it (the definition's `type` tells which). */
type Schema = z.core.$ZodType

/** The definition of `s`, as the union of zod's definitions (narrowed by `type`). */
function def(s: Schema): z.core.$ZodTypes['_zod']['def'] {
  return (s as z.core.$ZodTypes)._zod.def
}

/** A schema with its wrappers taken off: `.optional()`, `.default(…)`, and `z.preprocess`'s step. */
interface Unwrapped {
  schema: Schema
  optional: boolean
  /** The outermost `.default(…)`'s value (parsed output: ms for durations, bytes for sizes). */
  defaultValue: unknown
  hasDefault: boolean
}

/** Takes off `.optional()`, `.default(…)` / `.prefault(…)`, and the transform in front of a `z.preprocess`. */
function unwrap(schema: Schema): Unwrapped {
  let s = schema
  let optional = false
  let hasDefault = false
  let defaultValue: unknown
  for (;;) {
    const d = def(s)
    if (d.type === 'optional') {
      optional = true
      s = d.innerType
    } else if (d.type === 'default' || d.type === 'prefault') {
      if (!hasDefault) {
        hasDefault = true
        defaultValue = d.defaultValue
      }
      s = d.innerType
    } else if (d.type === 'pipe' && def(d.in).type === 'transform') {
      s = d.out // z.preprocess(fn, schema): what is written is what `schema` takes
    } else {
      return { schema: s, optional, defaultValue, hasDefault }
    }
  }
}

/** The numeric bounds zod keeps in a schema's `bag`. */
interface Bounds {
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  format?: string
}

/** The lowest and highest value a number schema allows (integers: exclusive bounds made inclusive); undefined: unbounded. */
function range(s: Schema): { min: number | undefined; max: number | undefined; integer: boolean } {
  const bag = s._zod.bag as Bounds
  const integer = bag.format?.includes('int') ?? false
  const bounded = (n: number | undefined): number | undefined => (n === undefined || Math.abs(n) >= Number.MAX_SAFE_INTEGER ? undefined : n)
  let min = bounded(bag.minimum)
  let max = bounded(bag.maximum)
  const exMin = bounded(bag.exclusiveMinimum)
  const exMax = bounded(bag.exclusiveMaximum)
  if (integer && exMin !== undefined) min = Math.max(min ?? -Infinity, exMin + 1)
  if (integer && exMax !== undefined) max = Math.min(max ?? Infinity, exMax - 1)
  return { min, max, integer }
}

/** A duration in ms as a user writes it: the largest unit that divides it (`72s`, `10m`), else ms. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0'
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/** A size in bytes as a user writes it: the largest 1024-based unit that divides it (`50mb`, `1gb`), else bytes. */
export function formatSize(n: number): string {
  for (const [unit, size] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) {
    if (n !== 0 && n % size === 0) return `${n / size}${unit}`
  }
  return String(n)
}

/** A value of the given kind as YAML writes it, on one line (`30s`, `50mb`, `[]`, `$all`, `""`). */
function formatValue(v: unknown, kind: ValueKind): string {
  if (kind === 'duration' && typeof v === 'number') return formatDuration(v)
  if (kind === 'size' && typeof v === 'number') return formatSize(v)
  if (kind === 'names' && Array.isArray(v) && v.length > 0) return v.join(' ')
  return YAML.stringify(v, { collectionStyle: 'flow', lineWidth: 0 }).trim()
}

/** A list's element type in the plural (`strings`). */
function plural(words: string): string {
  return /string$|URL$/.test(words) ? `${words}s` : `values (${words})`
}

/** The type of a value in words, and how it is written. */
function describe(s: Schema): { words: string; kind: ValueKind } {
  if (s === duration) return { words: DURATION_WORDS, kind: 'duration' }
  if (s === byteSize) return { words: SIZE_WORDS, kind: 'size' }
  const d = def(s)
  switch (d.type) {
    case 'pipe': {
      // What a user writes is what `in` takes; `out` may narrow it further.
      const inner = describe(unwrap(d.in).schema)
      const out = def(d.out)
      if (out.type === 'number') {
        const { min, max } = range(d.out)
        const show = (n: number): string => (inner.kind === 'duration' ? `\`${formatDuration(n)}\`` : String(n))
        const words = [min === undefined ? '' : `at least ${show(min)}`, max === undefined ? '' : `at most ${show(max)}`].filter(Boolean)
        return { words: [inner.words, ...words].join(', '), kind: inner.kind }
      }
      if (out.type === 'string' && ((d.out._zod.bag as Bounds).minimum ?? 0) >= 1) return { words: `non-empty ${inner.words}`, kind: inner.kind }
      return inner
    }
    case 'union': {
      const options = d.options.map((o) => unwrap(o).schema)
      const types = options.map((o) => def(o).type)
      // Text that the environment may have turned into a number (schema.ts `text`).
      if (types.length === 2 && types.includes('string') && types.includes('number')) return { words: 'string', kind: 'value' }
      const list = options.find((o) => def(o).type === 'array')
      if (types.length === 2 && types.includes('string') && list !== undefined) {
        return { words: `${describe(list).words}, or one space-separated string`, kind: 'names' }
      }
      return { words: options.map((o) => describe(o).words).join(' or '), kind: 'value' }
    }
    case 'string': {
      const bag = s._zod.bag as Bounds
      const base = bag.format === 'url' ? 'URL' : 'string'
      return { words: (bag.minimum ?? 0) >= 1 ? `non-empty ${base}` : base, kind: 'value' }
    }
    case 'number': {
      const { min, max, integer } = range(s)
      const base = integer ? 'integer' : 'number'
      if (min !== undefined && max !== undefined) return { words: `${base} from ${min} to ${max}`, kind: 'value' }
      if (min !== undefined) return { words: `${base}, at least ${min}`, kind: 'value' }
      if (max !== undefined) return { words: `${base}, at most ${max}`, kind: 'value' }
      return { words: base, kind: 'value' }
    }
    case 'boolean':
      return { words: 'boolean', kind: 'value' }
    case 'enum':
      return { words: `one of ${Object.values(d.entries).map((v) => `\`${String(v)}\``).join(', ')}`, kind: 'value' }
    case 'literal':
      return { words: d.values.map((v) => `\`${String(v)}\``).join(' or '), kind: 'value' }
    case 'array':
      return { words: `list of ${plural(describe(unwrap(d.element).schema).words)}`, kind: 'list' }
    default:
      return { words: d.type, kind: 'value' }
  }
}

/** The environment variable that sets the key at `path` (rc's convention, load.ts): `PIER_UPLINKS__<NAME>__TIMEOUT`. */
export function envName(path: readonly string[]): string {
  return `PIER_${path.map((s) => s.toUpperCase()).join('__')}`
}

/** The nearest enclosing key that may be left out (optional, defaulted) or is a map's entry. */
interface Condition {
  key: string
  entry: boolean
}

/**
 * Every key of `ConfigSchema` in the schema's order, groups before their keys, with what the
 * schema says of it and the description `docs` has for it (`readKeyDocs`).
 */
export function configEntries(docs: ReadonlyMap<string, string> = readKeyDocs()): ReferenceEntry[] {
  const out: ReferenceEntry[] = []
  const visit = (schema: Schema, path: string[], condition: Condition | undefined, inherited: unknown): void => {
    const u = unwrap(schema)
    const key = dotted(path)
    const description = docs.get(key)
    // A default of this key's own, else the value an enclosing key's default gives it.
    const value = u.hasDefault ? u.defaultValue : inherited
    const d = def(u.schema)
    if (d.type === 'object' || d.type === 'record') {
      if (path.length > 0) out.push({ key, path, kind: 'group', description })
      const here = u.optional || u.hasDefault ? { key, entry: false } : condition
      if (d.type === 'object') {
        for (const [k, child] of Object.entries(d.shape)) {
          const sub = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[k] : undefined
          visit(child, [...path, k], path.length > 0 ? here : condition, sub)
        }
      } else {
        const entryPath = [...path, mapEntryName(path)]
        visit(d.valueType, entryPath, { key: dotted(entryPath), entry: true }, undefined)
      }
      return
    }
    const { words, kind } = describe(u.schema)
    const required = u.optional || value !== undefined ? 'no' : condition === undefined ? 'yes' : condition.entry ? `yes, in each \`${condition.key}\`` : `yes, when \`${condition.key}\` is given`
    out.push({
      key,
      path,
      kind: 'leaf',
      description,
      type: words,
      default: value === undefined ? undefined : formatValue(value, kind),
      required,
      env: envName(path),
      envSettable: kind !== 'list',
    })
  }
  visit(ConfigSchema, [], undefined, undefined)
  return out
}

/** The introduction: where configuration comes from, how variables are named, the units. */
const INTRO = `# Configuration reference

Every configuration key of Pier: its type, its default, whether it is required, the environment
variable that sets it, and what it does. This file is generated from the configuration schema
(\`src/config/schema.ts\`, \`src/config/uplinks.ts\`) and the comments above its keys by
\`npm run docs:config\`; \`npm test\` fails when it is out of date, so edit the schema, not this file.

## Where configuration comes from

Pier layers its configuration the way the \`rc\` package (1.2.8) does. Lowest precedence first:

1. \`/etc/pier/config\`, then \`/etc/pierrc\`
2. \`~/.config/pier/config\`, \`~/.config/pier\`, \`~/.pier/config\`, \`~/.pierrc\`
3. the nearest \`.pierrc\` found walking up from the working folder to the root (only that one)
4. the explicit file: \`--config FILE\`, else \`PIER_CONFIG=FILE\`, else \`./config.yaml\` when it exists
5. the environment: \`PIER_SERVER__PORT=4000\` sets \`server.port\`

Missing files are skipped. A later layer overrides an earlier one key by key: mappings merge,
while lists and single values replace. Each file can be JSON, YAML or INI. The configuration is
validated at start, and an unknown key in a file is an error. \`pier config\` prints the
configuration Pier would run with and where each value came from.

Environment variables: the prefix \`PIER_\` (in any case), then the key with \`__\` between levels.
\`true\`/\`false\` and numbers are coerced. Keys arrive lowercased, so an entry of a map set this way
(\`PIER_UPLINKS__UP__URL\`) has a lowercase name, and the camelCase keys of \`storage.s3\` match in
any case. A variable holds one string, so it cannot set a list (only the name lists of \`packages\`
rules, which also take one space-separated string). A variable that names no key is ignored, with a
warning.

Durations are milliseconds, or a number with a unit: \`500ms\`, \`30s\`, \`2m\`, \`1h\`, \`1d\`. Sizes
are bytes, or a number with a 1024-based unit: \`512kb\` (\`k\`), \`50mb\` (\`m\`), \`1gb\` (\`g\`).
`

/** One entry's Markdown block. */
function render(e: ReferenceEntry): string {
  const lines = [`### \`${e.key}\``, '']
  if (e.description !== undefined) lines.push(e.description, '')
  if (e.kind === 'leaf') {
    lines.push(`- Type: ${e.type ?? ''}`)
    lines.push(`- Default: ${e.default === undefined ? 'none' : `\`${e.default}\``}`)
    lines.push(`- Required: ${e.required ?? 'no'}`)
    const env = `\`${e.env ?? envName(e.path)}\``
    lines.push(`- Environment: ${e.envSettable === false ? `none (${env} would give one string, and this is a list)` : env}`)
    lines.push('')
  }
  return lines.join('\n')
}

/**
 * The Markdown of docs/configuration.md: an introduction (files, precedence, environment
 * variables, units), then the top-level values, then one section per top-level mapping, each key
 * with its description, type, default, whether it is required and its environment variable.
 * Deterministic: the same schema and sources give the same bytes.
 * @param docs each key's description by dotted key (default: read from the sources, `readKeyDocs`)
 */
export function configReference(docs: ReadonlyMap<string, string> = readKeyDocs()): string {
  const entries = configEntries(docs)
  const tops = entries.filter((e) => e.path.length === 1)
  const topLeaves = tops.filter((e) => e.kind === 'leaf')
  const sections = tops.filter((e) => e.kind === 'group')
  const toc = [
    ...(topLeaves.length > 0 ? ['[top-level keys](#top-level-keys)'] : []),
    ...sections.map((s) => `[${s.key}](#${s.key.replace(/[^a-z0-9_-]/g, '')})`),
  ]
  const parts = [INTRO, `Sections: ${toc.join(', ')}.\n`]
  if (topLeaves.length > 0) parts.push('## Top-level keys\n', ...topLeaves.map(render))
  for (const s of sections) {
    parts.push(`## ${s.key}\n`)
    if (s.description !== undefined) parts.push(`${s.description}\n`)
    parts.push(...entries.filter((e) => e.path.length > 1 && e.path[0] === s.key).map(render))
  }
  return parts.join('\n').replace(/\n+$/, '\n')
}
