/**
 * docs/configuration.md, the configuration reference generated from the schema
 * (src/config/reference.ts):
 * - it is current: exactly what `configReference()` generates from today's schema and comments;
 * - it documents every leaf key of `ConfigSchema`, found here by a walk of the schema of this
 *   test's own: its description, type and environment variable, so a key added without a doc
 *   comment, or without regenerating the file, fails;
 * - every default it shows, read as YAML the way a user would write it, is the value Pier runs with.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import YAML from 'yaml'
import type { z } from 'zod'
import { configReference, readKeyDocs } from '../../src/config/reference.js'
import { ConfigSchema } from '../../src/config/schema.js'
import { ROOT } from '../helpers/pier.js'

const FILE = join(ROOT, 'docs/configuration.md')
const STALE = 'docs/configuration.md is out of date: run `npm run docs:config`'

/** A map's entry in a key path. */
const ENTRY = '*'

/** A leaf of the schema: a key holding a value, not further keys. */
interface Leaf {
  /** Segments; a map's entries are `*`. */
  path: string[]
  schema: z.core.$ZodType
}

/** The definition of a schema (narrowed by its `type`). */
function defOf(s: z.core.$ZodType): z.core.$ZodTypes['_zod']['def'] {
  return (s as z.core.$ZodTypes)._zod.def
}

/** `s` without `.optional()`, `.default()` and a `z.preprocess` step. */
function bare(s: z.core.$ZodType): z.core.$ZodType {
  const d = defOf(s)
  if (d.type === 'optional' || d.type === 'default' || d.type === 'prefault' || d.type === 'nullable') return bare(d.innerType)
  if (d.type === 'pipe' && defOf(d.in).type === 'transform') return bare(d.out)
  return s
}

/** Every leaf below `s`: through objects' shapes and maps' values. */
function leavesOf(s: z.core.$ZodType, path: string[] = []): Leaf[] {
  const d = defOf(bare(s))
  if (d.type === 'object') return Object.entries(d.shape).flatMap(([k, v]) => leavesOf(v, [...path, k]))
  if (d.type === 'record') return leavesOf(d.valueType, [...path, ENTRY])
  return [{ path, schema: s }]
}

/** Every key below `s` that holds further keys (objects and maps, and a map's entry). */
function groupsOf(s: z.core.$ZodType, path: string[] = []): string[][] {
  const d = defOf(bare(s))
  if (d.type === 'object') return [path, ...Object.entries(d.shape).flatMap(([k, v]) => groupsOf(v, [...path, k]))]
  if (d.type === 'record') return [path, ...groupsOf(d.valueType, [...path, ENTRY])]
  return []
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** A pattern for the dotted key of `path`, a map's entry being any `<word>`. */
function keyPattern(path: string[]): RegExp {
  return new RegExp(`^${path.map((seg) => (seg === ENTRY ? '<[a-z]+>' : escape(seg))).join('\\.')}$`)
}

/** The environment variable of `path` (rc's convention, as load.ts reads it), a map's entry being any `<WORD>`. */
function envPattern(path: string[]): RegExp {
  return new RegExp(`\`PIER_${path.map((seg) => (seg === ENTRY ? '<[A-Z]+>' : escape(seg.toUpperCase()))).join('__')}\``)
}

/** The reference's blocks: each `### \`key\`` heading's key and the lines up to the next heading. */
function blocksOf(markdown: string): Map<string, string[]> {
  const blocks = new Map<string, string[]>()
  let current: string[] | undefined
  for (const line of markdown.split('\n')) {
    const heading = /^### `([^`]+)`$/.exec(line)
    if (heading?.[1] !== undefined) {
      assert.ok(!blocks.has(heading[1]), `${heading[1]} is documented twice`)
      current = []
      blocks.set(heading[1], current)
    } else if (line.startsWith('#')) {
      current = undefined
    } else {
      current?.push(line)
    }
  }
  return blocks
}

/** The one block documenting `path`. */
function blockOf(blocks: Map<string, string[]>, path: string[]): { key: string; lines: string[] } {
  const found = [...blocks].filter(([key]) => keyPattern(path).test(key))
  assert.equal(found.length, 1, `${path.join('.')}: ${found.length === 0 ? 'not documented' : 'documented more than once'}; ${STALE}`)
  const [key, lines] = found[0] as [string, string[]]
  return { key, lines }
}

/** The value of `- Name: value` in a block. */
function field(lines: string[], name: string): string | undefined {
  return lines.find((l) => l.startsWith(`- ${name}: `))?.slice(name.length + 4)
}

/** The value at `path` of a parsed configuration, a map's entry being its first entry. */
function valueAt(config: unknown, path: string[]): unknown {
  let node = config
  for (const seg of path) {
    if (typeof node !== 'object' || node === null) return undefined
    const obj = node as Record<string, unknown>
    node = seg === ENTRY ? Object.values(obj)[0] : obj[seg]
  }
  return node
}

void describe('the configuration reference (docs/configuration.md)', () => {
  const leaves = leavesOf(ConfigSchema)
  const markdown = ((): string => {
    try {
      return readFileSync(FILE, 'utf8')
    } catch {
      return ''
    }
  })()
  const blocks = blocksOf(markdown)

  void test('the schema walk finds the keys (map entries and optional sections included)', () => {
    const keys = leaves.map((l) => l.path.join('.'))
    for (const k of ['url', 'server.headers_timeout', 'storage.s3.bucket', 'uplinks.*.max_tarball_size', 'uplinks.*.auth.token_env', 'packages.*.access', 'auth.github.cache.ttl', 'private_scopes']) {
      assert.ok(keys.includes(k), k)
    }
  })

  void test('is what `npm run docs:config` generates from the schema and its comments, byte for byte', () => {
    assert.ok(markdown !== '', `docs/configuration.md is missing: run \`npm run docs:config\``)
    assert.ok(markdown === configReference(readKeyDocs(ROOT)), STALE)
  })

  void test('documents every leaf key: its description, type, default, whether required, environment variable', () => {
    for (const leaf of leaves) {
      const { key, lines } = blockOf(blocks, leaf.path)
      const description = lines.filter((l) => l.trim() !== '' && !l.startsWith('- ')).join(' ')
      assert.ok(description.length > 0, `${key}: no description (write a doc comment above the key in src/config/schema.ts or uplinks.ts, then run \`npm run docs:config\`)`)
      for (const name of ['Type', 'Default', 'Required', 'Environment']) assert.ok(field(lines, name), `${key}: no ${name} line; ${STALE}`)
      assert.match(field(lines, 'Environment') ?? '', envPattern(leaf.path), `${key}: its environment variable`)
    }
  })

  void test('documents no key the schema does not have', () => {
    const known = [...leaves.map((l) => l.path), ...groupsOf(ConfigSchema).filter((p) => p.length > 0)]
    for (const key of blocks.keys()) assert.ok(known.some((p) => keyPattern(p).test(key)), `${key} is not a key of ConfigSchema; ${STALE}`)
  })

  void test('every default shown, written in YAML as shown, is what Pier runs with', () => {
    // One entry in each map and the optional sections given, so that their keys' defaults apply.
    const config = ConfigSchema.parse({
      uplinks: { up: { url: 'https://registry.example.com/' } },
      packages: { '**': {} },
      storage: { s3: { bucket: 'pier' } },
      audit: {},
    })
    let checked = 0
    for (const leaf of leaves) {
      const { key, lines } = blockOf(blocks, leaf.path)
      const shown = field(lines, 'Default')
      if (field(lines, 'Required')?.startsWith('yes')) {
        assert.equal(shown, 'none', `${key} is required and has no default`)
        continue
      }
      const actual = valueAt(config, leaf.path)
      if (actual === undefined) {
        assert.equal(shown, 'none', `${key}: Pier runs without a value, so the default shown is none`)
        continue
      }
      const m = /^`([^`]+)`$/.exec(shown ?? '')
      assert.ok(m?.[1] !== undefined, `${key}: Pier runs with ${JSON.stringify(actual)}, but the reference shows ${shown ?? 'nothing'}`)
      assert.deepEqual((leaf.schema as z.ZodType).parse(YAML.parse(m[1])), actual, `${key}: default \`${m[1]}\``)
      checked++
    }
    assert.ok(checked > 40, `only ${checked} defaults checked`)
  })
})
