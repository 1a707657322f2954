// The per-query metrics against values worked out by hand from docarray 0.21's definitions
// (docarray/math/evaluation.py); the arithmetic is in the comments. The graded dcg values are the
// worked examples of the rank_metrics docstrings docarray's code descends from.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../src/errors.js';
import {
  METRIC_NAMES, average_precision, dcg_at_k, f1_score_at_k, hit_at_k, ndcg_at_k, precision_at_k,
  r_precision, recall_at_k, reciprocal_rank,
} from '../src/eval/metrics.js';

const close = (got: number, want: number, what: string, tol = 1e-12): void =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want}`);

// log2 weights used below: 1/log2(3) = 0.6309297535714575, 1/log2(5) = 0.43067655807339306,
// 1/log2(6) = 0.38685280723454163, 1/log2(7) = 0.3562071871080222, 1/log2(8) = 1/3.

test('relevance [1,0,1,0,0,1]: relevant at ranks 1, 3, 6', () => {
  const r = [1, 0, 1, 0, 0, 1];
  close(precision_at_k(r), 3 / 6, 'P (k = len)');
  close(precision_at_k(r, 1), 1, 'P@1');
  close(precision_at_k(r, 3), 2 / 3, 'P@3: [1,0,1]');
  close(precision_at_k(r, 10), 3 / 6, 'P@10 divides by the 6 retrieved, not by 10');
  assert.equal(hit_at_k(r, 1), 1);
  // AP = mean(P@1, P@3, P@6) = (1 + 2/3 + 1/2) / 3 = (13/6) / 3 = 13/18
  close(average_precision(r), 13 / 18, 'AP');
  close(reciprocal_rank(r), 1, 'RR');
  // z = 3 relevant → mean(r[:3]) = mean([1,0,1]) = 2/3 (docarray < 0.18 gave mean(r[:6]) = 1/2)
  close(r_precision(r), 2 / 3, 'R-precision');
  close(recall_at_k(r, 4), 3 / 4, 'recall, 4 relevant in the collection');
  close(recall_at_k(r, 4, 3), 2 / 4, 'recall@3');
  // F1: p = 1/2, r = 3/4 → 2·(3/8)/(5/4) = 3/5
  close(f1_score_at_k(r, 4), 3 / 5, 'F1');
  // F1@3: p = 2/3, r = 1/2 → 2·(1/3)/(7/6) = 4/7
  close(f1_score_at_k(r, 4, 3), 4 / 7, 'F1@3');
  // DCG = r0 + r2/log2(3) + r5/log2(6) = 1 + 0.6309297535714575 + 0.38685280723454163
  close(dcg_at_k(r), 2.0177825608059994, 'DCG', 1e-12);
  // ideal [1,1,1,0,0,0]: 1 + 1/log2(2) + 1/log2(3) = 2.6309297535714578 → NDCG = 0.7669465739504759
  close(ndcg_at_k(r), 2.0177825608059994 / 2.6309297535714578, 'NDCG');
  // k = 3: DCG = 1 + 1/log2(3) = 1.6309297535714575, ideal[:3] = 2.6309297535714578
  close(dcg_at_k(r, 3), 1.6309297535714575, 'DCG@3');
  close(ndcg_at_k(r, 3), 0.6199062332840657, 'NDCG@3', 1e-12);
  // method 1: Σ r[i]/log2(i+2) = 1/1 + 1/log2(4) + 1/log2(7) = 1 + 0.5 + 0.3562071871080222
  close(dcg_at_k(r, undefined, 1), 1.8562071871080222, 'DCG method 1');
});

test('relevance [0,1,1,0,1,0,0,1]: relevant at ranks 2, 3, 5, 8', () => {
  const r = [0, 1, 1, 0, 1, 0, 0, 1];
  close(precision_at_k(r), 4 / 8, 'P');
  close(precision_at_k(r, 5), 3 / 5, 'P@5: [0,1,1,0,1]');
  assert.equal(hit_at_k(r, 1), 0);
  assert.equal(hit_at_k(r, 2), 1);
  // AP = mean(1/2, 2/3, 3/5, 4/8) = (15 + 20 + 18 + 15)/30 / 4 = 68/120 = 17/30
  close(average_precision(r), 17 / 30, 'AP');
  close(reciprocal_rank(r), 1 / 2, 'RR');
  // z = 4 → mean([0,1,1,0]) = 1/2
  close(r_precision(r), 1 / 2, 'R-precision');
  close(recall_at_k(r, 10, 5), 3 / 10, 'recall@5 of 10 relevant');
  // F1@5: p = 0.6, r = 0.3 → 2·0.18/0.9 = 0.4
  close(f1_score_at_k(r, 10, 5), 0.4, 'F1@5');
  // DCG = 0 + 1/log2(2) + 1/log2(3) + 1/log2(5) + 1/log2(8) = 1 + 0.63093 + 0.43068 + 0.33333
  close(dcg_at_k(r), 2.394939644978184, 'DCG', 1e-12);
  // ideal [1,1,1,1,0,…]: 1 + 1 + 1/log2(3) + 1/log2(4) = 3.1309297535714578
  close(ndcg_at_k(r), 2.394939644978184 / 3.1309297535714578, 'NDCG', 1e-12);
  close(ndcg_at_k(r), 0.7649292170309064, 'NDCG value', 1e-12);
});

test('graded relevance [3,2,3,0,0,1,2,2,3,0] (rank_metrics docstring examples)', () => {
  const r = [3, 2, 3, 0, 0, 1, 2, 2, 3, 0];
  close(dcg_at_k(r, 1), 3, 'DCG@1');
  close(dcg_at_k(r, 1, 1), 3, 'DCG@1 method 1');
  close(dcg_at_k(r, 2), 5, 'DCG@2 = 3 + 2/log2(2)');
  close(dcg_at_k(r, 2, 1), 4.2618595071429155, 'DCG@2 method 1 = 3 + 2/log2(3)');
  close(dcg_at_k(r, 10), 9.605117739188811, 'DCG@10', 1e-12);
  close(dcg_at_k(r, 11), 9.605117739188811, 'DCG@11: k past the end uses the whole list', 1e-12);
  close(ndcg_at_k(r, 1), 1, 'NDCG@1');
  // DCG@4 = 3 + 2 + 3/log2(3) + 0 = 6.892789260714372; ideal [3,3,3,2]: 3 + 3 + 3/log2(3) + 2/2
  close(ndcg_at_k(r, 4), 6.892789260714372 / 8.892789260714372, 'NDCG@4', 1e-12);
  // hit_at_k sums the values, as docarray does
  assert.equal(hit_at_k(r, 1), 1);
});

test('no relevant match: every metric is 0', () => {
  const r = [0, 0, 0, 0];
  for (const [name, v] of [
    ['precision_at_k', precision_at_k(r)], ['hit_at_k', hit_at_k(r)], ['average_precision', average_precision(r)],
    ['reciprocal_rank', reciprocal_rank(r)], ['r_precision', r_precision(r)], ['recall_at_k', recall_at_k(r, 2)],
    ['f1_score_at_k', f1_score_at_k(r, 2)], ['dcg_at_k', dcg_at_k(r)], ['ndcg_at_k', ndcg_at_k(r)],
  ] as const) {
    assert.equal(v, 0, name);
  }
});

test('empty match list: 0, as docarray returns for an empty list', () => {
  const r: number[] = [];
  assert.equal(precision_at_k(r), 0);
  assert.equal(precision_at_k(r, 3), 0);
  assert.equal(hit_at_k(r, 3), 0);
  assert.equal(average_precision(r), 0);
  assert.equal(reciprocal_rank(r), 0);
  assert.equal(r_precision(r), 0);
  assert.equal(dcg_at_k(r), 0);
  assert.equal(ndcg_at_k(r, 2), 0);
});

test('fewer matches than k', () => {
  const r = [0, 1];
  close(precision_at_k(r, 5), 1 / 2, 'P@5 over 2 matches divides by 2');
  assert.equal(hit_at_k(r, 5), 1);
  close(recall_at_k(r, 3, 5), 1 / 3, 'recall@5');
  // F1@5: p = 1/2, r = 1/3 → 2·(1/6)/(5/6) = 2/5
  close(f1_score_at_k(r, 3, 5), 2 / 5, 'F1@5');
  close(dcg_at_k(r, 5), 1, 'DCG@5 = 0 + 1/log2(2)');
  // ideal [1,0] has DCG 1 + 0 = 1: method 0 weighs ranks 1 and 2 alike, so NDCG@5 = 1/1
  close(ndcg_at_k(r, 5), 1, 'NDCG@5');
});

test('recall edge cases follow numpy: 0/0 is NaN, more retrieved than max_rel throws', () => {
  assert.ok(Number.isNaN(recall_at_k([0, 0], 0)));
  // docarray: `if (p + r) > 0` is False for NaN, so F1 is 0
  assert.equal(f1_score_at_k([0, 0], 0), 0);
  assert.throws(() => recall_at_k([1, 1, 1], 2), ConfigError);
  assert.throws(() => recall_at_k([1], -1), ConfigError);
});

test('k must be an integer >= 1', () => {
  assert.throws(() => precision_at_k([1], 0), /k: must be an integer >= 1/);
  assert.throws(() => hit_at_k([1], 1.5), ConfigError);
  assert.throws(() => dcg_at_k([1], 2, 2 as 0), /method: must be 0 or 1/);
});

test('METRIC_NAMES lists the nine docarray metrics', () => {
  assert.deepEqual([...METRIC_NAMES].sort(), [
    'average_precision', 'dcg_at_k', 'f1_score_at_k', 'hit_at_k', 'ndcg_at_k', 'precision_at_k', 'r_precision',
    'recall_at_k', 'reciprocal_rank',
  ]);
});
