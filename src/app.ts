/**
 * Wiring: configuration → stores → services → HTTP server. Used by `pier start` and by tests.
 */
import { resolve, join } from 'node:path'
import pino from 'pino'
import type { FastifyInstance } from 'fastify'
import { AuthService } from './auth/auth-service.js'
import type { Config } from './config/schema.js'
import { buildServer } from './http/server.js'
import { Registry } from './registry/registry.js'
import { FsBlobStore } from './storage/blobs/fs-blob-store.js'
import { SqliteMetaStore } from './storage/meta/sqlite-meta-store.js'
import type { MetaStore } from './storage/meta/meta-store.js'

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
 * Opens the stores (running migrations) and builds the server.
 * @throws Error when `storage.type`/`auth.type` name a backend this build does not have yet
 */
export async function createPier(config: Config, opts: CreateOptions = {}): Promise<Pier> {
  if (config.storage.type !== 'local') throw new Error(`storage.type "${config.storage.type}" is not supported yet (use "local")`)
  if (config.auth.type === 'github') throw new Error('auth.type "github" is not supported yet (use "local" or "none")')
  const logger = opts.logger ?? pino({ level: config.logger.level }, pino.destination({ sync: false }))
  if (config.auth.type === 'none') logger.warn('auth.type is "none": anyone can publish, change and unpublish packages')
  const dataDir = resolve(opts.cwd ?? process.cwd(), config.storage.local.path)
  const meta = new SqliteMetaStore({
    file: config.storage.meta.path ? resolve(opts.cwd ?? process.cwd(), config.storage.meta.path) : join(dataDir, 'pier.sqlite'),
    synchronous: config.storage.meta.synchronous,
  })
  await meta.migrate()
  const blobs = new FsBlobStore(join(dataDir, 'blobs'))
  await blobs.init()
  const registry = new Registry(meta, blobs, {
    allowPreviousVersion: config.settings.allow_previous_version,
    open: config.auth.type === 'none',
  })
  const auth = new AuthService(meta, { allowSignup: config.auth.local.allow_signup, maxUsers: config.auth.local.max_users })
  const app = buildServer({ config, registry, auth, logger })
  return {
    config,
    app,
    meta,
    registry,
    auth,
    async close() {
      await app.close()
      await meta.close()
      logger.flush()
    },
  }
}
