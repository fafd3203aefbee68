/**
 * Chooses the metadata store from `storage.meta`: SQLite (default, a file under the data folder)
 * or PostgreSQL (`url`). The store is returned unmigrated.
 */
import { join, resolve } from 'node:path'
import type { Config } from '../../config/schema.js'
import type { MetaStore } from './meta-store.js'
import { SqliteMetaStore } from './sqlite-meta-store.js'

/**
 * @param dataDir absolute data folder (`storage.local.path` resolved)
 * @param cwd folder that a relative `storage.meta.path` is resolved against
 * @param onPoolError told about PostgreSQL connection errors outside any query
 */
export async function openMetaStore(
  meta: Config['storage']['meta'],
  dataDir: string,
  cwd: string,
  onPoolError?: (err: Error) => void,
): Promise<MetaStore> {
  if (meta.type === 'postgres') {
    if (!meta.url) throw new Error('storage.meta.url: required when storage.meta.type is postgres')
    // Loaded only when configured: pg costs memory that an embedded (SQLite) Pier does not need.
    const { PostgresMetaStore } = await import('./postgres-meta-store.js')
    return new PostgresMetaStore({ url: meta.url, poolSize: meta.pool_size, preparedStatements: meta.prepared_statements, onPoolError })
  }
  return new SqliteMetaStore({
    file: meta.path ? resolve(cwd, meta.path) : join(dataDir, 'pier.sqlite'),
    synchronous: meta.synchronous,
  })
}
