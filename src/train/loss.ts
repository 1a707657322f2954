// CLIPLoss: symmetric cross-entropy over the scaled cosine logits, the i-th image matching the
// i-th text: L = (CE(logits_per_image, arange) + CE(logits_per_text, arange)) / 2.

import type { Value } from '../onnx/graph.js';
import { add, crossEntropy, gather, mul, range } from '../ops/index.js';
import { emit1 } from '../ops/registry.js';

export function clipLoss(logitsPerImage: Value, logitsPerText: Value): Value {
  const g = logitsPerImage.graph;
  const n = gather(emit1('Shape', [logitsPerImage]), g.constant(0, 'int64', []), 0);
  const labels = range(g, n, logitsPerImage.shape[0]!);
  return mul(add(crossEntropy(logitsPerImage, labels), crossEntropy(logitsPerText, labels)), 0.5);
}
