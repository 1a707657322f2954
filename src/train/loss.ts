// CLIPLoss: symmetric cross-entropy over the scaled cosine logits, the i-th image matching the
// i-th text: L = (CE(logits_per_image, arange) + CE(logits_per_text, arange)) / 2.

import type { Value } from '../onnx/graph.js';
import { add, cast, crossEntropy, dim, div, equal, logSoftmax, mul, neg, range, reduceMean, reduceSum, unsqueeze } from '../ops/index.js';

export function clipLoss(logitsPerImage: Value, logitsPerText: Value): Value {
  const g = logitsPerImage.graph;
  const n = dim(logitsPerImage, 0, { scalar: true });
  const labels = range(g, n, logitsPerImage.shape[0]!);
  return mul(add(crossEntropy(logitsPerImage, labels), crossEntropy(logitsPerText, labels)), 0.5);
}

/**
 * Label-aware CLIPLoss: pairs in the batch that share a label are positives for each other, not
 * false negatives. Targets are the rows of [label_i = label_j] normalised to sum to 1, and each
 * direction is the soft cross-entropy −Σ_j t_ij · log softmax(logits)_ij, averaged over rows.
 */
export function clipLossLabelAware(logitsPerImage: Value, logitsPerText: Value, labels: Value): Value {
  const same = cast(equal(unsqueeze(labels, [1]), unsqueeze(labels, [0])), 'float32');
  const targets = div(same, reduceSum(same, [1], true));
  const soft = (logits: Value) => neg(reduceMean(reduceSum(mul(targets, logSoftmax(logits, 1)), [1])));
  return mul(add(soft(logitsPerImage), soft(logitsPerText)), 0.5);
}
