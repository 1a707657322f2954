// The inner loop of exact kNN (knn.ts): a blocked 4×3 register-tiled dot product feeding a bounded
// max-heap per query. Kept apart from knn.ts so that a worker thread (knn_worker.ts) loads only this.

export const COSINE_EPS = 1e-7;

/** Everything a search over a range of queries reads and writes; plain arrays, so that the same
 * object can be rebuilt in a worker from SharedArrayBuffer-backed views. */
export interface SearchState {
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

/** Fill the heaps of queries [q0, q1) (q0 a multiple of 4) with their nearest index rows. */
export function searchRange(st: SearchState, q0: number, q1: number): void {
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
