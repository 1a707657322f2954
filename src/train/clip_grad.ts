// Gradient clipping by global norm, as graph ops (torch.nn.utils.clip_grad_norm_, torch 1.13):
//   total = ‖(‖g_1‖₂, …, ‖g_n‖₂)‖₂        (the norm of the per-tensor norms)
//   coef  = maxNorm / (total + 1e-6),  g_i ← g_i · min(coef, 1)
// all in float32. torch always multiplies by the clamped coefficient (by 1 when under the limit),
// so this does too. A NaN/Inf gradient makes the total, and so every clipped gradient, non-finite.

import { ClipfitError } from '../errors.js';
import type { Value } from '../onnx/graph.js';
import { add, div, min, mul, reduceSum, sqrt, sum } from '../ops/index.js';

export interface ClippedGrads {
  grads: Value[];
  /** The total norm before clipping (what clip_grad_norm_ returns), a float32 scalar. */
  totalNorm: Value;
  /** Each gradient's own 2-norm (non-finite iff the gradient holds NaN/Inf or its squares overflow). */
  norms: Value[];
}

/** Sum of squares of one tensor, as a scalar. */
export function sumOfSquares(x: Value): Value {
  return reduceSum(mul(x, x));
}

/** The global 2-norm of a list of tensors, and each tensor's norm. */
export function globalNorm(xs: readonly Value[]): { total: Value; norms: Value[] } {
  if (xs.length === 0) throw new ClipfitError('globalNorm: no tensors given');
  const norms = xs.map((x) => sqrt(sumOfSquares(x)));
  return { total: sqrt(sum(norms.map((n) => mul(n, n)))), norms };
}

export function clipGradNorm(grads: readonly Value[], maxNorm: number): ClippedGrads {
  const { total, norms } = globalNorm(grads);
  const coef = min(div(maxNorm, add(total, 1e-6)), 1);
  return { grads: grads.map((g) => mul(g, coef)), totalNorm: total, norms };
}
