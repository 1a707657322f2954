// Exact nearest-neighbour search: a hand-worked 2-D case, then random sets against a brute-force
// reference that computes every pairwise distance with docarray's formulas and sorts all of them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EvaluationError } from '../src/errors.js';
import { knn, knnParallel, type Distance, type KnnMatches } from '../src/eval/knn.js';

// Unit vectors at 0°, 36.87°, 53.13°, 90°, 180°.
const INDEX = new Float32Array([1, 0, 0.8, 0.6, 0.6, 0.8, 0, 1, -1, 0]);

test('hand-worked cosine distances, ties broken by index position', () => {
  // query (0, 1): cos with the index rows = 0, 0.6, 0.8, 1, 0 → distances 1, 0.4, 0.2, 0, 1;
  // rows 0 and 4 tie at distance 1 and come in index order.
  const [m] = knn(new Float32Array([0, 1]), 1, INDEX, 5, 2, { limit: 5 });
  assert.deepEqual([...m!.indices], [3, 2, 1, 0, 4]);
  const want = [0, 0.2, 0.4, 1, 1];
  m!.distances.forEach((d, t) => assert.ok(Math.abs(d - want[t]!) < 1e-6, `distance ${t}: ${d} vs ${want[t]}`));
});

test('hand-worked euclidean and sqeuclidean distances', () => {
  // query (1, 0) to the rows: ‖q − x‖² = 2 − 2cos = 0, 0.4, 0.8, 2, 4
  const q = new Float32Array([1, 0]);
  const [sq] = knn(q, 1, INDEX, 5, 2, { limit: 3, distance: 'sqeuclidean' });
  assert.deepEqual([...sq!.indices], [0, 1, 2]);
  [0, 0.4, 0.8].forEach((w, t) => assert.ok(Math.abs(sq!.distances[t]! - w) < 1e-6));
  const [eu] = knn(q, 1, INDEX, 5, 2, { limit: 5, distance: 'euclidean' });
  assert.deepEqual([...eu!.indices], [0, 1, 2, 3, 4]);
  [0, Math.sqrt(0.4), Math.sqrt(0.8), Math.SQRT2, 2].forEach((w, t) => assert.ok(Math.abs(eu!.distances[t]! - w) < 1e-6));
});

test('a zero vector is at cosine distance 0 from every row (docarray’s ε keeps it finite)', () => {
  const [m] = knn(new Float32Array([0, 0]), 1, INDEX, 5, 2, { limit: 5 });
  assert.deepEqual([...m!.indices], [0, 1, 2, 3, 4]);
  for (const d of m!.distances) assert.equal(d, 0);
});

/** Deterministic pseudo-random numbers in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Every pair, docarray's formulas in float64, full sort by (distance, index). */
function bruteForce(
  Q: Float32Array, nq: number, X: Float32Array, ni: number, dim: number, limit: number, distance: Distance,
  skip: (i: number, j: number) => boolean = () => false,
): { idx: number[]; dist: number[] }[] {
  const out = [];
  for (let i = 0; i < nq; i++) {
    const all: [number, number][] = [];
    for (let j = 0; j < ni; j++) {
      if (skip(i, j)) continue;
      let dot = 0, qq = 0, xx = 0;
      for (let d = 0; d < dim; d++) {
        const a = Q[i * dim + d]!, b = X[j * dim + d]!;
        dot += a * b;
        qq += a * a;
        xx += b * b;
      }
      let dist: number;
      if (distance === 'cosine') dist = 1 - Math.min(1, Math.max(-1, (dot + 1e-7) / (Math.sqrt(qq) * Math.sqrt(xx) + 1e-7)));
      else {
        dist = Math.max(0, qq + xx - 2 * dot);
        if (distance === 'euclidean') dist = Math.sqrt(dist);
      }
      all.push([dist, j]);
    }
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const top = all.slice(0, limit);
    out.push({ idx: top.map((p) => p[1]), dist: top.map((p) => p[0]) });
  }
  return out;
}

function assertSame(got: KnnMatches[], want: ReturnType<typeof bruteForce>, what: string): void {
  assert.equal(got.length, want.length);
  got.forEach((m, i) => {
    assert.deepEqual([...m.indices], want[i]!.idx, `${what}: query ${i} indices`);
    m.distances.forEach((d, t) =>
      assert.ok(Math.abs(d - want[i]!.dist[t]!) <= 1e-9, `${what}: query ${i} match ${t}: ${d} vs ${want[i]!.dist[t]}`),
    );
  });
}

for (const distance of ['cosine', 'euclidean', 'sqeuclidean'] as const) {
  test(`random sets (sizes not multiples of 4) against brute force: ${distance}`, () => {
    const nq = 37, ni = 53, dim = 19, limit = 7;
    const Q = rand(nq * dim, 1), X = rand(ni * dim, 2);
    assertSame(knn(Q, nq, X, ni, dim, { limit, distance }), bruteForce(Q, nq, X, ni, dim, limit, distance), distance);
  });
}

test('more rows than one index block (dim 512, 300 rows): cosine against brute force', () => {
  const nq = 9, ni = 300, dim = 512, limit = 20;
  const Q = rand(nq * dim, 3), X = rand(ni * dim, 4);
  assertSame(knn(Q, nq, X, ni, dim, { limit }), bruteForce(Q, nq, X, ni, dim, limit, 'cosine'), 'blocked');
});

test('limit larger than the index returns every row', () => {
  const Q = rand(5 * 3, 5), X = rand(6 * 3, 6);
  const got = knn(Q, 5, X, 6, 3, { limit: 10, distance: 'sqeuclidean' });
  for (const m of got) assert.equal(m.indices.length, 6);
  assertSame(got, bruteForce(Q, 5, X, 6, 3, 10, 'sqeuclidean'), 'small index');
});

test('excludeSelf drops the index rows that carry the query id, duplicates included', () => {
  const nq = 10, ni = 23, dim = 8, limit = 5;
  // The queries are copies of index rows 0..9, so without exclusion each finds itself first.
  const X = rand(ni * dim, 7);
  const Q = X.slice(0, nq * dim);
  const indexIds = Array.from({ length: ni }, (_, j) => `d${j}`);
  indexIds[20] = 'd3'; // a second row with query 3's id
  const queryIds = Array.from({ length: nq }, (_, i) => `d${i}`);
  for (const distance of ['cosine', 'euclidean', 'sqeuclidean'] as const) {
    const plain = knn(Q, nq, X, ni, dim, { limit, distance });
    plain.forEach((m, i) => assert.equal(m.indices[0], i, `${distance}: query ${i} finds itself`));
    const got = knn(Q, nq, X, ni, dim, { limit, distance, excludeSelf: { queryIds, indexIds } });
    const want = bruteForce(Q, nq, X, ni, dim, limit, distance, (i, j) => indexIds[j] === queryIds[i]);
    assertSame(got, want, `${distance} excludeSelf`);
    assert.ok(!got[3]!.indices.includes(20) && !got[3]!.indices.includes(3));
  }
});

test('knnParallel (worker threads) gives the same matches as knn', async () => {
  const nq = 150, ni = 97, dim = 33, limit = 9;
  const Q = rand(nq * dim, 8), X = rand(ni * dim, 9);
  const ids = Array.from({ length: ni }, (_, j) => `r${j}`);
  const excludeSelf = { queryIds: Array.from({ length: nq }, (_, i) => `r${i % 120}`), indexIds: ids };
  const want = knn(Q, nq, X, ni, dim, { limit, distance: 'euclidean', excludeSelf });
  const got = await knnParallel(Q, nq, X, ni, dim, { limit, distance: 'euclidean', excludeSelf, threads: 3 });
  assert.deepEqual(got.map((m) => [...m.indices]), want.map((m) => [...m.indices]));
  assert.deepEqual(got.map((m) => [...m.distances]), want.map((m) => [...m.distances]));
});

test('bad inputs throw EvaluationError naming the field and row', () => {
  const X = rand(4 * 2, 10);
  assert.throws(() => knn(new Float32Array(3), 2, X, 4, 2, { limit: 1 }), /queries: has 3 values, expected nq × dim = 2 × 2/);
  assert.throws(() => knn(new Float32Array(2), 1, X, 4, 2, { limit: 0 }), EvaluationError);
  assert.throws(() => knn(new Float32Array([0, NaN]), 1, X, 4, 2, { limit: 1 }), /queries: row 0, component 1 is NaN/);
  assert.throws(() => knn(new Float32Array(2), 1, X, 4, 2, { limit: 1, distance: 'dot' as Distance }), /distance:/);
  assert.throws(
    () => knn(new Float32Array(2), 1, X, 4, 2, { limit: 1, excludeSelf: { queryIds: [], indexIds: ['a', 'b', 'c', 'd'] } }),
    /excludeSelf.queryIds: has 0 ids for 1 queries/,
  );
});
