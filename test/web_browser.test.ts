// The web page of `clipfit serve` in a real browser (Debian's chromium driven by playwright-core)
// against the real server on 127.0.0.1. Two randomly initialised tiny CLIPs serve as primary and
// compare model; what the page must show first is computed here, independently of the server, by
// encoding the captions and images with the same weights and ranking by cosine. Without
// /usr/bin/chromium the tests skip (and fail under CI=true), like a missing fixture.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { createModelFolder } from '../src/models/clip/weights/init.js';
import { RunStore } from '../src/runs/store.js';
import { createServer } from '../src/server/server.js';
import type { ClipfitServer } from '../src/server/server.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { makeShapesCsv } from './fit_data.js';
import { requireFixture } from './fixtures.js';

// Code run inside the page (page.evaluate and friends) sees the DOM; this project compiles without
// lib.dom, so those few globals are declared here, for this file only.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any, sessionStorage: any, DataTransfer: any, DragEvent: any;

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const RUN_NAME = 'web-chart-run';
const TOKEN = 'web-test-token';

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing under CI (apt-get install -y chromium)`);
const bpe = requireFixture('bpe_simple_vocab_16e6.txt.gz');
const ready = hasChromium && bpe !== null;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-web-'));
let browser: Browser;
let server: ClipfitServer;
let tokenServer: ClipfitServer;
let url = '';
let tokenUrl = '';

interface Img {
  id: string;
  file: string;
  caption: string;
}
/** Indexed through the API in before(); the last two are added by the page (file input, drop). */
let indexed: Img[] = [];
let uploads: Img[] = [];
let captions: string[] = [];
let shapesDir = '';
/** Unit embeddings per model: caption → vector, image id → vector. */
const emb: Record<'primary' | 'compare', { text: Map<string, Float32Array>; image: Map<string, Float32Array> }> = {
  primary: { text: new Map(), image: new Map() },
  compare: { text: new Map(), image: new Map() },
};

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** Image ids ranked by cosine to `caption` under `model`, with the scores. */
function ranking(model: 'primary' | 'compare', caption: string, ids: readonly string[]): { id: string; score: number }[] {
  const q = emb[model].text.get(caption)!;
  return ids.map((id) => ({ id, score: dot(q, emb[model].image.get(id)!) })).sort((a, b) => b.score - a.score);
}

/** The caption whose top image (among `ids`) wins by the widest margin, optionally requiring that image. */
function clearestQuery(model: 'primary' | 'compare', ids: readonly string[], mustWin?: string): { caption: string; order: { id: string; score: number }[]; margin: number } {
  let best: { caption: string; order: { id: string; score: number }[]; margin: number } | undefined;
  for (const caption of captions) {
    const order = ranking(model, caption, ids);
    if (mustWin && order[0]!.id !== mustWin) continue;
    const margin = order[0]!.score - order[1]!.score;
    if (!best || margin > best.margin) best = { caption, order, margin };
  }
  assert.ok(best, `no caption ranks ${mustWin} first under the ${model} model`);
  return best;
}

async function encodeAll(dir: string, model: 'primary' | 'compare', images: readonly Img[]): Promise<void> {
  const m = await ClipModel.load(dir);
  try {
    const t = await m.encodeTexts(captions, { normalize: true });
    const im = await m.encodeImages(images.map((x) => x.file), { normalize: true });
    const d = m.embedDim;
    captions.forEach((c, i) => emb[model].text.set(c, t.data.slice(i * d, (i + 1) * d)));
    images.forEach((x, i) => emb[model].image.set(x.id, im.data.slice(i * d, (i + 1) * d)));
  } finally {
    await m.release();
  }
}

before(async () => {
  if (!ready) return;
  const home = path.join(tmp, 'home');
  const primaryDir = path.join(tmp, 'primary-model');
  const compareDir = path.join(tmp, 'compare-model');
  await createModelFolder(primaryDir, 'tiny-test', { kind: 'bpe-gz', file: bpe! }, 11);
  await createModelFolder(compareDir, 'tiny-test', { kind: 'bpe-gz', file: bpe! }, 22);

  const shapes = await makeShapesCsv(24);
  shapesDir = shapes.dir;
  const all = shapes.captions.map((caption, i) => ({ id: `shape${i}`, file: path.join(shapes.dir, `img${String(i).padStart(3, '0')}.png`), caption }));
  // Candidate queries: the shapes' own captions and some other phrases (a random model ranks by
  // chance, so more candidates make it likelier that some query puts a given image first).
  const extra = ['a photo of a cat', 'an empty white page', 'a colourful drawing', 'two dogs on a beach', 'a bowl of soup', 'a city at night', 'a red car', 'a mountain lake', 'a wooden chair', 'an old map', 'a bright logo', 'a pair of shoes', 'a green field', 'a dark room', 'a small bird', 'a striped shirt', 'a round clock', 'a yellow flower', 'a blue sky', 'a plate of fruit'];
  captions = [...new Set([...shapes.captions, ...extra])];
  await encodeAll(primaryDir, 'primary', all);
  await encodeAll(compareDir, 'compare', all);
  // Six shapes go in the index through the API; two more are added by the page: the pair that some
  // query ranks first (each, with the other one indexed too) by the widest margin.
  indexed = [0, 7, 14, 21, 6, 13].map((i) => all[i]!);
  const base = indexed.map((x) => x.id);
  const pool = all.filter((x) => !base.includes(x.id));
  const margin = (id: string, ids: string[]): number => {
    try {
      return clearestQuery('primary', ids, id).margin;
    } catch {
      return -1;
    }
  };
  let best = -Infinity;
  for (const a of pool)
    for (const b of pool) {
      if (a === b) continue;
      const m = Math.min(margin(a.id, [...base, a.id, b.id]), margin(b.id, [...base, a.id, b.id]));
      if (m > best) [best, uploads] = [m, [a, b]];
    }

  // A finished run with three epochs of metrics for the run page.
  const store = RunStore.open(home);
  const options = { model: primaryDir, trainData: shapes.csv, runName: RUN_NAME } as FitOptions;
  store.createRun({ options, inProcess: true });
  store.markStarted(RUN_NAME, process.pid);
  const curve: [number, number, number][] = [[2.1, 2.3, 0.2], [1.4, 1.7, 0.45], [0.9, 1.5, 0.6]];
  curve.forEach(([train, val, r1], e) => store.addMetrics(RUN_NAME, e + 1, { train_loss: train, val_loss: val, 'clip-text-to-clip-vision_recall_at_1': r1 }));
  store.finish(RUN_NAME, 'FINISHED');

  server = await createServer({ model: primaryDir, compare: compareDir, index: path.join(tmp, 'index'), home, threads: 1 });
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const res = await fetch(`${url}/index`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items: indexed.map((x) => ({ id: x.id, uri: `data:image/png;base64,${readFileSync(x.file).toString('base64')}`, metadata: { caption: x.caption } })) }),
  });
  assert.equal(res.status, 201, await res.clone().text());

  tokenServer = await createServer({ model: primaryDir, index: path.join(tmp, 'index-token'), home, threads: 1, token: TOKEN });
  tokenUrl = await tokenServer.app.listen({ host: '127.0.0.1', port: 0 });
  const res2 = await fetch(`${tokenUrl}/index`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ items: indexed.slice(0, 2).map((x) => ({ id: x.id, uri: `data:image/png;base64,${readFileSync(x.file).toString('base64')}`, metadata: { caption: x.caption } })) }),
  });
  assert.equal(res2.status, 201, await res2.clone().text());

  browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await tokenServer?.close();
  RunStore.open(path.join(tmp, 'home')).close();
  rmSync(tmp, { recursive: true, force: true });
  if (shapesDir) rmSync(shapesDir, { recursive: true, force: true });
});

function skipUnlessReady(t: TestContext): boolean {
  if (ready) return false;
  t.skip(hasChromium ? 'bpe fixture missing' : `${CHROMIUM} missing (apt-get install -y chromium)`);
  return true;
}

/** A fresh context and page; page errors fail the test. */
async function openPage(t: TestContext, width = 1100, base = url): Promise<{ ctx: BrowserContext; page: Page; errors: string[] }> {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  t.after(() => ctx.close());
  await page.goto(`${base}/`);
  return { ctx, page, errors };
}

/** Submit `query` with the keyboard and wait for the result columns. */
async function search(page: Page, query: string, columns = 1): Promise<void> {
  await page.fill('#query', query);
  await page.press('#query', 'Enter');
  await page.waitForFunction(
    ([q, n]) => document.getElementById('search-status')?.textContent?.includes(q as string) && document.querySelectorAll('.result-column').length === n,
    [query, columns] as const,
  );
}

/** The cards of result column `i`: id, shown score, alt text. */
function cards(page: Page, column: number) {
  return page.$$eval(`.result-column:nth-child(${column + 1}) .card`, (els) =>
    els.map((e) => ({ id: (e as any).dataset['id']!, shown: e.querySelector('.score')!.textContent!, alt: e.querySelector('img')!.getAttribute('alt')! })),
  );
}

const shownScore = (s: string): number => Number(/·\s*(-?[\d.]+)/.exec(s)![1]);

test('a typed query shows the image our own encoders rank first, then the rest in order with their cosines', async (t) => {
  if (skipUnlessReady(t)) return;
  const { page, errors } = await openPage(t);
  const ids = indexed.map((x) => x.id);
  const q = clearestQuery('primary', ids);
  assert.ok(q.margin > 1e-3, `margin ${q.margin} too thin to assert a ranking`);
  await search(page, q.caption);
  const got = await cards(page, 0);
  assert.equal(got.length, ids.length);
  assert.equal(got[0]!.id, q.order[0]!.id, `page shows ${got[0]!.id} first for "${q.caption}", cosine ranking says ${q.order[0]!.id}`);
  got.forEach((c, i) => assert.ok(Math.abs(shownScore(c.shown) - q.order[i]!.score) < 2e-3, `card ${i} (${c.id}) shows ${c.shown}, cosine of ${q.order[i]!.id} is ${q.order[i]!.score}`));
  // Each card's score is its own image's cosine: with the line above, the cards are in cosine order.
  for (const c of got) assert.ok(Math.abs(shownScore(c.shown) - ranking('primary', q.caption, [c.id])[0]!.score) < 2e-3, `${c.id} shows ${c.shown}`);
  // alt text = the caption stored as metadata
  const captionOf = new Map(indexed.map((x) => [x.id, x.caption]));
  for (const c of got) assert.equal(c.alt, captionOf.get(c.id));
  // every image actually loaded from GET /images/:id
  await page.waitForFunction(() => [...document.querySelectorAll('.card img')].every((i) => (i as any).complete && (i as any).naturalWidth > 0));
  assert.deepEqual(errors, []);
});

test('side by side shows the compare model (before) next to the primary (after), each ranked by its own weights', async (t) => {
  if (skipUnlessReady(t)) return;
  const { page, errors } = await openPage(t);
  await page.waitForSelector('#compare-toggle:not([disabled])');
  const ids = indexed.map((x) => x.id);
  const q = clearestQuery('compare', ids);
  await page.fill('#query', q.caption);
  await page.check('#compare-toggle');
  await search(page, q.caption, 2);
  const models = await page.$$eval('.result-column', (els) => els.map((e) => (e as any).dataset['model']));
  assert.deepEqual(models, ['compare', 'primary']);
  const before = await cards(page, 0);
  const afterCards = await cards(page, 1);
  assert.equal(before.length, ids.length);
  assert.equal(afterCards.length, ids.length);
  assert.equal(before[0]!.id, q.order[0]!.id);
  assert.ok(Math.abs(shownScore(before[0]!.shown) - q.order[0]!.score) < 2e-3);
  const primary = ranking('primary', q.caption, ids);
  assert.ok(Math.abs(shownScore(afterCards[0]!.shown) - primary[0]!.score) < 2e-3);
  // off again: one column
  await page.uncheck('#compare-toggle');
  await page.waitForFunction(() => document.querySelectorAll('.result-column').length === 1);
  assert.deepEqual(errors, []);
});

test('images added with the file input and by drag-and-drop are found by searching', async (t) => {
  if (skipUnlessReady(t)) return;
  const { page, errors } = await openPage(t);
  const [byInput, byDrop] = uploads as [Img, Img];

  await page.fill('#caption-input', byInput.caption);
  await page.setInputFiles('#file-input', byInput.file);
  await page.waitForFunction(() => /Added 1 image/.test(document.getElementById('upload-status')!.textContent ?? ''));
  const inputId = /\(([0-9a-f]+)\)/.exec((await page.textContent('#upload-status'))!)![1]!;

  const bytes = readFileSync(byDrop.file).toString('base64');
  await page.evaluate(
    ([b64, name]) => {
      const raw = Uint8Array.from(atob(b64!), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([raw], name!, { type: 'image/png' }));
      document.getElementById('drop-zone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    },
    [bytes, 'dropped.png'],
  );
  await page.waitForFunction((id) => /Added 1 image/.test(document.getElementById('upload-status')!.textContent ?? '') && !document.getElementById('upload-status')!.textContent!.includes(id), inputId);
  const dropId = /\(([0-9a-f]+)\)/.exec((await page.textContent('#upload-status'))!)![1]!;
  assert.notEqual(dropId, inputId);

  // The server's ids are new; map our embeddings onto them.
  emb.primary.image.set(inputId, emb.primary.image.get(byInput.id)!);
  emb.primary.image.set(dropId, emb.primary.image.get(byDrop.id)!);
  const ids = [...indexed.map((x) => x.id), inputId, dropId];
  for (const [id, caption] of [[inputId, byInput.caption], [dropId, 'dropped.png']] as const) {
    let q: ReturnType<typeof clearestQuery> | undefined;
    try {
      q = clearestQuery('primary', ids, id);
    } catch {
      q = undefined;
    }
    await page.fill('#k', '20');
    t.diagnostic(q && q.margin > 1e-3 ? `"${q.caption}" ranks added image ${id} first (margin ${q.margin.toFixed(4)})` : `no caption ranks ${id} first; checked it is listed at its cosine`);
    if (q && q.margin > 1e-3) {
      await search(page, q.caption);
      const got = await cards(page, 0);
      assert.equal(got[0]!.id, id, `searching "${q.caption}" should show the added image ${id} first`);
      assert.equal(got[0]!.alt, caption);
    } else {
      // No caption makes this random model rank it first: it must still be listed, at its cosine.
      const query = captions[0]!;
      await search(page, query);
      const got = await cards(page, 0);
      const card = got.find((c) => c.id === id);
      assert.ok(card, `added image ${id} missing from the results`);
      assert.ok(Math.abs(shownScore(card.shown) - ranking('primary', query, [id])[0]!.score) < 2e-3);
    }
  }
  assert.deepEqual(errors, []);
});

test('the run page draws loss and metric curves per epoch as SVG line charts', async (t) => {
  if (skipUnlessReady(t)) return;
  const { page, errors } = await openPage(t);
  await page.click('a[data-nav="runs"]');
  await page.click(`a[href="#/runs/${RUN_NAME}"]`);
  await page.waitForSelector('svg.chart polyline');
  const charts = await page.$$eval('svg.chart', (svgs) =>
    svgs.map((s) => ({
      title: s.getAttribute('aria-label'),
      series: [...s.querySelectorAll('.chart-series')].map((g: any) => ({ name: g.getAttribute('data-series'), points: g.querySelector('polyline')!.getAttribute('points')!.trim().split(/\s+/).length })),
      legend: [...s.querySelectorAll('.chart-legend text')].map((x) => x.textContent),
    })),
  );
  assert.deepEqual(charts.map((c) => c.title), ['Loss per epoch', 'Metrics per epoch']);
  assert.deepEqual(charts[0]!.series, [{ name: 'train_loss', points: 3 }, { name: 'val_loss', points: 3 }]);
  assert.deepEqual(charts[1]!.series, [{ name: 'clip-text-to-clip-vision_recall_at_1', points: 3 }]);
  assert.deepEqual(charts[0]!.legend, ['train_loss', 'val_loss']);
  // Falling training loss: the polyline's y (SVG, downwards) grows epoch by epoch.
  const ys = await page.$eval('svg.chart .chart-series[data-series="train_loss"] polyline', (p) => p.getAttribute('points')!.trim().split(/\s+/).map((xy: string) => Number(xy.split(',')[1])));
  assert.ok(ys[0]! < ys[1]! && ys[1]! < ys[2]!, `train_loss y coordinates ${ys}`);
  // The numbers behind the curves, in the table.
  assert.match((await page.textContent('table.metrics'))!, /2\.100[\s\S]*1\.400[\s\S]*0\.9000/);
  assert.deepEqual(errors, []);
});

test('API errors are shown as the server words them', async (t) => {
  if (skipUnlessReady(t)) return;
  const { page } = await openPage(t);
  await page.goto(`${url}/#/runs/no-such-run`);
  await page.waitForSelector('#error:not([hidden])');
  assert.match((await page.textContent('#error'))!, /no run named "no-such-run".*\(not_found\)/);
});

test('at phone width (375 px) results are one column and nothing scrolls sideways', async (t) => {
  if (skipUnlessReady(t)) return;
  const { page, errors } = await openPage(t, 375);
  await page.waitForSelector('#compare-toggle:not([disabled])');
  await page.check('#compare-toggle');
  await search(page, captions[0]!, 2);
  const xs = await page.$$eval('.card', (els) => new Set(els.map((e) => Math.round(e.getBoundingClientRect().left))).size);
  assert.equal(xs, 1, 'cards should stack in one column');
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 375);
  await page.goto(`${url}/#/runs/${RUN_NAME}`);
  await page.waitForSelector('svg.chart polyline');
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 375);
  assert.deepEqual(errors, []);
});

test('a server with --token: the page asks for it, keeps it for the session and sends it as Bearer', async (t) => {
  if (skipUnlessReady(t)) return;
  const { page, errors } = await openPage(t, 1100, tokenUrl);
  await page.waitForSelector('#token-form:not([hidden])');
  assert.match((await page.textContent('#error'))!, /unauthorized/);
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.includes('tiny-test@'));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('clipfit.token')), TOKEN);
  // This server has no compare model: the side-by-side toggle stays off.
  assert.equal(await page.isDisabled('#compare-toggle'), true);
  await search(page, captions[0]!);
  assert.equal((await cards(page, 0)).length, 2);
  await page.waitForFunction(() => [...document.querySelectorAll('.card img')].every((i) => (i as any).complete && (i as any).naturalWidth > 0));
  assert.deepEqual(errors, []);
});
