// The in-memory state of a folder index: L2-normalised vectors in one contiguous Float32Array,
// row `slot` at [slot·dim, (slot+1)·dim), with ids and metadata per slot. A deleted row leaves a
// hole that the next new id fills (lowest hole first); the slot is also the item's HNSW key, so
// replaying the same operations on the same starting state gives the same slots everywhere.
// Exact search is a dot product against every live row (cosine, as rows and query are unit vectors):
// for large stores usearch's SIMD brute force over the whole matrix (holes are zero rows, scoring 0,
// so it asks for k + holes and drops them), else (and with a filter) a JS loop with a size-k min-heap.

import usearch from 'usearch';
import type { Matches } from 'usearch';
import type { Metadata } from './index_types.js';

/** Below this many floats in the matrix the JS loop is as fast as the native call. */
const NATIVE_EXACT_MIN = 1 << 16;

export interface ScoredSlot {
  slot: number;
  score: number;
}

export class VectorStore {
  vectors: Float32Array;
  private bytes: Uint8Array;
  readonly ids: (string | undefined)[] = [];
  readonly metas: (Metadata | undefined)[] = [];
  readonly slotOf = new Map<string, number>();
  /** Holes below `end`, as a stack whose top is the lowest slot. */
  private free: number[] = [];
  /** One past the highest slot ever used (rows [0, end) are scanned). */
  end = 0;

  constructor(readonly dim: number, capacity = 1024) {
    this.vectors = new Float32Array(capacity * dim);
    this.bytes = new Uint8Array(this.vectors.buffer);
  }

  get size(): number {
    return this.slotOf.size;
  }

  private grow(rows: number): void {
    if (rows * this.dim > this.vectors.length) this.reserve(Math.max(rows, Math.ceil((this.vectors.length / this.dim) * 1.5)));
  }

  /** Room for `rows` rows without regrowing (a snapshot load knows its count: growing by 1.5× to
   * a million 512-d rows left ~4 GB of freed copies in a process that does not trim its heap). */
  reserve(rows: number): void {
    if (rows * this.dim <= this.vectors.length) return;
    const next = new Float32Array(rows * this.dim);
    next.set(this.vectors.subarray(0, this.end * this.dim));
    this.vectors = next;
    this.bytes = new Uint8Array(next.buffer);
  }

  private write(slot: number, vector: Float32Array | Uint8Array): void {
    if (vector instanceof Float32Array) this.vectors.set(vector, slot * this.dim);
    else this.bytes.set(vector, slot * this.dim * 4);
  }

  /** Insert or replace `id`; `vector` is unit length (raw little-endian bytes or floats). */
  upsert(id: string, metadata: Metadata | undefined, vector: Float32Array | Uint8Array): { slot: number; replaced: boolean } {
    const old = this.slotOf.get(id);
    if (old !== undefined) {
      this.write(old, vector);
      this.metas[old] = metadata;
      return { slot: old, replaced: true };
    }
    const slot = this.free.length ? this.free.pop()! : this.end;
    if (slot === this.end) {
      this.grow(this.end + 1);
      this.end++;
    }
    this.write(slot, vector);
    this.ids[slot] = id;
    this.metas[slot] = metadata;
    this.slotOf.set(id, slot);
    return { slot, replaced: false };
  }

  /** Put a snapshot row at its recorded slot (rows may arrive in any order; call seal() after). */
  place(slot: number, id: string, metadata: Metadata | undefined, vector: Uint8Array): void {
    if (slot >= this.end) {
      this.grow(slot + 1);
      this.end = slot + 1;
    }
    this.write(slot, vector);
    this.ids[slot] = id;
    this.metas[slot] = metadata;
    this.slotOf.set(id, slot);
  }

  /** Remove `id`; returns its slot, or undefined when absent. */
  delete(id: string): number | undefined {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return undefined;
    this.slotOf.delete(id);
    this.ids[slot] = undefined;
    this.metas[slot] = undefined;
    this.vectors.fill(0, slot * this.dim, (slot + 1) * this.dim);
    // Keep the stack sorted descending (lowest on top): binary search for the insertion point.
    let lo = 0, hi = this.free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.free[mid]! > slot) lo = mid + 1;
      else hi = mid;
    }
    this.free.splice(lo, 0, slot);
    return slot;
  }

  clear(): void {
    this.slotOf.clear();
    this.ids.length = 0;
    this.metas.length = 0;
    this.free = [];
    this.end = 0;
    this.vectors = new Float32Array(1024 * this.dim);
    this.bytes = new Uint8Array(this.vectors.buffer);
  }

  /**
   * Canonical form, the one a snapshot load produces: trailing holes dropped, the remaining holes
   * on the stack lowest-on-top. Called after loading a snapshot and before writing one.
   */
  seal(): void {
    while (this.end > 0 && this.ids[this.end - 1] === undefined) this.end--;
    this.ids.length = this.end;
    this.metas.length = this.end;
    this.free = [];
    for (let s = this.end - 1; s >= 0; s--) if (this.ids[s] === undefined) this.free.push(s);
  }

  row(slot: number): Float32Array {
    return this.vectors.subarray(slot * this.dim, (slot + 1) * this.dim);
  }

  /** Row `slot` · q (the cosine, both being unit vectors). */
  dot(slot: number, q: Float32Array): number {
    const v = this.vectors, d = this.dim, o = slot * d, d4 = d - (d % 4);
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0, j = 0;
    for (; j < d4; j += 4) {
      a0 += v[o + j]! * q[j]!;
      a1 += v[o + j + 1]! * q[j + 1]!;
      a2 += v[o + j + 2]! * q[j + 2]!;
      a3 += v[o + j + 3]! * q[j + 3]!;
    }
    for (; j < d; j++) a0 += v[o + j]! * q[j]!;
    return a0 + a1 + a2 + a3;
  }

  /** Live slots in ascending order. */
  *liveSlots(): Generator<number> {
    for (let s = 0; s < this.end; s++) if (this.ids[s] !== undefined) yield s;
  }

  /** Top-k live rows by dot product with unit `q`, best first; `keep` filters before the cut. */
  searchExact(q: Float32Array, k: number, keep?: (slot: number) => boolean): ScoredSlot[] {
    const holes = this.end - this.size;
    if (!keep && k > 0 && this.size > 0 && this.end * this.dim >= NATIVE_EXACT_MIN) {
      const m = usearch.exactSearch(this.vectors.subarray(0, this.end * this.dim), q, this.dim, Math.min(k + holes, this.end), usearch.MetricKind.IP, 0) as Matches;
      const out: ScoredSlot[] = [];
      for (let i = 0; i < m.keys.length && out.length < k; i++) {
        const slot = Number(m.keys[i]!);
        if (this.ids[slot] !== undefined) out.push({ slot, score: 1 - m.distances[i]! });
      }
      return out;
    }
    const heap = new TopK(k);
    for (let s = 0; s < this.end; s++) {
      if (this.ids[s] === undefined) continue;
      const score = this.dot(s, q);
      if (heap.accepts(score) && (!keep || keep(s))) heap.push(s, score);
    }
    return heap.sorted();
  }
}

/** A min-heap of the k best (slot, score) pairs seen; the root is the weakest kept. */
export class TopK {
  private readonly slots: Int32Array;
  private readonly scores: Float64Array;
  private n = 0;

  constructor(readonly k: number) {
    this.slots = new Int32Array(Math.max(k, 1));
    this.scores = new Float64Array(Math.max(k, 1));
  }

  accepts(score: number): boolean {
    return this.k > 0 && (this.n < this.k || score > this.scores[0]!);
  }

  push(slot: number, score: number): void {
    const sc = this.scores, sl = this.slots;
    if (this.n < this.k) {
      let i = this.n++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (sc[p]! <= score) break;
        sc[i] = sc[p]!;
        sl[i] = sl[p]!;
        i = p;
      }
      sc[i] = score;
      sl[i] = slot;
      return;
    }
    // Replace the root and sift down.
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.n) break;
      const c = l + 1 < this.n && sc[l + 1]! < sc[l]! ? l + 1 : l;
      if (sc[c]! >= score) break;
      sc[i] = sc[c]!;
      sl[i] = sl[c]!;
      i = c;
    }
    sc[i] = score;
    sl[i] = slot;
  }

  /** Best first; ties by lower slot. */
  sorted(): ScoredSlot[] {
    const out: ScoredSlot[] = [];
    for (let i = 0; i < this.n; i++) out.push({ slot: this.slots[i]!, score: this.scores[i]! });
    return out.sort((a, b) => b.score - a.score || a.slot - b.slot);
  }
}
