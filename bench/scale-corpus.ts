/**
 * The `scale` mode's synthetic corpus: deterministic (a seeded PRNG), shaped like a real registry.
 *
 * For a target of V versions (PIER_BENCH_SCALE_VERSIONS; V/10 packages):
 * - `huge`: max(1, round(3·V/1M)) packages of 5,000 versions, each manifest about 4 KB (30
 *   dependencies, a long description), so the full packument is about 20 MB;
 * - `big`: max(1, round(300·V/1M)) packages of 1,000 versions;
 * - `typical`: the rest of the packages, 1 to 20 versions each, most with few (1 + ⌊19·r²⌋, r uniform:
 *   a mean of about 7), manifests of about 1 KB; the last one takes what is left so the total is V.
 * About a third of the names are scoped (`@scale-s<k>/…`). Each manifest depends on 2–6 earlier
 * packages of the corpus (`^1.0.0`), and carries 3 keywords from a 500-word vocabulary (what the
 * search figures ask for). Every version has a real gzipped tarball (`package/package.json` and
 * `package/index.js`, ustar) whose package.json names it, with its sha512 integrity and sha1
 * shasum, in npm's publish wire format (docs/protocol.md §3.1), so the write path's checks all run.
 */
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'

/** One package of the corpus. */
export interface CorpusPackage {
  name: string
  versions: number
  kind: 'huge' | 'big' | 'typical'
}

/** The corpus for a target version count. */
export interface Corpus {
  packages: CorpusPackage[]
  versions: number
  /** The search vocabulary (keywords). */
  words: string[]
}

/** A small seeded PRNG (mulberry32): the same seed gives the same corpus on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'pa', 'qu', 'xe', 'do', 'fi', 'gu', 'ho', 'ja', 'be', 'cy', 'wu']

/** The 500-word vocabulary (three syllables each). */
function vocabulary(): string[] {
  const r = prng(7)
  const words = new Set<string>()
  while (words.size < 500) words.add(Array.from({ length: 3 }, () => SYLLABLES[Math.floor(r() * SYLLABLES.length)]).join(''))
  return [...words]
}

/** Plans the packages of a corpus of `versions` versions (≥ 5,000 + 1,000 + a few). */
export function planCorpus(versions: number): Corpus {
  const r = prng(versions)
  const packages: CorpusPackage[] = []
  const huge = Math.max(1, Math.round((3 * versions) / 1_000_000))
  const big = Math.max(1, Math.round((300 * versions) / 1_000_000))
  const count = Math.max(huge + big + 1, Math.round(versions / 10))
  let left = versions - huge * 5000 - big * 1000
  if (left < count - huge - big) throw new Error(`a corpus of ${versions} versions is too small (at least ${huge * 5000 + big * 1000 + count - huge - big})`)
  const nameOf = (i: number): string => (i % 3 === 2 ? `@scale-s${i % 97}/pkg-${i}` : `scale-pkg-${i}`)
  for (let i = 0; i < huge; i++) packages.push({ name: nameOf(packages.length), versions: 5000, kind: 'huge' })
  for (let i = 0; i < big; i++) packages.push({ name: nameOf(packages.length), versions: 1000, kind: 'big' })
  const typical = count - huge - big
  for (let i = 0; i < typical; i++) {
    const rest = typical - i - 1
    let n = 1 + Math.floor(19 * r() ** 2)
    n = Math.min(n, left - rest)
    if (i === typical - 1) n = left
    packages.push({ name: nameOf(packages.length), versions: Math.max(1, n), kind: 'typical' })
    left -= Math.max(1, n)
  }
  return { packages, versions, words: vocabulary() }
}

/** The version string of the i-th version of a package (1.0.0, 1.0.1, … 1.0.99, 1.1.0, …). */
export function versionOf(i: number): string {
  return `1.${Math.floor(i / 100)}.${i % 100}`
}

/** A minimal ustar archive of `files` (under `package/`), gzipped at level 1. */
export function tgz(files: Record<string, string>): Buffer {
  const parts: Buffer[] = []
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text)
    const h = Buffer.alloc(512)
    h.write(`package/${name}`, 0)
    h.write('0000644\0', 100)
    h.write('0000000\0', 108)
    h.write('0000000\0', 116)
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124)
    h.write('03560116604\0', 136)
    h.write('        ', 148)
    h.write('0', 156)
    h.write('ustar\x0000', 257)
    let sum = 0
    for (const b of h) sum += b
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  return gzipSync(Buffer.concat([...parts, Buffer.alloc(1024)]), { level: 1 })
}

/** One publish of the corpus: the name from the URL and npm's wire body. */
export interface CorpusPublish {
  name: string
  version: string
  body: Record<string, unknown>
}

/**
 * The publish of version `i` of package number `index` (`corpus.packages[index]`), as npm sends it.
 * Deterministic: the same arguments give the same body and tarball.
 */
export function publishOf(corpus: Corpus, index: number, i: number): CorpusPublish {
  const pkg = corpus.packages[index]
  if (!pkg) throw new Error(`no package ${index}`)
  const r = prng(index * 100_003 + i)
  const version = versionOf(i)
  const w = corpus.words
  const pick = (): string => w[Math.floor(r() * w.length)] ?? 'word'
  const keywords = [pick(), pick(), pick()]
  const deps: Record<string, string> = {}
  const ndeps = pkg.kind === 'huge' ? 30 : 2 + Math.floor(r() * 5)
  for (let k = 0; k < ndeps && index > 0; k++) {
    const d = corpus.packages[Math.floor(r() * index)]
    if (d) deps[d.name] = '^1.0.0'
  }
  if (pkg.kind === 'huge') for (let k = 0; Object.keys(deps).length < 30; k++) deps[`scale-extra-${k}`] = `^${k}.0.0`
  const description = pkg.kind === 'huge' ? `${keywords.join(' ')} ${Array.from({ length: 300 }, pick).join(' ')}` : `${keywords.join(' ')} ${Array.from({ length: 12 }, pick).join(' ')}`
  const manifest: Record<string, unknown> = {
    name: pkg.name,
    version,
    description,
    keywords,
    main: 'index.js',
    license: 'MIT',
    repository: { type: 'git', url: `git+https://git.example.com/scale/${pkg.name.replace('/', '-')}.git` },
    scripts: { test: 'node --test' },
    dependencies: deps,
    engines: { node: '>=18' },
  }
  return { name: pkg.name, version, body: publishBodyFor(manifest, `# ${pkg.name}\n\n${description}\n`) }
}

/**
 * npm's publish body (docs/protocol.md §3.1) for `manifest` (with `name` and `version`): a real
 * tarball holding it as `package/package.json`, its integrity and shasum, `latest` pointing at it.
 */
export function publishBodyFor(manifest: Record<string, unknown>, readme = ''): Record<string, unknown> {
  const name = String(manifest.name)
  const version = String(manifest.version)
  const tarball = tgz({ 'package.json': JSON.stringify(manifest), 'index.js': `module.exports = ${JSON.stringify(`${name}@${version}`)}\n` })
  const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`
  const shasum = createHash('sha1').update(tarball).digest('hex')
  const file = `${name}-${version}.tgz`
  return {
    _id: name,
    name,
    'dist-tags': { latest: version },
    versions: { [version]: { ...manifest, _id: `${name}@${version}`, readme, dist: { integrity, shasum, tarball: `http://127.0.0.1/${name}/-/${file}` } } },
    access: null,
    _attachments: { [file]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length } },
  }
}
