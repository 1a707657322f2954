// The folder index's quantized graphs (f16, i8) re-rank their best candidates exactly against the
// f32 vectors, and the graph parameters are recorded in meta.json: a reopened index uses them, a
// changed build parameter rebuilds the graph and says so, an index of an earlier version (no
// parameters recorded) keeps its f32 graph.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { FolderGraph } from '../src/search/folder_graph.js';
import { openFolderIndex } from '../src/search/folder_index.js';
import { DEFAULT_HNSW, LEGACY_HNSW } from '../src/search/hnsw_graph.js';
import type { IndexItem } from '../src/search/index_types.js';
import { seededRandom } from '../src/util/random.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'clipfit-rerank-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** `n` vectors around 20 random centres (cosine to the centre ≈ 0.7): near-ties inside a cluster. */
function clustered(n: number, dim: number, seed: number): IndexItem[] {
  const r = seededRandom(seed);
  const g = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const centres = Array.from({ length: 20 }, () => Float32Array.from({ length: dim }, () => g()));
  return Array.from({ length: n }, (_, i) => {
    const c = centres[Math.floor(r() * centres.length)]!;
    return { id: `v${i}`, vector: c.map((x) => x + g()), metadata: { i } };
  });
}

const meta = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8'));
const graphInode = (dir: string) => statSync(path.join(dir, 'hnsw.usearch')).ino;

const cosine = (a: Float32Array, b: Float32Array): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += a[i]! * b[i]!;
  return d / (Math.hypot(...a) * Math.hypot(...b));
};

// The graph is approximate (and built on several threads, so not the same graph twice): what the
// re-ranking guarantees is that every returned score is the exact cosine, in exact order; that the
// graph's candidates hold the true top 10 is recall, checked over all queries together.
for (const precision of ['i8', 'f16'] as const) {
  test(`${precision} graph: re-ranked answers carry exact cosines in exact order, and recall@10 ≥ 0.99`, async () => {
    const data = clustered(3000, 48, precision === 'i8' ? 1 : 2);
    const byId = new Map(data.map((d) => [d.id, d.vector]));
    const ix = await openFolderIndex(path.join(root, `top-${precision}`), { dim: 48, model: 'm', kind: 'hnsw', hnsw: { precision, rerank: 100 } });
    await ix.add(data);
    assert.equal(ix.info().hnsw.precision, precision);
    const queries = clustered(40, 48, 3);
    let rawDiffers = 0;
    let found = 0;
    const exactOrder = (hits: { id: string; score: number }[], q: Float32Array) =>
      hits.forEach((h, i) => {
        assert.ok(Math.abs(h.score - cosine(q, byId.get(h.id)!)) < 1e-5, `${h.id}: score ${h.score}, exact cosine ${cosine(q, byId.get(h.id)!)}`);
        if (i > 0) assert.ok(hits[i - 1]!.score >= h.score, `answers out of order at ${i}`);
      });
    for (const { vector: q } of queries) {
      const exact = await ix.search(q, 10, { exact: true });
      const got = await ix.search(q, 10, { ef: 400 });
      assert.equal(got.length, 10);
      exactOrder(got, q);
      const truth = new Set(exact.map((h) => h.id));
      found += got.filter((h) => truth.has(h.id)).length;
      // The graph's own scores are not the exact cosines: the re-ranking is what makes them so.
      const graph = (ix as unknown as { graph: FolderGraph }).graph.hnsw!;
      const raw = graph.search(Float32Array.from(q, (x) => x / Math.hypot(...q)), 10);
      if (raw.scores.some((s, i) => Math.abs(s - exact[i]!.score) > 1e-5)) rawDiffers++;
    }
    assert.ok(found / (10 * queries.length) >= 0.99, `recall@10 ${found / (10 * queries.length)}`);
    assert.ok(rawDiffers > 0, `the ${precision} graph's raw scores equalled the exact ones for every query`);
    // A filter applies before the cut, to the re-ranked candidates.
    const q = queries[0]!.vector;
    const isEven = (_id: string, m: Record<string, unknown> | undefined) => (m?.['i'] as number) % 2 === 0;
    const even = await ix.search(q, 10, { ef: 400, filter: isEven });
    const evenExact = new Set((await ix.search(q, 10, { exact: true, filter: isEven })).map((h) => h.id));
    assert.equal(even.length, 10);
    exactOrder(even, q);
    assert.ok(even.every((h) => Number(h.id.slice(1)) % 2 === 0), 'only items the filter keeps');
    assert.ok(even.filter((h) => evenExact.has(h.id)).length >= 9, 'the filtered answer is the exact filtered top 10 but for at most one near-tie');
    await ix.close();
  });
}

test('graph parameters are recorded, reused at reopen, and a changed one rebuilds the graph and says so', async () => {
  const dir = path.join(root, 'params');
  const data = clustered(600, 16, 4);
  let ix = await openFolderIndex(dir, { dim: 16, model: 'm', kind: 'hnsw', hnsw: { connectivity: 8, precision: 'f16', expansionSearch: 50 } });
  const chosen = { ...DEFAULT_HNSW, connectivity: 8, precision: 'f16', expansionSearch: 50 };
  assert.deepEqual(ix.info().hnsw, chosen);
  await ix.add(data);
  await ix.close();
  assert.deepEqual(meta(dir).hnsw, chosen);
  const saved = graphInode(dir);

  // Reopened with no options: the recorded parameters, and the saved graph loaded (not rebuilt and saved again).
  ix = await openFolderIndex(dir, { kind: 'hnsw' });
  assert.deepEqual(ix.info().hnsw, chosen);
  assert.equal(ix.info().hnswChange, '');
  const q = data[7]!.vector;
  assert.deepEqual((await ix.search(q, 5, { ef: 600 })).map((h) => h.id), (await ix.search(q, 5, { exact: true })).map((h) => h.id));
  await ix.close();
  assert.equal(graphInode(dir), saved, 'the saved graph was rewritten although nothing changed');

  // A search parameter: recorded, the graph kept.
  ix = await openFolderIndex(dir, { kind: 'hnsw', hnsw: { expansionSearch: 80 } });
  assert.equal(ix.info().hnswChange, 'expansionSearch 50 → 80');
  await ix.close();
  assert.equal(meta(dir).hnsw.expansionSearch, 80);
  assert.equal(graphInode(dir), saved);

  // A build parameter: recorded, explained, and the graph built again with it.
  ix = await openFolderIndex(dir, { kind: 'hnsw', hnsw: { precision: 'i8' } });
  assert.equal(ix.info().hnswChange, 'precision f16 → i8 (the graph is built again)');
  assert.deepEqual((await ix.search(q, 5, { ef: 600 })).map((h) => h.id), (await ix.search(q, 5, { exact: true })).map((h) => h.id));
  await ix.close();
  assert.equal(meta(dir).hnsw.precision, 'i8');
  assert.notEqual(graphInode(dir), saved);
  assert.equal(JSON.parse(readFileSync(path.join(dir, 'hnsw.json'), 'utf8')).precision, 'i8');

  // Bad parameters are refused before anything is written.
  await assert.rejects(openFolderIndex(dir, { kind: 'hnsw', hnsw: { precision: 'f8' as never } }), /hnsw\.precision: must be one of f32, f16, i8/);
  await assert.rejects(openFolderIndex(dir, { kind: 'hnsw', hnsw: { connectivity: 1 } }), /hnsw\.connectivity: must be an integer in \[2, 256\]/);
  assert.equal(meta(dir).hnsw.precision, 'i8');
});

test('an index of an earlier version (no parameters recorded) keeps its f32 graph and records its parameters', async () => {
  const dir = path.join(root, 'legacy');
  const data = clustered(500, 16, 5);
  let ix = await openFolderIndex(dir, { dim: 16, model: 'm', kind: 'hnsw', hnsw: LEGACY_HNSW });
  await ix.add(data);
  await ix.close();
  // What an earlier version wrote: no hnsw in meta.json, hnsw.json {generation, size}.
  const m = meta(dir);
  delete m.hnsw;
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(m));
  const g = JSON.parse(readFileSync(path.join(dir, 'hnsw.json'), 'utf8'));
  writeFileSync(path.join(dir, 'hnsw.json'), JSON.stringify({ generation: g.generation, size: g.size }));
  const saved = graphInode(dir);

  ix = await openFolderIndex(dir, { kind: 'hnsw' });
  assert.deepEqual(ix.info().hnsw, LEGACY_HNSW);
  assert.equal(ix.info().hnswChange, '');
  const q = data[3]!.vector;
  assert.deepEqual((await ix.search(q, 5, { ef: 500 })).map((h) => h.id), (await ix.search(q, 5, { exact: true })).map((h) => h.id));
  await ix.close();
  assert.equal(graphInode(dir), saved, 'the f32 graph of the earlier version was rebuilt');
  assert.deepEqual(meta(dir).hnsw, LEGACY_HNSW);
});
