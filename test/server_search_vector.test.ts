// POST /search by vector (the index alone, without the text encoder) and serve's ef setting, over
// real HTTP: on a folder index in-process, and on a Postgres index through a `clipfit serve`
// process (test/pg_server.ts). Results equal the cosine ranking of the library's own embeddings and
// the text route's answer for the same embedding; bad vectors are 400s that say what is wrong.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { serve } from '../src/server/server.js';
import { pgSkipReason, startPgServer } from './pg_server.js';
import type { PgServer } from './pg_server.js';
import { startServeProcess } from './serve_process.js';
import { cosine, imageForm, makeFixture, referenceEmbeddings, start } from './server_setup.js';
import type { Fixture } from './server_setup.js';

let fx: Fixture | null = null;
let ref: { texts: Float32Array[]; images: Float32Array[] };
const QUERIES = ['a red square', 'a blue circle'];

before(async () => {
  fx = await makeFixture(6);
  if (!fx) return;
  ref = await referenceEmbeddings(fx.onnxModel, true, QUERIES, fx.images);
});
after(() => fx?.cleanup());

type Call = (method: string, route: string, body?: unknown) => Promise<{ status: number; body: any }>;

/** The checks both backends must pass, given a server holding fx.images as i0…i5. */
async function checkVectorSearch(call: Call, dim: number): Promise<void> {
  for (const [i, v] of ref.images.entries()) {
    const r = await call('POST', '/search', { vector: Array.from(v), k: 3 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.results[0].id, `i${i}`, 'an image embedding finds its own image first');
    assert.ok(Math.abs(r.body.results[0].score - 1) < 1e-4);
    const expected = ref.images.map((w, j) => ({ id: `i${j}`, score: cosine(v, w) })).sort((a, b) => b.score - a.score).slice(0, 3);
    r.body.results.forEach((h: { id: string; score: number }, j: number) => assert.ok(Math.abs(h.score - expected[j]!.score) < 1e-4, `#${j}: ${h.score} vs ${expected[j]!.score}`));
    assert.equal(typeof r.body.indexMs, 'number');
    assert.ok(r.body.indexMs <= r.body.tookMs);
  }
  // The text route and the vector route agree for the text's embedding (scaled: the server normalises).
  for (const [qi, query] of QUERIES.entries()) {
    const byText = await call('POST', '/search', { query, k: 6 });
    const byVector = await call('POST', '/search', { vector: Array.from(ref.texts[qi]!, (x) => 3 * x), k: 6 });
    assert.deepEqual(byVector.body.results.map((h: { id: string }) => h.id), byText.body.results.map((h: { id: string }) => h.id));
    byVector.body.results.forEach((h: { score: number }, j: number) => assert.ok(Math.abs(h.score - byText.body.results[j].score) < 1e-4));
  }
  const bad = async (body: unknown, pattern: RegExp) => {
    const r = await call('POST', '/search', body);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, pattern);
  };
  const v = Array.from(ref.images[0]!);
  await bad({ vector: v.slice(1) }, new RegExp(`vector: ${dim - 1} numbers, but the primary index holds ${dim}-dimensional vectors`));
  await bad({ vector: [...v, 0] }, new RegExp(`vector: ${dim + 1} numbers`));
  await bad({ vector: v, query: 'a red square' }, /either query \(a text\) or vector \(an embedding\), not both/);
  await bad({ k: 3 }, /either query \(a text\) or vector/);
  await bad({ vector: v.map(() => 0) }, /all zeros/);
  // 1e999 parses to Infinity, which the body schema refuses; 1e300 is finite but no float32.
  await bad(`{"vector": [1e999${', 0'.repeat(dim - 1)}]}`, /vector\/0 must be number/);
  await bad({ vector: [1e300, ...v.slice(1)] }, /vector\[0\]: must be a finite number/);
  await bad({ vector: ['0.1', ...v.slice(1)] }, /vector\/0 must be number/);
  await bad({ vector: 'not a list' }, /vector must be array/);
  await bad({ vector: [] }, /vector must NOT have fewer than 1 items/);
}

test('folder index: /search by vector ranks by cosine and equals the text route; bad vectors are 400s; ef in /api/info', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const c = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-vector'), efSearch: 77 });
  try {
    const up = await c.form('/index', imageForm(fx.images, { ids: JSON.stringify(fx.images.map((_, i) => `i${i}`)) }));
    assert.equal(up.status, 201, JSON.stringify(up.body));
    await checkVectorSearch(c.json, 32);
    const info = await c.json('GET', '/api/info');
    assert.deepEqual(info.body.search, {
      primary: { backend: 'folder', approximate: false, efSearch: 77, graph: { connectivity: 32, expansionAdd: 128, precision: 'i8', rerank: 100 } },
      compare: null,
    });
  } finally {
    await c.close();
  }
  await assert.rejects(serve({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-vector'), efSearch: 0, port: 0 }), /efSearch: must be an integer in \[1, 4096\], got 0/);
});

test('Postgres index through a clipfit serve process: /search by vector, --ef-search in /api/info', { timeout: 300_000 }, async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const pgs: PgServer | null = await startPgServer();
  if (!pgs) return t.skip(`no PostgreSQL server: ${pgSkipReason()}`);
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-vector-pg-'));
  try {
    const url = `${await pgs.createDatabase('vectors')}#shop`;
    await assert.rejects(serve({ model: fx.onnxModel, index: url, efSearch: 1001, home, port: 0 }), /efSearch: must be an integer in \[1, 1000\] \(pgvector's limit\), got 1001/);
    const s = await startServeProcess(['--model', fx.onnxModel, '--index', url, '--ef-search', '120'], { CLIPFIT_HOME: home });
    try {
      const call: Call = async (method, route, body) => {
        const r = await fetch(s.url + route, { method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
        return { status: r.status, body: await r.json() };
      };
      const f = new FormData();
      fx.images.forEach((img, i) => f.append('file', new Blob([readFileSync(img)], { type: 'image/png' }), `i${i}.png`));
      f.append('ids', JSON.stringify(fx.images.map((_, i) => `i${i}`)));
      assert.equal((await fetch(`${s.url}/index`, { method: 'POST', body: f })).status, 201);
      await checkVectorSearch(call, 32);
      const info = await call('GET', '/api/info');
      assert.deepEqual(info.body.search, { primary: { backend: 'pgvector', approximate: true, efSearch: 120 }, compare: null });
    } finally {
      await s.kill();
    }
  } finally {
    await pgs.stop();
    rmSync(home, { recursive: true, force: true });
  }
});
