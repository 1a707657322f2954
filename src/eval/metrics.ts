// Per-query ranking metrics, as docarray 0.21 defines them (docarray/math/evaluation.py), which are the
// numbers Finetuner's EvaluationCallback reports. Each takes the relevance of the retrieved matches in
// rank order (r[i] ≠ 0: the i-th match is relevant) and, for the `_at_k` metrics, an optional cut-off k
// (undefined: the whole list, as docarray's k=None). Names are docarray's, so reports line up.
//
// Details kept from docarray on purpose:
// - precision_at_k divides by the number of matches actually in r[:k], min(k, len(r)); 0 for an empty r.
// - average_precision, reciprocal_rank and r_precision take no k: they always look at the whole list.
// - r_precision is mean(r[:z]) with z = the number of relevant matches in r (docarray ≥ 0.18; before
//   that it was mean(r[:last relevant + 1])). Over a top-`limit` list this is not the textbook
//   R-precision, which needs R = all relevant documents in the collection.
// - ndcg_at_k normalises by the ideal ordering of the *retrieved* list, not of the whole collection.
// - recall_at_k(r, maxRel) with maxRel = 0 is 0/0 = NaN, as numpy gives; more relevant matches than
//   maxRel is an error.

import { ConfigError } from '../errors.js';

/** Relevance of the retrieved matches in rank order; nonzero is relevant (dcg/ndcg use the value). */
export type Relevance = ArrayLike<number>;

/** The metrics evaluateRetrieval reports, in docarray's names. */
export const METRIC_NAMES = [
  'precision_at_k',
  'recall_at_k',
  'f1_score_at_k',
  'hit_at_k',
  'average_precision',
  'reciprocal_rank',
  'r_precision',
  'dcg_at_k',
  'ndcg_at_k',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** docarray's _check_k: k is undefined (whole list) or an integer ≥ 1. Returns how many of r to use. */
function cut(r: Relevance, k: number | undefined): number {
  if (k === undefined) return r.length;
  if (!Number.isInteger(k) || k < 1) throw new ConfigError('k', `must be an integer >= 1 or undefined, got ${k}`);
  return Math.min(k, r.length);
}

function countRelevant(r: Relevance, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) if (r[i] !== 0) s++;
  return s;
}

/** mean(r[:k] ≠ 0); the denominator is min(k, len(r)). 0 for an empty list. */
export function precision_at_k(r: Relevance, k?: number): number {
  const n = cut(r, k);
  if (r.length === 0) return 0;
  return countRelevant(r, n) / n;
}

/** 1 if sum(r[:k]) > 0 else 0. */
export function hit_at_k(r: Relevance, k?: number): number {
  const n = cut(r, k);
  let s = 0;
  for (let i = 0; i < n; i++) s += r[i]!;
  return s > 0 ? 1 : 0;
}

/** Mean of precision_at_k(r, i + 1) over the relevant positions i; 0 if none. */
export function average_precision(r: Relevance): number {
  let seen = 0;
  let sum = 0;
  for (let i = 0; i < r.length; i++) {
    if (r[i] === 0) continue;
    seen++;
    sum += seen / (i + 1);
  }
  return seen === 0 ? 0 : sum / seen;
}

/** 1 / (1-based rank of the first relevant match); 0 if none. */
export function reciprocal_rank(r: Relevance): number {
  for (let i = 0; i < r.length; i++) if (r[i] !== 0) return 1 / (i + 1);
  return 0;
}

/** mean(r[:z] ≠ 0) with z = the number of relevant matches in the whole list; 0 if z = 0. */
export function r_precision(r: Relevance): number {
  const z = countRelevant(r, r.length);
  return z === 0 ? 0 : countRelevant(r, z) / z;
}

/** (number of relevant in r[:k]) / maxRel, where maxRel is how many relevant documents the collection
 * holds for this query. maxRel = 0 gives NaN (numpy's 0/0); more relevant matches than maxRel throws. */
export function recall_at_k(r: Relevance, maxRel: number, k?: number): number {
  const n = cut(r, k);
  if (!Number.isFinite(maxRel) || maxRel < 0) {
    throw new ConfigError('max_rel', `must be a count >= 0, got ${maxRel}`);
  }
  const s = countRelevant(r, n);
  if (s > maxRel) throw new ConfigError('max_rel', `number of relevant documents retrieved (${s}) > ${maxRel}`);
  return s / maxRel;
}

/** 2pr / (p + r) with p = precision_at_k, r = recall_at_k; 0 when p + r is not > 0 (so also for NaN r). */
export function f1_score_at_k(r: Relevance, maxRel: number, k?: number): number {
  const p = precision_at_k(r, k);
  const rec = recall_at_k(r, maxRel, k);
  return p + rec > 0 ? (2 * p * rec) / (p + rec) : 0;
}

/** Discounted cumulative gain over r[:k]. method 0: r[0] + Σ_{i≥1} r[i] / log2(i + 1), weights
 * [1, 1, 0.6309, 0.5, …]; method 1: Σ_{i≥0} r[i] / log2(i + 2), weights [1, 0.6309, 0.5, …]. */
export function dcg_at_k(r: Relevance, k?: number, method: 0 | 1 = 0): number {
  const n = cut(r, k);
  if (method !== 0 && method !== 1) throw new ConfigError('method', `must be 0 or 1, got ${method}`);
  if (n === 0) return 0;
  let s = method === 0 ? r[0]! : r[0]! / Math.log2(2);
  for (let i = 1; i < n; i++) s += r[i]! / Math.log2(method === 0 ? i + 1 : i + 2);
  return s;
}

/** dcg_at_k(r) / dcg_at_k(r sorted descending); 0 when the ideal is 0. The ideal is the best order of
 * the retrieved list itself. */
export function ndcg_at_k(r: Relevance, k?: number, method: 0 | 1 = 0): number {
  const ideal = Array.from(r).sort((a, b) => b - a);
  const best = dcg_at_k(ideal, k, method);
  if (!best) return 0;
  return dcg_at_k(r, k, method) / best;
}
