// The approximate-search graph of a folder index: a usearch HNSW over the store's unit vectors,
// keyed by slot. It is derived state: rebuilt from the vectors whenever the saved copy does not
// match the snapshot or was built with other parameters.
//
// Precision of the graph's own copy of the vectors (the f32 store keeps the exact ones):
//   f32  inner product, distance = 1 − cos: scores exact, 4 bytes a component.
//   f16  inner product on half floats (11-bit significand): 2 bytes a component.
//   i8   each vector scaled so its largest |component| is 127 and rounded; cosine metric, which does
//        not see that per-vector scale. 1 byte a component, integer dot products. usearch's own
//        f32 → i8 cast scales by 127/‖v‖, which for a unit 512-d vector leaves components of ~6
//        steps (recall@10 of the raw graph 0.82 at 100k clustered vectors against 0.98 with the
//        per-vector maximum), so the vectors are quantized here and handed over as Int8Array
//        through usearch's native index (its JS wrapper turns an Int8Array into floats first).
// Scores from an f16 or i8 graph are approximate; the folder index re-scores the best candidates
// against the f32 store (graph_search.ts).
// usearch fixes expansion_search at construction and a search for `want` neighbours explores
// max(expansion_search, want) candidates: the native index is made with expansion_search 1, and the
// folder index applies ef (its recorded expansionSearch, or a search's own) by asking for max(k, ef)
// candidates, so an ef below the recorded one is honoured too.

import { existsSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { nativeUsearch } from './usearch_native.js';
import type { NativeIndex } from './usearch_native.js';

export type HnswPrecision = 'f32' | 'f16' | 'i8';
export const HNSW_PRECISIONS: readonly HnswPrecision[] = ['f32', 'f16', 'i8'];

export interface HnswParams {
  /** Edges per node, M. */
  connectivity: number;
  /** Candidate list while inserting, efConstruction. */
  expansionAdd: number;
  /** Candidate list while searching, ef (a search may ask for another). */
  expansionSearch: number;
  /** How the graph stores its copy of the vectors. */
  precision: HnswPrecision;
  /** Graph candidates re-scored exactly against the f32 vectors (f16 and i8 graphs; at least k). */
  rerank: number;
}

const PARAM_KEYS = ['connectivity', 'expansionAdd', 'expansionSearch', 'precision', 'rerank'] as const;

/** What the graph is built from: changing one of these means building it again. */
export const BUILD_PARAMS = ['connectivity', 'expansionAdd', 'precision'] as const;

/**
 * New indexes. Chosen on 100k clustered 512-d vectors (bench:serve): an i8 graph re-ranked exactly
 * reaches the f32 graph's recall at a lower cost per query, in a quarter of its memory, and builds
 * faster; M 32 keeps recall at the larger sizes where M 16 fell to 0.96 at ef 256 (1M).
 */
export const DEFAULT_HNSW: HnswParams = { connectivity: 32, expansionAdd: 128, expansionSearch: 256, precision: 'i8', rerank: 100 };

/** Indexes that recorded no parameters were built by earlier versions with these. */
export const LEGACY_HNSW: HnswParams = { connectivity: 16, expansionAdd: 128, expansionSearch: 256, precision: 'f32', rerank: 0 };

/** A complete, checked parameter set: `base` with the defined fields of `over`. */
export function hnswParams(base: HnswParams, over: Partial<HnswParams> = {}, field = 'hnsw'): HnswParams {
  const p: HnswParams = { ...base };
  const given = over as Record<string, unknown>;
  for (const k of PARAM_KEYS) if (given[k] !== undefined) (p as unknown as Record<string, unknown>)[k] = given[k];
  const int = (k: 'connectivity' | 'expansionAdd' | 'expansionSearch' | 'rerank', min: number, max: number) => {
    const v = p[k];
    if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${field}.${k}`, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  };
  int('connectivity', 2, 256);
  int('expansionAdd', 1, 4096);
  int('expansionSearch', 1, 4096);
  int('rerank', 0, 4096);
  if (!HNSW_PRECISIONS.includes(p.precision)) throw new ConfigError(`${field}.precision`, `must be one of ${HNSW_PRECISIONS.join(', ')}, got ${JSON.stringify(p.precision)}`);
  return p;
}

/** How `now` differs from `was` ('connectivity 16 → 32, …'), or '' when it does not. */
export function paramChange(was: HnswParams, now: HnswParams): string {
  return PARAM_KEYS.filter((k) => was[k] !== now[k]).map((k) => `${k} ${was[k]} → ${now[k]}`).join(', ');
}

/** Whether a graph built with `a` is one built with `b`. */
export const sameBuild = (a: Pick<HnswParams, (typeof BUILD_PARAMS)[number]>, b: Pick<HnswParams, (typeof BUILD_PARAMS)[number]>): boolean => BUILD_PARAMS.every((k) => a[k] === b[k]);

/** `rows` unit vectors (row-major) as i8: each row scaled by 127 / max|x| and rounded. */
export function quantizeI8(v: Float32Array, dim: number): Int8Array {
  const out = new Int8Array(v.length);
  for (let o = 0; o < v.length; o += dim) {
    let max = 0;
    for (let j = o; j < o + dim; j++) max = Math.max(max, Math.abs(v[j]!));
    if (max === 0) continue;
    const s = 127 / max;
    for (let j = o; j < o + dim; j++) out[j] = Math.round(v[j]! * s);
  }
  return out;
}

export class HnswGraph {
  private readonly index: NativeIndex;

  constructor(readonly dim: number, readonly params: HnswParams = DEFAULT_HNSW) {
    const { CompiledIndex } = nativeUsearch();
    // Inner product on unit vectors is the cosine; the i8 rows are not unit length, so they use it.
    const metric = params.precision === 'i8' ? 'cos' : 'ip';
    this.index = new CompiledIndex(dim, metric, params.precision, params.connectivity, params.expansionAdd, 1, false);
  }

  /** A saved graph, or null when the file is missing or unreadable (the caller rebuilds). */
  static load(file: string, dim: number, params: HnswParams): HnswGraph | null {
    if (!existsSync(file)) return null;
    const g = new HnswGraph(dim, params);
    try {
      g.index.load(file);
    } catch {
      return null;
    }
    return g.index.dimensions() === dim && g.index.connectivity() === params.connectivity ? g : null;
  }

  get size(): number {
    return this.index.size();
  }

  /** Rows the native index takes: Float32Array for f32/f16 (usearch casts to f16), Int8Array for i8. */
  private encode(v: Float32Array): Float32Array | Int8Array {
    return this.params.precision === 'i8' ? quantizeI8(v, this.dim) : v;
  }

  /** Add rows `vectors` (n × dim, row-major) under `keys`, on every core. */
  addMany(keys: readonly number[], vectors: Float32Array): void {
    if (!keys.length) return;
    this.index.add(BigUint64Array.from(keys, (k) => BigInt(k)), this.encode(vectors), 0);
  }

  remove(key: number): void {
    this.index.remove(BigUint64Array.of(BigInt(key)));
  }

  /** The `want` nearest keys with the graph's scores (exact only for f32), best first. */
  search(q: Float32Array, want: number): { keys: number[]; scores: number[] } {
    if (this.size === 0 || want < 1) return { keys: [], scores: [] };
    const [keys, distances, counts] = this.index.search(this.encode(q), want, 1);
    const n = Number(counts[0] ?? 0n);
    const out = { keys: new Array<number>(n), scores: new Array<number>(n) };
    for (let i = 0; i < n; i++) {
      out.keys[i] = Number(keys[i]!);
      out.scores[i] = 1 - distances[i]!;
    }
    return out;
  }

  save(file: string): void {
    this.index.save(file);
  }
}
