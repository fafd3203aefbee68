/**
 * A throwaway PostgreSQL database for one bench run, on the server at 127.0.0.1:5432 (trust auth):
 * `pier_bench_<random>`, made and dropped by the tests' helper (test/helpers/postgres.ts).
 * `PIER_BENCH_PG_URL` overrides the maintenance database's URL.
 */
import { createTempDatabase, type TempDatabase } from '../test/helpers/postgres.js'

/** The maintenance database's URL. */
export const PG_ADMIN_URL = process.env.PIER_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** A database made for the bench; `drop` forces out open connections and is safe to call twice. */
export type BenchDatabase = TempDatabase

/**
 * Creates an empty database named `pier_bench_<random>`.
 * @throws when the server does not answer
 */
export function createBenchDatabase(): Promise<BenchDatabase> {
  return createTempDatabase({ prefix: 'pier_bench', adminUrl: PG_ADMIN_URL })
}
