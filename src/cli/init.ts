/**
 * `pier init [FILE]`: writes a commented starter configuration (default `./config.yaml`, the file
 * `pier start` reads from the working folder when it exists, docs/configuration.md "Where
 * configuration comes from"). On a terminal it asks the few questions that decide how a registry
 * is run (where it listens and is reached, where metadata and tarballs live, who may sign up and
 * administer, which upstream it caches and which scopes are private); `--yes`, or a standard input
 * that is not a terminal, takes every default. The file is validated against the configuration
 * schema before it is written, and an existing file is kept unless `--force`.
 *
 * The default upstream is the npm client's own `registry` setting on this machine (`npm config get
 * registry`), never a built-in address; when npm cannot be asked, the starter has no uplink.
 */
import { execFile } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { createInterface, type Interface } from 'node:readline'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { Readable } from 'node:stream'
import YAML from 'yaml'
import { ConfigSchema } from '../config/schema.js'

/** `pier init --help`. */
export const INIT_HELP = `Usage: pier init [--yes] [--force] [FILE]

Writes a commented starter configuration to FILE (default ./config.yaml, which pier start reads
from the working folder). On a terminal it asks where Pier listens and is reached, where metadata
and tarballs live, whether npm adduser may create accounts, who administers it, which upstream
registry it caches (default: this machine's npm registry setting) and which scopes are private.
Press Enter to keep the default shown in brackets.

  --yes, -y    take every default without asking (also when standard input is not a terminal)
  --force, -f  overwrite FILE when it exists (otherwise pier init refuses)
`

/** What the starter configuration is made from; every field has a default (`defaultAnswers`). */
export interface InitAnswers {
  /** `server.host`: the address to listen on. */
  host: string
  /** `server.port`: the TCP port. */
  port: number
  /** `url`: the public base URL clients use; undefined: from each request's Host header. */
  url: string | undefined
  /** `storage.local.path`: the data folder, relative to the working folder. */
  dataPath: string
  /** `storage.meta.type`. */
  meta: 'sqlite' | 'postgres'
  /** `storage.meta.url` when `meta` is `postgres`. */
  postgresUrl: string | undefined
  /** `storage.type`. */
  tarballs: 'local' | 's3'
  /** `storage.s3.bucket` / `endpoint` / `region` when `tarballs` is `s3`. */
  s3: { bucket: string; endpoint: string | undefined; region: string } | undefined
  /** `auth.local.allow_signup`. */
  allowSignup: boolean
  /** `auth.admins`. */
  admins: string[]
  /** `uplinks.upstream.url`; undefined: no uplink (private packages only). */
  uplink: string | undefined
  /** `private_scopes`: scopes never asked upstream (each `@name`). */
  privateScopes: string[]
}

/**
 * The answers `--yes` takes: Pier's own defaults (127.0.0.1:3000, `./data`, SQLite, tarballs on
 * disk), sign-up closed (a shared registry should not let anyone create an account; the first
 * administrator is made with `pier user add NAME --admin`), no administrator named yet, and the
 * given upstream.
 * @param uplink the upstream registry URL (normally `npmRegistry()`), or undefined for none
 */
export function defaultAnswers(uplink: string | undefined): InitAnswers {
  return {
    host: '127.0.0.1',
    port: 3000,
    url: undefined,
    dataPath: './data',
    meta: 'sqlite',
    postgresUrl: undefined,
    tarballs: 'local',
    s3: undefined,
    allowSignup: false,
    admins: [],
    uplink,
    privateScopes: [],
  }
}

/**
 * The npm client's `registry` setting on this machine (`npm config get registry`, which layers
 * npm's builtin, global and user `.npmrc` files and `npm_config_registry`).
 * @param env the environment npm runs with
 * @returns the URL with a trailing slash, or undefined when npm is missing, fails, takes more than
 *   10 s, or prints something that is not an http(s) URL
 */
export function npmRegistry(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  return new Promise((done) => {
    execFile('npm', ['config', 'get', 'registry'], { env, timeout: 10_000, windowsHide: true }, (err, stdout) => {
      if (err) return done(undefined)
      const value = stdout.trim()
      try {
        const u = new URL(value)
        if (u.protocol !== 'http:' && u.protocol !== 'https:') return done(undefined)
        return done(u.href.endsWith('/') ? u.href : `${u.href}/`)
      } catch {
        return done(undefined)
      }
    })
  })
}

/** A question: its prompt, and how an answer is parsed (undefined: not acceptable, asked again). */
interface Question<T> {
  prompt: string
  shown: string
  parse: (answer: string) => T | undefined
}

/**
 * Asks one question on `out`, reading one line from `lines`; an empty line keeps the default, and an
 * answer `parse` rejects is asked again (at most 5 times, then the default). End of input: the default.
 */
async function ask<T>(lines: AsyncIterator<string>, out: (s: string) => void, q: Question<T>, fallback: T): Promise<T> {
  for (let attempt = 0; attempt < 5; attempt++) {
    out(`${q.prompt} [${q.shown}]: `)
    const next = await lines.next()
    if (next.done) {
      out('\n')
      return fallback
    }
    const answer = next.value.trim()
    if (answer === '') return fallback
    const parsed = q.parse(answer)
    if (parsed !== undefined) return parsed
    out('  not understood; press Enter for the default\n')
  }
  return fallback
}

const yesNo = (a: string): boolean | undefined => (/^(y|yes)$/i.test(a) ? true : /^(n|no)$/i.test(a) ? false : undefined)
const httpUrl = (a: string): string | undefined => {
  try {
    const u = new URL(a)
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined
  } catch {
    return undefined
  }
}
const list = (a: string): string[] => a.split(/[\s,]+/).filter((s) => s !== '')

/**
 * Asks the starter's questions, one line of `input` per answer (see `ask`), in this order: host,
 * port, public URL, data folder, metadata store (and PostgreSQL URL), tarball store (and bucket,
 * endpoint, region), sign-up, administrators, upstream (`none` for no uplink), private scopes.
 * @param input the answers, one per line (a terminal's standard input)
 * @param out where the prompts go (standard error, so standard output stays clean)
 * @param defaults the answers kept when a line is empty or input ends
 */
export async function askAnswers(input: Readable, out: (s: string) => void, defaults: InitAnswers): Promise<InitAnswers> {
  const rl: Interface = createInterface({ input, terminal: false })
  const lines = rl[Symbol.asyncIterator]()
  try {
    const a = { ...defaults }
    a.host = await ask(lines, out, { prompt: 'Address to listen on (0.0.0.0 for every interface)', shown: a.host, parse: (s) => s }, a.host)
    a.port = await ask(lines, out, { prompt: 'Port', shown: String(a.port), parse: (s) => (/^\d+$/.test(s) && Number(s) <= 65535 ? Number(s) : undefined) }, a.port)
    a.url = await ask<string | undefined>(
      lines,
      out,
      { prompt: 'Public URL clients use (empty: from the Host header)', shown: a.url ?? '', parse: (s) => httpUrl(s) },
      a.url,
    )
    a.dataPath = await ask(lines, out, { prompt: 'Data folder', shown: a.dataPath, parse: (s) => s }, a.dataPath)
    a.meta = await ask(lines, out, { prompt: 'Metadata store: sqlite (one node) or postgres (several nodes)', shown: a.meta, parse: (s) => (s === 'sqlite' || s === 'postgres' ? s : undefined) }, a.meta)
    if (a.meta === 'postgres') {
      const shown = a.postgresUrl ?? 'postgres://pier@127.0.0.1:5432/pier'
      a.postgresUrl = await ask(lines, out, { prompt: 'PostgreSQL connection string', shown, parse: (s) => (/^postgres(ql)?:\/\//.test(s) ? s : undefined) }, shown)
    }
    a.tarballs = await ask(lines, out, { prompt: 'Tarballs: local (data folder) or s3', shown: a.tarballs, parse: (s) => (s === 'local' || s === 's3' ? s : undefined) }, a.tarballs)
    if (a.tarballs === 's3') {
      const bucket = await ask(lines, out, { prompt: 'S3 bucket', shown: a.s3?.bucket ?? 'pier', parse: (s) => s }, a.s3?.bucket ?? 'pier')
      const endpoint = await ask<string | undefined>(lines, out, { prompt: 'S3 endpoint (empty: AWS)', shown: a.s3?.endpoint ?? '', parse: (s) => httpUrl(s) }, a.s3?.endpoint)
      const region = await ask(lines, out, { prompt: 'S3 region', shown: a.s3?.region ?? 'us-east-1', parse: (s) => s }, a.s3?.region ?? 'us-east-1')
      a.s3 = { bucket, endpoint, region }
    }
    a.allowSignup = await ask(lines, out, { prompt: 'May anyone create an account with npm adduser? (y/n)', shown: a.allowSignup ? 'y' : 'n', parse: yesNo }, a.allowSignup)
    a.admins = await ask(lines, out, { prompt: 'Administrators (user names, comma-separated)', shown: a.admins.join(', '), parse: list }, a.admins)
    a.uplink = await ask<string | undefined>(
      lines,
      out,
      { prompt: 'Upstream registry to cache (none: private packages only)', shown: a.uplink ?? 'none', parse: (s) => (s === 'none' ? '' : httpUrl(s)) },
      a.uplink,
    )
    if (a.uplink === '') a.uplink = undefined
    a.privateScopes = await ask(
      lines,
      out,
      {
        prompt: 'Private scopes, never asked upstream (e.g. @acme)',
        shown: a.privateScopes.join(', '),
        parse: (s) => {
          const scopes = list(s)
          return scopes.every((x) => /^@[a-z0-9][a-z0-9._~-]*$/.test(x)) ? scopes : undefined
        },
      },
      a.privateScopes,
    )
    return a
  } finally {
    rl.close()
  }
}

/** A YAML scalar for a string: JSON's quoting, which YAML reads as the same string. */
const q = (s: string): string => JSON.stringify(s)

/**
 * The starter configuration as YAML text, with a comment above every key saying what it does
 * (the same meaning as docs/configuration.md) and the keys a team usually changes next commented out.
 * @param a the answers
 * @param now the time written into the header comment
 * @throws Error when the text does not pass the configuration schema (a bug here, never the user's)
 */
export function renderConfig(a: InitAnswers, now: Date = new Date()): string {
  const out: string[] = []
  const line = (s = '') => out.push(s)
  line(`# Pier configuration, written by \`pier init\` on ${now.toISOString().slice(0, 10)}.`)
  line('# Every key, its default and its environment variable: docs/configuration.md.')
  line('# An environment variable overrides any key: PIER_SERVER__PORT=4000 sets server.port.')
  line('# Check what Pier will run with: pier config')
  line()
  line('# The public base URL clients use; tarball URLs in packuments are built from it.')
  if (a.url) line(`url: ${q(a.url)}`)
  else line('# Without it, each request\'s Host header (and X-Forwarded-* with server.trust_proxy) is used.\n# url: "https://npm.example.internal/"')
  line()
  line('server:')
  line('  # The address to listen on; 0.0.0.0 listens on every interface.')
  line(`  host: ${q(a.host)}`)
  line('  # The TCP port.')
  line(`  port: ${a.port}`)
  line('  # Behind nginx, Caddy or a load balancer: trust its X-Forwarded-* headers.')
  line('  # trust_proxy: true')
  line()
  line('storage:')
  line('  # Tarballs: local (files under storage.local.path) or s3 (storage.s3).')
  line(`  type: ${a.tarballs}`)
  line('  local:')
  line('    # The data folder: tarballs (type local) and the SQLite file; relative to the working folder.')
  line(`    path: ${q(a.dataPath)}`)
  if (a.tarballs === 's3' && a.s3) {
    line('  s3:')
    line(`    bucket: ${q(a.s3.bucket)}`)
    line(`    region: ${q(a.s3.region)}`)
    if (a.s3.endpoint) {
      line('    # An S3-compatible store (MinIO, Ceph, R2...): its URL, with path-style bucket addresses.')
      line(`    endpoint: ${q(a.s3.endpoint)}`)
      line('    forcePathStyle: true')
    }
    line('    # Credentials: keep them out of this file, in the environment:')
    line('    #   PIER_STORAGE__S3__ACCESSKEYID=...  PIER_STORAGE__S3__SECRETACCESSKEY=...')
    line('    # (or the AWS SDK\'s own chain: AWS_ACCESS_KEY_ID, instance roles).')
  }
  line('  meta:')
  line('    # sqlite: one node, a file in the data folder; postgres: several nodes share one database.')
  line(`    type: ${a.meta}`)
  if (a.meta === 'postgres') {
    line('    # A password here is better given as PIER_STORAGE__META__URL in the environment.')
    line(`    url: ${q(a.postgresUrl ?? '')}`)
  }
  line()
  line('auth:')
  line('  # local: accounts kept by Pier; none: everything open; github: GitHub tokens and repository permissions.')
  line('  type: local')
  line('  local:')
  line('    # Whether npm adduser may create accounts. When false, create them with: pier user add NAME')
  line(`    allow_signup: ${a.allowSignup}`)
  line('  # Users who may do everything: every package, anyone\'s tokens, the audit log.')
  line('  # Create one with: pier user add NAME --admin')
  line(`  admins: [${a.admins.map(q).join(', ')}]`)
  line()
  if (a.uplink) {
    line('# Upstream registries whose packages Pier fetches, caches and serves (also while they are down).')
    line('uplinks:')
    line('  upstream:')
    line(`    url: ${q(a.uplink)}`)
    line('    # How long a cached packument is served before it is asked again.')
    line('    maxage: 2m')
    line()
  } else {
    line('# No upstream: Pier serves only what is published to it. To cache another registry:')
    line('# uplinks:')
    line('#   upstream:')
    line('#     url: "https://registry.example.internal/"')
    line()
  }
  line('# Scopes that are only yours: never asked upstream, even before their first publish')
  line('# (a name published upstream under them cannot shadow yours).')
  line(`private_scopes: [${a.privateScopes.map(q).join(', ')}]`)
  line()
  line('# Who may read and publish what, first matching pattern wins. $all: anyone, $authenticated:')
  line('# any signed-in user; user names and @org:team names also work.')
  line('packages:')
  for (const s of a.privateScopes) {
    line(`  ${q(`${s}/*`)}:`)
    line('    access: $authenticated')
    line('    publish: $authenticated')
  }
  for (const pattern of ['@*/*', '**']) {
    line(`  ${q(pattern)}:`)
    line('    access: $all')
    line('    publish: $authenticated')
    if (a.uplink) line('    proxy: upstream')
  }
  line()
  line('logger:')
  line('  # fatal, error, warn, info (one line per request), debug, trace or silent.')
  line('  level: info')
  const text = out.join('\n') + '\n'
  const parsed = ConfigSchema.safeParse(YAML.parse(text))
  if (!parsed.success) throw new Error(`pier init produced an invalid configuration: ${parsed.error.message}`)
  return text
}

/** Where `runInitCommand` reads and writes (defaults: this process's). */
export interface InitIo {
  stdin?: Readable & { isTTY?: boolean }
  stdout?: (s: string) => void
  stderr?: (s: string) => void
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/**
 * `pier init [--yes] [--force] [FILE]`.
 * @returns the exit code: 0 written, 1 FILE exists (without `--force`) or cannot be written, 2 usage
 */
export async function runInitCommand(args: string[], io: InitIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s))
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s))
  const stdin = io.stdin ?? process.stdin
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { yes: { type: 'boolean', short: 'y' }, force: { type: 'boolean', short: 'f' }, help: { type: 'boolean', short: 'h' } },
    })
  } catch (e) {
    stderr(`pier: ${(e as Error).message}\n\n${INIT_HELP}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    stdout(INIT_HELP)
    return 0
  }
  if (positionals.length > 1) {
    stderr(`pier: pier init takes one FILE, not ${positionals.length}\n\n${INIT_HELP}`)
    return 2
  }
  const file = resolve(io.cwd ?? process.cwd(), positionals[0] ?? 'config.yaml')
  if (existsSync(file) && !values.force) {
    stderr(`pier: ${file} exists; pier init --force overwrites it\n`)
    return 1
  }
  const defaults = defaultAnswers(await npmRegistry(io.env ?? process.env))
  const interactive = !values.yes && stdin.isTTY === true
  if (!values.yes && !interactive) stderr('pier: standard input is not a terminal: taking the defaults (as --yes)\n')
  const answers = interactive ? await askAnswers(stdin, stderr, defaults) : defaults
  const text = renderConfig(answers)
  try {
    writeFileSync(file, text, { flag: values.force ? 'w' : 'wx' })
  } catch (e) {
    stderr(`pier: cannot write ${file}: ${(e as Error).message}\n`)
    return 1
  }
  stdout(`wrote ${file}\n`)
  stdout('Next:\n')
  if (answers.admins.length > 0) stdout(`  pier user add ${answers.admins[0]} --admin     # the first administrator (asks for a password)\n`)
  else stdout('  pier user add NAME --admin     # the first administrator (asks for a password)\n')
  stdout(`  pier start${positionals[0] && positionals[0] !== 'config.yaml' ? ` --config ${positionals[0]}` : ''}\n`)
  return 0
}
