/**
 * The `pier` command's help: `--help` (or `-h`) after every subcommand prints that command's usage
 * and the configuration paragraph every command shares, and exits 0; the command runs from the
 * checkout as `npx pier` (the package's own `bin`).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { run } from '../helpers/npm.js'
import { CLI, ROOT } from '../helpers/pier.js'

const COMMANDS = ['start', 'user', 'token', 'org', 'audit', 'migrate', 'gc', 'config']

void describe('pier <command> --help', () => {
  for (const cmd of COMMANDS) {
    void test(`pier ${cmd} --help`, async () => {
      const r = await run(process.execPath, [CLI, cmd, '--help'], { cwd: ROOT })
      assert.equal(r.code, 0, r.stderr)
      if (cmd === 'config') {
        assert.match(r.stdout, /pier config/)
        return
      }
      assert.match(r.stdout, new RegExp(`^Usage:\\n {2}pier ${cmd}\\b`))
      assert.match(r.stdout, /Every command takes --config FILE/)
      const others = COMMANDS.filter((c) => c !== cmd).join('|')
      assert.doesNotMatch(r.stdout, new RegExp(`pier (${others}) `), 'only this command')
    })
  }

  void test('npx pier runs the checkout\'s own bin', async () => {
    const r = await run(process.execPath, [`${ROOT}/node_modules/npm/bin/npx-cli.js`, '--no-install', 'pier', 'migrate', '--help'], { cwd: ROOT })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^Usage:\n {2}pier migrate/)
  })
})
