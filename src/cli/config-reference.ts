/**
 * `npm run docs:config`: writes docs/configuration.md, the configuration reference generated from
 * the configuration schema and the doc comments above its keys (config/reference.ts). Run it after
 * changing a key; `npm test` (test/unit/config-reference.test.ts) fails while the file is stale.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { configReference, readKeyDocs, REFERENCE_FILE, repositoryRoot } from '../config/reference.js'

const root = repositoryRoot()
const file = join(root, REFERENCE_FILE)
const text = configReference(readKeyDocs(root))
let old: string | undefined
try {
  old = readFileSync(file, 'utf8')
} catch {
  old = undefined
}
mkdirSync(dirname(file), { recursive: true })
writeFileSync(file, text)
process.stdout.write(`${REFERENCE_FILE}: ${old === text ? 'unchanged' : 'written'}\n`)
