// The demo's report folder (src/app/demo/report.ts): the files it writes, the terminal table, and the
// page in a real browser (Debian's chromium driven by playwright-core, from file://, offline): no
// console errors, no request leaves the folder, every chart drawn, every image loaded, the
// before/after grid complete, usable at phone width. Without /usr/bin/chromium the browser test
// skips (and fails under CI=true).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { formatMetricTable, writeDemoReport } from '../src/app/demo/report.js';
import type { DemoReport, Hit } from '../src/app/demo/report.js';
import { DemoReportError } from '../src/errors.js';

// Code run inside the page sees the DOM; this project compiles without lib.dom.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any, getComputedStyle: any;

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const hasChromium = existsSync(CHROMIUM);

const METRICS = ['precision_at_k', 'recall_at_k', 'f1_score_at_k', 'hit_at_k', 'average_precision', 'reciprocal_rank', 'r_precision', 'dcg_at_k', 'ndcg_at_k', 'recall_at_1', 'recall_at_5', 'recall_at_10'];
const VARIANTS = ['zero-shot', 'WiSE-FT α=0.25', 'WiSE-FT α=0.5', 'fine-tuned'];
/** R@1 of the en queries per variant: in-domain rises with α; shifted peaks in between (the WiSE-FT effect). */
const R1: Record<string, { 'in-domain': number; shifted: number }> = {
  'zero-shot': { 'in-domain': 0.118, shifted: 0.097 },
  'WiSE-FT α=0.25': { 'in-domain': 0.236, shifted: 0.171 },
  'WiSE-FT α=0.5': { 'in-domain': 0.341, shifted: 0.231 },
  'fine-tuned': { 'in-domain': 0.412, shifted: 0.184 },
};
const QUERY_SCALE: Record<string, number> = { en: 1, de: 0.62, tags: 0.81 };

/** Plausible metrics at k = 10 for one R@1 (one relevant image per query, so R@k = Hit@k). */
function metricsFor(r1: number): Record<string, number> {
  const hit = Math.min(1, r1 * 1.9 + 0.08);
  const r5 = Math.min(hit, r1 * 1.6 + 0.04);
  const rr = r1 * 0.7 + hit * 0.2;
  return {
    precision_at_k: hit / 10, recall_at_k: hit, f1_score_at_k: (2 * hit) / 11, hit_at_k: hit, average_precision: rr,
    reciprocal_rank: rr, r_precision: r1, dcg_at_k: rr * 1.1, ndcg_at_k: rr * 1.05, recall_at_1: r1, recall_at_5: r5, recall_at_10: hit,
  };
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-demo-report-'));
const outDir = path.join(tmp, 'report');
let data: DemoReport;

async function png(file: string, rgb: [number, number, number]): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toFile(file);
  return file;
}

before(async () => {
  const img = {
    smile: await png(path.join(tmp, 'data', 'images', 'google', '1F600.png'), [250, 204, 21]),
    smileOpen: await png(path.join(tmp, 'data', 'images', 'openmoji', '1F600.png'), [234, 179, 8]),
    cat: await png(path.join(tmp, 'data', 'images', 'google', '1F431.png'), [249, 115, 22]),
    heart: await png(path.join(tmp, 'data', 'images', 'twitter', '2764-FE0F.png'), [220, 38, 38]),
    tree: await png(path.join(tmp, 'data', 'images', 'twitter', '1F332.png'), [22, 163, 74]),
    // An odd name, and a second folder named 'google' whose file collides with the first one's copy name.
    odd: await png(path.join(tmp, 'data', 'images', 'google', 'man tech & "laptop".png'), [37, 99, 235]),
    smileOther: await png(path.join(tmp, 'other', 'google', '1F600.png'), [100, 100, 100]),
  };
  const hit = (key: string, label: string, image: string, score: number, relevant = false): Hit => ({ key, label, image, score, relevant });
  data = {
    title: 'clipfit demo: fine-tuning ViT-T-8-64::icons on emoji',
    createdAt: '2025-06-01T12:00:00.000Z',
    setup: { 'base model': 'ViT-T-8-64::icons', 'train pairs': 6120, epochs: 3, 'batch size': 64, lr: 0.00003, 'wall time s': 412.7, 'eval images (in-domain)': 1530, 'eval images (shifted)': 1489 },
    metricNames: METRICS,
    results: Object.keys(QUERY_SCALE).flatMap((q) =>
      VARIANTS.flatMap((v) => (['in-domain', 'shifted'] as const).map((e) => ({ variant: v, evalSet: e, querySet: q, metrics: metricsFor(R1[v]![e] * QUERY_SCALE[q]!) }))),
    ),
    history: [
      { epoch: 0, metrics: { 'clip-text-to-clip-vision_hit_at_k': 0.304, 'clip-text-to-clip-vision_recall_at_1': 0.118 } },
      { epoch: 1, metrics: { train_loss: 2.91, 'clip-text-to-clip-vision_hit_at_k': 0.52, 'clip-text-to-clip-vision_recall_at_1': 0.265 } },
      { epoch: 2, metrics: { train_loss: 2.37, 'clip-text-to-clip-vision_hit_at_k': 0.63, 'clip-text-to-clip-vision_recall_at_1': 0.371 } },
      { epoch: 3, metrics: { train_loss: 2.05, 'clip-text-to-clip-vision_hit_at_k': 0.68, 'clip-text-to-clip-vision_recall_at_1': 0.412 } },
    ],
    stepLoss: Array.from({ length: 30 }, (_, i) => ({ step: i + 1, loss: 3.4 * Math.exp(-i / 25) + 0.05 * Math.sin(i) })),
    examples: [
      {
        query: 'grinning face',
        relevantKey: '1F600',
        zeroShot: [hit('1F431', 'cat face', img.cat, 0.281), hit('1F600', 'grinning face', img.smile, 0.274, true), hit('1F332', 'evergreen tree', img.tree, 0.201)],
        fineTuned: [hit('1F600', 'grinning face', img.smile, 0.412, true), hit('1F600', 'grinning face', img.smileOpen, 0.388, true), hit('1F431', 'cat face', img.cat, 0.233)],
      },
      {
        query: '<b>red</b> heart & "love" </script>',
        relevantKey: '2764-FE0F',
        zeroShot: [hit('1F332', 'evergreen tree', img.tree, 0.19), hit('1F468-200D-1F4BB', 'man technologist', img.odd, 0.18), hit('2764-FE0F', 'red heart', img.heart, 0.17, true)],
        fineTuned: [hit('2764-FE0F', 'red heart', img.heart, 0.355, true), hit('1F600', 'grinning face', img.smileOther, 0.21), hit('1F431', 'cat face', img.cat, 0.2)],
      },
      {
        query: 'Katzengesicht',
        relevantKey: '1F431',
        zeroShot: [hit('1F600', 'grinning face', img.smile, 0.22), hit('1F332', 'evergreen tree', img.tree, 0.2), hit('2764-FE0F', 'red heart', img.heart, 0.19)],
        fineTuned: [hit('1F431', 'cat face', img.cat, 0.301, true), hit('1F600', 'grinning face', img.smile, 0.25), hit('1F332', 'evergreen tree', img.tree, 0.24)],
      },
    ],
    notes: ['WiSE-FT mixes the weights: θ(α) = (1 − α)·θ₀ + α·θ₁.'],
  };
  await writeDemoReport(outDir, data);
});

after(() => rmSync(tmp, { recursive: true, force: true }));

test('the folder: metrics.json round-trips, img/ holds a copy of every image, the page references nothing outside', () => {
  assert.deepEqual(JSON.parse(readFileSync(path.join(outDir, 'metrics.json'), 'utf8')), data);
  const copies = readdirSync(path.join(outDir, 'img')).sort();
  assert.deepEqual(copies, ['google-1F431.png', 'google-1F600-2.png', 'google-1F600.png', 'google-man_tech_laptop_.png', 'openmoji-1F600.png', 'twitter-1F332.png', 'twitter-2764-FE0F.png']);
  // The copies are the files (same bytes), the colliding name kept apart.
  assert.deepEqual(readFileSync(path.join(outDir, 'img', 'google-1F600.png')), readFileSync(data.examples[0]!.zeroShot[1]!.image));
  assert.deepEqual(readFileSync(path.join(outDir, 'img', 'google-1F600-2.png')), readFileSync(data.examples[1]!.fineTuned[1]!.image));

  const html = readFileSync(path.join(outDir, 'index.html'), 'utf8');
  assert.ok(!html.includes(tmp), 'the page names a path of the temp dir');
  assert.ok(!/["'(=]\s*\/(?:tmp|home|work|usr|root)\//.test(html), 'absolute path in the page');
  assert.ok(!/file:/.test(html), 'file: URL in the page');
  // The only http URL allowed is the SVG namespace name inside chart.js (an identifier, never fetched).
  const urls = [...html.matchAll(/https?:\/\/[^\s"'<>)]+/g)].map((m) => m[0]);
  assert.deepEqual([...new Set(urls)], ['http://www.w3.org/2000/svg']);
  assert.ok(!/<script[^>]+src=|<link[^>]+href=|@import|url\(/.test(html), 'external script, stylesheet or url()');
  // The query text is escaped, not markup; no early end of a script element.
  assert.ok(html.includes('&lt;b&gt;red&lt;/b&gt; heart &amp; &quot;love&quot; &lt;/script&gt;'));
  assert.equal(html.match(/<\/script>/g)!.length, 2);
});

test('the terminal table: every variant, eval set, query set and metric; fixed width; best per column within an eval set', () => {
  const table = formatMetricTable(data);
  for (const v of VARIANTS) assert.ok(table.includes(v), `variant ${v} missing`);
  for (const q of ['en', 'de', 'tags']) assert.ok(table.includes(`queries: ${q}`), `query set ${q} missing`);
  for (const m of METRICS) assert.ok(table.includes(m), `metric ${m} missing`);
  const blocks = table.split(/\n(?=queries: )/);
  assert.equal(blocks.length, 3);
  assert.ok(blocks[0]!.startsWith('queries: en'));
  const lines = blocks[0]!.split('\n');
  const header = lines[1]!;
  const rowsOf = (variant: string): string[] => {
    const i = lines.findIndex((l) => l.startsWith(variant));
    return [lines[i]!, lines[i + 1]!];
  };
  // Column of R@1 (not R@10): its right edge in the header is the right edge of the value + marker.
  const m = / R@1(?= |$)/.exec(header)!;
  const end = m.index + m[0].length;
  const cell = (line: string): string => line.slice(end - 6, end);
  const [ftIn, ftShift] = rowsOf('fine-tuned');
  const [wiseIn, wiseShift] = rowsOf('WiSE-FT α=0.5');
  assert.match(ftIn!, /in-domain/);
  assert.equal(cell(ftIn!), '0.412*'); // best in-domain R@1
  assert.equal(cell(ftShift!), '0.184 ');
  assert.equal(cell(wiseIn!), '0.341 ');
  assert.equal(cell(wiseShift!), '0.231*'); // best shifted R@1
  // Every row of the block is as long as or shorter than the rule under the header.
  for (const l of lines.slice(3).filter((l) => l && !l.startsWith('*'))) assert.ok(l.length <= lines[2]!.length, l);
});

test('a missing image is a DemoReportError naming the example and hit', async () => {
  const bad: DemoReport = structuredClone(data);
  bad.examples[2]!.fineTuned[1]!.image = path.join(tmp, 'nowhere', 'x.png');
  await assert.rejects(writeDemoReport(path.join(tmp, 'bad'), bad), (e: unknown) => e instanceof DemoReportError && /examples\[2\]\.fineTuned\[1\]\.image/.test(e.message) && e.message.includes('x.png'));
});

test('the page in headless chromium (file://): charts drawn, images loaded, grid complete, no overflow at 375 px', async (t) => {
  if (!hasChromium) {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing under CI (apt-get install -y chromium)`);
    t.skip(`${CHROMIUM} missing`);
    return;
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.type() === 'warning') errors.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(path.join(outDir, 'index.html')).href;
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelectorAll('.chart-box svg').length === document.querySelectorAll('.chart-box').length);

    const base = pathToFileURL(outDir).href + '/';
    for (const r of requests) assert.ok(r.startsWith(base), `request outside the report folder: ${r}`);

    // Charts: loss per epoch, loss per step, in-domain metrics per epoch, WiSE-FT.
    const charts = await page.evaluate(() =>
      [...document.querySelectorAll('.chart-box')].map((box: any) => ({
        id: box.id,
        series: [...box.querySelectorAll('svg g.chart-series')].map((g: any) => ({
          name: g.getAttribute('data-series'),
          points: (g.querySelector('polyline')?.getAttribute('points') ?? '').trim().split(/\s+/).filter(Boolean).length,
        })),
      })),
    );
    assert.deepEqual(
      charts.map((c) => c.id),
      ['chart-loss-epoch', 'chart-loss-step', 'chart-metrics-epoch', 'chart-wise'],
    );
    for (const c of charts) {
      assert.ok(c.series.length > 0, `${c.id}: no series`);
      for (const s of c.series) assert.ok(s.points >= 2, `${c.id}/${s.name}: ${s.points} points`);
    }
    const byId = Object.fromEntries(charts.map((c) => [c.id, c.series]));
    assert.deepEqual(byId['chart-loss-epoch'], [{ name: 'train_loss', points: 3 }]); // no loss at epoch 0
    assert.deepEqual(byId['chart-loss-step'], [{ name: 'train loss', points: 30 }]);
    assert.deepEqual(byId['chart-metrics-epoch'], [{ name: 'R@1', points: 4 }, { name: 'Hit@k', points: 4 }]); // prefix stripped
    assert.deepEqual(byId['chart-wise'], [
      { name: 'R@1 in-domain', points: 4 },
      { name: 'R@1 shifted', points: 4 },
      { name: 'Hit@k in-domain', points: 4 },
      { name: 'Hit@k shifted', points: 4 },
    ]);
    const wiseTitles = await page.evaluate(() => [...document.querySelectorAll('#chart-wise circle > title')].map((x: any) => x.textContent));
    assert.ok(wiseTitles.includes('R@1 shifted, α 0.5: 0.231'), wiseTitles.join(' | '));

    // Every image loaded from the folder's img/.
    const imgs = await page.evaluate(() => [...document.querySelectorAll('img')].map((i: any) => ({ src: i.getAttribute('src'), w: i.naturalWidth, complete: i.complete })));
    assert.equal(imgs.length, 18);
    for (const i of imgs) {
      assert.ok(i.src.startsWith('img/'), i.src);
      assert.ok(i.complete && i.w === 64, `${i.src} did not load (naturalWidth ${i.w})`);
    }

    // The grid: one row per example, three zero-shot and three fine-tuned hits each, relevant ones in green.
    const grid = await page.evaluate(() =>
      [...document.querySelectorAll('#examples .example')].map((ex: any) => ({
        query: ex.querySelector('.query h3').textContent,
        markup: ex.querySelector('.query h3').children.length,
        sides: [...ex.querySelectorAll('.hits')].map((h: any) => ({
          title: h.querySelector('h4').textContent,
          imgs: h.querySelectorAll('img').length,
          relevant: [...h.querySelectorAll('li')].map((li: any) => li.classList.contains('relevant')),
          borders: [...h.querySelectorAll('img')].map((i: any) => getComputedStyle(i).borderTopColor),
        })),
      })),
    );
    assert.equal(grid.length, data.examples.length);
    grid.forEach((row, i) => {
      const ex = data.examples[i]!;
      assert.equal(row.query, `“${ex.query}”`);
      assert.equal(row.markup, 0);
      assert.deepEqual(row.sides.map((s) => s.title), ['zero-shot', 'fine-tuned']);
      assert.deepEqual(row.sides.map((s) => s.imgs), [ex.zeroShot.length, ex.fineTuned.length]);
      assert.deepEqual(row.sides[0]!.relevant, ex.zeroShot.map((h) => h.relevant));
      assert.deepEqual(row.sides[1]!.relevant, ex.fineTuned.map((h) => h.relevant));
      row.sides.forEach((s, k) =>
        s.borders.forEach((b, j) => assert.equal(b === 'rgb(22, 163, 74)', (k === 0 ? ex.zeroShot : ex.fineTuned)[j]!.relevant, `example ${i} side ${k} hit ${j}: border ${b}`)),
      );
    });

    // The main table: en queries, 4 variants × 2 eval sets; bold cells are the best per eval set.
    const main = await page.evaluate(() => {
      const table = document.querySelector('#metrics > .table-wrap table');
      const heads = [...table.querySelectorAll('thead th')].map((th: any) => th.textContent);
      const r1 = heads.indexOf('R@1');
      return {
        querySet: table.getAttribute('data-query-set'),
        rows: [...table.querySelectorAll('tbody tr')].map((tr: any) => ({ evalSet: tr.children[1].textContent, r1: tr.children[r1].textContent, best: tr.children[r1].classList.contains('best') })),
        others: [...document.querySelectorAll('details.other-query-sets table')].map((x: any) => x.getAttribute('data-query-set')),
      };
    });
    assert.equal(main.querySet, 'en');
    assert.equal(main.rows.length, 8);
    assert.deepEqual(main.rows.filter((r) => r.best).map((r) => [r.evalSet, r.r1]), [['shifted', '0.231'], ['in-domain', '0.412']]);
    assert.deepEqual(main.others, ['de', 'tags']);

    // Phone width: the page does not scroll sideways; the wide tables scroll inside their own box.
    await page.setViewportSize({ width: 375, height: 800 });
    const widths = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
      body: document.body.scrollWidth,
      table: [...document.querySelectorAll('.table-wrap')].map((w: any) => ({ scroll: w.scrollWidth, client: w.clientWidth })),
    }));
    assert.ok(widths.page <= 375 && widths.body <= 375, `page ${widths.page} px / body ${widths.body} px wide at 375`);
    assert.ok(widths.table[0]!.scroll > widths.table[0]!.client && widths.table[0]!.client <= 375, JSON.stringify(widths.table[0]));

    assert.deepEqual(errors, []);
    await context.close();
  } finally {
    await browser.close();
  }
});
