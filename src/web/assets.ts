/**
 * The web UI's static assets: one stylesheet and one script, served under content-hashed names
 * (`/-/web/static/app.<sha256 prefix>.css`) with `Cache-Control: immutable`, so no page carries
 * inline style or script and the Content-Security-Policy can be `default-src 'self'` (CSP Level 3).
 * The stylesheet is built once at start from the branding (`web.primary_color`); dark mode follows
 * `prefers-color-scheme` (Media Queries Level 5). Colours meet WCAG 2.2 AA contrast (4.5:1 for text)
 * in both schemes with the default accent.
 */
import { createHash } from 'node:crypto'

/** One asset, ready to serve. */
export interface Asset {
  /** The hashed file name, e.g. `app.1a2b3c4d5e.css`. */
  file: string
  /** `/-/web/static/<file>`. */
  path: string
  type: string
  body: Buffer
}

const STYLE = `
:root{--bg:#ffffff;--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--panel:#f6f8fa;--accent:__PRIMARY__;--accent-fg:#ffffff;--warn-bg:#fff8c5;--warn-fg:#3b2300;--warn-line:#d4a72c;--focus:#0b57d0;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9ea7b3;--line:#3d444d;--panel:#161b22;--accent:color-mix(in srgb,__PRIMARY__ 45%,#ffffff);--accent-fg:#0d1117;--warn-bg:#3b2e00;--warn-fg:#f8e3a1;--warn-line:#9e6a03;--focus:#79b8ff}}
*{box-sizing:border-box}
html{font-size:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
a{color:var(--accent)}
a:hover{text-decoration-thickness:2px}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.5rem 1rem;z-index:10}
.skip:focus{left:0}
header.site{border-bottom:1px solid var(--line);background:var(--panel)}
header.site .bar{display:flex;flex-wrap:wrap;gap:.75rem 1.5rem;align-items:center;max-width:72rem;margin:0 auto;padding:.75rem 1rem}
.brand{display:flex;align-items:center;gap:.5rem;font-weight:700;font-size:1.25rem;color:var(--fg);text-decoration:none}
.brand img{height:2rem;width:auto}
form.search{flex:1 1 18rem;display:flex;gap:.5rem;position:relative}
form.search input{flex:1;min-width:0}
nav.user{display:flex;gap:1rem;align-items:center}
nav.user form{margin:0}
main{max-width:72rem;margin:0 auto;padding:1.5rem 1rem 3rem}
footer.site{max-width:72rem;margin:0 auto;padding:1rem;color:var(--muted);border-top:1px solid var(--line);font-size:.875rem}
h1{font-size:1.75rem;line-height:1.25;margin:.25rem 0 1rem;overflow-wrap:anywhere}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
input,select,button,textarea{font:inherit;color:inherit}
input[type=text],input[type=search],input[type=password],input[type=email],input[type=number],select{background:var(--bg);border:1px solid var(--muted);border-radius:6px;padding:.4rem .6rem}
button,.button{display:inline-block;background:var(--accent);color:var(--accent-fg);border:1px solid var(--accent);border-radius:6px;padding:.4rem .9rem;cursor:pointer;text-decoration:none;font-weight:600}
button.secondary{background:transparent;color:var(--accent)}
button.link{background:none;border:none;color:var(--accent);padding:0;text-decoration:underline;font-weight:400}
.muted{color:var(--muted)}
.grid{display:grid;grid-template-columns:minmax(0,1fr) 20rem;gap:2rem}
@media (max-width:50rem){.grid{grid-template-columns:minmax(0,1fr)}}
aside section{border-bottom:1px solid var(--line);padding:.75rem 0}
aside h2{font-size:1rem;margin:0 0 .25rem}
aside dl{margin:0}
dl.facts{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.deprecated{background:var(--warn-bg);color:var(--warn-fg);border:1px solid var(--warn-line);border-radius:6px;padding:.75rem 1rem;margin:0 0 1rem}
ul.plain{list-style:none;padding:0;margin:0}
ul.results{list-style:none;padding:0;margin:0}
ul.results li{border-bottom:1px solid var(--line);padding:.75rem 0}
ul.results .name{font-weight:700;font-size:1.1rem}
.tags{display:flex;flex-wrap:wrap;gap:.25rem;padding:0;margin:.25rem 0;list-style:none}
.tags li{border:1px solid var(--line);border-radius:999px;padding:0 .5rem;font-size:.8125rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
.table-scroll{overflow-x:auto}
code,pre,kbd{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875rem}
pre{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.75rem;overflow-x:auto}
.install{display:flex;gap:.5rem;align-items:center;margin:.25rem 0}
.install code{flex:1;background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.35rem .5rem;overflow-x:auto;white-space:nowrap}
.install button{padding:.2rem .6rem;font-size:.875rem}
.readme{overflow-wrap:anywhere}
.readme img{max-width:100%;height:auto}
.readme table{display:block;overflow-x:auto}
.readme .task-list-item{list-style:none}
.readme .contains-task-list{padding-left:1.25rem}
.counts{display:flex;gap:2rem;flex-wrap:wrap;margin:1rem 0}
.counts div{font-size:1.5rem;font-weight:700}
.counts span{display:block;font-size:.875rem;font-weight:400;color:var(--muted)}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:2rem}
.pager{display:flex;gap:1rem;margin:1rem 0}
.notice{border:1px solid var(--line);background:var(--panel);border-radius:6px;padding:.75rem 1rem;margin:0 0 1rem}
.error{border:1px solid #cf222e;color:var(--fg);border-radius:6px;padding:.75rem 1rem;margin:0 0 1rem}
.card{max-width:26rem;margin:2rem auto;border:1px solid var(--line);border-radius:8px;padding:1.5rem;background:var(--panel)}
.field{display:flex;flex-direction:column;gap:.25rem;margin:0 0 1rem}
.field input,.field select{width:100%}
fieldset{border:1px solid var(--line);border-radius:6px;margin:0 0 1rem;padding:.75rem}
.checks label{display:block}
.secret{font-family:ui-monospace,monospace;word-break:break-all;background:var(--panel);border:1px solid var(--line);padding:.5rem;border-radius:6px}
#suggestions{position:absolute;top:100%;left:0;right:0;z-index:5;background:var(--bg);border:1px solid var(--line);border-radius:6px;margin:.25rem 0 0;padding:0;list-style:none}
#suggestions:empty{display:none}
#suggestions a{display:block;padding:.4rem .6rem;text-decoration:none;color:var(--fg)}
#suggestions a:hover,#suggestions a:focus{background:var(--panel)}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.hljs-comment,.hljs-quote{color:var(--muted);font-style:italic}
.hljs-keyword,.hljs-selector-tag,.hljs-literal,.hljs-type{color:#cf222e}
.hljs-string,.hljs-regexp,.hljs-addition{color:#0a3069}
.hljs-number,.hljs-attr,.hljs-attribute,.hljs-variable,.hljs-template-variable{color:#0550ae}
.hljs-title,.hljs-section,.hljs-name{color:#6639ba}
.hljs-built_in,.hljs-symbol,.hljs-meta{color:#953800}
.hljs-deletion{color:#82071e}
@media (prefers-color-scheme:dark){.hljs-keyword,.hljs-selector-tag,.hljs-literal,.hljs-type{color:#ff7b72}.hljs-string,.hljs-regexp,.hljs-addition{color:#a5d6ff}.hljs-number,.hljs-attr,.hljs-attribute,.hljs-variable,.hljs-template-variable{color:#79c0ff}.hljs-title,.hljs-section,.hljs-name{color:#d2a8ff}.hljs-built_in,.hljs-symbol,.hljs-meta{color:#ffa657}.hljs-deletion{color:#ffdcd7}}
`

/** The script: copy buttons and search-as-you-type; the pages work without it. */
const SCRIPT = `'use strict';
(function () {
  document.addEventListener('click', function (e) {
    var b = e.target instanceof Element ? e.target.closest('button[data-copy]') : null;
    if (!b) return;
    var text = b.getAttribute('data-copy') || '';
    var done = function () { var old = b.textContent; b.textContent = 'Copied'; setTimeout(function () { b.textContent = old; }, 1500); };
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, function () {});
  });
  document.querySelectorAll('button[data-copy]').forEach(function (b) { b.hidden = false; });
  var input = document.getElementById('q');
  var list = document.getElementById('suggestions');
  var status = document.getElementById('suggest-status');
  if (!input || !list) return;
  var timer = 0, seq = 0;
  input.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = input.value.trim(), mine = ++seq;
      if (q === '') { list.replaceChildren(); return; }
      fetch('/-/web/suggest?q=' + encodeURIComponent(q), { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : { objects: [] }; })
        .then(function (body) {
          if (mine !== seq) return;
          var items = (body.objects || []).map(function (o) {
            var li = document.createElement('li');
            var a = document.createElement('a');
            a.href = o.href;
            a.textContent = o.name + (o.description ? ' \\u2014 ' + o.description : '');
            li.appendChild(a);
            return li;
          });
          list.replaceChildren.apply(list, items);
          if (status) status.textContent = items.length + ' suggestions';
        }, function () {});
    }, 150);
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') list.replaceChildren();
    if (e.key === 'ArrowDown') { var first = list.querySelector('a'); if (first) { e.preventDefault(); first.focus(); } }
  });
  list.addEventListener('keydown', function (e) {
    var a = e.target instanceof Element ? e.target.closest('a') : null;
    if (!a) return;
    var li = a.parentElement;
    if (e.key === 'ArrowDown' && li && li.nextElementSibling) { e.preventDefault(); li.nextElementSibling.querySelector('a').focus(); }
    if (e.key === 'ArrowUp') { e.preventDefault(); if (li && li.previousElementSibling) li.previousElementSibling.querySelector('a').focus(); else input.focus(); }
    if (e.key === 'Escape') { list.replaceChildren(); input.focus(); }
  });
})();
`

function asset(name: string, ext: string, type: string, text: string): Asset {
  const body = Buffer.from(text)
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12)
  const file = `${name}.${hash}.${ext}`
  return { file, path: `/-/web/static/${file}`, type, body }
}

/** The assets for one branding. */
export interface Assets {
  css: Asset
  js: Asset
  /** By file name, for the static route. */
  byFile: Map<string, Asset>
}

/**
 * Builds the stylesheet (with `primaryColor` as the accent) and the script.
 * @param primaryColor `#rgb` or `#rrggbb` (config `web.primary_color`, validated by the schema)
 */
export function buildAssets(primaryColor: string): Assets {
  const css = asset('app', 'css', 'text/css; charset=utf-8', STYLE.replaceAll('__PRIMARY__', primaryColor))
  const js = asset('app', 'js', 'text/javascript; charset=utf-8', SCRIPT)
  return { css, js, byFile: new Map([css, js].map((a) => [a.file, a])) }
}
