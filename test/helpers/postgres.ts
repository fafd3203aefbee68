/**
 * A throwaway PostgreSQL database per test file, on the server this machine kind runs on
 * 127.0.0.1:5432 (trust auth). Created through the `postgres` maintenance database with a random
 * name and dropped (connections forced out) by `drop`. `PIER_TEST_PG_URL` overrides the server URL
 * (any database on it; the maintenance database is used for create/drop).
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The maintenance database's URL. */
export const PG_ADMIN_URL = process.env.PIER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** A database made for one test file. */
export interface TempDatabase {
  name: string
  /** Connection string of the new database. */
  url: string
  /** Drops the database (forcing out connections left open). Safe to call twice. */
  drop(): Promise<void>
}

async function admin<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/**
 * Creates an empty database named `<prefix>_<random>` (also used by the bench, with its own prefix
 * and server URL).
 * @param opts.prefix default `pier_test`; opts.adminUrl default `PG_ADMIN_URL`
 * @throws when the server does not answer: PostgreSQL is required for these tests (start it with
 *   `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)
 */
export async function createTempDatabase(opts: { prefix?: string; adminUrl?: string } = {}): Promise<TempDatabase> {
  const adminUrl = opts.adminUrl ?? PG_ADMIN_URL
  const name = `${opts.prefix ?? 'pier_test'}_${randomBytes(6).toString('hex')}`
  await admin(adminUrl, (c) => c.query(`create database ${name}`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  let dropped = false
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return
      dropped = true
      await admin(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`))
    },
  }
}
