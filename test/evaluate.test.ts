// evaluateRetrieval on tiny hand-made embedding sets, every metric worked out by hand from docarray
// 0.21's definitions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EvaluationError } from '../src/errors.js';
import { evaluateRetrieval, evaluateRetrievalParallel } from '../src/eval/evaluate.js';

// Unit vectors in the plane at 0°, 36.87°, 53.13°, 90°, 180°, labelled a, b, a, b, a.
const INDEX = [[1, 0], [0.8, 0.6], [0.6, 0.8], [0, 1], [-1, 0]];
const INDEX_LABELS = ['a', 'b', 'a', 'b', 'a'];
const INDEX_IDS = ['i0', 'i1', 'i2', 'i3', 'i4'];

function assertMetrics(got: Record<string, number>, want: Record<string, number>, prefix: string): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).map((k) => `${prefix}_${k}`).sort());
  for (const [k, v] of Object.entries(want)) {
    const g = got[`${prefix}_${k}`]!;
    assert.ok(Math.abs(g - v) < 1e-6, `${k}: got ${g}, want ${v}`);
  }
}

// Three queries against the five index rows, cosine, limit 3 (so k = 3).
//   q0 = (1, 0)     'a': cos 1, .8, .6, 0, −1     → order i0 i1 i2 i3 i4 → r = [1,0,1 | 0,1]
//   q1 = (0, 1)     'b': cos 0, .6, .8, 1, 0      → order i3 i2 i1 i0 i4 (i0, i4 tie at 1; index order)
//                                                 → r = [1,0,1 | 0,0]
//   q2 = (−.6, .8)  'a': cos −.6, 0, .28, .8, .6  → order i3 i4 i2 i1 i0 → r = [0,1,1 | 0,0]
// max_rel: 'a' has 3 index rows, 'b' 2.
const QUERIES = [[1, 0], [0, 1], [-0.6, 0.8]];
const QUERY_LABELS = ['a', 'b', 'a'];
const L3 = 1 / Math.log2(3); // 0.6309297535714575
const HAND = {
  // each top-3 has two relevant: 2/3
  precision_at_k: 2 / 3,
  // 2/3, 2/2, 2/3 → (7/3)/3
  recall_at_k: 7 / 9,
  // F1: q0 p = r = 2/3 → 2/3; q1 p = 2/3, r = 1 → (4/3)/(5/3) = 4/5; q2 2/3 → (2/3 + 4/5 + 2/3)/3 = 32/45
  f1_score_at_k: 32 / 45,
  hit_at_k: 1,
  // AP: [1,0,1] → (1 + 2/3)/2 = 5/6 (q0, q1); [0,1,1] → (1/2 + 2/3)/2 = 7/12 → (10 + 10 + 7)/12/3 = 3/4
  average_precision: 3 / 4,
  // RR: 1, 1, 1/2
  reciprocal_rank: 5 / 6,
  // z = 2 each: mean([1,0]) = mean([1,0]) = mean([0,1]) = 1/2
  r_precision: 1 / 2,
  // DCG@3: [1,0,1] → 1 + 1/log2(3); [0,1,1] → 0 + 1/log2(2) + 1/log2(3); the same for all three
  dcg_at_k: 1 + L3,
  // ideal [1,1,0] → 1 + 1 = 2
  ndcg_at_k: (1 + L3) / 2,
  // R@K on the top max(3, 10) = 5: hit@1 = 1, 1, 0; hit@5 = hit@10 = 1 for all
  recall_at_1: 2 / 3,
  recall_at_5: 1,
  recall_at_10: 1,
};

test('text-to-image style: three labelled queries against five index rows, by hand', () => {
  const got = evaluateRetrieval({
    queryEmbeddings: QUERIES, queryLabels: QUERY_LABELS, indexEmbeddings: INDEX, indexLabels: INDEX_LABELS, limit: 3,
  });
  assertMetrics(got, HAND, 'clip-text-to-clip-vision');
});

test('the same set given as flat Float32Arrays, through worker threads, with another prefix', async () => {
  const got = await evaluateRetrievalParallel({
    queryEmbeddings: new Float32Array(QUERIES.flat()), queryLabels: QUERY_LABELS,
    indexEmbeddings: new Float32Array(INDEX.flat()), indexLabels: INDEX_LABELS,
    limit: 3, prefix: 'val', threads: 2,
  });
  assertMetrics(got, HAND, 'val');
});

test('k < limit: the _at_k metrics cut at k, AP / RR / r_precision keep the whole list', () => {
  // limit 3, k 1: r[:1] = [1], [1], [0]
  const got = evaluateRetrieval({
    queryEmbeddings: QUERIES, queryLabels: QUERY_LABELS, indexEmbeddings: INDEX, indexLabels: INDEX_LABELS, limit: 3, k: 1,
    prefix: 'p',
  });
  assertMetrics(got, {
    precision_at_k: 2 / 3, // 1, 1, 0
    recall_at_k: (1 / 3 + 1 / 2 + 0) / 3, // 1/3, 1/2, 0 → 5/18
    f1_score_at_k: (1 / 2 + 2 / 3 + 0) / 3, // q0: p 1, r 1/3 → (2/3)/(4/3) = 1/2; q1: p 1, r 1/2 → 1/(3/2) = 2/3
    hit_at_k: 2 / 3,
    average_precision: 3 / 4,
    reciprocal_rank: 5 / 6,
    r_precision: 1 / 2,
    dcg_at_k: 2 / 3, // r[0]: 1, 1, 0
    ndcg_at_k: 2 / 3, // ideal[:1] = 1 for all three: 1, 1, 0
    recall_at_1: 2 / 3,
    recall_at_5: 1,
    recall_at_10: 1,
  }, 'p');
});

// The index matched against itself, euclidean, excludeSelf, limit 2. cos between the rows:
//   i0·i1 .8, i0·i2 .6, i0·i3 0, i0·i4 −1, i1·i2 .96, i1·i3 .6, i1·i4 −.8, i2·i3 .8, i2·i4 −.6, i3·i4 0
// Nearest other rows (euclidean order = descending cos):
//   i0 'a': i1 b, i2 a, i3 b, i4 a → r = [0,1]   i1 'b': i2 a, i0 a, i3 b, i4 a → r = [0,0]
//   i2 'a': i1 b, i3 b, i0 a, i4 a → r = [0,0]   i3 'b': i2 a, i1 b, i0 a, i4 a → r = [0,1]
//   i4 'a': i3 b, i2 a, i1 b, i0 a → r = [0,1]   (i3 at cos 0 beats i2 at −.6)
// max_rel with the query excluded: 'a' 3 − 1 = 2, 'b' 2 − 1 = 1.
test('self-retrieval with excludeSelf: the query is dropped and max_rel lowered by one', () => {
  const got = evaluateRetrieval({
    queryEmbeddings: INDEX, queryLabels: INDEX_LABELS, queryIds: INDEX_IDS,
    indexEmbeddings: INDEX, indexLabels: INDEX_LABELS, indexIds: INDEX_IDS,
    limit: 2, distance: 'euclidean', excludeSelf: true, prefix: 's',
  });
  assertMetrics(got, {
    precision_at_k: (0.5 + 0 + 0 + 0.5 + 0.5) / 5,
    recall_at_k: (1 / 2 + 0 + 0 + 1 / 1 + 1 / 2) / 5, // 2/5
    f1_score_at_k: (1 / 2 + 0 + 0 + 2 / 3 + 1 / 2) / 5, // i3: p 1/2, r 1 → 1/(3/2) = 2/3
    hit_at_k: 3 / 5,
    average_precision: (0.5 + 0 + 0 + 0.5 + 0.5) / 5, // [0,1] → P@2 = 1/2
    reciprocal_rank: (0.5 + 0 + 0 + 0.5 + 0.5) / 5,
    r_precision: 0, // [0,1]: z = 1 → mean([0]) = 0
    dcg_at_k: 3 / 5, // [0,1] → 0 + 1/log2(2) = 1
    ndcg_at_k: 3 / 5, // ideal [1,0] → 1
    recall_at_1: 0, // no nearest other row shares the label
    recall_at_5: 1, // i1's list has i3 at rank 3, i2's has i0 at rank 3, the others at rank 2
    recall_at_10: 1,
  }, 's');
});

test('without excludeSelf every query finds itself first', () => {
  const got = evaluateRetrieval({
    queryEmbeddings: INDEX, queryLabels: INDEX_LABELS, indexEmbeddings: INDEX, indexLabels: INDEX_LABELS, limit: 2,
  });
  assert.equal(got['clip-text-to-clip-vision_recall_at_1'], 1);
  assert.equal(got['clip-text-to-clip-vision_reciprocal_rank'], 1);
});

test('inputs that cannot be evaluated throw EvaluationError naming the field', () => {
  const base = { queryEmbeddings: QUERIES, queryLabels: QUERY_LABELS, indexEmbeddings: INDEX, indexLabels: INDEX_LABELS };
  assert.throws(() => evaluateRetrieval({ ...base, queryLabels: ['a', 'b', 'c'] }), /queryLabels\[2\]: label "c" has no index row/);
  assert.throws(() => evaluateRetrieval({ ...base, excludeSelf: true }), /excludeSelf: needs queryIds and indexIds/);
  assert.throws(() => evaluateRetrieval({ ...base, indexEmbeddings: [[1, 0, 0], ...INDEX.slice(1)] }), /indexEmbeddings\[1\]: has 2 values, expected 3/);
  assert.throws(() => evaluateRetrieval({ ...base, indexEmbeddings: INDEX.map((r) => [...r, 0]) }), /dimension 3 differs from the queries' 2/);
  assert.throws(() => evaluateRetrieval({ ...base, queryLabels: [] }), EvaluationError);
  assert.throws(() => evaluateRetrieval({ ...base, limit: 0 }), /limit: must be an integer >= 1/);
  assert.throws(() => evaluateRetrieval({ ...base, k: 0 }), /k: must be an integer >= 1/);
  // a label whose only index row is the query itself: recall would be 0/0
  assert.throws(
    () => evaluateRetrieval({
      queryEmbeddings: INDEX, queryLabels: ['a', 'b', 'b', 'c', 'a'], queryIds: INDEX_IDS,
      indexEmbeddings: INDEX, indexLabels: ['a', 'b', 'b', 'c', 'a'], indexIds: INDEX_IDS, excludeSelf: true,
    }),
    /queryLabels\[3\]: label "c": the only index row\(s\) with it are the query itself/,
  );
});
