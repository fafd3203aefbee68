/**
 * README rendering and the HTML helpers of the web UI (src/web/readme-engine.ts, src/web/repository.ts, src/web/html.ts), as
 * pure functions (the browser test, test/browser/web.test.ts, proves the same in Chromium):
 * - GitHub flavour: tables, task lists, highlighted fenced code, heading anchors (prefixed);
 * - the sanitiser's allowlist: scripts, handlers, `javascript:`/`data:` links, SVG and MathML,
 *   styles and comments never survive; images only over https;
 * - relative links and images resolve against GitHub and GitLab repositories, in every form npm
 *   accepts for `repository` (docs: package.json "repository"), with the `directory` of a
 *   monorepo; unknown hosts drop them;
 * - `html` escapes everything interpolated, `safeHref` lets only http(s), mailto and site paths through.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { escapeHtml, html, packagePath, safeHref, unsafeHtml } from '../../src/web/html.js'
import { repositoryBase, repositoryUrl } from '../../src/web/repository.js'
import { renderReadme } from '../../src/web/readme-engine.js'

void describe('README rendering', () => {
  void test('GitHub flavour', () => {
    const out = renderReadme('# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n- [ ] not\n\n```ts\nconst a: number = 1\n```\n\n~~old~~ https://example.com', undefined)
    assert.match(out, /<h1 id="readme-title">Title<\/h1>/)
    assert.match(out, /<table>/)
    assert.match(out, /<label><input type="checkbox" disabled class="task-list-item-checkbox" checked \/> done<\/label>/)
    assert.match(out, /<span class="hljs-keyword">const<\/span>/)
    assert.match(out, /<s>old<\/s>/)
    assert.match(out, /<a href="https:\/\/example\.com" rel="nofollow noopener noreferrer">/)
  })

  void test('nothing that runs or loads survives', () => {
    const hostile = [
      '<script>alert(1)</script>',
      '<img src=x onerror=alert(1)>',
      '<a href="javascript:alert(1)">a</a>',
      '<a href="JAVASCRIPT:alert(1)">b</a>',
      '<a href="&#106;avascript:alert(1)">c</a>',
      '[d](javascript:alert(1))',
      '[e](data:text/html,<script>alert(1)</script>)',
      '![f](data:image/png;base64,AAAA)',
      '<svg onload=alert(1)><circle/></svg>',
      '<style>*{display:none}</style>',
      '<div style="color:red" onclick="x()">styled</div>',
      '<!-- <img src=x onerror=alert(1)> -->',
      '<iframe src="https://example.com"></iframe>',
      '<img src="http://example.com/a.png">',
      '<a href="//evil.example/">protocol-relative</a>',
      '<form action="https://evil.example"><input name=q></form>',
      // Last: an unclosed <style> inside MathML swallows everything after it.
      '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    ].join('\n\n')
    const out = renderReadme(hostile, 'github:acme/x')
    assert.doesNotMatch(out, /<script|<svg|<math|<style|<iframe|<form|<!--/i)
    assert.doesNotMatch(out, /\son[a-z]+=/i)
    assert.doesNotMatch(out, /style=/i)
    assert.doesNotMatch(out, /(href|src)="\s*(javascript|data|vbscript):/i)
    assert.doesNotMatch(out, /src="http:/)
    assert.doesNotMatch(out, /href="\/\//)
    assert.match(out, /styled/)
  })

  void test('relative links and images resolve against the repository', () => {
    const md = '[guide](docs/guide.md) [up](../x.md) ![logo](./img/logo.png) [top](#Usage-Notes)'
    const out = renderReadme(md, { type: 'git', url: 'git+https://github.com/acme/mono.git', directory: 'packages/widget' })
    assert.match(out, /href="https:\/\/github\.com\/acme\/mono\/blob\/HEAD\/packages\/widget\/docs\/guide\.md"/)
    assert.match(out, /src="https:\/\/raw\.githubusercontent\.com\/acme\/mono\/HEAD\/packages\/widget\/img\/logo\.png"/)
    assert.match(out, /href="#readme-usage-notes"/)
    // `..` could leave the package's folder: dropped.
    assert.doesNotMatch(out, /x\.md"/)
    // Unknown host: relative targets are dropped, the text stays.
    const other = renderReadme(md, 'https://git.example.com/acme/mono.git')
    assert.doesNotMatch(other, /href="[^#]/)
    assert.doesNotMatch(other, /<img/)
    assert.match(other, /guide/)
  })

  void test('repository forms', () => {
    for (const r of ['acme/widget', 'github:acme/widget', 'git+https://github.com/acme/widget.git', 'git://github.com/acme/widget.git', 'git@github.com:acme/widget.git', 'https://github.com/acme/widget', { type: 'git', url: 'https://github.com/acme/widget.git' }]) {
      assert.equal(repositoryBase(r)?.web, 'https://github.com/acme/widget', JSON.stringify(r))
    }
    assert.equal(repositoryBase('gitlab:acme/widget')?.raw, 'https://gitlab.com/acme/widget/-/raw/HEAD/')
    assert.equal(repositoryBase('https://git.example.com/acme/widget'), undefined)
    assert.equal(repositoryUrl('git+https://git.example.com/acme/widget.git'), 'https://git.example.com/acme/widget')
    assert.equal(repositoryUrl('http://git.example.com/acme/widget'), undefined)
    assert.equal(repositoryBase({ url: 'github:acme/widget', directory: '../escape' })?.blob, 'https://github.com/acme/widget/blob/HEAD/')
  })
})

void describe('HTML helpers', () => {
  void test('html escapes what it interpolates, keeps what it built', () => {
    const evil = `<img src=x onerror="alert('1')">&`
    assert.equal(escapeHtml(evil), '&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;')
    assert.equal(html`<p title="${evil}">${evil}</p>`.value, `<p title="${escapeHtml(evil)}">${escapeHtml(evil)}</p>`)
    assert.equal(html`<ul>${['a', '<b>'].map((x) => html`<li>${x}</li>`)}</ul>`.value, '<ul><li>a</li><li>&lt;b&gt;</li></ul>')
    assert.equal(html`${unsafeHtml('<b>x</b>')}${null}${undefined}${false}${0}`.value, '<b>x</b>0')
  })

  void test('safeHref and packagePath', () => {
    assert.equal(safeHref('javascript:alert(1)'), '#')
    assert.equal(safeHref(' JavaScript:alert(1)'), '#')
    assert.equal(safeHref('data:text/html,x'), '#')
    assert.equal(safeHref('//evil.example/'), '#')
    assert.equal(safeHref('/logo.svg'), '/logo.svg')
    assert.equal(safeHref('https://example.com/a b'), 'https://example.com/a%20b')
    assert.equal(safeHref('mailto:a@example.com'), 'mailto:a@example.com')
    assert.equal(packagePath('@scope/name'), '@scope/name')
    assert.equal(packagePath('a b'), 'a%20b')
  })
})
