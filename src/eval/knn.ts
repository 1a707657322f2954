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
import { Worker } from 'node:worker_threads';
import { EvaluationError } from '../errors.js';

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

const COSINE_EPS = 1e-7;
const KIND: Record<Distance, number> = { cosine: 0, euclidean: 1, sqeuclidean: 2 };

/** Everything a search over a range of queries reads and writes; plain arrays, so that the same
 * object can be rebuilt in a worker from SharedArrayBuffer-backed views. */
interface SearchState {
  dim: number;
  nq: number;
  ni: number;
  limit: number;
  kind: number;
  /** Queries and index rows, row-major, padded with zero rows to a multiple of 4 and of 3. */
  q: Float32Array;
  x: Float32Array;
  /** cosine: ‖·‖; (sq)euclidean: ‖·‖². */
  qn: Float64Array;
  xn: Float64Array;
  /** CSR list of excluded index positions per query. */
  exclStart: Int32Array;
  exclList: Int32Array;
  /** Per query a max-heap of (distance, index) of capacity `limit`, and its fill. */
  heapD: Float64Array;
  heapI: Int32Array;
  heapN: Int32Array;
}

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
  const source = workerSource();
  await Promise.all(ranges.map(([a, b]) => runWorker(source, st, a, b)));
  return finish(st);
}

/** A worker runs the search functions of this module, compiled as they are loaded (from tsc or
 * from tsx), sent as source: on Node 20 a worker does not inherit the parent's `--import tsx` hooks,
 * so it could not import this module when it runs from TypeScript source. */
function workerSource(): string {
  return [
    `const COSINE_EPS = ${COSINE_EPS};`,
    worse.toString(),
    offer.toString(),
    offerRow.toString(),
    searchRange.toString(),
    `const { workerData, parentPort } = require('node:worker_threads');`,
    `searchRange(workerData.st, workerData.q0, workerData.q1);`,
    `parentPort.postMessage('done');`,
  ].join('\n');
}

function runWorker(source: string, st: SearchState, q0: number, q1: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true, workerData: { st, q0, q1 } });
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

/** Fill the heaps of queries [q0, q1) (q0 a multiple of 4) with their nearest index rows. */
function searchRange(st: SearchState, q0: number, q1: number): void {
  const { dim, ni, q: Q, x: X } = st;
  // ~256 KiB of index rows per block, so a block is read from L2 by every 4-query tile.
  const block = Math.max(3, Math.floor(65536 / dim / 3) * 3);
  for (let jb = 0; jb < ni; jb += block) {
    const je = Math.min(ni, jb + block);
    for (let i = q0; i < q1; i += 4) {
      const a0 = i * dim, a1 = a0 + dim, a2 = a1 + dim, a3 = a2 + dim;
      for (let j = jb; j < je; j += 3) {
        const b0 = j * dim, b1 = b0 + dim, b2 = b1 + dim;
        let s00 = 0, s01 = 0, s02 = 0, s10 = 0, s11 = 0, s12 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s30 = 0, s31 = 0, s32 = 0;
        for (let d = 0; d < dim; d++) {
          const x0 = X[b0 + d]!, x1 = X[b1 + d]!, x2 = X[b2 + d]!;
          let v = Q[a0 + d]!;
          s00 += v * x0; s01 += v * x1; s02 += v * x2;
          v = Q[a1 + d]!;
          s10 += v * x0; s11 += v * x1; s12 += v * x2;
          v = Q[a2 + d]!;
          s20 += v * x0; s21 += v * x1; s22 += v * x2;
          v = Q[a3 + d]!;
          s30 += v * x0; s31 += v * x1; s32 += v * x2;
        }
        offerRow(st, i, q1, j, s00, s01, s02);
        offerRow(st, i + 1, q1, j, s10, s11, s12);
        offerRow(st, i + 2, q1, j, s20, s21, s22);
        offerRow(st, i + 3, q1, j, s30, s31, s32);
      }
    }
  }
}

function offerRow(st: SearchState, i: number, q1: number, j: number, d0: number, d1: number, d2: number): void {
  if (i >= q1) return;
  const ni = st.ni;
  offer(st, i, j, d0);
  if (j + 1 < ni) offer(st, i, j + 1, d1);
  if (j + 2 < ni) offer(st, i, j + 2, d2);
}

/** Turn the dot product of query i and index row j into a distance (squared for euclidean: the order
 * is the same, the root is taken once at the end) and keep it if it beats the query's worst. Index
 * rows arrive in ascending order, so an equal distance never displaces a kept one. */
function offer(st: SearchState, i: number, j: number, dot: number): void {
  let dist: number;
  if (st.kind === 0) {
    const c = (dot + COSINE_EPS) / (st.qn[i]! * st.xn[j]! + COSINE_EPS);
    dist = 1 - (c > 1 ? 1 : c < -1 ? -1 : c);
  } else {
    dist = st.qn[i]! + st.xn[j]! - 2 * dot;
    if (dist < 0) dist = 0;
  }
  const L = st.limit, base = i * L, n = st.heapN[i]!;
  const D = st.heapD, I = st.heapI;
  if (n === L && !(dist < D[base]!)) return;
  for (let e = st.exclStart[i]!, ee = st.exclStart[i + 1]!; e < ee; e++) if (st.exclList[e] === j) return;
  if (n < L) {
    // sift up
    let c = n;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!worse(dist, j, D[base + p]!, I[base + p]!)) break;
      D[base + c] = D[base + p]!;
      I[base + c] = I[base + p]!;
      c = p;
    }
    D[base + c] = dist;
    I[base + c] = j;
    st.heapN[i] = n + 1;
    return;
  }
  // replace the root (the worst kept match) and sift down
  let c = 0;
  for (;;) {
    let m = 2 * c + 1;
    if (m >= L) break;
    if (m + 1 < L && worse(D[base + m + 1]!, I[base + m + 1]!, D[base + m]!, I[base + m]!)) m++;
    if (!worse(D[base + m]!, I[base + m]!, dist, j)) break;
    D[base + c] = D[base + m]!;
    I[base + c] = I[base + m]!;
    c = m;
  }
  D[base + c] = dist;
  I[base + c] = j;
}

/** (d1, j1) ranks after (d2, j2). */
function worse(d1: number, j1: number, d2: number, j2: number): boolean {
  return d1 > d2 || (d1 === d2 && j1 > j2);
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
