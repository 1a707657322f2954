// Exact k-nearest-neighbour search over embedding matrices, for retrieval evaluation.
//
// Distances follow docarray 0.21 (docarray/math/distance/numpy.py), which Finetuner's evaluation uses:
//   cosine:      1 − clip((q·x + ε) / (‖q‖‖x‖ + ε), −1, 1), ε = 1e-7 (no NaN for a zero vector, which
//                is at distance 0 from every row: (0 + ε) / (0 + ε) = 1)
//   sqeuclidean: ‖q‖² + ‖x‖² − 2 q·x, clamped at 0 (numpy leaves the rounding error, which can turn
//                euclidean's sqrt into NaN for a self-match; we do not)
//   euclidean:   √sqeuclidean
// Matches are sorted by ascending distance, ties by index position (numpy's argpartition gives no
// order among ties; we make it deterministic).
//
// The dot products are a blocked product in plain TypeScript: index rows in blocks that stay in L2,
// and a 4×3 register tile (4 queries × 3 index rows, 12 accumulators, the inner loop over the
// embedding dimension reads 7 values per 12 multiply-adds). Accumulation is in float64. Each finished
// tile goes straight into a bounded max-heap per query, so the nq × ni distance matrix never exists.
// knnParallel splits the queries over worker threads that share the packed inputs and the heaps.

import { availableParallelism } from 'node:os';
import { EvaluationError } from '../errors.js';
import { moduleWorker, siblingModule } from '../util/module_worker.js';
import { searchRange } from './knn_kernel.js';
import type { SearchState } from './knn_kernel.js';

export type Distance = 'cosine' | 'euclidean' | 'sqeuclidean';

export interface KnnOptions {
  /** How many matches per query (fewer when the index is smaller). */
  limit: number;
  distance?: Distance;
  /** Drop, for each query, the index rows whose id equals the query's id. */
  excludeSelf?: { queryIds: readonly string[]; indexIds: readonly string[] };
}

/** The matches of one query, best first: index positions and their distances. */
export interface KnnMatches {
  indices: Int32Array;
  distances: Float64Array;
}

const KIND: Record<Distance, number> = { cosine: 0, euclidean: 1, sqeuclidean: 2 };

/** Exact top-`limit` search, single-threaded. `queries` is [nq, dim] and `index` [ni, dim], row-major. */
export function knn(
  queries: Float32Array, nq: number, index: Float32Array, ni: number, dim: number, opts: KnnOptions,
): KnnMatches[] {
  const st = prepare(queries, nq, index, ni, dim, opts, false);
  searchRange(st, 0, nq);
  return finish(st);
}

/** knn on `threads` worker threads (default: the machine's parallelism), each taking a contiguous
 * range of queries; inputs and heaps live in SharedArrayBuffers. A failed worker rejects with an
 * EvaluationError. */
export async function knnParallel(
  queries: Float32Array, nq: number, index: Float32Array, ni: number, dim: number,
  opts: KnnOptions & { threads?: number },
): Promise<KnnMatches[]> {
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), Math.ceil(nq / 64)));
  const st = prepare(queries, nq, index, ni, dim, opts, threads > 1);
  if (threads === 1) {
    searchRange(st, 0, nq);
    return finish(st);
  }
  const per = Math.ceil(nq / threads / 4) * 4;
  const ranges: [number, number][] = [];
  for (let a = 0; a < nq; a += per) ranges.push([a, Math.min(nq, a + per)]);
  await Promise.all(ranges.map(([a, b]) => runWorker(st, a, b)));
  return finish(st);
}

/** Search queries [q0, q1) on a worker thread (knn_worker.ts), in place in the shared heaps. */
function runWorker(st: SearchState, q0: number, q1: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = moduleWorker(siblingModule(import.meta.url, 'knn_worker'), { st, q0, q1 });
    let done = false;
    w.once('message', () => {
      done = true;
      resolve();
      void w.terminate();
    });
    w.once('error', (e) => reject(new EvaluationError('knnParallel', `worker for queries ${q0}..${q1 - 1} failed: ${e.message}`, { cause: e })));
    w.once('exit', (code) => {
      if (!done) reject(new EvaluationError('knnParallel', `worker for queries ${q0}..${q1 - 1} exited with code ${code}`));
    });
  });
}

function prepare(
  queries: Float32Array, nq: number, index: Float32Array, ni: number, dim: number, opts: KnnOptions,
  shared: boolean,
): SearchState {
  const { limit } = opts;
  const distance = opts.distance ?? 'cosine';
  if (!Object.hasOwn(KIND, distance)) throw new EvaluationError('distance', `must be cosine, euclidean or sqeuclidean, got '${distance}'`);
  if (!Number.isInteger(limit) || limit < 1) throw new EvaluationError('limit', `must be an integer >= 1, got ${limit}`);
  if (!Number.isInteger(dim) || dim < 1) throw new EvaluationError('dim', `must be an integer >= 1, got ${dim}`);
  if (queries.length !== nq * dim) throw new EvaluationError('queries', `has ${queries.length} values, expected nq × dim = ${nq} × ${dim}`);
  if (index.length !== ni * dim) throw new EvaluationError('index', `has ${index.length} values, expected ni × dim = ${ni} × ${dim}`);
  const kind = KIND[distance];
  const alloc = <T>(Ctor: new (b: ArrayBufferLike) => T, n: number, bytes: number): T =>
    new Ctor(shared ? new SharedArrayBuffer(n * bytes) : new ArrayBuffer(n * bytes));
  const pack = (src: Float32Array, n: number, tile: number, what: string): [Float32Array, Float64Array] => {
    const out = alloc(Float32Array, Math.ceil(n / tile) * tile * dim, 4);
    out.set(src);
    const norms = alloc(Float64Array, n, 8);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let d = r * dim, e = d + dim; d < e; d++) {
        const v = src[d]!;
        if (!Number.isFinite(v)) throw new EvaluationError(what, `row ${r}, component ${d - r * dim} is ${v}`);
        s += v * v;
      }
      norms[r] = kind === 0 ? Math.sqrt(s) : s;
    }
    return [out, norms];
  };
  const [q, qn] = pack(queries, nq, 4, 'queries');
  const [x, xn] = pack(index, ni, 3, 'index');

  const exclStart = alloc(Int32Array, nq + 1, 4);
  let exclList = alloc(Int32Array, 0, 4);
  if (opts.excludeSelf) {
    const { queryIds, indexIds } = opts.excludeSelf;
    if (queryIds.length !== nq) throw new EvaluationError('excludeSelf.queryIds', `has ${queryIds.length} ids for ${nq} queries`);
    if (indexIds.length !== ni) throw new EvaluationError('excludeSelf.indexIds', `has ${indexIds.length} ids for ${ni} index rows`);
    const where = new Map<string, number[]>();
    indexIds.forEach((id, j) => {
      const list = where.get(id);
      if (list) list.push(j);
      else where.set(id, [j]);
    });
    const flat: number[] = [];
    for (let i = 0; i < nq; i++) {
      exclStart[i] = flat.length;
      for (const j of where.get(queryIds[i]!) ?? []) flat.push(j);
    }
    exclStart[nq] = flat.length;
    exclList = alloc(Int32Array, flat.length, 4);
    exclList.set(flat);
  }
  return {
    dim, nq, ni, limit, kind, q, x, qn, xn, exclStart, exclList,
    heapD: alloc(Float64Array, nq * limit, 8),
    heapI: alloc(Int32Array, nq * limit, 4),
    heapN: alloc(Int32Array, nq, 4),
  };
}

function finish(st: SearchState): KnnMatches[] {
  const out: KnnMatches[] = new Array(st.nq);
  for (let i = 0; i < st.nq; i++) {
    const n = st.heapN[i]!, base = i * st.limit;
    const order = Array.from({ length: n }, (_, t) => base + t).sort(
      (a, b) => st.heapD[a]! - st.heapD[b]! || st.heapI[a]! - st.heapI[b]!,
    );
    const indices = new Int32Array(n);
    const distances = new Float64Array(n);
    order.forEach((p, t) => {
      indices[t] = st.heapI[p]!;
      distances[t] = st.kind === 1 ? Math.sqrt(st.heapD[p]!) : st.heapD[p]!;
    });
    out[i] = { indices, distances };
  }
  return out;
}
