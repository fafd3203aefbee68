/**
 * A throwaway PostgreSQL database for one bench run, on the server at 127.0.0.1:5432 (trust auth):
 * created through the `postgres` maintenance database as `pier_bench_<random>` and dropped (open
 * connections forced out) by `drop`. `PIER_BENCH_PG_URL` overrides the maintenance database's URL.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The maintenance database's URL. */
export const PG_ADMIN_URL = process.env.PIER_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** A database made for the bench. */
export interface BenchDatabase {
  name: string
  /** Connection string of the new database. */
  url: string
  /** Drops the database, forcing out connections left open. Safe to call twice. */
  drop(): Promise<void>
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/**
 * Creates an empty database named `pier_bench_<random>`.
 * @throws when the server does not answer (start it with
 *   `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)
 */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `pier_bench_${randomBytes(6).toString('hex')}`
  await admin((c) => c.query(`create database ${name}`))
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  let dropped = false
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return
      dropped = true
      await admin((c) => c.query(`drop database if exists ${name} with (force)`))
    },
  }
}
