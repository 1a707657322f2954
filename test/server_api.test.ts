// clipfit serve, over real HTTP on 127.0.0.1: indexing, search, rank and encode checked against
// embeddings computed directly with the inference library (getModel + encode), persistence across a
// restart, the model guard (409 until --reindex), the compare index, micro-batching, runs, static.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import { registerServeCommand } from '../src/app/cli/commands_serve.js';
import { RunStore } from '../src/runs/store.js';
import { cosine, dataUri, imageForm, makeFixture, referenceEmbeddings, start } from './server_setup.js';
import type { Fixture } from './server_setup.js';

let fx: Fixture | null = null;
let ref: { texts: Float32Array[]; images: Float32Array[] };
let refB: { texts: Float32Array[]; images: Float32Array[] };
const QUERIES = ['a red square', 'a blue circle', 'something green'];

before(async () => {
  fx = await makeFixture(6);
  if (!fx) return;
  ref = await referenceEmbeddings(fx.onnxModel, true, QUERIES, fx.images);
  refB = await referenceEmbeddings(fx.plainModel, false, QUERIES, fx.images);
});
after(() => fx?.cleanup());

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `element ${i}: ${a[i]} vs ${b[i]}`);
};

test('index uploads and data URIs, search ranks all of them by cosine, images come back; persisted across a restart', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const indexDir = path.join(fx.tmp, 'idx-main');
  let c = await start({ model: fx.onnxModel, index: indexDir });
  try {
    // Three as multipart uploads with per-file metadata and ids, three as JSON data URIs.
    const up = await c.form('/index', imageForm(fx.images.slice(0, 3), { metadata: JSON.stringify([{ n: 0 }, { n: 1 }, { n: 2 }]), ids: JSON.stringify(['i0', 'i1', 'i2']) }));
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.deepEqual(up.body.ids, ['i0', 'i1', 'i2']);
    const js = await c.json('POST', '/index', { items: fx.images.slice(3).map((f, j) => ({ uri: dataUri(f), id: `i${j + 3}`, metadata: { n: j + 3 } })) });
    assert.equal(js.status, 201, JSON.stringify(js.body));
    assert.equal(js.body.size, 6);
    const st = await c.json('GET', '/index');
    assert.equal(st.body.size, 6);
    assert.equal(st.body.dim, 32);
    assert.equal(st.body.ready, true);
    assert.match(st.body.model, /@[0-9a-f]{12}$/);
    assert.equal(st.body.compare, null);

    for (const [qi, query] of QUERIES.entries()) {
      const r = await c.json('POST', '/search', { query, k: 10 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.model, 'primary');
      assert.equal(r.body.results.length, 6, 'k ≥ size: every item');
      assert.equal(typeof r.body.tookMs, 'number');
      // Scores are the cosine of the library's text and image embeddings, best first.
      const expected = fx.images.map((_, i) => ({ id: `i${i}`, score: cosine(ref.texts[qi]!, ref.images[i]!) })).sort((a, b) => b.score - a.score);
      for (let j = 0; j < 6; j++) {
        const got = r.body.results[j];
        assert.ok(Math.abs(got.score - expected[j]!.score) < 1e-4, `${query} #${j}: ${got.score} vs ${expected[j]!.score}`);
        if (j > 0) assert.ok(r.body.results[j - 1].score >= got.score, 'sorted');
        assert.equal(got.imageUrl, `/images/${got.id}`);
        assert.equal(got.metadata.n, Number(got.id.slice(1)));
      }
      assert.equal(r.body.results[0].id, expected[0]!.id);
    }
    assert.equal(r0len(await c.json('POST', '/search', { query: 'a red square', k: 2 })), 2);
    // Uploaded files carry their filename in the metadata.
    const top = await c.json('POST', '/search', { query: 'x', k: 100 });
    assert.equal(top.body.results.find((h: { id: string }) => h.id === 'i1').metadata.filename, 'img001.png');

    const img = await fetch(`${c.url}/images/i4`);
    assert.equal(img.status, 200);
    assert.equal(img.headers.get('content-type'), 'image/png');
    assert.deepEqual(new Uint8Array(await img.arrayBuffer()), new Uint8Array(readFileSync(fx.images[4]!)));

    const del = await c.json('DELETE', '/index/i5');
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, { deleted: 'i5', size: 5 });
    assert.equal((await fetch(`${c.url}/images/i5`)).status, 404);
  } finally {
    await c.close();
  }
  c = await start({ model: fx.onnxModel, index: indexDir });
  try {
    assert.equal((await c.json('GET', '/index')).body.size, 5, 'persisted');
    const r = await c.json('POST', '/search', { query: QUERIES[0] });
    assert.deepEqual(r.body.results.map((h: { id: string }) => h.id).sort(), ['i0', 'i1', 'i2', 'i3', 'i4']);
    assert.equal((await fetch(`${c.url}/images/i0`)).status, 200);
    // Upsert: the same id again keeps the size.
    const again = await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: 'i0', metadata: { n: 0, v: 2 } }] });
    assert.equal(again.body.size, 5);
  } finally {
    await c.close();
  }
});

const r0len = (r: { body: { results: unknown[] } }) => r.body.results.length;

test('/rank: softmax over the candidates of 100·cosine, sums to 1, sorted; JSON and multipart agree', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const c = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-rank') });
  try {
    const uris = fx.images.slice(0, 4).map(dataUri);
    const r = await c.json('POST', '/rank', { text: QUERIES[1], images: uris });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const cos = fx.images.slice(0, 4).map((_, i) => cosine(ref.texts[1]!, ref.images[i]!));
    const m = Math.max(...cos);
    const z = cos.reduce((s, x) => s + Math.exp(100 * (x - m)), 0);
    const soft = cos.map((x) => Math.exp(100 * (x - m)) / z);
    const sum = r.body.results.reduce((s: number, x: { score: number }) => s + x.score, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9, `sum ${sum}`);
    for (let j = 0; j < 4; j++) {
      const h = r.body.results[j];
      if (j > 0) assert.ok(r.body.results[j - 1].score >= h.score);
      assert.ok(Math.abs(h.cosine - cos[h.index]!) < 1e-4);
      assert.ok(Math.abs(h.score - soft[h.index]!) < 1e-2, `softmax of ${h.index}: ${h.score} vs ${soft[h.index]}`);
      assert.equal(h.uri, uris[h.index]);
    }
    const f = await c.form('/rank', imageForm(fx.images.slice(0, 4), { text: QUERIES[1]! }));
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.deepEqual(
      f.body.results.map((x: { index: number }) => x.index),
      r.body.results.map((x: { index: number }) => x.index),
    );
    assert.equal(f.body.results[0].filename, path.basename(fx.images[f.body.results[0].index]!));
  } finally {
    await c.close();
  }
});

test('/encode: texts then images, L2-normalised, equal to the library’s embeddings; multipart too', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const c = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-enc') });
  try {
    const r = await c.json('POST', '/encode', { texts: QUERIES.slice(0, 2), images: [dataUri(fx.images[0]!), dataUri(fx.images[1]!)] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.dim, 32);
    assert.deepEqual(r.body.counts, { texts: 2, images: 2 });
    assert.equal(r.body.embeddings.length, 4);
    close(r.body.embeddings[0], ref.texts[0]!);
    close(r.body.embeddings[1], ref.texts[1]!);
    close(r.body.embeddings[2], ref.images[0]!);
    close(r.body.embeddings[3], ref.images[1]!);
    const f = await c.form('/encode', imageForm([fx.images[2]!], { texts: JSON.stringify([QUERIES[2]]) }));
    assert.equal(f.status, 200, JSON.stringify(f.body));
    close(f.body.embeddings[0], ref.texts[2]!);
    close(f.body.embeddings[1], ref.images[2]!);
  } finally {
    await c.close();
  }
});

test('concurrent searches are micro-batched: fewer text-encoder runs than requests', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const c = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-batch'), batch: { maxWaitMs: 20, maxBatch: 32 } });
  try {
    await c.json('POST', '/index', { items: fx.images.slice(0, 3).map((f) => ({ uri: dataUri(f) })) });
    const N = 16;
    const rs = await Promise.all(Array.from({ length: N }, (_, i) => c.json('POST', '/search', { query: `${QUERIES[i % 3]} ${i}`, k: 3 })));
    for (const r of rs) assert.equal(r.status, 200);
    const metrics: string = (await c.json('GET', '/metrics')).body;
    const m = /^clipfit_encoder_calls_total\{modality="text",model="primary"\} (\d+)$/m.exec(metrics);
    assert.ok(m, metrics);
    const calls = Number(m[1]);
    t.diagnostic(`${N} concurrent searches → ${calls} text-encoder runs`);
    assert.ok(calls < N, `${calls} runs for ${N} requests`);
    assert.match(metrics, /^clipfit_encoder_items_total\{modality="text",model="primary"\} 16$/m);
    assert.match(metrics, /^clipfit_http_requests_total\{method="POST",route="\/search",status="200"\} 16$/m);
    assert.match(metrics, /^clipfit_http_request_duration_seconds_count\{route="\/search"\} 16$/m);
    assert.match(metrics, /^clipfit_index_items\{index="primary"\} 3$/m);
    assert.match(metrics, /^# TYPE clipfit_encoder_batch_size histogram$/m);
  } finally {
    await c.close();
  }
});

test('an index made by another model: /search is 409 until --reindex rebuilds it from the stored images', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const indexDir = path.join(fx.tmp, 'idx-switch');
  let c = await start({ model: fx.onnxModel, index: indexDir });
  await c.json('POST', '/index', { items: fx.images.map((f, i) => ({ uri: dataUri(f), id: `s${i}`, metadata: { n: i } })) });
  await c.close();
  c = await start({ model: fx.plainModel, index: indexDir });
  try {
    const st = await c.json('GET', '/index');
    assert.equal(st.body.ready, false);
    const r = await c.json('POST', '/search', { query: 'a red square' });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'needs_reindex');
    assert.match(r.body.error.message, /--reindex/);
    assert.equal((await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!) }] })).status, 409);
  } finally {
    await c.close();
  }
  const lines: string[] = [];
  c = await start({ model: fx.plainModel, index: indexDir, reindex: true, log: (l) => lines.push(l) });
  try {
    assert.ok(lines.some((l) => /reindexed the primary index: 6 items/.test(l)), lines.join('\n'));
    const r = await c.json('POST', '/search', { query: QUERIES[2], k: 6 });
    assert.equal(r.status, 200);
    const best = fx.images.map((_, i) => cosine(refB.texts[2]!, refB.images[i]!));
    for (const h of r.body.results) {
      assert.ok(Math.abs(h.score - best[Number(h.id.slice(1))]!) < 1e-4, 'scores of the new model');
      assert.equal(h.metadata.n, Number(h.id.slice(1)), 'metadata kept');
    }
  } finally {
    await c.close();
  }
});

test('compare model: /index fills both indexes, /search model=compare answers with the other model', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const c = await start({ model: fx.onnxModel, compare: fx.plainModel, index: path.join(fx.tmp, 'idx-cmp') });
  try {
    await c.form('/index', imageForm(fx.images.slice(0, 4), { ids: JSON.stringify(['c0', 'c1', 'c2', 'c3']) }));
    const st = await c.json('GET', '/index');
    assert.equal(st.body.size, 4);
    assert.equal(st.body.compare.size, 4);
    assert.notEqual(st.body.compare.model, st.body.model);
    const a = await c.json('POST', '/search', { query: QUERIES[0], k: 4 });
    const b = await c.json('POST', '/search', { query: QUERIES[0], k: 4, model: 'compare' });
    assert.equal(b.body.model, 'compare');
    assert.equal(b.body.modelId, st.body.compare.model);
    for (const h of b.body.results) assert.ok(Math.abs(h.score - cosine(refB.texts[0]!, refB.images[Number(h.id.slice(1))]!)) < 1e-4);
    for (const h of a.body.results) assert.ok(Math.abs(h.score - cosine(ref.texts[0]!, ref.images[Number(h.id.slice(1))]!)) < 1e-4);
    const enc = await c.json('POST', '/encode', { texts: [QUERIES[0]], model: 'compare' });
    close(enc.body.embeddings[0], refB.texts[0]!);
    await c.json('DELETE', '/index/c0');
    assert.equal((await c.json('GET', '/index')).body.compare.size, 3);
    const info = await c.json('GET', '/api/info');
    assert.equal(info.body.model.onnx, true);
    assert.equal(info.body.compare.onnx, false);
  } finally {
    await c.close();
  }
  // Without a compare model, model=compare is a 400.
  const d = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-cmp2') });
  try {
    const r = await d.json('POST', '/search', { query: 'x', model: 'compare' });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /--compare/);
  } finally {
    await d.close();
  }
});

test('/api/runs and /api/runs/:name/metrics read the run store; static files; /openapi.json lists every route', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const home = path.join(fx.tmp, 'home');
  const store = RunStore.open(home);
  const rec = store.createRun({ options: { model: 'x', trainData: 'y' } as never });
  store.addMetrics(rec.name, 1, { train_loss: 2.5, val_loss: Number.NaN });
  store.addMetrics(rec.name, 2, { train_loss: 1.5, val_loss: 1.75 });
  const web = path.join(fx.tmp, 'web');
  mkdirSync(path.join(web, 'js'), { recursive: true });
  writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>clipfit</title>');
  writeFileSync(path.join(web, 'js', 'app.js'), 'console.log(1)');
  writeFileSync(path.join(fx.tmp, 'secret.txt'), 'secret');
  const c = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-misc'), home, webRoot: web });
  try {
    const runs = await c.json('GET', '/api/runs');
    assert.equal(runs.status, 200);
    assert.equal(runs.body.runs.length, 1);
    assert.equal(runs.body.runs[0].name, rec.name);
    assert.equal(runs.body.runs[0].status, 'CREATED');
    const m = await c.json('GET', `/api/runs/${rec.name}/metrics`);
    assert.deepEqual(m.body.epochs, [
      { epoch: 1, values: { train_loss: 2.5, val_loss: null } },
      { epoch: 2, values: { train_loss: 1.5, val_loss: 1.75 } },
    ]);
    const none = await c.json('GET', '/api/runs/no-such-run/metrics');
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, 'not_found');

    const page = await fetch(c.url + '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    assert.match(await page.text(), /<title>clipfit/);
    const js = await fetch(c.url + '/js/app.js');
    assert.match(js.headers.get('content-type')!, /javascript/);
    for (const evil of ['/../secret.txt', '/%2e%2e/secret.txt', '/js/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/nope.html']) {
      const r = await c.json('GET', evil);
      assert.equal(r.status, 404, evil);
      assert.equal(r.body.error.code, 'not_found');
    }

    const doc = (await c.json('GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    for (const [p, method] of [
      ['/healthz', 'get'], ['/index', 'get'], ['/index', 'post'], ['/index/{id}', 'delete'], ['/images/{id}', 'get'], ['/search', 'post'],
      ['/encode', 'post'], ['/rank', 'post'], ['/metrics', 'get'], ['/openapi.json', 'get'], ['/api/runs', 'get'], ['/api/runs/{name}/metrics', 'get'], ['/api/info', 'get'], ['/', 'get'],
    ] as const)
      assert.ok(doc.paths[p]?.[method], `${method.toUpperCase()} ${p} documented`);
    assert.equal(doc.paths['/search'].post.requestBody.content['application/json'].schema.properties.k.maximum, 100);
  } finally {
    await c.close();
    store.close();
  }
});

test('clipfit serve (the CLI command) loads the model, listens, answers, and stops on its signal', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const lines: string[] = [];
  const stop = new AbortController();
  let listening: (url: string) => void;
  const url = new Promise<string>((r) => (listening = r));
  const program = new Command().exitOverride();
  registerServeCommand(program, (l) => {
    lines.push(l);
    const m = /^listening on (\S+)/.exec(l);
    if (m) listening(m[1]!);
  }, { signal: stop.signal });
  const done = program.parseAsync(['serve', '--model', fx.onnxModel, '--index', path.join(fx.tmp, 'idx-cli'), '--port', '0', '--token', 'tok'], { from: 'user' });
  const base = await Promise.race([url, done.then(() => { throw new Error(`serve ended early:\n${lines.join('\n')}`); })]);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const st = await fetch(`${base}/index`, { headers: { authorization: 'Bearer tok' } });
  assert.equal(((await st.json()) as { size: number }).size, 0);
  assert.equal((await fetch(`${base}/index`)).status, 401);
  stop.abort();
  await done;
  assert.ok(lines.some((l) => /^model tiny-test@[0-9a-f]{12}$/.test(l)), lines.join('\n'));
  assert.ok(lines.includes('shutting down…'));
  await assert.rejects(fetch(`${base}/healthz`));
});
