/**
 * The web UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core through
 * `executablePath`; `.ci/run` installs it), against an in-process Pier on loopback:
 * - search as you type, then search and open a package, and read its README;
 * - sign in, create a token and revoke it;
 * - the whole `npm login` web flow with the real npm CLI: npm (no TTY, so it opens nothing and
 *   prints `Login at:` and the URL, docs/protocol.md §9.6) polls while the browser signs in at
 *   `loginUrl`; npm then writes the token to its userconfig and `npm whoami` answers;
 * - a hostile README corpus (script tags, event handlers, `javascript:` and `data:` links, SVG and
 *   MathML payloads, CSS injection, comments, entity tricks) executes nothing and makes no request
 *   beyond the page's origin;
 * - axe-core finds no serious or critical violation on the main pages, light and dark;
 * - screenshots of the main pages, light and dark, go to `.screenshots/` (git-ignored).
 * Every request any page makes is recorded; requests beyond 127.0.0.1:<port> are aborted.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { addUser } from '../helpers/accounts.js'
import { NPM_CLI, NpmClient } from '../helpers/npm.js'
import { ROOT, startPier, type TestPier } from '../helpers/pier.js'
import { publishBody } from '../helpers/publish-body.js'

/** Where screenshots go (git-ignored). */
const SHOTS = join(ROOT, '.screenshots')

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

const README = `# Widget

A **widget** for the browser tests.

## Usage

\`\`\`js
import { widget } from 'widget'
widget({ size: 3 })
\`\`\`

| Option | Default |
|--------|---------|
| size   | 1       |

- [x] tested in Chromium
- [ ] documented
`

/** The hostile README: each line tries to run script, load something, or escape the sanitiser. */
const HOSTILE = `# Hostile

<script>window.__pwned = 'script'</script>
<script src="/-/web/static/evil.js"></script>
<img src="x" onerror="window.__pwned='onerror'">
<img src=x onerror=window.__pwned='onerror2'>
<a href="javascript:window.__pwned='js-link'" id="js1">js link</a>
<a href="JaVaScRiPt:window.__pwned='js-case'">mixed case</a>
<a href="&#106;avascript:window.__pwned='entity'">entity</a>
<a href="java&#x09;script:window.__pwned='tab'">tab</a>
<a href=" javascript:window.__pwned='space'">space</a>
[md js](javascript:window.__pwned='md')
[md data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
![md data img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+PC9zdmc+)
<svg onload="window.__pwned='svg'"><script>window.__pwned='svg-script'</script><image href="http://evil.example/svg.png"/></svg>
<svg><a xlink:href="javascript:window.__pwned='svg-link'"><text x="0" y="15">svg link</text></a></svg>
<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned='mxss'"></style></mglyph></table></mtext></math>
<math href="javascript:window.__pwned='math'">math</math>
<style>body { background: url(http://evil.example/style.png) } * { display: none }</style>
<div style="background:url(http://evil.example/inline.png);position:fixed;inset:0">styled</div>
<link rel="stylesheet" href="http://evil.example/x.css">
<iframe src="http://evil.example/frame"></iframe>
<iframe srcdoc="<script>parent.__pwned='srcdoc'</script>"></iframe>
<object data="http://evil.example/object"></object>
<embed src="http://evil.example/embed">
<form action="http://evil.example/form"><input name="q"><button>go</button></form>
<!-- <img src="http://evil.example/comment.png" onerror="window.__pwned='comment'"> -->
<!--><img src="x" onerror="window.__pwned='comment2'">-->
<meta http-equiv="refresh" content="0;url=http://evil.example/refresh">
<base href="http://evil.example/">
<img src="http://evil.example/plain-http.png">
<img srcset="http://evil.example/srcset.png 1x">
<picture><source srcset="http://evil.example/source.png"><img src="x"></picture>
<details open ontoggle="window.__pwned='toggle'"><summary>details</summary>x</details>
<a href="/ok" onclick="window.__pwned='onclick'" id="click-me">click me</a>
<input autofocus onfocus="window.__pwned='focus'">
<video><source onerror="window.__pwned='video'"></video>
<noscript><p title="</noscript><img src=x onerror=window.__pwned='noscript'>"></p></noscript>
<textarea><img src=x onerror="window.__pwned='textarea'"></textarea>
&lt;script&gt;window.__pwned='entity-text'&lt;/script&gt;
<a href="https://example.com/ok" target="_blank">a fine link</a>
<div id="q">clobber the search box id</div>
<img name="getElementById">
`

void describe('web UI in Chromium', () => {
  let pier: TestPier
  let browser: Browser
  let origin: string
  const outside: string[] = []

  /** A context whose pages record every request and abort those leaving Pier. */
  async function context(opts: { colorScheme?: 'light' | 'dark'; bypassCSP?: boolean } = {}): Promise<BrowserContext> {
    const ctx = await browser.newContext({ colorScheme: opts.colorScheme ?? 'light', bypassCSP: opts.bypassCSP ?? false, viewport: { width: 1280, height: 900 } })
    await ctx.route('**/*', async (route) => {
      const url = route.request().url()
      if (url.startsWith(origin + '/')) return route.continue()
      outside.push(url)
      return route.abort()
    })
    return ctx
  }

  async function publish(token: string, pkg: Record<string, unknown>, readme: string): Promise<void> {
    const name = String(pkg.name)
    const r = await fetch(new URL(name.replace('/', '%2f'), pier.url), {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(publishBody(pkg, { files: { 'README.md': readme } }).body),
    })
    assert.equal(r.status, 201, await r.text())
  }

  async function signIn(page: Page, user: string, password: string): Promise<void> {
    await page.goto(`${origin}/-/web/login`)
    await page.getByLabel('Username', { exact: true }).fill(user)
    await page.getByLabel('Password', { exact: true }).fill(password)
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.waitForURL(`${origin}/-/web/`)
  }

  before(async () => {
    mkdirSync(SHOTS, { recursive: true })
    pier = await startPier({ packages: { '@secret/*': { access: 'alice', publish: 'alice' }, '**': { access: '$all', publish: '$authenticated' } } })
    origin = pier.url.replace(/\/$/, '')
    const alice = await addUser(pier.url, 'alice')
    await publish(alice, { name: 'widget', version: '1.0.0', description: 'A widget for browsers', keywords: ['ui', 'widget'], license: 'MIT', repository: 'github:acme/widget', dependencies: { 'left-pad': '^1.3.0' } }, README)
    await publish(alice, { name: 'widget', version: '1.1.0', description: 'A widget for browsers', keywords: ['ui', 'widget'], license: 'MIT', repository: 'github:acme/widget', dependencies: { 'left-pad': '^1.3.0' } }, README)
    await publish(alice, { name: 'widget-extras', version: '0.1.0', description: 'More for the widget', dependencies: { widget: '^1.0.0' } }, '# widget-extras\n')
    await publish(alice, { name: 'hostile', version: '1.0.0', description: 'A README that attacks' }, HOSTILE)
    await publish(alice, { name: '@secret/widget', version: '1.0.0', description: 'A private widget' }, '# secret\n')
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
  })
  after(async () => {
    await browser?.close()
    await pier?.close()
  })

  void test('search as you type, search, open a package, read its README', async () => {
    const ctx = await context()
    const page = await ctx.newPage()
    await page.goto(`${origin}/`)
    await page.getByRole('searchbox', { name: 'Search packages' }).pressSequentially('widg')
    const suggestion = page.locator('#suggestions a').first()
    await suggestion.waitFor()
    assert.match((await page.locator('#suggestions').textContent()) ?? '', /widget/)
    assert.doesNotMatch((await page.locator('#suggestions').textContent()) ?? '', /@secret/)
    await page.getByRole('searchbox', { name: 'Search packages' }).press('Enter')
    await page.waitForURL(/\/-\/web\/search\?q=widg/)
    assert.match((await page.locator('main').textContent()) ?? '', /2 packages found/)
    await page.getByRole('link', { name: 'widget', exact: true }).click()
    await page.waitForURL(`${origin}/-/web/package/widget`)
    await page.getByRole('heading', { name: 'Usage' }).waitFor()
    assert.equal(await page.locator('.readme table th').first().textContent(), 'Option')
    assert.equal(await page.locator('.readme .hljs-keyword').first().textContent(), 'import')
    assert.equal(await page.locator('.readme input[type=checkbox]:checked').count(), 1)
    // Copy buttons appear with the script.
    assert.equal(await page.getByRole('button', { name: 'Copy the npm command' }).isVisible(), true)
    assert.match((await page.locator('aside').textContent()) ?? '', /widget-extras/)
    await page.screenshot({ path: join(SHOTS, 'package-light.png') })
    await ctx.close()
  })

  void test('sign in, create a token, revoke it', async () => {
    const ctx = await context()
    const page = await ctx.newPage()
    await signIn(page, 'alice', 'alice-pass-1')
    await page.getByRole('link', { name: 'Tokens' }).click()
    await page.waitForURL(`${origin}/-/web/settings/tokens`)
    await page.getByLabel('Name', { exact: true }).fill('browser-made')
    await page.getByLabel('Expires after (days, 1–3650; empty: never)').fill('7')
    await page.getByLabel('Packages (comma-separated)').fill('widget')
    await page.getByLabel('Packages and scopes permission').selectOption('read-write')
    await page.getByLabel('Your password').fill('alice-pass-1')
    await page.getByRole('button', { name: 'Create token' }).click()
    const token = ((await page.locator('#new-token').textContent()) ?? '').trim()
    assert.ok(token.length > 20)
    const who = await fetch(`${origin}/-/whoami`, { headers: { authorization: `Bearer ${token}` } })
    assert.equal(who.status, 200)
    await page.screenshot({ path: join(SHOTS, 'tokens-light.png') })
    await page.getByRole('button', { name: /^Revoke token browser-made/ }).click()
    await page.waitForURL(`${origin}/-/web/settings/tokens`)
    assert.equal(await page.getByRole('button', { name: /^Revoke token browser-made/ }).count(), 0)
    assert.equal((await fetch(`${origin}/-/whoami`, { headers: { authorization: `Bearer ${token}` } })).status, 401)
    await ctx.close()
  })

  void test('npm login (web): npm polls while the browser signs in; npm whoami answers', async () => {
    const npm = new NpmClient(pier.url)
    // No TTY: npm prints the URL and opens nothing (browser=false makes that explicit).
    const child = spawn(process.execPath, [NPM_CLI, 'login', '--browser=false'], { env: npm.env(), stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const loginUrl = await new Promise<string>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        out += d.toString()
        const m = /Login at:\s*\n(\S+)/.exec(out)
        if (m?.[1]) resolve(m[1])
      }
      child.stdout.on('data', onData)
      child.stderr.on('data', onData)
      child.on('exit', (code) => reject(new Error(`npm exited (${String(code)}) before printing the URL:\n${out}`)))
    })
    assert.ok(loginUrl.startsWith(`${origin}/-/web/login?session=`), loginUrl)
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)))
    const ctx = await context()
    const page = await ctx.newPage()
    await page.goto(loginUrl)
    await page.screenshot({ path: join(SHOTS, 'login-light.png') })
    await page.getByLabel('Username', { exact: true }).fill('alice')
    await page.getByLabel('Password', { exact: true }).fill('alice-pass-1')
    await page.getByRole('button', { name: 'Sign in', exact: true }).click()
    await page.getByRole('heading', { name: 'The npm CLI is signed in' }).waitFor()
    assert.equal(await exited, 0, out)
    assert.match(out, /Logged in on/)
    const host = new URL(pier.url).host
    assert.match(readFileSync(npm.userconfig, 'utf8'), new RegExp(`//${host.replace(/\./g, '\\.')}/:_authToken=`))
    const who = await npm.npm(['whoami'])
    assert.equal(who.code, 0, who.stderr)
    assert.equal(who.stdout.trim(), 'alice')
    await ctx.close()
  })

  void test('the hostile README executes nothing and requests nothing beyond the origin', async () => {
    const ctx = await context()
    const page = await ctx.newPage()
    const dialogs: string[] = []
    const requests: string[] = []
    page.on('dialog', (d) => {
      dialogs.push(d.message())
      void d.dismiss()
    })
    page.on('request', (r) => requests.push(r.url()))
    const before = outside.length
    await page.goto(`${origin}/-/web/package/hostile`, { waitUntil: 'load' })
    await page.getByRole('heading', { name: 'Hostile', exact: true }).waitFor()
    // Interact with what is left: click every link the sanitiser kept that is not an https one.
    for (const a of await page.locator('.readme a').all()) {
      const href = await a.getAttribute('href')
      if (href && !href.startsWith('https:')) await a.click({ noWaitAfter: true }).catch(() => undefined)
    }
    await page.goto(`${origin}/-/web/package/hostile`, { waitUntil: 'load' })
    const facts = await page.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: unknown }).__pwned,
      scripts: [...document.querySelectorAll('script')].map((s) => s.getAttribute('src')),
      handlers: [...document.querySelectorAll('*')].flatMap((el) => [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName}.${a.name}`)),
      styled: document.querySelectorAll('[style]').length,
      badLinks: [...document.querySelectorAll('[href],[src],[action],[srcset],[data]')]
        .map((el) => el.getAttribute('href') ?? el.getAttribute('src') ?? el.getAttribute('action') ?? el.getAttribute('srcset') ?? el.getAttribute('data') ?? '')
        .filter((u) => /^\s*(javascript|data|vbscript):/i.test(u) || /^http:/i.test(u)),
      embedded: document.querySelectorAll('.readme svg, .readme math, .readme iframe, .readme object, .readme embed, .readme form, .readme style, .readme link, .readme meta, .readme base, .readme textarea').length,
      searchBox: document.getElementById('q')?.tagName,
      entityText: document.querySelector('.readme')?.textContent?.includes("<script>window.__pwned='entity-text'</script>"),
      bodyVisible: getComputedStyle(document.body).display !== 'none',
    }))
    assert.equal(facts.pwned, undefined)
    assert.deepEqual(dialogs, [])
    assert.equal(facts.scripts.length, 1)
    assert.match(facts.scripts[0] ?? '', /^\/-\/web\/static\/app\.[0-9a-f]{12}\.js$/)
    assert.deepEqual(facts.handlers, [])
    assert.equal(facts.styled, 0)
    assert.deepEqual(facts.badLinks, [])
    assert.equal(facts.embedded, 0)
    assert.equal(facts.searchBox, 'INPUT')
    assert.equal(facts.entityText, true)
    assert.equal(facts.bodyVisible, true)
    assert.deepEqual(outside.slice(before), [])
    assert.deepEqual(requests.filter((u) => !u.startsWith(origin + '/')), [])
    await ctx.close()
  })

  void test('axe-core: no serious or critical violations on the main pages, light and dark; screenshots', async () => {
    const axe = readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8')
    const pages = [
      ['home', '/-/web/'],
      ['search', '/-/web/search?q=widget'],
      ['package', '/-/web/package/widget'],
      ['version', '/-/web/package/widget/v/1.0.0'],
      ['login', '/-/web/login'],
      ['tokens', '/-/web/settings/tokens'],
      ['user', '/-/web/user/alice'],
      ['not-found', '/-/web/package/nope'],
    ] as const
    const problems: string[] = []
    for (const scheme of ['light', 'dark'] as const) {
      // axe is injected as a script: the CSP would refuse it, so this context bypasses it.
      const ctx = await context({ colorScheme: scheme, bypassCSP: true })
      const page = await ctx.newPage()
      for (const [label, path] of pages) {
        if (label === 'tokens') await signIn(page, 'alice', 'alice-pass-1')
        await page.goto(origin + path)
        await page.addScriptTag({ content: axe })
        const violations = await page.evaluate(async () => {
          const r = await (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: { id: string; impact: string | null; nodes: { target: unknown[] }[] }[] }> } }).axe.run(document, {
            runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
          })
          return r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map((n) => JSON.stringify(n.target)) }))
        })
        for (const v of violations) if (v.impact === 'serious' || v.impact === 'critical') problems.push(`${scheme} ${label}: ${v.id} (${v.impact}) ${v.targets.join(' ')}`)
        if (['home', 'package', 'search', 'login'].includes(label)) await page.screenshot({ path: join(SHOTS, `${label}-${scheme}.png`), fullPage: false })
      }
      await ctx.close()
    }
    assert.deepEqual(problems, [])
  })

  void test('a phone-sized viewport reflows without horizontal scrolling', async () => {
    const ctx = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true })
    await ctx.route('**/*', (route) => (route.request().url().startsWith(origin + '/') ? route.continue() : route.abort()))
    const page = await ctx.newPage()
    await page.goto(`${origin}/-/web/package/widget`)
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`)
    await page.screenshot({ path: join(SHOTS, 'package-phone.png') })
    await ctx.close()
  })
})
