/**
 * `pier gc`'s argument and output formats: `--grace` durations, the duration shown in the summary,
 * the summary line and the `--json` report (the run itself is tested end to end in e2e/gc.test.ts).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { formatDuration, parseGrace, reportJson, summaryLine, UsageError } from '../../src/cli/gc.js'
import type { GcReport } from '../../src/ops/gc.js'

const report = (over: Partial<GcReport> = {}): GcReport => ({
  blobs: 120,
  bytes: 999_999,
  references: 150,
  unreferenced: 3,
  unreferencedBytes: 4096,
  deleted: 2,
  deletedBytes: 3000,
  deletedKeys: ['tarballs/sha512/aa/aa.tgz', 'tarballs/sha1/bb/bb.tgz'],
  kept: 1,
  keptBytes: 1096,
  gone: 0,
  graceMs: 86_400_000,
  dryRun: false,
  ...over,
})

void describe('pier gc formats', () => {
  void test('--grace: plain seconds, or a number with ms, s, m, h or d', () => {
    assert.equal(parseGrace('3600'), 3_600_000)
    assert.equal(parseGrace('0'), 0)
    assert.equal(parseGrace('0s'), 0)
    assert.equal(parseGrace('3600s'), 3_600_000)
    assert.equal(parseGrace('60m'), 3_600_000)
    assert.equal(parseGrace('24h'), 86_400_000)
    assert.equal(parseGrace('7d'), 7 * 86_400_000)
    assert.equal(parseGrace('1.5h'), 5_400_000)
    assert.equal(parseGrace('500ms'), 500)
    assert.equal(parseGrace(' 2H '), 7_200_000)
    for (const bad of ['', 'abc', '-5', '-5s', '5x', '5 days', 'h', '1e3']) {
      assert.throws(() => parseGrace(bad), (e: unknown) => e instanceof UsageError && /--grace: invalid duration/.test(e.message), bad)
    }
  })

  void test('durations in messages use the largest unit that divides them, days from two on', () => {
    assert.equal(formatDuration(0), '0s')
    assert.equal(formatDuration(86_400_000), '24h')
    assert.equal(formatDuration(7 * 86_400_000), '7d')
    assert.equal(formatDuration(36 * 3_600_000), '36h')
    assert.equal(formatDuration(3_600_000), '1h')
    assert.equal(formatDuration(90 * 60_000), '90m')
    assert.equal(formatDuration(30_000), '30s')
    assert.equal(formatDuration(1500), '1500ms')
  })

  void test('the summary line: deleted, or on a dry run what would be; blobs already gone when any', () => {
    assert.equal(summaryLine(report()), 'gc: 120 blobs, 3 unreferenced (4096 bytes), 2 deleted, 1 kept (younger than 24h)')
    assert.equal(summaryLine(report({ dryRun: true })), 'gc: 120 blobs, 3 unreferenced (4096 bytes), 2 would be deleted (dry run), 1 kept (younger than 24h)')
    assert.equal(summaryLine(report({ deleted: 1, gone: 1, graceMs: 0 })), 'gc: 120 blobs, 3 unreferenced (4096 bytes), 1 deleted, 1 kept (younger than 0s), 1 already gone')
  })

  void test('the --json report: snake_case keys, grace in seconds', () => {
    assert.deepEqual(reportJson(report()), {
      blobs: 120,
      bytes: 999_999,
      references: 150,
      unreferenced: 3,
      unreferenced_bytes: 4096,
      deleted: 2,
      deleted_bytes: 3000,
      deleted_keys: ['tarballs/sha512/aa/aa.tgz', 'tarballs/sha1/bb/bb.tgz'],
      kept: 1,
      kept_bytes: 1096,
      gone: 0,
      grace_seconds: 86_400,
      dry_run: false,
    })
  })
})
