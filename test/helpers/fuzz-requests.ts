/**
 * fast-check arbitraries of hostile HTTP requests to Pier, one family per route it serves
 * (docs/protocol.md; src/http/routes/*.ts and src/http/fast-path.ts): random methods, paths
 * (scoped and unscoped names in every encoding, `..`, `%2e%2e`, `%2f`, `%00`, `%ff%fe`, 10 kB
 * names, the `/-/…` routes with random query strings), headers (Accept, Accept-Encoding,
 * conditionals, Authorization garbage), and bodies (invalid JSON, 10,000 levels of nesting, huge
 * numbers, `__proto__`/`constructor`/`prototype` keys, wrong types in every field of a publish
 * body). A few requests are malformed HTTP, sent as raw bytes on a socket.
 *
 * Bodies are generated as JSON values in which marker strings (`hostile(key)`) stand for JSON
 * texts that no JavaScript value serialises to (10,000 levels, `1e400`, duplicate keys); `toJson`
 * splices them in.
 */
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'

/** One request as the fuzzer sends it. */
export interface FuzzRequest {
  /** The route family the generator aimed at (for coverage counts and reports). */
  kind: string
  method: string
  /** Path and query, as sent: printable ASCII without spaces (`raw` carries anything else). */
  path: string
  headers: Record<string, string>
  body?: Buffer | undefined
  /** Malformed HTTP: these bytes go on a fresh socket as they are (method, path, headers unused). */
  raw?: Buffer | undefined
}

/** What the generators know about the Pier under test, so that requests reach real data. */
export interface FuzzWorld {
  /** Packages that exist, with their versions (reads find them; tarball names are right). */
  packages: Record<string, string[]>
  /** Those of `packages` that the first user maintains (writes with the first token can succeed). */
  owned: string[]
  /** Names the rules send to the uplink (audit, proxied reads). */
  upstreamNames: string[]
  /** User names that exist (without passwords: see `password`). */
  users: string[]
  /** The password of `users[0]` (Basic credentials that work). */
  password: string
  /** Bearer tokens: the first user's, another user's, a read-only one. */
  tokens: string[]
  /** Valid publish bodies the first user may send (JSON objects as `publishBody` builds them). */
  publishBodies: Record<string, unknown>[]
}

/** JSON texts spliced in for `hostile(key)` markers: what no JS value serialises to. Small ones. */
const HOSTILE_SMALL: Record<string, string> = {
  hugeExponent: '1e400',
  negativeHugeExponent: '-1e400',
  tinyExponent: '1e-400',
  bigInteger: '123456789012345678901234567890123456789012345678901234567890',
  longFraction: '0.' + '1'.repeat(500),
  negativeZero: '-0',
  proto: '{"__proto__":{"polluted":true}}',
  constructorPrototype: '{"constructor":{"prototype":{"polluted":true}}}',
  prototypeKey: '{"prototype":{"polluted":true}}',
  constructorKey: '{"constructor":"x"}',
  duplicateKeys: '{"a":1,"a":{"b":2},"name":"x","name":"y"}',
  toStringObject: '{"toString":1,"valueOf":1}',
  toJSONObject: '{"toJSON":"x","toString":"y","length":-1,"hasOwnProperty":1}',
  loneSurrogate: '"\\ud800"',
  nulString: '"a\\u0000b"',
  deep200: '['.repeat(200) + ']'.repeat(200),
}

/** The big hostile texts: 10,000 levels of nesting, 5,000 digits, 200 kB strings, 20,000 keys. */
const HOSTILE_BIG: Record<string, string> = {
  deepArray: '['.repeat(10_000) + ']'.repeat(10_000),
  deepObject: '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000),
  deepMixed: '[{"a":'.repeat(5_000) + 'null' + '}]'.repeat(5_000),
  deepDependencies: '{"version":"1.0.0","dependencies":{"x":'.repeat(10_000) + '{}' + '}}'.repeat(10_000),
  longDigits: '9'.repeat(5_000),
  bigString: '"' + 'x'.repeat(200_000) + '"',
  manyKeys: '{' + Array.from({ length: 20_000 }, (_, i) => `"k${i}":${i}`).join(',') + '}',
  longArray: '[' + '0,'.repeat(50_000) + '0]',
}

/** Every hostile JSON text by key. */
export const HOSTILE_JSON: Record<string, string> = { ...HOSTILE_SMALL, ...HOSTILE_BIG }

const MARK = '@@hostile:'
/** A marker string that `toJson` replaces by `HOSTILE_JSON[key]`. */
export const hostile = (key: string): string => `${MARK}${key}@@`
const MARKER_RE = /"@@hostile:(\w+)@@"/g

/** Serialises `v`, splicing in the hostile JSON texts its markers name. */
export function toJson(v: unknown): string {
  const s = JSON.stringify(v) ?? 'null'
  return s.includes(MARK) ? s.replace(MARKER_RE, (m, k: string) => HOSTILE_JSON[k] ?? m) : s
}

/** `@s/n` → `@s%2fn`, as npm writes names in URLs. */
const esc = (name: string): string => name.replace('/', '%2f')
const b64 = (s: string): string => Buffer.from(s).toString('base64')

/** Percent-encodes (as UTF-8) every character outside printable ASCII, spaces included, as a client would. */
export function safePath(p: string): string {
  return p.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c))
}

/** Header values undici sends (tab, 0x20–0x7e, 0x80–0xff); anything else becomes `?`. */
const safeHeader = (v: string): string => v.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?')

// ---- Pieces ----

const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS']
/** Tokens undici sends but that are not npm's; Node's parser refuses some (400), routes miss the rest (404). */
const JUNK_METHODS = ['FOO', 'get', 'Get', 'PROPFIND', 'PURGE', 'TRACE', 'LINK', 'M-SEARCH', 'MKCOL', 'QUERY', 'X'.repeat(300), 'SEARCH', 'REPORT']

const anyMethod = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.constantFrom(...JUNK_METHODS) })
/** The method the route expects most of the time, else any. */
const methodOf = (...usual: string[]): fc.Arbitrary<string> => fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...usual) }, { weight: 1, arbitrary: anyMethod })

/** Path segments that have broken path handling somewhere. */
const NASTY_SEGMENTS = [
  '..', '.', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%2f', '%2F', '%252f', '%00', 'a%00b', '%ff%fe', '%ff', '%c0%af', '%e2%80%ae', '%ed%a0%80',
  '%', '%2', '%zz', '%%', '%u0041', '-', '-rev', '-%2frev', '_', '~', '@', '@%2f', '@@', '%40', '%40%2f', 'node_modules', 'favicon.ico',
  'constructor', '__proto__', 'prototype', 'hasOwnProperty', 'a'.repeat(10_000), '%61'.repeat(3_000), '@' + 'a'.repeat(5_000) + '%2f' + 'b'.repeat(5_000),
  'A', 'UPPER', ' ', '%20', '+', '%2B', ';', ',', '=', '&', '?', '#', '\\', '%5c', '<script>', '{}', '[]', '${x}', '*', '**',
]

const nastySegment = fc.constantFrom(...NASTY_SEGMENTS)
/**
 * Any code point but a lone surrogate (which `encodeURIComponent` refuses). Built with `map`, not
 * fast-check's `binary` unit, whose reverse lookup of all 1.1 million code points costs a second.
 */
const codePoint = fc.oneof(fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff })).map((c) => String.fromCodePoint(c))
/** Characters that have broken text handling somewhere. */
const trickyChar = fc.constantFrom('\u0000', '\r', '\n', '\t', '\u2028', '\ufeff', '\u202e', '\u00e9', 'e\u0301', '\u{1d4b3}', '\u{1f44d}\u{1f3fd}', '\\', '"', "'", '%', '/', '@', ':', '.', ' ')
/** A byte, as a latin1 character (raw HTTP). */
const byteChar = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c))
/** Random text, for paths and values: ASCII mostly, sometimes any code point or tricky characters. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: codePoint, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: trickyChar, maxLength: 8 }) },
)
const segment = fc.oneof({ weight: 2, arbitrary: nastySegment }, { weight: 3, arbitrary: text.map((s) => encodeURIComponent(s)) }, { weight: 1, arbitrary: text })

/**
 * A name as it may appear in a path: a known name as npm writes it, in one of the other clients'
 * encodings (pnpm's `%2F`, yarn's literal `/`, curl's `%40`) or mangled, or junk.
 * @param favour names to pick most of the time (the first user's packages, for writes)
 */
function namePath(world: FuzzWorld, favour: string[] = Object.keys(world.packages)): fc.Arbitrary<string> {
  const known = fc.constantFrom(...Object.keys(world.packages), ...world.upstreamNames, '@private/nope', '@hidden/thing', '@redir/thing', 'fz-missing')
  const plain = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...favour).map(esc) },
    { weight: 1, arbitrary: fc.constantFrom(...favour).map((n) => n.replace('/', '%2F')) },
    { weight: 1, arbitrary: fc.constantFrom(...favour) },
  )
  const encoded = fc.tuple(known, fc.nat(7)).map(([n, form]) => {
    if (!n.startsWith('@')) return [n, encodeURIComponent(n).replace(/-/g, '%2d'), n.toUpperCase(), n + '%00', n + '%2e%2e'][form % 5] as string
    const [s, b] = n.split('/') as [string, string]
    return [`${s}%2f${b}`, `${s}%2F${b}`, `${s}/${b}`, `%40${s.slice(1)}%2f${b}`, `${s}%252f${b}`, `${s}%2f%2e%2e%2f${b}`, `${s}//${b}`, `${s}%2f`][form] as string
  })
  const junk = fc.oneof(
    segment,
    fc.tuple(fc.constantFrom('@', '%40'), segment, fc.constantFrom('/', '%2f', '%2F', '%2f%2f'), segment).map((p) => p.join('')),
  )
  return fc.oneof({ weight: 8, arbitrary: plain }, { weight: 4, arbitrary: encoded }, { weight: 3, arbitrary: junk })
}

/** A version, tag or junk spec. */
function specOf(world: FuzzWorld): fc.Arbitrary<string> {
  const versions = [...new Set(Object.values(world.packages).flat())]
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...versions, 'latest', 'beta', 'next') },
    { weight: 2, arbitrary: fc.constantFrom('^1.0.0', '*', '1.x', '>=0', '1.0.0-', 'v1.0.0', '=1.0.0', '1.0.0+build', '01.0.0', '9'.repeat(400) + '.0.0', '1.0.0-' + 'a'.repeat(300)) },
    { weight: 2, arbitrary: segment },
  )
}

/** A tarball file name: the right one for a known version, or close to it. */
function fileOf(world: FuzzWorld): fc.Arbitrary<string> {
  const right = Object.entries(world.packages).flatMap(([n, vs]) => vs.map((v) => `${n.slice(n.indexOf('/') + 1)}-${v}.tgz`))
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...right) },
    { weight: 2, arbitrary: fc.tuple(segment, fc.constantFrom('.tgz', '.TGZ', '.tgz%00', '.tgz.', '')).map(([a, b]) => a + b) },
    { weight: 1, arbitrary: fc.constantFrom('.tgz', '-.tgz', '..tgz', '%2e%2e%2f.tgz', 'a'.repeat(10_000) + '.tgz') },
  )
}

const rev = fc.oneof(fc.constantFrom('1-abc', '0-0', '99999999999999999999-x', '', '%00', 'undefined', 'null', '1-' + 'f'.repeat(5_000)), segment)

/** A random query string, with the keys a route reads among junk ones. */
function queryOf(keys: string[]): fc.Arbitrary<string> {
  const value = fc.oneof(
    text.map((s) => encodeURIComponent(s)),
    fc.constantFrom('', '0', '-1', '1e400', 'NaN', 'Infinity', '-Infinity', '1.5', '0x10', '9'.repeat(400), 'true', '%ff', '%', '%00', '[]', '{}', '"a"', 'a'.repeat(3_000)),
  )
  const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'text[]', 'size[0]', 'a[b]', '%ff', '') })
  const pair = fc.oneof({ weight: 6, arbitrary: fc.tuple(key, value).map(([k, v]) => `${k}=${v}`) }, { weight: 1, arbitrary: key })
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant('') },
    { weight: 6, arbitrary: fc.array(pair, { maxLength: 6 }).map((ps) => '?' + ps.join('&')) },
    { weight: 1, arbitrary: fc.constantFrom('?', '?&&', '?=', '?%', '?a=%ff%fe', '?' + 'x=1&'.repeat(2_000), '?#frag') },
  )
}

// ---- Headers ----

const CORGI = 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'

/** Authorization: none, the world's tokens, Basic that works, and every kind of garbage. */
function authorizationOf(world: FuzzWorld): fc.Arbitrary<string | undefined> {
  const [first, second, readonly] = world.tokens as [string, string, string]
  const user = world.users[0] as string
  return fc.oneof(
    { weight: 300, arbitrary: fc.constant(undefined) },
    { weight: 280, arbitrary: fc.constant(`Bearer ${first}`) },
    { weight: 50, arbitrary: fc.constant(`Bearer ${second}`) },
    { weight: 40, arbitrary: fc.constant(`Bearer ${readonly}`) },
    { weight: 30, arbitrary: fc.constant(`Basic ${b64(`${user}:${world.password}`)}`) },
    {
      weight: 120,
      arbitrary: fc.constantFrom(
        'Bearer', 'Bearer ', 'bearer x', 'Bearer  ' + first, `Bearer ${first}x`, `Bearer ${first.slice(0, -1)}`, 'Basic', 'Basic ',
        'Basic !!!!', 'Basic ====', 'Basic %ff', `Basic ${b64(':')}`, `Basic ${b64('nouser')}`, `Basic ${b64(':pw')}`, `Basic ${b64('ghost:pw')}`,
        `Basic ${b64('\u0000:\u0000')}`, 'Basic ' + 'A'.repeat(8_000), 'Bearer ' + 'x'.repeat(8_000), 'x'.repeat(8_000), 'Negotiate abc',
        'Digest username="a"', 'Token abc', ' ', 'Bearer\tx', 'BEARER ' + first, 'basic ' + b64(`${user}:${world.password}`),
      ),
    },
    { weight: 30, arbitrary: text.map((t) => `Bearer ${t}`) },
    { weight: 30, arbitrary: text.map((t) => `Basic ${b64(t)}`) },
    // A real user with a wrong password runs scrypt (~50 ms on the thread pool): rare.
    { weight: 1, arbitrary: fc.constant(`Basic ${b64(`${user}:wrong`)}`) },
  )
}

const acceptOf = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom(CORGI, 'application/json', '*/*', 'application/vnd.npm.install-v1+json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'application/vnd.npm.install-v1+json;q=0', 'text/html', '', ';;;', 'application/json;q=abc', 'x/y;q=1e400', '*/*;q=-1',
      Array.from({ length: 500 }, (_, i) => `type${i}/sub;q=0.${i % 10}`).join(', '),
    ),
  },
  { weight: 1, arbitrary: text },
)

const acceptEncodingOf = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.constantFrom('gzip', 'gzip,deflate', 'br', 'gzip, deflate, br', 'identity') },
  { weight: 1, arbitrary: fc.constantFrom('identity;q=0', '*;q=0', '*', 'gzip;q=0, br;q=0', 'br;q=1e400', 'zstd', ',,,', 'gzip;q=' + '9'.repeat(1_000), 'x'.repeat(4_000)) },
  { weight: 1, arbitrary: text },
)

const conditionalOf = fc.oneof(
  { weight: 8, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        'if-none-match': fc.oneof(
          fc.constantFrom('*', 'W/"1-x-full"', '"x"', 'W/', '""', ',', 'W/"' + 'x'.repeat(4_000) + '"', Array.from({ length: 1_000 }, (_, i) => `"e${i}"`).join(', ')),
          text,
        ),
        'if-modified-since': fc.oneof(
          fc.constantFrom('Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', new Date().toUTCString(), 'yesterday', '0', '-1', '9'.repeat(30)),
          text,
        ),
      },
      { requiredKeys: [] },
    ),
  },
)

const contentTypeOf = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'APPLICATION/JSON', 'text/plain',
      'application/octet-stream', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json;;', '*/*', 'json', 'application/jsonx',
    ),
  },
)

/** Headers of no consequence to Pier's answers (logged, or read only with trust_proxy), with junk values. */
const noiseOf = fc.record(
  {
    'npm-command': fc.oneof(fc.constantFrom('install', 'publish', 'audit'), text),
    'npm-scope': text,
    'user-agent': fc.oneof(fc.constantFrom('npm/11.19.1 node/v20.20.2 linux x64 workspaces/false ci/github-actions', 'bun/1.0', 'x'.repeat(3_000)), text),
    'x-forwarded-for': fc.constantFrom('1.2.3.4', '::1, 127.0.0.1', 'garbage', ''),
    'x-forwarded-host': text,
    'x-forwarded-proto': fc.constantFrom('https', 'gopher', ''),
    host: fc.oneof(fc.constantFrom('', 'localhost', '[::1]:1', 'a'.repeat(2_000), 'evil.example:99999', 'x y'), text),
    'x-request-id': text,
    'npm-otp': text,
    'x-fuzz': text,
  },
  { requiredKeys: [] },
)

/** The common headers of a request. */
function headersOf(world: FuzzWorld, opts: { body: boolean; reads: boolean }): fc.Arbitrary<Record<string, string>> {
  return fc
    .record({
      authorization: authorizationOf(world),
      accept: opts.reads ? acceptOf : fc.constant(undefined),
      'accept-encoding': opts.reads ? acceptEncodingOf : fc.constant(undefined),
      conditional: opts.reads ? conditionalOf : fc.constant({}),
      'content-type': opts.body ? contentTypeOf : fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: contentTypeOf }),
      noise: fc.oneof({ weight: 6, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: noiseOf }),
    })
    .map(({ conditional, noise, ...h }) => {
      const out: Record<string, string> = {}
      for (const [k, v] of Object.entries({ ...noise, ...conditional, ...h })) if (v !== undefined) out[k] = safeHeader(v)
      // undici itself asserts on a Host that opens an IPv6 bracket without closing it.
      if (out.host?.startsWith('[') && !out.host.includes(']')) out.host = out.host.replace(/^\[+/, '')
      return out
    })
}

// ---- Bodies ----

/** A value of the wrong type (or the right type, wrong in content) for any field. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53 + 1, '', ' ', '0', 'null', [], {}, [[]], [{}], { '': '' }) },
  { weight: 25, arbitrary: fc.constantFrom(...Object.keys(HOSTILE_SMALL).map((k) => hostile(k))) },
  { weight: 1, arbitrary: fc.constantFrom(...Object.keys(HOSTILE_BIG).map((k) => hostile(k))) },
  { weight: 15, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 20, arbitrary: text },
  { weight: 10, arbitrary: fc.constantFrom('x'.repeat(10_000), '1.0.0', 'latest', '^1.0.0', '__proto__', 'constructor', 'sha512-AAAA', 'sha1-x', 'http://127.0.0.1:1/', 'public', 'restricted') },
  { weight: 10, arbitrary: fc.dictionary(fc.constantFrom('toString', 'valueOf', 'toJSON', 'length', 'name', 'then', 'constructor', 'hasOwnProperty'), fc.constantFrom(1, 'x', null, {})) },
)

/** Bodies that are not a JSON document, or are the wrong document. */
const junkBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('', '{', '}', '{"a":', '{"a":1,}', "{'a':1}", 'null', 'true', '0', '"string"', '[]', '[1,2', 'NaN', 'undefined', '{"a":NaN}', '\u0000', '\ufeff{}', '{}garbage', '{} {}') },
  { weight: 3, arbitrary: fc.constantFrom(...Object.values(HOSTILE_SMALL)) },
  { weight: 2, arbitrary: fc.constantFrom(...Object.values(HOSTILE_BIG)) },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  { weight: 3, arbitrary: text },
)

/** A deep clone of a JSON body. */
const clone = <T>(v: T): T => structuredClone(v)

/** Sets, deletes or renames the field at `path` (missing parents are created). */
function mutateAt(body: Record<string, unknown>, path: string[], op: 'set' | 'delete' | 'rename', value: unknown, newKey: string): void {
  let node: Record<string, unknown> = body
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  const last = path.at(-1) as string
  if (op === 'delete') delete node[last]
  else if (op === 'rename') {
    const v = node[last]
    delete node[last]
    Object.defineProperty(node, newKey, { value: v, enumerable: true, writable: true, configurable: true })
  } else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true })
}

const PUBLISH_FIELDS: string[][] = [
  ['name'], ['_id'], ['description'], ['versions'], ['versions', 'V'], ['versions', 'V', 'name'], ['versions', 'V', 'version'], ['versions', 'V', 'dist'],
  ['versions', 'V', 'dist', 'integrity'], ['versions', 'V', 'dist', 'shasum'], ['versions', 'V', 'dist', 'tarball'], ['versions', 'V', 'readme'],
  ['versions', 'V', 'readmeFilename'], ['versions', 'V', 'maintainers'], ['versions', 'V', '_npmUser'], ['versions', 'V', 'dependencies'],
  ['versions', 'V', 'dependencies', 'x'], ['versions', 'V', 'bin'], ['versions', 'V', 'scripts'], ['versions', 'V', 'deprecated'], ['versions', 'V', 'engines'],
  ['versions', 'V', 'os'], ['versions', 'V', 'keywords'], ['versions', 'V', 'description'], ['versions', 'V', '_id'], ['versions', 'V', 'dist', 'fileCount'],
  ['dist-tags'], ['dist-tags', 'latest'], ['dist-tags', 'T'], ['access'], ['maintainers'], ['_attachments'], ['_attachments', 'A'],
  ['_attachments', 'A', 'data'], ['_attachments', 'A', 'length'], ['_attachments', 'A', 'content_type'], ['_attachments', 'X'], ['users'], ['_rev'],
  ['time'], ['readme'],
]

/** base64 payloads that are not the tarball the manifest describes. */
const BAD_DATA = [
  '', 'AAAA', '====', '!!!!', '%%%', 'A', b64('not gzip'), gzipSync(Buffer.from('not a tar')).toString('base64'),
  gzipSync(Buffer.alloc(64 * 1024)).toString('base64'), gzipSync(Buffer.from('x')).subarray(0, 10).toString('base64'), 'x'.repeat(10_000),
]

/** A publish body: valid, or with one field corrupted (a wrong type, a hostile value, deleted, renamed). */
function publishOf(world: FuzzWorld): fc.Arbitrary<{ name: string; body: Record<string, unknown> }> {
  const base = fc.constantFrom(...world.publishBodies)
  const corruption = fc.record({
    field: fc.constantFrom(...PUBLISH_FIELDS),
    op: fc.constantFrom<'set' | 'delete' | 'rename'>('set', 'set', 'set', 'set', 'delete', 'rename'),
    value: fc.oneof({ weight: 6, arbitrary: wrongValue }, { weight: 2, arbitrary: fc.constantFrom(...BAD_DATA) }),
    newKey: fc.oneof(text, fc.constantFrom('__proto__', 'constructor', '1.0.0', 'x.tgz', '')),
    tag: fc.oneof(text, fc.constantFrom('^1', 'beta', '1.0.0')),
  })
  return fc
    .tuple(base, fc.option(corruption, { freq: 6, nil: undefined }))
    .map(([b, c]) => {
      const body = clone(b)
      const name = String(body.name)
      if (c) {
        const v = Object.keys(body.versions as object)[0] as string
        const a = Object.keys(body._attachments as object)[0] as string
        const path = c.field.map((k) => (k === 'V' ? v : k === 'A' ? a : k === 'T' ? c.tag : k === 'X' ? `${c.newKey}.tgz` : k))
        mutateAt(body, path, c.op, c.value, c.newKey)
      }
      return { name, body }
    })
}

/** A document write without attachments: deprecate, star, owners, unpublish of one version. */
function updateOf(world: FuzzWorld): fc.Arbitrary<Record<string, unknown>> {
  const users = [...world.users, 'ghost', '']
  const versionsOf = (name: string): string[] => world.packages[name] ?? ['1.0.0']
  return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...world.owned) }, { weight: 1, arbitrary: fc.constantFrom(...Object.keys(world.packages)) }).chain((name) =>
    fc.record(
      {
        _id: fc.oneof(fc.constant(name), wrongValue),
        _rev: fc.oneof(rev, wrongValue),
        name: fc.oneof(fc.constant(name), wrongValue),
        versions: fc.oneof(
          fc.dictionary(fc.constantFrom(...versionsOf(name), '9.9.9', '__proto__'), fc.oneof(fc.record({ deprecated: fc.oneof(text, fc.constant(''), wrongValue) }), wrongValue), { maxKeys: 4 }),
          wrongValue,
        ),
        users: fc.oneof(fc.dictionary(fc.constantFrom(...users), fc.oneof(fc.boolean(), wrongValue), { maxKeys: 3 }), wrongValue),
        maintainers: fc.oneof(fc.array(fc.oneof(fc.record({ name: fc.oneof(fc.constantFrom(...users), wrongValue), email: text }), fc.constantFrom(...users), wrongValue), { maxLength: 4 }), wrongValue),
        'dist-tags': wrongValue,
        time: wrongValue,
        _attachments: fc.constantFrom({}, null, [], ''),
      },
      { requiredKeys: [] },
    ),
  )
}

/** The `/-/npm/v1/security/…` bodies: npm's bulk map, npm 6 / pnpm trees, junk; gzipped sometimes. */
function auditBodyOf(world: FuzzWorld): fc.Arbitrary<{ body: string | Buffer; gzip: boolean }> {
  const names = fc.oneof(fc.constantFrom(...world.upstreamNames, ...Object.keys(world.packages), '@hidden/x', '__proto__', 'constructor'), text)
  const bulk = fc.dictionary(names, fc.oneof(fc.array(fc.oneof(fc.constantFrom('1.0.0', '0.0.1'), text), { maxLength: 3 }), wrongValue), { maxKeys: 6 })
  const dep = fc.record({ version: fc.oneof(fc.constant('1.0.0'), wrongValue), requires: fc.oneof(fc.dictionary(names, text, { maxKeys: 3 }), wrongValue) }, { requiredKeys: [] })
  const tree = fc.record(
    {
      name: fc.oneof(names, wrongValue),
      version: fc.oneof(fc.constant('1.0.0'), wrongValue),
      requires: fc.oneof(fc.dictionary(names, text, { maxKeys: 4 }), wrongValue),
      dependencies: fc.oneof(fc.dictionary(names, fc.oneof(dep, wrongValue), { maxKeys: 4 }), wrongValue, fc.constant({ x: hostile('deepDependencies') })),
      metadata: wrongValue,
    },
    { requiredKeys: [] },
  )
  return fc.tuple(fc.oneof({ weight: 4, arbitrary: fc.oneof(bulk, tree).map((v) => toJson(v)) }, { weight: 1, arbitrary: junkBody }), fc.boolean()).map(([body, gz]) => ({
    body: gz ? gzipSync(body) : body,
    gzip: gz,
  }))
}

// ---- Route families ----

const asBody = (b: string | Buffer | undefined): Buffer | undefined => (b === undefined ? undefined : Buffer.isBuffer(b) ? b : Buffer.from(b))

/** Builds a request, percent-encoding what undici would refuse in the path. */
function req(kind: string, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): FuzzRequest {
  return { kind, method, path: safePath(path.startsWith('/') ? path : '/' + path), headers, body: asBody(body) }
}

/** Packument, manifest and tarball reads (the fast path and routes/packages.ts GET). */
function readOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const tail = fc.oneof(
    { weight: 5, arbitrary: fc.constant('') },
    { weight: 3, arbitrary: specOf(world).map((s) => '/' + s) },
    { weight: 5, arbitrary: fileOf(world).map((f) => '/-/' + f) },
    { weight: 1, arbitrary: fc.tuple(fileOf(world), rev).map(([f, r]) => `/-/${f}/-rev/${r}`) },
    { weight: 1, arbitrary: rev.map((r) => '/-rev/' + r) },
    { weight: 1, arbitrary: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/')) },
    { weight: 1, arbitrary: fc.constantFrom('/', '//', '/-', '/-/', '/-/-/', '/../../etc/passwd', '/%2e%2e/%2e%2e/x') },
  )
  const query = fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 2, arbitrary: fc.constantFrom('?write=true', '?write=true&write=true', '?write=1') }, { weight: 1, arbitrary: queryOf(['write']) })
  return fc
    .record({ method: methodOf('GET', 'GET', 'GET', 'HEAD'), name: namePath(world), tail, query, headers: headersOf(world, { body: false, reads: true }) })
    .map((r) => req('package-read', r.method, `/${r.name}${r.tail}${r.query}`, r.headers))
}

/** Publish (valid, or one field corrupted), document writes and unpublish (routes/packages.ts PUT, DELETE). */
function writeOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const publish = fc
    .record({ p: publishOf(world), headers: headersOf(world, { body: true, reads: false }), path: fc.nat(9) })
    .map(({ p, headers, path }) => {
      const url = path < 7 ? `/${esc(p.name)}` : path === 7 ? `/${p.name}` : path === 8 ? `/${esc(p.name)}/-rev/1-x` : `/${esc(p.name)}x`
      return req('publish', 'PUT', url, headers, toJson(p.body))
    })
  const update = fc
    .record({
      method: methodOf('PUT'),
      name: namePath(world, world.owned),
      tail: fc.oneof(fc.constant(''), rev.map((r) => '/-rev/' + r)),
      body: fc.oneof({ weight: 4, arbitrary: updateOf(world).map((b) => toJson(b)) }, { weight: 1, arbitrary: junkBody }),
      headers: headersOf(world, { body: true, reads: false }),
    })
    .map((r) => req('update', r.method, `/${r.name}${r.tail}`, r.headers, r.body))
  const unpublish = fc
    .record({
      name: namePath(world, world.owned),
      tail: fc.oneof(fc.constant(''), rev.map((r) => '/-rev/' + r), fileOf(world).map((f) => '/-/' + f), fc.tuple(fileOf(world), rev).map(([f, r]) => `/-/${f}/-rev/${r}`), specOf(world).map((s) => '/' + s)),
      body: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: junkBody }),
      headers: headersOf(world, { body: false, reads: false }),
    })
    .map((r) => req('unpublish', 'DELETE', `/${r.name}${r.tail}`, r.headers, r.body))
  const otherMethod = fc
    .record({ method: anyMethod, name: namePath(world), body: fc.option(junkBody, { nil: undefined }), headers: headersOf(world, { body: true, reads: false }) })
    .map((r) => req('package-other', r.method, `/${r.name}`, r.headers, r.body))
  return fc.oneof({ weight: 6, arbitrary: publish }, { weight: 4, arbitrary: update }, { weight: 2, arbitrary: unpublish }, { weight: 1, arbitrary: otherMethod })
}

/** `/-/package/<name>/dist-tags[/<tag>]` and junk below `/-/package/`. */
function distTagOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const versions = [...new Set(Object.values(world.packages).flat())]
  const tag = fc.oneof(fc.constantFrom('beta', 'next', 'latest', 'canary', '1.0.0', '^1', '*', 'x'.repeat(5_000)), segment)
  const tail = fc.oneof(
    { weight: 3, arbitrary: fc.constant('/dist-tags') },
    { weight: 6, arbitrary: tag.map((t) => '/dist-tags/' + t) },
    { weight: 1, arbitrary: fc.constantFrom('/dist-tags/', '/dist-tags//', '/dist-tags/a/b', '/collaborators', '/visibility', '/access', '', '/') },
    { weight: 1, arbitrary: fc.array(segment, { maxLength: 3 }).map((s) => '/' + s.join('/')) },
  )
  const body = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...versions, '9.9.9').map((v) => JSON.stringify(v)) },
    { weight: 3, arbitrary: wrongValue.map((v) => toJson(v)) },
    { weight: 1, arbitrary: junkBody },
    { weight: 1, arbitrary: fc.constant(undefined) },
  )
  const junk = fc
    .record({ method: methodOf('GET', 'PUT', 'PUT', 'DELETE', 'POST', 'HEAD'), name: namePath(world, world.owned), tail, query: fc.oneof(fc.constant(''), queryOf(['x'])), body, headers: headersOf(world, { body: true, reads: false }) })
    .map((r) => req('dist-tags', r.method, `/-/package/${r.name}${r.tail}${r.query}`, r.headers, r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body))
  // What `npm dist-tag add/rm` sends for the first user's packages, with one of its versions: these can succeed.
  const npmLike = fc
    .constantFrom(...world.owned)
    .chain((name) =>
      fc.record({
        name: fc.constant(name),
        method: fc.constantFrom('PUT', 'PUT', 'DELETE', 'POST'),
        tag: fc.constantFrom('beta', 'next', 'canary', 'latest', 'rc'),
        version: fc.constantFrom(...(world.packages[name] ?? ['1.0.0'])),
        headers: headersOf(world, { body: true, reads: false }),
      }),
    )
    .map((r) => req('dist-tags', r.method, `/-/package/${esc(r.name)}/dist-tags/${r.tag}`, r.headers, r.method === 'DELETE' ? undefined : JSON.stringify(r.version)))
  return fc.oneof({ weight: 3, arbitrary: junk }, { weight: 1, arbitrary: npmLike })
}

/** `GET /-/v1/search` with random query strings, `GET /-/_view/starredByUser` and `GET /_changes`. */
function searchOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const words = fc.oneof(
    queryOf(['text', 'size', 'from', 'quality', 'popularity', 'maintenance']),
    fc.array(fc.oneof(fc.constantFrom('fz', 'read', 'keyword', 'scope:fz', 'author:x', '@private', '@hidden', 'up', 'a'), text), { maxLength: 8 }).map((w) => '?text=' + w.map(encodeURIComponent).join('+')),
    fc.integer({ min: 1, max: 3_000 }).map((n) => '?text=' + 'a+'.repeat(n) + 'b'),
    fc.integer({ min: 2, max: 50 }).map((n) => '?' + 'text=a&'.repeat(n) + 'size=2&size=3&from=1&from=2'),
  )
  const search = fc
    .record({ method: methodOf('GET'), q: words, headers: headersOf(world, { body: false, reads: false }) })
    .map((r) => req('search', r.method, `/-/v1/search${r.q}`, r.headers))
  const key = fc.oneof(
    fc.constantFrom(...world.users, 'ghost').map((u) => encodeURIComponent(JSON.stringify(u))),
    fc.constantFrom('alice', '', '%22', '%22%22', '1', 'null', '%7B%7D', '%5B%22a%22%5D', '%ff', '%22' + 'a'.repeat(5_000) + '%22'),
    text.map((t) => encodeURIComponent(JSON.stringify(t))),
  )
  const stars = fc
    .record({ method: methodOf('GET'), key, more: fc.constantFrom('', '&key=%22b%22', '&key', '&include_docs=true'), bare: fc.nat(9), headers: headersOf(world, { body: false, reads: false }) })
    .map((r) => req('starred-by', r.method, `/-/_view/starredByUser${r.bare === 0 ? '' : `?key=${r.key}${r.more}`}`, r.headers))
  const changes = fc
    .record({
      method: methodOf('GET'),
      q: fc.oneof(queryOf(['since', 'limit', 'feed', 'include_docs', 'descending', 'heartbeat', 'timeout']), fc.constantFrom('?since=now', '?since=0&limit=1', '?limit=10000', '?since=99999999999999999', '?feed=longpoll')),
      headers: headersOf(world, { body: false, reads: false }),
    })
    .map((r) => req('changes', r.method, `/_changes${r.q}`, r.headers))
  return fc.oneof({ weight: 3, arbitrary: search }, { weight: 1, arbitrary: stars }, { weight: 1, arbitrary: changes })
}

/** Accounts: legacy login/adduser, user documents, whoami, logout, profile, tokens, web login. */
function accountOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const userName = fc.oneof(
    fc.constantFrom(...world.users, 'ghost', 'fz-new-user'),
    fc.constantFrom('', '%ff', '%00', 'a'.repeat(10_000), '..', '%2e%2e', 'a%2fb', 'a/b', '-', '_', 'UPPER', 'a:b', 'constructor', '__proto__'),
    segment,
  )
  const userPath = fc
    .tuple(userName, fc.constantFrom('', '', '', '/-rev/1-x', '/-rev/', '/x', '/-rev/a/b'), fc.constantFrom('org.couchdb.user:', 'org.couchdb.user%3a', 'org.couchdb.user:', 'user:', ''))
    .map(([u, t, p]) => `/-/user/${p}${u}${t}`)
  // A user document with a usable name and password runs scrypt (~50 ms on the thread pool): rare.
  const userDoc = fc.oneof(
    { weight: 120, arbitrary: fc.record({ _id: wrongValue, name: fc.oneof(userName, wrongValue), password: fc.oneof(fc.constant(''), wrongValue), email: wrongValue, type: wrongValue, roles: wrongValue }, { requiredKeys: [] }).map((d) => toJson(d)) },
    { weight: 30, arbitrary: junkBody },
    { weight: 1, arbitrary: fc.constantFrom(...world.users, 'fz-new-user').map((u) => JSON.stringify({ name: u, password: u === world.users[0] ? world.password : 'fz-pass', email: 'x@example.com' })) },
  )
  const login = fc
    .record({ method: methodOf('PUT', 'GET'), path: userPath, body: userDoc, headers: headersOf(world, { body: true, reads: false }) })
    .map((r) => req('user', r.method, r.path, r.headers, r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body))
  const tokenPath = fc.oneof(fc.constantFrom('', '%ff', '%25ff', '%00', 'a'.repeat(10_000), 'pier_' + 'x'.repeat(43), '..', '%2e%2e%2f'), segment)
  const logout = fc
    .record({ method: methodOf('DELETE'), t: tokenPath, body: fc.option(junkBody, { freq: 5, nil: undefined }), headers: headersOf(world, { body: false, reads: false }) })
    .map((r) => req('logout', r.method, `/-/user/token/${r.t}`, r.headers, r.body))
  const simple = fc
    .record({ method: methodOf('GET'), path: fc.constantFrom('/-/whoami', '/-/npm/v1/user', '/-/npm/v1/user/', '/-/whoami/x'), headers: headersOf(world, { body: false, reads: false }) })
    .map((r) => req('whoami', r.method, r.path, r.headers))
  const listTokens = fc
    .record({ q: queryOf(['page', 'perPage']), headers: headersOf(world, { body: false, reads: false }) })
    .map((r) => req('tokens-list', 'GET', `/-/npm/v1/tokens${r.q}`, r.headers))
  // Token creation checks the password with scrypt when it is a string: mostly not.
  const tokenBody = fc.oneof(
    { weight: 80, arbitrary: fc.record({ password: wrongValue, readonly: wrongValue, cidr_whitelist: fc.oneof(wrongValue, fc.array(wrongValue, { maxLength: 3 })), name: wrongValue, description: wrongValue }, { requiredKeys: [] }).map((b) => toJson(b)) },
    { weight: 20, arbitrary: junkBody },
    {
      weight: 1,
      arbitrary: fc
        .record({ cidr_whitelist: fc.oneof(fc.array(fc.oneof(fc.constantFrom('10.0.0.0/8', '::1/128', '1.2.3.4/33', '1.2.3.4/-1', '::/0', '1.2.3.4/1.5', ' ', 'x'), wrongValue), { maxLength: 3 }), wrongValue), readonly: wrongValue, name: wrongValue }, { requiredKeys: [] })
        .map((b) => toJson({ ...b, password: world.password })),
    },
  )
  const createToken = fc
    .record({ method: methodOf('POST'), body: tokenBody, headers: headersOf(world, { body: true, reads: false }) })
    .map((r) => req('tokens-create', r.method, '/-/npm/v1/tokens', r.headers, r.body))
  const revoke = fc
    .record({ method: methodOf('DELETE'), key: tokenPath, headers: headersOf(world, { body: false, reads: false }) })
    .map((r) => req('tokens-revoke', r.method, `/-/npm/v1/tokens/token/${r.key}`, r.headers))
  const webLogin = fc
    .record({ method: methodOf('POST'), body: fc.oneof(fc.constantFrom('{}', '{"create":true}', ''), junkBody), headers: headersOf(world, { body: true, reads: false }) })
    .map((r) => req('web-login', r.method, '/-/v1/login', r.headers, r.body))
  return fc.oneof(
    { weight: 3, arbitrary: login },
    { weight: 1, arbitrary: logout },
    { weight: 2, arbitrary: simple },
    { weight: 1, arbitrary: listTokens },
    { weight: 1, arbitrary: createToken },
    { weight: 1, arbitrary: revoke },
    { weight: 1, arbitrary: webLogin },
  )
}

/** npm audit's three POSTs, and junk below `/-/npm/v1/security/`. */
function auditOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const path = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('/-/npm/v1/security/advisories/bulk', '/-/npm/v1/security/audits/quick', '/-/npm/v1/security/audits') },
    { weight: 1, arbitrary: fc.array(segment, { maxLength: 3 }).map((s) => '/-/npm/v1/security/' + s.join('/')) },
  )
  return fc
    .record({ method: methodOf('POST'), path, b: auditBodyOf(world), encoding: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'x-junk', 'gzip, gzip', '') }), headers: headersOf(world, { body: true, reads: false }) })
    .map((r) => {
      const headers = { ...r.headers }
      const encoding = r.encoding ?? (r.b.gzip ? 'gzip' : undefined)
      if (encoding !== undefined) headers['content-encoding'] = encoding
      return req('audit', r.method, r.path, headers, r.method === 'GET' || r.method === 'HEAD' ? undefined : r.b.body)
    })
}

/** The root, ping, health, and junk paths below `/-/` and elsewhere. */
function miscOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const path = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('/', '/-/ping', '/-/health', '/-/ping?x=1', '//', '/-/', '/-', '/-/all', '/-/all/since?stale=update_after&startkey=0', '/_changes', '/_all_docs', '/-/npm/v1/keys', '/-/org/x/package', '/-/v1/search/', '/-/_view/', '/-/user/', '/-/package/', '/-/npm/v1/tokens/token/', '/%2d/ping', '/-%2fping') },
    { weight: 2, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => '/-/' + s.join('/')) },
    { weight: 2, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => '/' + s.join('/')) },
  )
  return fc
    .record({ method: anyMethod, path, q: fc.oneof(fc.constant(''), queryOf(['x'])), body: fc.option(junkBody, { freq: 3, nil: undefined }), headers: headersOf(world, { body: true, reads: true }) })
    .map((r) => req('misc', r.method, `${r.path}${r.q}`, r.headers, r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body))
}

/** Malformed HTTP/1.1, as raw bytes: what only a socket can send. */
function rawOf(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  const name = Object.keys(world.packages)[0] as string
  const crlf = (lines: string[], body = ''): Buffer => Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body, 'latin1')
  const fixed = [
    crlf(['GET /a b HTTP/1.1', 'Host: x']),
    crlf([`GET /${name}\u00ff\u00fe HTTP/1.1`, 'Host: x']),
    crlf([`GET /${name}\u0000 HTTP/1.1`, 'Host: x']),
    crlf([`GET /${name} HTTP/1.1`]),
    crlf([`GET /${name} HTTP/1.0`]),
    crlf([`GET /${name} HTTP/2.0`, 'Host: x']),
    crlf([`GET /${name} HTTP/1.1x`, 'Host: x']),
    crlf([`GET /${name} http/1.1`, 'Host: x']),
    crlf([`GET /${name}`, 'Host: x']),
    crlf([`GET http://127.0.0.1/${name} HTTP/1.1`, 'Host: x']),
    crlf(['OPTIONS * HTTP/1.1', 'Host: x']),
    crlf(['GET * HTTP/1.1', 'Host: x']),
    crlf(['CONNECT 127.0.0.1:1 HTTP/1.1', 'Host: 127.0.0.1:1']),
    crlf(['GET / HTTP/1.1', 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket']),
    crlf(['GET / HTTP/1.1', 'Host: x', 'X: ' + 'a'.repeat(20_000)]),
    crlf(['GET / HTTP/1.1', 'Host: x', ...Array.from({ length: 3_000 }, (_, i) => `X-${i}: y`)]),
    crlf(['GET / HTTP/1.1', 'Host: x', 'NoColon']),
    crlf(['GET / HTTP/1.1', 'Host: x', 'X : y']),
    crlf(['GET / HTTP/1.1', 'Host: x', 'X: a', ' folded']),
    crlf(['GET / HTTP/1.1', 'Host: x', 'X: a\u0000b']),
    crlf(['GET / HTTP/1.1', 'Host: x', 'Host: y']),
    Buffer.from(`GET /${name} HTTP/1.1\nHost: x\n\n`),
    Buffer.from(`GET /${name} HTTP/1.1\rHost: x\r\r`),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Content-Length: 5', 'Content-Length: 6', 'Content-Type: application/json'], '{}{}{}'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Content-Length: 5', 'Transfer-Encoding: chunked', 'Content-Type: application/json'], '0\r\n\r\n'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Transfer-Encoding: chunked', 'Content-Type: application/json'], 'zz\r\n{}\r\n0\r\n\r\n'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Transfer-Encoding: chunked', 'Content-Type: application/json'], 'ffffffffffffffff\r\n{}'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Transfer-Encoding: gzip, chunked', 'Content-Type: application/json'], '2\r\n{}\r\n0\r\n\r\n'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Transfer-Encoding: identity', 'Content-Type: application/json'], '{}'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Content-Length: -1', 'Content-Type: application/json'], '{}'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Content-Length: 99999999999999999999', 'Content-Type: application/json'], '{}'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Content-Length: 100', 'Content-Type: application/json'], '{"short":'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Content-Length: 2', 'Content-Type: application/json', 'Expect: 100-continue'], '{}'),
    crlf([`PUT /${name} HTTP/1.1`, 'Host: x', 'Content-Length: 2', 'Content-Type: application/json', 'Expect: 999-bogus'], '{}'),
    crlf([`POST /-/npm/v1/security/advisories/bulk HTTP/1.1`, 'Host: x', 'Content-Encoding: gzip', 'Content-Length: 4'], 'abcd'),
    Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]),
    Buffer.concat([crlf([`GET /${name} HTTP/1.1`, 'Host: x']), crlf(['GET /a b HTTP/1.1', 'Host: x']), crlf(['GET /-/ping HTTP/1.1', 'Host: x'])]),
    Buffer.concat(Array.from({ length: 50 }, () => crlf([`HEAD /${name} HTTP/1.1`, 'Host: x']))),
    Buffer.from('\r\n\r\n\r\n'),
    Buffer.alloc(0),
  ]
  const method = fc.oneof(anyMethod, fc.constantFrom('G ET', 'GET\u0000', '\u00ff', '', 'GET GET'))
  const generated = fc
    .record({
      method,
      path: fc.oneof(fc.string({ unit: byteChar, maxLength: 30 }).map((s) => '/' + s), fc.constantFrom('', 'x', '/\u0000', '/\r', '/\n')),
      version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/9.9', ''),
      headers: fc.array(fc.tuple(fc.string({ unit: byteChar, maxLength: 12 }), fc.string({ unit: byteChar, maxLength: 30 })), { maxLength: 5 }),
      host: fc.boolean(),
      body: fc.string({ unit: byteChar, maxLength: 50 }),
    })
    .map((r) => {
      const head = [`${r.method} ${r.path} ${r.version}`.trimEnd(), ...(r.host ? ['Host: x'] : []), ...r.headers.map(([k, v]) => `${k}: ${v}`), `Content-Length: ${r.body.length}`]
      return Buffer.from(head.join('\r\n') + '\r\n\r\n' + r.body, 'latin1')
    })
  const bytes = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a))
  return fc
    .oneof({ weight: 3, arbitrary: fc.constantFrom(...fixed) }, { weight: 3, arbitrary: generated }, { weight: 1, arbitrary: bytes })
    .map((raw) => ({ kind: 'raw', method: 'RAW', path: '', headers: {}, raw }))
}

/**
 * The fuzzer's request: every route family Pier serves, weighted so that the reads an install
 * sends and the authenticated writes dominate, with a little malformed HTTP.
 */
export function fuzzRequest(world: FuzzWorld): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    { weight: 30, arbitrary: readOf(world) },
    { weight: 16, arbitrary: writeOf(world) },
    { weight: 8, arbitrary: distTagOf(world) },
    { weight: 7, arbitrary: searchOf(world) },
    { weight: 9, arbitrary: accountOf(world) },
    { weight: 5, arbitrary: auditOf(world) },
    { weight: 8, arbitrary: miscOf(world) },
    { weight: 2, arbitrary: rawOf(world) },
  )
}
