// Retrieval evaluation of a labelled query set against a labelled index set: what Finetuner's
// EvaluationCallback reports after each epoch (docarray 0.21 `embed_and_evaluate`), plus R@1/5/10.
//
// For each query: search the top `limit` index rows (knn.ts); r_i = 1 when the i-th match has the
// query's label; each metric of metrics.ts is computed on r and the results are averaged over queries.
// `k` (default: limit) is the cut-off of the `_at_k` metrics; average_precision, reciprocal_rank and
// r_precision always use the whole top-`limit` list, as in docarray.
//
// recall_at_k's denominator (docarray's max_rel) is the number of index rows that carry the query's
// label; with excludeSelf the index rows whose id is the query's id (and that carry its label) are
// not counted, as they can never be retrieved. docarray counts the labels of the index set
// (`num_relevant_documents_per_label`, computed from index_data since docarray PR #950, Dec 2022;
// before it, wrongly, from the queries). Here the self-exclusion rule is applied per query, so it
// holds both for a set matched against itself and for a separate index that shares ids.
//
// `${prefix}_recall_at_{1,5,10}` is the R@K of retrieval papers (CLIP, ALIGN on Flickr30k / COCO):
// the fraction of queries with at least one relevant index row among their K nearest, i.e. the mean
// of hit_at_k(r, K). When every query has exactly one relevant index row (a caption and its image)
// it equals docarray's recall_at_k with k = K. These are computed on the top max(limit, 10) matches,
// so R@10 is right even with limit < 10.
//
// Differences from docarray kept on purpose: every query is evaluated (docarray samples 1,000 queries
// at random when there are more); a query whose label has no retrievable index row throws instead of
// averaging a NaN recall (docarray raises only when the label is missing from the index altogether).

import { EvaluationError } from '../errors.js';
import { knn, knnParallel, type Distance, type KnnMatches } from './knn.js';
import { TEXT_TO_IMAGE } from './metric_names.js';
import {
  METRIC_NAMES, average_precision, dcg_at_k, f1_score_at_k, hit_at_k, ndcg_at_k, precision_at_k,
  r_precision, recall_at_k, reciprocal_rank, type MetricName,
} from './metrics.js';

export type Label = string | number;
/** Embeddings as one row-major [n, dim] array, or as n rows. */
export type Embeddings = Float32Array | readonly ArrayLike<number>[];

export interface EvaluateOptions {
  queryEmbeddings: Embeddings;
  queryLabels: readonly Label[];
  queryIds?: readonly string[];
  indexEmbeddings: Embeddings;
  indexLabels: readonly Label[];
  indexIds?: readonly string[];
  /** Matches per query (docarray's `limit`). Default 20. */
  limit?: number;
  /** Cut-off of the `_at_k` metrics. Default: limit. */
  k?: number;
  distance?: Distance;
  /** Drop matches whose id is the query's id; needs queryIds and indexIds. */
  excludeSelf?: boolean;
  /** Key prefix; keys are `${prefix}_${metric}`. Default 'clip-text-to-clip-vision'. */
  prefix?: string;
}

/** The R@K cut-offs reported besides docarray's metrics. */
export const RECALL_CUTOFFS = [1, 5, 10] as const;

/** Evaluate on the calling thread. Returns `${prefix}_${metric}` → mean over queries. */
export function evaluateRetrieval(opts: EvaluateOptions): Record<string, number> {
  const p = prepareEvaluation(opts);
  return scoreMatches(knn(p.q, p.nq, p.x, p.ni, p.dim, p.search), p);
}

/** evaluateRetrieval with the search spread over `threads` worker threads (knnParallel). */
export async function evaluateRetrievalParallel(opts: EvaluateOptions & { threads?: number }): Promise<Record<string, number>> {
  const p = prepareEvaluation(opts);
  const matches = await knnParallel(p.q, p.nq, p.x, p.ni, p.dim, { ...p.search, threads: opts.threads });
  return scoreMatches(matches, p);
}

interface Prepared {
  q: Float32Array;
  x: Float32Array;
  nq: number;
  ni: number;
  dim: number;
  limit: number;
  k: number | undefined;
  prefix: string;
  queryLabels: readonly Label[];
  indexLabels: readonly Label[];
  /** Per query, the number of relevant index rows that can be retrieved (docarray's max_rel). */
  maxRel: Int32Array;
  search: { limit: number; distance: Distance; excludeSelf?: { queryIds: readonly string[]; indexIds: readonly string[] } };
}

function prepareEvaluation(opts: EvaluateOptions): Prepared {
  const limit = opts.limit ?? 20;
  const { k, queryLabels, indexLabels } = opts;
  if (!Number.isInteger(limit) || limit < 1) throw new EvaluationError('limit', `must be an integer >= 1, got ${limit}`);
  if (k !== undefined && (!Number.isInteger(k) || k < 1)) throw new EvaluationError('k', `must be an integer >= 1, got ${k}`);
  const nq = queryLabels.length;
  const ni = indexLabels.length;
  if (nq === 0) throw new EvaluationError('queryLabels', 'no queries to evaluate');
  if (ni === 0) throw new EvaluationError('indexLabels', 'the index is empty');
  const [q, dq] = flatten(opts.queryEmbeddings, nq, 'queryEmbeddings');
  const [x, di] = flatten(opts.indexEmbeddings, ni, 'indexEmbeddings');
  if (dq !== di) throw new EvaluationError('indexEmbeddings', `dimension ${di} differs from the queries' ${dq}`);
  checkLabels(queryLabels, 'queryLabels');
  checkLabels(indexLabels, 'indexLabels');

  let excludeSelf: Prepared['search']['excludeSelf'];
  if (opts.excludeSelf) {
    const { queryIds, indexIds } = opts;
    if (!queryIds || !indexIds) throw new EvaluationError('excludeSelf', 'needs queryIds and indexIds');
    if (queryIds.length !== nq) throw new EvaluationError('queryIds', `has ${queryIds.length} ids for ${nq} queries`);
    if (indexIds.length !== ni) throw new EvaluationError('indexIds', `has ${indexIds.length} ids for ${ni} index rows`);
    excludeSelf = { queryIds, indexIds };
  }

  // max_rel: index rows per label, less the query's own rows when they are excluded.
  const perLabel = new Map<Label, number>();
  for (const l of indexLabels) perLabel.set(l, (perLabel.get(l) ?? 0) + 1);
  const selfRelevant = new Map<string, Map<Label, number>>();
  if (excludeSelf) {
    excludeSelf.indexIds.forEach((id, j) => {
      const byLabel = selfRelevant.get(id) ?? new Map<Label, number>();
      byLabel.set(indexLabels[j]!, (byLabel.get(indexLabels[j]!) ?? 0) + 1);
      selfRelevant.set(id, byLabel);
    });
  }
  const maxRel = new Int32Array(nq);
  for (let i = 0; i < nq; i++) {
    const l = queryLabels[i]!;
    const total = perLabel.get(l);
    if (total === undefined) {
      throw new EvaluationError(`queryLabels[${i}]`, `label ${JSON.stringify(l)} has no index row: recall is undefined`);
    }
    const own = excludeSelf ? (selfRelevant.get(excludeSelf.queryIds[i]!)?.get(l) ?? 0) : 0;
    if (total - own === 0) {
      throw new EvaluationError(
        `queryLabels[${i}]`,
        `label ${JSON.stringify(l)}: the only index row(s) with it are the query itself (excludeSelf), so recall is 0/0; ` +
          'drop such queries or turn excludeSelf off',
      );
    }
    maxRel[i] = total - own;
  }
  return {
    q, x, nq, ni, dim: dq, limit, k, queryLabels, indexLabels, maxRel,
    prefix: opts.prefix ?? TEXT_TO_IMAGE,
    search: { limit: Math.max(limit, ...RECALL_CUTOFFS), distance: opts.distance ?? 'cosine', excludeSelf },
  };
}

/** Average the metrics over queries, given their matches (searched to depth ≥ max(limit, 10)). */
function scoreMatches(matches: KnnMatches[], p: Prepared): Record<string, number> {
  const sums = new Map<string, number>();
  const add = (name: string, v: number): void => {
    sums.set(name, (sums.get(name) ?? 0) + v);
  };
  for (let i = 0; i < p.nq; i++) {
    const idx = matches[i]!.indices;
    if (idx.length === 0) throw new EvaluationError(`queries[${i}]`, 'has no matches (the index holds only the query itself)');
    const label = p.queryLabels[i]!;
    const all = new Uint8Array(idx.length);
    for (let t = 0; t < idx.length; t++) all[t] = p.indexLabels[idx[t]!] === label ? 1 : 0;
    const r = all.subarray(0, Math.min(p.limit, all.length));
    const k = p.k;
    const values: Record<MetricName, number> = {
      precision_at_k: precision_at_k(r, k),
      recall_at_k: recall_at_k(r, p.maxRel[i]!, k),
      f1_score_at_k: f1_score_at_k(r, p.maxRel[i]!, k),
      hit_at_k: hit_at_k(r, k),
      average_precision: average_precision(r),
      reciprocal_rank: reciprocal_rank(r),
      r_precision: r_precision(r),
      dcg_at_k: dcg_at_k(r, k),
      ndcg_at_k: ndcg_at_k(r, k),
    };
    for (const m of METRIC_NAMES) add(m, values[m]);
    for (const K of RECALL_CUTOFFS) add(`recall_at_${K}`, hit_at_k(all, K));
  }
  const out: Record<string, number> = {};
  for (const [name, s] of sums) out[`${p.prefix}_${name}`] = s / p.nq;
  return out;
}

function flatten(e: Embeddings, n: number, field: string): [Float32Array, number] {
  if (e instanceof Float32Array) {
    if (e.length % n !== 0 || e.length === 0) {
      throw new EvaluationError(field, `has ${e.length} values, not a multiple of the ${n} labels`);
    }
    return [e, e.length / n];
  }
  if (e.length !== n) throw new EvaluationError(field, `has ${e.length} rows for ${n} labels`);
  const dim = e[0]!.length;
  if (dim === 0) throw new EvaluationError(`${field}[0]`, 'is empty');
  const out = new Float32Array(n * dim);
  e.forEach((row, r) => {
    if (row.length !== dim) throw new EvaluationError(`${field}[${r}]`, `has ${row.length} values, expected ${dim}`);
    for (let d = 0; d < dim; d++) out[r * dim + d] = row[d]!;
  });
  return [out, dim];
}

function checkLabels(labels: readonly Label[], field: string): void {
  labels.forEach((l, i) => {
    if (typeof l !== 'string' && !(typeof l === 'number' && Number.isFinite(l))) {
      throw new EvaluationError(`${field}[${i}]`, `must be a string or a finite number, got ${String(l)}`);
    }
  });
}
