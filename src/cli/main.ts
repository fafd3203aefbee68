/**
 * The `pier` command: `pier start`, `pier user add NAME`, `pier token create NAME`, `pier migrate`,
 * `pier gc`, `pier config`. Every command reads the rc-style files (config/load.ts), takes
 * `--config PATH` (or `PIER_CONFIG`) and the `pier_*` environment overrides, and prints the
 * configuration's warnings to stderr as `pier: warning: …` (stdout stays the command's output).
 */
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import { resolve } from 'node:path'
import { createPier } from '../app.js'
import { AuthService, type Actor } from '../auth/auth-service.js'
import { tokenOptions } from '../auth/token-body.js'
import { AccessPolicy } from '../registry/access.js'
import type { AuditRecord } from '../registry/audit-log.js'
import { OrgAdmin } from '../registry/org-admin.js'
import { AccessDirectory } from '../registry/orgs.js'
import { ReadGate } from '../registry/read-gate.js'
import { ConfigError, loadConfig } from '../config/load.js'
import { CONFIG_HELP, configJson, configText } from './config.js'
import { RegistryError } from '../registry/errors.js'
import { GcRefusedError } from '../ops/gc.js'
import { DEFAULT_GRACE_MS, parseGrace, reportJson, runGc, summaryLine, UsageError } from './gc.js'
import { runVerifyCommand } from './verify.js'
import { sweepBlobTemp } from '../storage/blobs/open-blob-store.js'
import { openMetaStore } from '../storage/meta/open-meta-store.js'

const HELP = `pier: a self-hosted npm registry

Usage:
  pier start [--config FILE]                  start the registry (default port 3000, data in ./data)
  pier user add NAME [--email E] [--password P] [--admin]
                                              create a user (password read from stdin when omitted);
                                              --admin: an administrator (may do everything)
  pier token create NAME [--read-only] [--cidr CIDR]... [--description D] [--name N]
                    [--expires DAYS] [--packages PKG]... [--packages-all] [--scopes @S]...
                    [--orgs ORG]... [--packages-and-scopes-permission read-only|read-write|no-access]
                    [--orgs-permission read-only|read-write|no-access]
                                              print a new bearer token for user NAME; the options
                                              are npm 11's \`npm token create\` ones (granular tokens)
  pier org create NAME --owner USER           create org NAME (the scope @NAME) with its first owner
  pier audit [--since TIME] [--user U] [--package P] [--json]
                                              print the audit log (oldest first)
  pier migrate [--config FILE]                apply database migrations and exit
  pier gc [--grace DURATION] [--dry-run] [--json] [--config FILE]
                                              delete tarball blobs that no package version and no
                                              cached uplink packument refers to, once older than
                                              DURATION (default 24h; 3600s, 60m, 24h, 7d or plain
                                              seconds). Safe while nodes serve, if DURATION is longer
                                              than any publish takes (so not 0s then). --dry-run
                                              deletes nothing; --json prints the report as JSON
  pier verify [--grace DURATION] [--repair] [--json] [--config FILE]
                                              check every live version's tarball (present, matching
                                              its integrity), every dist-tag, orphaned blobs and
                                              cached uplink tarballs; exit 1 when a problem remains,
                                              2 on a usage error (pier verify --help)
  pier import verdaccio|sinopia DIR [--htpasswd FILE] [--uplink NAME] [--maintainer U]...
                    [--dry-run] [--json] [--config FILE]
                                              import another registry's storage folder: packages,
                                              versions, dist-tags, users (docs/moving-from-verdaccio.md)
  pier import registry URL [--names FILE] [--scope @S]... [--token T] [--concurrency N]
                    [--dry-run] [--json]      import packages from a registry that serves packuments
  pier backup FILE [--since SEQ] [--json] [--config FILE]
                                              write a consistent snapshot (metadata and the blobs it
                                              refers to) to FILE while Pier serves ('-' for stdout,
                                              gzipped when FILE ends in .gz/.tgz); --since SEQ: only
                                              what changed after SEQ, the seq the last one printed
  pier restore FILE [--json] [--config FILE]  restore a backup into an empty data folder or database,
                                              or an incremental one on top of the state it follows
                                              ('-' for stdin; every entry is checked first)
  pier init [--yes] [--force] [FILE]          write a commented starter config.yaml (asks on a
                                              terminal; --yes takes the defaults)
  pier config [--config FILE] [--json]        print the merged configuration, secrets masked, and
                                              where each key came from (pier config --help)
  pier --help                                 this text

Every command takes --config FILE (-c) and --help (-h).
Configuration (rc style, lowest precedence first): /etc/pier/config, /etc/pierrc,
~/.config/pier/config, ~/.config/pier, ~/.pier/config, ~/.pierrc, the nearest .pierrc from the
working folder up, then --config FILE, else $PIER_CONFIG, else ./config.yaml when present; JSON,
INI or YAML. Environment overrides: pier_server__port=4000 or PIER_SERVER__PORT=4000.
`

/**
 * `pier audit`: the whole log (or what the filters keep), oldest first, one line per entry
 * (`<at> <actor> <action> <package> <details>`), or a JSON array with `--json`.
 */
async function printAudit(auth: AuthService, o: { since?: string | undefined; user?: string | undefined; package?: string | undefined; json?: boolean | undefined }): Promise<number> {
  if (o.since !== undefined && Number.isNaN(Date.parse(o.since))) throw new UsageError(`--since must be an ISO 8601 time, not "${o.since}"`)
  const q = {
    limit: 1000,
    ...(o.since !== undefined ? { since: new Date(o.since).toISOString() } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.package !== undefined ? { package: o.package } : {}),
  }
  const all: AuditRecord[] = []
  for (let after = 0; ; ) {
    const page = await auth.readAudit(undefined, { ...q, after })
    all.push(...page)
    if (page.length < q.limit) break
    after = (page[page.length - 1] as AuditRecord).seq
  }
  if (o.json) process.stdout.write(JSON.stringify(all, null, 2) + '\n')
  else for (const e of all) process.stdout.write(`${e.at} ${e.actor ?? '-'} ${e.action} ${e.package ?? '-'} ${JSON.stringify(e.details)}\n`)
  return 0
}

/**
 * `pier <cmd> --help`: the lines of HELP about `cmd` (each entry starts with `  pier <cmd>` and
 * runs to the next entry), then the configuration paragraph every command shares.
 * @returns undefined for a command HELP does not list
 */
export function commandHelp(cmd: string): string | undefined {
  const lines = HELP.split('\n')
  const out: string[] = []
  let inside = false
  for (const line of lines) {
    if (/^ {2}pier /.test(line)) inside = line.startsWith(`  pier ${cmd} `) || line === `  pier ${cmd}`
    else if (!line.startsWith('    ')) inside = false
    if (inside) out.push(line)
  }
  if (out.length === 0) return undefined
  const config = HELP.slice(HELP.indexOf('Every command'))
  return `Usage:\n${out.join('\n')}\n\n${config}`
}

async function readPassword(): Promise<string> {
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    rl.close()
    return line
  }
  return ''
}

async function main(argv: string[]): Promise<number> {
  // verify parses its own options (--repair, --grace) and loads the configuration itself.
  if (argv[0] === 'verify') return runVerifyCommand(argv.slice(1))
  // These parse their own options and load the configuration themselves, as verify does.
  if (argv[0] === 'import') return (await import('./import.js')).runImportCommand(argv.slice(1))
  if (argv[0] === 'backup' || argv[0] === 'restore') return (await import('./backup.js')).runBackupCommand(argv[0], argv.slice(1))
  if (argv[0] === 'init') return (await import('./init.js')).runInitCommand(argv.slice(1))
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      email: { type: 'string' },
      password: { type: 'string' },
      'read-only': { type: 'boolean' },
      cidr: { type: 'string', multiple: true },
      description: { type: 'string' },
      grace: { type: 'string' },
      admin: { type: 'boolean' },
      name: { type: 'string' },
      expires: { type: 'string' },
      packages: { type: 'string', multiple: true },
      'packages-all': { type: 'boolean' },
      scopes: { type: 'string', multiple: true },
      orgs: { type: 'string', multiple: true },
      'packages-and-scopes-permission': { type: 'string' },
      'orgs-permission': { type: 'string' },
      owner: { type: 'string' },
      since: { type: 'string' },
      user: { type: 'string' },
      package: { type: 'string' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  })
  const [cmd, sub, arg] = positionals
  if (values.help && cmd === 'config') {
    process.stdout.write(CONFIG_HELP)
    return 0
  }
  if (values.help && cmd !== undefined && cmd !== 'help') {
    const text = commandHelp(cmd)
    if (text !== undefined) {
      process.stdout.write(text)
      return 0
    }
  }
  if (values.help || cmd === undefined || cmd === 'help') {
    process.stdout.write(HELP)
    return cmd === undefined && !values.help ? 1 : 0
  }
  const loaded = loadConfig({ file: values.config })
  for (const w of loaded.warnings) process.stderr.write(`pier: warning: ${w}\n`)
  const { config } = loaded

  if (cmd === 'config' && sub === undefined) {
    process.stdout.write(values.json ? configJson(loaded) : configText(loaded))
    return 0
  }

  if (cmd === 'start') {
    const pier = await createPier(config)
    let closing = false
    const shutdown = (signal: string) => {
      if (closing) return
      closing = true
      pier.app.log.info({ signal }, 'draining in-flight requests')
      pier.close().then(
        () => process.exit(0),
        (e: unknown) => {
          console.error(e)
          process.exit(1)
        },
      )
    }
    process.on('SIGTERM', () => shutdown('SIGTERM'))
    process.on('SIGINT', () => shutdown('SIGINT'))
    // Before serving: the temp files of blob writes this host's dead processes left (a crash of
    // the node this one replaces), and any older than 24 h. Other processes' writes stay.
    const swept = await sweepBlobTemp(config.storage, resolve(process.cwd(), config.storage.local.path))
    if (swept && swept.deadOwner.length + swept.expired.length > 0) {
      pier.app.log.info({ deadOwner: swept.deadOwner.length, expired: swept.expired.length, kept: swept.kept.length }, 'removed temp files of interrupted blob writes')
    }
    const address = await pier.app.listen({ host: config.server.host, port: config.server.port })
    pier.app.log.info({ address }, 'pier listening')
    process.stderr.write(`pier listening on ${address}\n`)
    return -1
  }

  if (cmd === 'gc' && sub === undefined) {
    const graceMs = values.grace === undefined ? DEFAULT_GRACE_MS : parseGrace(values.grace)
    const report = await runGc(config, { graceMs, dryRun: values['dry-run'] === true })
    process.stdout.write(values.json ? `${JSON.stringify(reportJson(report))}\n` : `${summaryLine(report)}\n`)
    return 0
  }

  const oneShot =
    cmd === 'migrate' ||
    cmd === 'audit' ||
    (cmd === 'user' && sub === 'add' && arg) ||
    (cmd === 'token' && sub === 'create' && arg) ||
    (cmd === 'org' && sub === 'create' && arg)
  if (!oneShot) {
    process.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${HELP}`)
    return 1
  }
  // One-shot commands open the metadata store only (migrated, as every command does): no server,
  // no uplinks, and no blob store, whose temp files are the writes in progress of nodes serving
  // beside them on this disk.
  const meta = await openMetaStore(config.storage.meta, resolve(process.cwd(), config.storage.local.path), process.cwd(), (err) =>
    process.stderr.write(`pier: warning: metadata store connection error: ${err.message}\n`),
  )
  let auth: AuthService | undefined
  try {
    await meta.migrate()
    auth = new AuthService(meta, { allowSignup: config.auth.local.allow_signup, maxUsers: config.auth.local.max_users, admins: config.auth.admins })
    if (cmd === 'migrate') {
      process.stdout.write('migrations applied\n')
      return 0
    }
    const cli: Actor = { name: null }
    if (cmd === 'user' && arg) {
      const password = values.password ?? (await readPassword())
      await auth.addUser(arg, password, values.email ?? '', { admin: values.admin === true, actor: cli })
      process.stdout.write(`user ${arg} created${values.admin ? ' (administrator)' : ''}\n`)
      return 0
    }
    if (cmd === 'audit') return await printAudit(auth, values)
    if (cmd === 'org' && arg) {
      if (!values.owner) throw new UsageError('pier org create NAME --owner USER')
      const directory = new AccessDirectory()
      const orgs = new OrgAdmin({ store: meta, directory, gate: new ReadGate(new AccessPolicy(false, undefined, directory)), maintainersOf: async () => [] })
      await orgs.reload()
      await orgs.createOrg(arg, values.owner, { name: undefined, readonly: false, admin: true })
      process.stdout.write(`org ${arg} created (scope @${arg}), owner ${values.owner}, team ${arg}:developers\n`)
      return 0
    }
    if (!arg || !(await meta.getUser(arg))) throw new RegistryError('NOT_FOUND', `user ${arg} does not exist (create it with: pier user add ${arg})`)
    const expires = values.expires === undefined ? undefined : Number(values.expires)
    const { token } = await auth.createToken(
      arg,
      tokenOptions({
        readonly: values['read-only'] === true,
        cidr_whitelist: values.cidr,
        description: values.description,
        name: values.name,
        expires,
        packages: values.packages,
        packages_all: values['packages-all'] === true,
        scopes: values.scopes,
        orgs: values.orgs,
        packages_and_scopes_permission: values['packages-and-scopes-permission'],
        orgs_permission: values['orgs-permission'],
      }),
      cli,
    )
    process.stdout.write(`${token}\n`)
    return 0
  } finally {
    await auth?.close()
    await meta.close()
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code
  },
  (e: unknown) => {
    if (e instanceof ConfigError || e instanceof RegistryError || e instanceof GcRefusedError || e instanceof UsageError) process.stderr.write(`pier: ${e.message}\n`)
    else process.stderr.write(`pier: ${(e as Error).stack ?? String(e)}\n`)
    process.exit(1)
  },
)
