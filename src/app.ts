/**
 * Wiring: configuration → stores → services → HTTP server. Used by `pier start` and by tests.
 */
import { resolve } from 'node:path'
import pino from 'pino'
import type { FastifyInstance } from 'fastify'
import { AuthService } from './auth/auth-service.js'
import { GithubAuth } from './auth/github.js'
import { WebSessions } from './auth/sessions.js'
import { WebLogins } from './auth/web-login.js'
import { GITHUB_API_DEFAULT, type Config } from './config/schema.js'
import { buildServer } from './http/server.js'
import { checkHealth } from './ops/health.js'
import { Registry } from './registry/registry.js'
import { openBlobStore, tarballRedirectSeconds } from './storage/blobs/open-blob-store.js'
import { openMetaStore } from './storage/meta/open-meta-store.js'
import type { MetaStore } from './storage/meta/meta-store.js'
import { CachedPackages } from './uplink/cached-packages.js'
import { auditUplink, openUplinks, packageRules } from './uplink/open-uplinks.js'
import { UplinkCache } from './uplink/uplink-cache.js'

/** A wired Pier instance. */
export interface Pier {
  config: Config
  app: FastifyInstance
  meta: MetaStore
  registry: Registry
  auth: AuthService
  /** Stops accepting connections, waits for in-flight requests, closes the stores. */
  close(): Promise<void>
}

/** Options for `createPier`. */
export interface CreateOptions {
  /** A pino logger to use; default: one writing JSON to stdout at `config.logger.level`. */
  logger?: pino.Logger
  /** Resolve relative storage paths against this folder (default: process cwd). */
  cwd?: string
}

/**
 * Paths pino censors in every log line, at every level (a second line of defence: the request
 * hooks already drop secret headers and token paths): credentials in headers, passwords and token
 * values in bodies or error objects.
 */
export const LOG_REDACT = {
  paths: [
    'headers.authorization',
    'headers.cookie',
    'headers["npm-otp"]',
    'req.headers.authorization',
    'req.headers.cookie',
    'password',
    '*.password',
    'token',
    '*.token',
    'body.password',
    'err.config.headers.authorization',
  ],
  censor: '[redacted]',
}

/**
 * Opens the stores (running migrations) and builds the server.
 * @throws Error when a backend cannot be opened or migrated
 */
export async function createPier(config: Config, opts: CreateOptions = {}): Promise<Pier> {
  const logger = opts.logger ?? pino({ level: config.logger.level, redact: LOG_REDACT }, pino.destination({ sync: false }))
  if (config.auth.type === 'none') logger.warn('auth.type is "none": anyone can publish, change and unpublish packages')
  // Uplinks first: a configuration error stops the start before anything is opened.
  const uplinks = await openUplinks(config, logger)
  const rules = packageRules(config, uplinks, logger)
  const audit = auditUplink(config, uplinks)
  const dataDir = resolve(opts.cwd ?? process.cwd(), config.storage.local.path)
  const meta = await openMetaStore(config.storage.meta, dataDir, opts.cwd ?? process.cwd(), (err) => logger.warn({ err }, 'metadata store connection error'))
  try {
    await meta.migrate()
  } catch (e) {
    await meta.close()
    throw e
  }
  const blobs = await openBlobStore(config.storage, dataDir)
  const uplinkCache = new UplinkCache(meta, logger)
  // auth.type github: GitHub's tokens authenticate, its repository permissions decide (auth/github.ts).
  const github =
    config.auth.type === 'github'
      ? new GithubAuth({
          host: config.auth.github.host,
          repositoryHosts: [GITHUB_API_DEFAULT],
          timeoutMs: config.auth.github.timeout,
          ttlMs: config.auth.github.cache.ttl,
          store: meta,
          isLocal: (name) => meta.packageExists(name),
          log: logger,
        })
      : undefined
  const maxStalenessMs = config.storage.meta.type === 'postgres' ? config.storage.meta.max_staleness : 0
  const registry = new Registry(meta, blobs, {
    allowPreviousVersion: config.settings.allow_previous_version,
    open: config.auth.type === 'none',
    tarballRedirectSeconds: tarballRedirectSeconds(config.storage),
    maxStalenessMs,
    rules,
    log: logger,
    searchUplink: config.search.uplink,
    tarballLimits: { maxUnpackedSize: config.max_unpacked_size, maxFiles: config.max_unpacked_files },
    permissionSource: github,
    uplinks:
      uplinks.size > 0
        ? (shared) =>
            new CachedPackages({
              ...shared,
              cache: uplinkCache,
              uplinks,
              rules,
              blobs,
              log: logger,
              // Another node may publish a scope's first package: believe "not local" no longer than the staleness bound.
              localScopeTtlMs: maxStalenessMs || undefined,
              searchTimeoutMs: config.search.timeout,
            })
        : undefined,
  })
  // Other nodes' writes drop this node's cached copies at once (max_staleness stays the bound).
  const unwatch = await meta.watchChanges?.(
    (name) => registry.forget(name),
    () => {
      logger.warn('lost the change notifications of the metadata store: reconnecting; cached packages are re-read')
      registry.forget()
    },
  )
  await registry.reloadAccess()
  const auth = new AuthService(meta, {
    allowSignup: config.auth.local.allow_signup,
    maxUsers: config.auth.local.max_users,
    admins: config.auth.admins,
    throttle: { maxFailures: config.auth.rate_limit.max_failures, maxSignups: config.auth.rate_limit.max_signups, windowMs: config.auth.rate_limit.window },
    external: github,
  })
  const health = () =>
    checkHealth({
      meta,
      blobs,
      metaType: config.storage.meta.type,
      blobsType: config.storage.type === 's3' ? 's3' : 'fs',
      uplinks,
      caches: () => registry.cacheSizes(),
    })
  // The web UI and web login (docs/web.md): sessions and logins live in the metadata store.
  const sessions = config.web.enable ? await WebSessions.open(meta, auth) : undefined
  const web = sessions ? { sessions, logins: new WebLogins(meta, { ttlMs: config.web.login_session_ttl, secret: sessions.secret }) } : undefined
  const app = buildServer({ config, registry, auth, logger, auditUplink: audit, health, web })
  return {
    config,
    app,
    meta,
    registry,
    auth,
    async close() {
      await app.close()
      await auth.close()
      await github?.close()
      await unwatch?.()
      await uplinkCache.close()
      await Promise.all([...uplinks.values()].map((u) => u.close()))
      await meta.close()
      await blobs.close?.()
      logger.flush()
    },
  }
}
