/**
 * Pier's configuration, validated with zod. Keeps the original registry's keys (`server.host/port`,
 * `logger.level`, `settings.allow_previous_version`, `auth.type`, `storage.type`,
 * `storage.local.path`, `storage.s3.*`) and adds `url`, `max_body_size` and `auth.local`.
 */
import { z } from 'zod'
import { byteSize, duration, parseByteSize } from './units.js'
import { AuditSchema, names, PackagesSchema, PrivateScopesSchema, SearchSchema, UplinksSchema } from './uplinks.js'

/**
 * Parses a size for `max_body_size` and the other sizes (units.ts `parseByteSize`).
 * @returns bytes
 * @throws Error `invalid size "…" (use bytes or e.g. 50mb)`
 */
export const parseSize = parseByteSize

const size = byteSize

/** A string that environment overrides may have turned into a number (`PIER_…=123`). */
const text = z
  .union([z.string(), z.number()], { error: (iss) => (iss.input === undefined ? 'required' : 'expected a string') })
  .transform((v) => String(v))

/** `storage.s3`: tarballs in an S3 bucket or an S3-compatible store. */
const S3Object = z
  .object({
    /** The bucket the tarballs go to; required with `storage.type: s3`. */
    bucket: text.pipe(z.string().min(1, 'must not be empty')),
    /** Prepended to every object key, e.g. `pier/`. */
    prefix: text.default(''),
    /** The bucket's AWS region. */
    region: text.default('us-east-1'),
    /** Static credentials; both or neither (then the SDK's default chain: AWS_* variables, instance role…). */
    accessKeyId: text.optional(),
    /** The secret of `accessKeyId`; both or neither. */
    secretAccessKey: text.optional(),
    /** An S3-compatible store's base URL, e.g. `http://127.0.0.1:9000`; default AWS S3. */
    endpoint: z.url().optional(),
    /** Path-style URLs (`host/bucket/key`), which most S3-compatible stores need. */
    forcePathStyle: z.boolean().default(false),
    /** Answer tarball GETs with 302 to a presigned URL instead of streaming through Pier. */
    redirect: z.boolean().default(false),
    /** Seconds a presigned URL stays valid (S3 allows at most 7 days). */
    expires: z.number().int().min(1).max(7 * 24 * 3600).default(300),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.accessKeyId === undefined) !== (v.secretAccessKey === undefined)) {
      const missing = v.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey'
      ctx.addIssue({ code: 'custom', path: [missing], message: 'accessKeyId and secretAccessKey go together: give both or neither' })
    }
  })
const S3_KEYS = new Map(Object.keys(S3Object.shape).map((k) => [k.toLowerCase(), k]))
/**
 * Environment overrides arrive lowercased (`PIER_STORAGE__S3__ACCESSKEYID` → `accesskeyid`), so the
 * camelCase keys of this section are matched without regard to case.
 */
const S3Schema = z.preprocess<unknown, typeof S3Object, z.input<typeof S3Object>>((raw) => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [S3_KEYS.get(k.toLowerCase()) ?? k, v]))
}, S3Object)

/**
 * The default `auth.github.host`: GitHub's REST API (GitHub REST docs, "About the REST API"). GitHub
 * Enterprise Server's is `https://<host>/api/v3`.
 */
export const GITHUB_API_DEFAULT = 'https://api.github.com'

/** `auth.github`'s defaults (ms). */
const GITHUB_DEFAULTS = { host: GITHUB_API_DEFAULT, timeout: 10_000, cache: { ttl: 5 * 60_000 } }

/**
 * `auth.github`: `host` the REST API's base URL; `timeout` the bound on each call, ms; `cache.ttl`
 * how long an answer (a token's user, a token's permission on a repository) is trusted, ms;
 * `cache.path` is accepted (the original registry's key) and unused: answers live in the
 * metadata store. `client_id` / `client_secret`: the OAuth app the web login and the web UI's
 * sign-in send people to (docs/web.md; GitHub's "Authorizing OAuth apps", the web application flow).
 */
const GithubSchema = z
  .object({
    /** The REST API's base URL; GitHub Enterprise Server's is `https://<host>/api/v3`. */
    host: z.url().default(GITHUB_API_DEFAULT),
    /** The bound on each call to GitHub, ms. */
    timeout: duration.pipe(z.number().min(1, 'at least 1 ms')).default(GITHUB_DEFAULTS.timeout),
    /** How GitHub's answers are kept, in memory and in the metadata store. */
    cache: z
      .object({
        /** How long an answer (a token's user, a token's permission on a repository) is trusted, ms. */
        ttl: duration.default(GITHUB_DEFAULTS.cache.ttl),
        /** Accepted (the original registry's key) and unused: answers live in the metadata store. */
        path: text.optional()
      })
      .strict()
      .default(GITHUB_DEFAULTS.cache),
    /**
     * The OAuth app's client id: with `auth.type: github`, the web login (`npm login`) and the web
     * UI's sign-in send people to GitHub's authorize page with it (docs/web.md). Its callback URL
     * must be `<url>/-/web/login/github/callback`.
     */
    client_id: text.optional(),
    /** The OAuth app's client secret, with which Pier exchanges the authorize page's code for a token. */
    client_secret: text.optional(),
  })
  .strict()
  .default(GITHUB_DEFAULTS)

/** `web`'s defaults. */
const WEB_DEFAULTS = { enable: true, title: 'Pier', primary_color: '#0b57d0', login_session_ttl: 10 * 60_000 }

/**
 * `web`: the web UI under `/-/web/` and the web login of `npm login` (docs/web.md). The JSON API
 * answers whatever `enable` says; with `enable: false` `POST /-/v1/login` answers 404 (npm then
 * asks for a username and password).
 */
const WebSchema = z
  .object({
    /** Serve the web UI (`/-/web/…`, and `/` to browsers) and the web login; `false`: only the JSON API. */
    enable: z.boolean().default(WEB_DEFAULTS.enable),
    /** The name shown in the page header and the title of every page. */
    title: text.pipe(z.string().min(1, 'must not be empty').max(100, 'at most 100 characters')).default(WEB_DEFAULTS.title),
    /**
     * The logo shown beside the title: an `https://` URL or a path on this server (the pages'
     * Content-Security-Policy allows images from both only); default: none.
     */
    logo: text.pipe(z.string().regex(/^(https:\/\/|\/)[^\s"'<>]*$/, 'expected an https:// URL or a path starting with /')).optional(),
    /**
     * The accent colour of links and buttons, `#rgb` or `#rrggbb`; choose one with a contrast of at
     * least 4.5:1 against white (WCAG 2.2 AA); dark mode lightens it.
     */
    primary_color: z.string().regex(/^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'expected #rgb or #rrggbb').default(WEB_DEFAULTS.primary_color),
    /** How long a web login (`npm login`) waits for the person to sign in, ms; a login link expires after it. */
    login_session_ttl: duration.pipe(z.number().min(10_000, 'at least 10 s').max(24 * 3600_000, 'at most 1 day')).default(WEB_DEFAULTS.login_session_ttl),
  })
  .strict()
  .default(WEB_DEFAULTS)

/** Pier's whole configuration: every key, its type and its default (docs/configuration.md is generated from it). */
export const ConfigSchema = z
  .object({
    /** Public base URL (tarball URLs are built from it); default: the request's Host / X-Forwarded-* headers. */
    url: z.url().optional(),
    /** The HTTP server: where it listens, how long it waits for clients, when it sheds load. */
    server: z
      .object({
        /** The address to listen on; `0.0.0.0` listens on every interface. */
        host: z.string().default('127.0.0.1'),
        /** The TCP port to listen on; 0: any free port. */
        port: z.coerce.number().int().min(0).max(65535).default(3000),
        /** Trust X-Forwarded-* headers (behind a proxy). */
        trust_proxy: z.boolean().default(false),
        /** Longest a client may take to send a request's headers, ms (slowloris); Node's `server.headersTimeout`. */
        headers_timeout: duration.default(30_000),
        /**
         * Longest a client may take to send a whole request, ms; Node's `server.requestTimeout`. The
         * default (10 min) lets a 50 MB publish through a link of ~100 KB/s.
         */
        request_timeout: duration.default(600_000),
        /** How long an idle keep-alive connection stays open, ms (72 s: longer than the usual load balancer's 60 s). */
        keep_alive_timeout: duration.default(72_000),
        /** A connection with no traffic either way for this long is closed, ms; 0: never. */
        socket_timeout: duration.default(120_000),
        /**
         * Who sees `GET /-/health`'s details (backends, uplinks, caches): `admins` (`auth.admins`),
         * or `loopback` (admins, and any client on 127.0.0.1/::1). Everyone else gets `{status}`.
         */
        health_details: z.enum(['admins', 'loopback']).default('admins'),
        /**
         * Load shedding (@fastify/under-pressure): beyond these, requests other than `/-/ping` get
         * 503 with `Retry-After`. Event-loop delay is the mean over each second, ms; heap and RSS in
         * bytes (`max_heap_used` default: 90% of V8's heap limit; `max_rss` default: off).
         */
        overload: z
          .object({
            /** The mean event-loop delay over a sample beyond which requests are shed, ms. */
            max_event_loop_delay: duration.default(1000),
            /** The V8 heap in use beyond which requests are shed, bytes; default 90% of V8's heap limit. */
            max_heap_used: size.optional(),
            /** The resident set size beyond which requests are shed, bytes; default: not checked. */
            max_rss: size.optional(),
            /** Seconds, sent as `Retry-After`. */
            retry_after: z.coerce.number().int().min(1).default(10),
            /**
             * How often the measures are taken, ms; at least 100 (the event-loop histogram samples
             * every 10 ms, and an empty sample would count as an infinite delay).
             */
            sample_interval: duration.pipe(z.number().min(100, 'at least 100 ms')).default(1000),
          })
          .strict()
          .default({ max_event_loop_delay: 1000, retry_after: 10, sample_interval: 1000 }),
      })
      .strict()
      .default({
        host: '127.0.0.1',
        port: 3000,
        trust_proxy: false,
        headers_timeout: 30_000,
        request_timeout: 600_000,
        keep_alive_timeout: 72_000,
        socket_timeout: 120_000,
        health_details: 'admins',
        overload: { max_event_loop_delay: 1000, retry_after: 10, sample_interval: 1000 },
      }),
    /** Pier's log (pino). */
    logger: z
      .object({
        /** The least severe level logged; `silent` logs nothing. */
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
      })
      .strict()
      .default({ level: 'info' }),
    /** Largest request body (publish), bytes or `50mb`. */
    max_body_size: size.default(50 * 1024 * 1024),
    /** Largest size a published tarball may unpack to (tar headers and files), bytes or `256mb`; beyond: 413. */
    max_unpacked_size: size.default(256 * 1024 * 1024),
    /** Most entries (files, folders, links) a published tarball may hold; beyond: 413. */
    max_unpacked_files: z.coerce.number().int().positive().default(100_000),
    /** Publishing rules kept from the original registry. */
    settings: z
      .object({
        /** `true`: a publish may replace an existing or unpublished version. */
        allow_previous_version: z.boolean().default(false)
      })
      .strict()
      .default({ allow_previous_version: false }),
    /** Who may do what: users and tokens, administrators, login limits. */
    auth: z
      .object({
        /** `local` (users in Pier), `none` (everything open) or `github` (GitHub tokens and repository permissions, auth/github.ts). */
        type: z.enum(['local', 'none', 'github']).default('local'),
        /** `auth.type: local`: accounts kept by Pier. */
        local: z
          .object({
            /** `npm adduser` may create accounts. */
            allow_signup: z.boolean().default(true),
            /** `npm adduser` is refused once Pier holds this many users; -1: no limit. */
            max_users: z.number().int().min(-1).default(-1)
          })
          .strict()
          .default({ allow_signup: true, max_users: -1 }),
        /** `auth.type: github` (auth/github.ts): where GitHub's REST API is and how its answers are used. */
        github: GithubSchema,
        /**
         * User names that may do everything: read and change every package, list and revoke
         * anyone's tokens, read the audit log and `GET /-/health`'s details.
         */
        admins: names.pipe(z.array(z.string().min(1))).default([]),
        /**
         * Password guessing and sign-up floods: failed logins per user name and per client address,
         * and sign-ups per address (default: not limited), within `window`; beyond, 429 with
         * Retry-After. 0: no limit.
         */
        rate_limit: z
          .object({
            /** Failed logins allowed per user name and per client address within `window`; 0: no limit. */
            max_failures: z.coerce.number().int().min(0).default(10),
            /** Sign-ups allowed per client address within `window`; 0: no limit. */
            max_signups: z.coerce.number().int().min(0).default(0),
            /** The period the failures and sign-ups are counted over, ms. */
            window: duration.default(15 * 60_000),
          })
          .strict()
          .default({ max_failures: 10, max_signups: 0, window: 15 * 60_000 }),
      })
      .strict()
      .default({
        type: 'local',
        local: { allow_signup: true, max_users: -1 },
        github: GITHUB_DEFAULTS,
        admins: [],
        rate_limit: { max_failures: 10, max_signups: 0, window: 15 * 60_000 },
      }),
    /** Where packages live: tarballs (`type`, `local`, `s3`) and metadata (`meta`). */
    storage: z
      .object({
        /** Where tarballs go: `local` (files under `storage.local.path`) or `s3` (`storage.s3`). */
        type: z.enum(['local', 's3']).default('local'),
        /** The data folder. */
        local: z
          .object({
            /** The data folder: tarballs (with `type: local`) and the SQLite file; relative to the working folder. */
            path: z.string().default('./data')
          })
          .strict()
          .default({ path: './data' }),
        /** `storage.type: s3`: tarballs in an S3 bucket or an S3-compatible store. */
        s3: S3Schema.optional(),
        /** The metadata store: packuments, users, tokens, the uplink cache. */
        meta: z
          .object({
            /** `sqlite` (one node, a file under the data folder) or `postgres` (shared by several nodes). */
            type: z.enum(['sqlite', 'postgres']).default('sqlite'),
            /** SQLite file; default `<storage.local.path>/pier.sqlite`. */
            path: z.string().optional(),
            /** SQLite: `full`, a committed publish survives power loss; `normal`, it survives a crash of Pier only. */
            synchronous: z.enum(['full', 'normal']).default('full'),
            /** PostgreSQL connection string, `postgres://user:password@host:5432/database` (type postgres). */
            url: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// connection string').optional(),
            /** PostgreSQL connections per node (default 10). */
            pool_size: z.number().int().min(2).optional(),
            /**
             * PostgreSQL: longest a node serves a cached packument after another node changed it, ms
             * (each node checks a package's `_rev` and maintainers at most this often, one query, and
             * re-reads its rows only when they changed). Ignored for SQLite (one node).
             */
            max_staleness: z.number().int().min(1).default(1000),
            /**
             * PostgreSQL: keep the hot statements (package reads, token lookups, a publish's
             * writes) prepared on each connection, planned once rather than at every execution.
             * Turn off behind a pooler in transaction mode that does not carry prepared statements
             * across transactions (PgBouncer before 1.21, or without `max_prepared_statements`).
             */
            prepared_statements: z.boolean().default(true),
          })
          .strict()
          .superRefine((v, ctx) => {
            if (v.type === 'postgres' && !v.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'required when storage.meta.type is postgres' })
          })
          .default({ type: 'sqlite', synchronous: 'full', max_staleness: 1000, prepared_statements: true }),
      })
      .strict()
      .superRefine((v, ctx) => {
        if (v.type === 's3' && !v.s3) ctx.addIssue({ code: 'custom', path: ['s3', 'bucket'], message: 'required when storage.type is s3' })
      })
      .default({ type: 'local', local: { path: './data' }, meta: { type: 'sqlite', synchronous: 'full', max_staleness: 1000, prepared_statements: true } }),
    /** Upstream registries (uplinks.ts); absent: the one `npm config get registry` names; `{}`: none. */
    uplinks: UplinksSchema.optional(),
    /** Glob rules on package names, first match wins (uplinks.ts); absent: everything proxies to every uplink. */
    packages: PackagesSchema.optional(),
    private_scopes: PrivateScopesSchema,
    audit: AuditSchema.optional(),
    search: SearchSchema,
    web: WebSchema,
  })
  .strict()

/** Validated configuration. */
export type Config = z.infer<typeof ConfigSchema>
/** Configuration as written in a file (before defaults). */
export type ConfigInput = z.input<typeof ConfigSchema>
