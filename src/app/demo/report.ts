// The demo's report folder: index.html (tables, inline-SVG charts, the before/after grid),
// metrics.json (the whole DemoReport) and img/ (a copy of every image the page shows), so that the
// folder is self-contained: relative links only, no network, no absolute paths in the page. The
// charts are drawn by src/server/web/chart.js, inlined into a module script at write time; the page
// carries a Content-Security-Policy that forbids every request outside its own folder.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DemoReportError } from '../../errors.js';
import { WEB_ROOT } from '../../server/static.js';
import { buildCharts } from './report_charts.js';
import type { DemoReport, Hit } from './report_types.js';
import type { ChartSpec } from './report_charts.js';
import { escapeHtml, metricTableHtml, querySets } from './report_table.js';

export { formatMetricTable } from './report_table.js';

export type { DemoReport, Hit } from './report_types.js';

const CHART_JS = path.join(WEB_ROOT, 'chart.js');

/** A file name made of [A-Za-z0-9._-] only, never starting with a dot. */
const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || 'image';

/**
 * Copies every image of the examples into dir/img as '<style>-<basename>' (style = the image's
 * folder, e.g. images/google/1f600.png → google-1f600.png), a suffix keeping distinct files apart.
 * Returns the page-relative URL of each source path.
 */
async function copyImages(dir: string, data: DemoReport): Promise<Map<string, string>> {
  const imgDir = path.join(dir, 'img');
  await fsp.mkdir(imgDir, { recursive: true });
  const urls = new Map<string, string>();
  const taken = new Set<string>();
  for (const [i, ex] of data.examples.entries()) {
    for (const side of ['zeroShot', 'fineTuned'] as const) {
      for (const [j, hit] of ex[side].entries()) {
        const field = `examples[${i}].${side}[${j}].image`;
        if (typeof hit.image !== 'string' || !hit.image) throw new DemoReportError(field, 'no image path');
        const src = path.resolve(hit.image);
        if (urls.has(src)) continue;
        const st = await fsp.stat(src).catch((e: unknown) => {
          throw new DemoReportError(field, `cannot read '${src}'`, { cause: e });
        });
        if (!st.isFile()) throw new DemoReportError(field, `'${src}' is not a file`);
        const ext = path.extname(src);
        const stem = safeName(`${path.basename(path.dirname(src))}-${path.basename(src, ext)}`);
        const safeExt = safeName(ext.slice(1)).toLowerCase();
        let name = `${stem}.${safeExt || 'png'}`;
        for (let n = 2; taken.has(name); n++) name = `${stem}-${n}.${safeExt || 'png'}`;
        taken.add(name);
        await fsp.copyFile(src, path.join(imgDir, name));
        urls.set(src, `img/${encodeURIComponent(name)}`);
      }
    }
  }
  return urls;
}

/** Source of chart.js made fit for inlining: it must stand alone (no imports); its exports become plain declarations. */
async function chartSource(): Promise<string> {
  const src = await fsp.readFile(CHART_JS, 'utf8').catch((e: unknown) => {
    throw new DemoReportError('charts', `cannot read the chart module '${CHART_JS}'`, { cause: e });
  });
  if (/^\s*import\s/m.test(src)) throw new DemoReportError('charts', `'${CHART_JS}' imports other modules and cannot be inlined`);
  return src.replace(/^export\s+(?=(?:async\s+)?function|const|let|class)/gm, '');
}

/** JSON safe inside a <script> element: '<' is escaped, so no '</script>' or '<!--' can end it early. */
const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c');

function fmtSetup(v: string | number): string {
  return typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toPrecision(6))) : String(v);
}

function hitHtml(hit: Hit, rank: number, url: string): string {
  const label = escapeHtml(hit.label);
  return [
    `<li class="hit${hit.relevant ? ' relevant' : ''}">`,
    `<figure><img src="${url}" alt="${label}" title="${escapeHtml(hit.key)}: ${label}" width="64" height="64" loading="eager">`,
    `<figcaption><span class="rank">${rank}.</span> <span class="label">${label}</span> <span class="score">${escapeHtml(hit.score.toFixed(3))}</span>${hit.relevant ? ' <span class="mark" aria-label="relevant">✓</span>' : ''}</figcaption></figure></li>`,
  ].join('');
}

function examplesHtml(data: DemoReport, urls: Map<string, string>): string {
  const side = (title: string, hits: Hit[]): string =>
    `<div class="hits"><h4>${title}</h4><ol>${hits.map((h, k) => hitHtml(h, k + 1, urls.get(path.resolve(h.image))!)).join('')}</ol></div>`;
  return data.examples
    .map(
      (ex) =>
        `<article class="example"><div class="query"><h3>“${escapeHtml(ex.query)}”</h3><p>relevant: <code>${escapeHtml(ex.relevantKey)}</code></p></div>` +
        `${side('zero-shot', ex.zeroShot)}${side('fine-tuned', ex.fineTuned)}</article>`,
    )
    .join('\n');
}

const CSS = `*,*::before,*::after{box-sizing:border-box}
:root{--fg:#1f2937;--muted:#6b7280;--bg:#f9fafb;--card:#fff;--line:#e5e7eb;--good:#16a34a;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0;line-height:1.45;overflow-wrap:anywhere}
main{max-width:1200px;margin:0 auto;padding:0 12px 24px}
h1{font-size:1.35rem;margin:16px 0 4px}h2{font-size:1.15rem;margin:28px 0 8px}h3{font-size:1rem;margin:0}h4{font-size:.85rem;margin:0 0 4px;color:var(--muted);font-weight:600}
.muted,caption{color:var(--muted);font-size:.85rem}
img,svg{max-width:100%}
dl.setup{display:grid;grid-template-columns:minmax(0,max-content) minmax(0,1fr);gap:2px 16px;margin:8px 0;font-size:.9rem}
dl.setup dt{color:var(--muted)}dl.setup dd{margin:0;font-variant-numeric:tabular-nums}
.table-wrap{overflow-x:auto;max-width:100%;margin:8px 0;background:var(--card);border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;font-size:.85rem}caption{text-align:left;padding:6px 8px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best strong{color:#15803d}
tr.variant-start>*{border-top:2px solid var(--line)}abbr{text-decoration:none}
details{margin:12px 0}summary{cursor:pointer;font-weight:600}
.charts{display:grid;grid-template-columns:minmax(0,1fr);gap:12px}
@media (min-width:900px){.charts{grid-template-columns:repeat(2,minmax(0,1fr))}}
.chart-box{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px;min-width:0}
svg.chart{display:block;width:100%;height:auto;font-size:12px}
.chart-title{font-weight:600;font-size:14px;fill:var(--fg)}.chart-axes text,.chart-legend text{fill:var(--muted)}
.chart-grid{stroke:var(--line)}.chart-axis,.chart-tick{stroke:#6b7280}.chart-empty{fill:var(--muted)}
.example{display:grid;grid-template-columns:minmax(0,1fr);gap:8px;padding:10px;margin:10px 0;background:var(--card);border:1px solid var(--line);border-radius:8px}
@media (min-width:760px){.example{grid-template-columns:minmax(0,1fr) minmax(0,2fr) minmax(0,2fr)}}
.query p{margin:2px 0 0;font-size:.8rem;color:var(--muted)}
.hits ol{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px}
.hit figure{margin:0;width:76px}
.hit img{display:block;width:70px;height:70px;object-fit:contain;border:3px solid transparent;border-radius:6px;background:#f3f4f6}
.hit.relevant img{border-color:var(--good)}
.hit figcaption{font-size:.7rem;line-height:1.25;display:grid;grid-template-columns:auto minmax(0,1fr);column-gap:2px}
.hit .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.hit .score{grid-column:1/-1;color:var(--muted);font-variant-numeric:tabular-nums}.hit .mark{color:var(--good);font-weight:700}
footer{margin-top:24px;font-size:.8rem;color:var(--muted)}`;

// Draws each embedded chart spec into its container; lineChart's dot tooltips say "epoch", so
// charts over steps or α get their own word.
const DRAW = `
const specs = JSON.parse(document.getElementById('chart-data').textContent);
for (const c of specs) {
  const box = document.getElementById(c.id);
  if (!box) continue;
  const svg = lineChart(c.spec);
  if (c.xName !== 'epoch') for (const t of svg.querySelectorAll('circle > title')) t.textContent = t.textContent.replace(', epoch ', ', ' + c.xName + ' ');
  box.replaceChildren(svg);
}`;

function pageHtml(data: DemoReport, charts: ChartSpec[], chartJs: string, urls: Map<string, string>): string {
  const [main, ...others] = querySets(data);
  const setup = Object.entries(data.setup)
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(fmtSetup(v))}</dd>`)
    .join('');
  const otherTables = others.length
    ? `<details class="other-query-sets"><summary>Other query sets: ${others.map(escapeHtml).join(', ')}</summary>\n${others.map((q) => metricTableHtml(data, q)).join('\n')}\n</details>`
    : '';
  const chartBoxes = charts.map((c) => `<div class="chart-box" id="${c.id}" data-chart="${c.id}"><p class="muted">${escapeHtml(c.spec.title)} (needs JavaScript)</p></div>`).join('\n');
  const notes = data.notes?.length ? `<h2>Notes</h2><ul class="notes">${data.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>${escapeHtml(data.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header><h1>${escapeHtml(data.title)}</h1><p class="muted">written ${escapeHtml(data.createdAt)} · numbers also in <a href="metrics.json">metrics.json</a></p>
<dl class="setup">${setup}</dl></header>
<section id="metrics"><h2>Retrieval metrics</h2>
${main === undefined ? '<p class="muted">no results</p>' : metricTableHtml(data, main)}
${otherTables}
</section>
<section id="training"><h2>Training</h2>
<div class="charts">
${chartBoxes}
</div></section>
<section id="examples"><h2>Before and after: top results, zero-shot vs fine-tuned</h2>
<p class="muted">green border: the relevant image for the query</p>
${examplesHtml(data, urls)}
</section>
${notes}
<footer>clipfit demo report</footer>
</main>
<script type="application/json" id="chart-data">${scriptJson(charts)}</script>
<script type="module">
${chartJs}
${DRAW}
</script>
</body>
</html>
`;
}

/** Writes dir/index.html, dir/metrics.json and dir/img/; returns the paths of the two files. */
export async function writeDemoReport(dir: string, data: DemoReport): Promise<{ html: string; json: string }> {
  if (!Array.isArray(data.metricNames) || !data.metricNames.length) throw new DemoReportError('metricNames', 'empty: the tables need at least one metric');
  await fsp.mkdir(dir, { recursive: true });
  const urls = await copyImages(dir, data);
  const charts = buildCharts(data);
  const html = pageHtml(data, charts, await chartSource(), urls);
  const htmlPath = path.join(dir, 'index.html');
  const jsonPath = path.join(dir, 'metrics.json');
  await fsp.writeFile(jsonPath, `${JSON.stringify(data, null, 2)}\n`);
  await fsp.writeFile(htmlPath, html);
  return { html: htmlPath, json: jsonPath };
}
