// Neural-network ops: Softmax, LogSoftmax and LayerNormalization as ONNX ops with gradient rules
// composed from standard ops (onnxruntime-node ships no *Grad kernels), and the compositions
// GELU, QuickGELU, L2-normalize and cross-entropy, whose gradients fall out of their parts.

import { normAxis } from '../onnx/dims.js';
import type { Dim } from '../onnx/dims.js';
import { add, div, erf, exp, mul, neg, sigmoid, sqrt, sub } from './elementwise.js';
import { reduceMean, reduceSum } from './reduce.js';
import type { InferContext } from './registry.js';
import { Value, attrInt, defineOp, emit, emit1 } from './registry.js';
import type { Node } from '../onnx/graph.js';
import { gatherElements } from './gather.js';
import { squeeze, unsqueeze } from './shape_ops.js';
import { recomputeInBackward } from './recompute.js';

function sameAsInput(c: InferContext) {
  const x = c.x(0);
  return [{ dtype: x.dtype, shape: x.shape }];
}

// Softmax: dX = Y ⊙ (dY − Σ_axis dY ⊙ Y)
defineOp({
  op: 'Softmax',
  infer: sameAsInput,
  grad: (c) => {
    const y = c.y(0);
    const axis = normAxis(attrInt(c.node.attrs, 'axis', -1), y.rank);
    const dy = c.dy(0)!;
    return [mul(y, sub(dy, reduceSum(mul(dy, y), [axis], true)))];
  },
});
export const softmax = (x: Value, axis = -1): Value => emit1('Softmax', [x], { axis: { i: axis } });

// LogSoftmax: dX = dY − exp(Y) ⊙ Σ_axis dY
defineOp({
  op: 'LogSoftmax',
  infer: sameAsInput,
  grad: (c) => {
    const y = c.y(0);
    const axis = normAxis(attrInt(c.node.attrs, 'axis', -1), y.rank);
    const dy = c.dy(0)!;
    return [sub(dy, mul(exp(y), reduceSum(dy, [axis], true)))];
  },
});
export const logSoftmax = (x: Value, axis = -1): Value => emit1('LogSoftmax', [x], { axis: { i: axis } });

// LayerNormalization over axes [axis, rank). Outputs Y, Mean, InvStdDev (biased variance).
// With x̂ = (X − μ)·rstd and g = dY ⊙ γ:
//   dX = rstd·(g − mean(g) − x̂·mean(g ⊙ x̂)),  dγ = Σ dY ⊙ x̂,  dβ = Σ dY
// (the sums over the leading axes are the autodiff walk's unbroadcast).
defineOp({
  op: 'LayerNormalization',
  infer: (c) => {
    const x = c.x(0);
    const axis = normAxis(attrInt(c.attrs, 'axis', -1), x.rank);
    const stat: Dim[] = x.shape.map((d, i) => (i < axis ? d : 1));
    const scale = c.x(1);
    if (scale.rank !== x.rank - axis) c.fail(`scale rank ${scale.rank} must be ${x.rank - axis}`);
    return [
      { dtype: x.dtype, shape: x.shape },
      { dtype: x.dtype, shape: stat },
      { dtype: x.dtype, shape: stat },
    ];
  },
  grad: (c) => {
    const x = c.x(0);
    const gamma = c.x(1);
    const axis = normAxis(attrInt(c.node.attrs, 'axis', -1), x.rank);
    const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
    const dy = c.dy(0)!;
    // x̂ as the output's recomputation made it, when a reader of Y asked first (the same values).
    const xhat = recomputedXhat.get(c.node) ?? mul(sub(x, c.y(1)), c.y(2));
    let dx: Value | null = null;
    if (c.needs(0)) {
      const g = mul(dy, gamma);
      const inner = sub(sub(g, reduceMean(g, axes, true)), mul(xhat, reduceMean(mul(g, xhat), axes, true)));
      dx = mul(c.y(2), inner);
    }
    return [dx, c.needs(1) ? mul(dy, xhat) : null, c.needs(2) ? dy : null];
  },
});
/** LayerNorm over the last axis (PyTorch's nn.LayerNorm), eps 1e-5 by default. */
export function layerNorm(x: Value, gamma: Value, beta: Value, eps = 1e-5, axis = -1): Value {
  const [y, mean, rstd] = emit('LayerNormalization', [x, gamma, beta], { axis: { i: axis }, epsilon: { f: eps } }) as [Value, Value, Value];
  // The backward pass keeps x, μ and rstd (its own gradient needs them) and recomputes
  // Y = x̂·γ + β, x̂ = (x − μ)·rstd, for the layer that reads Y; LayerNorm's gradient reuses that x̂.
  recomputeInBackward(y, (gate) => {
    const xhat = mul(sub(x, add(mean, gate)), rstd);
    recomputedXhat.set(y.producer!, xhat);
    return add(mul(xhat, gamma), beta);
  });
  return y;
}

/** x̂ of a LayerNormalization node, made by its output's recomputation. */
const recomputedXhat = new WeakMap<Node, Value>();

/**
 * GELU with erf: ½·x·(1 + erf(x/√2)). Its intermediates (each the size of x) and its output are
 * recomputed from x in the backward pass: only x is kept from the forward pass.
 */
export function gelu(x: Value): Value {
  const half = mul(x, 0.5);
  const scaled = mul(x, Math.SQRT1_2);
  const onePlusErf = add(erf(scaled), 1);
  const y = mul(half, onePlusErf);
  recomputeInBackward(half, (gate) => mul(x, add(0.5, gate)));
  recomputeInBackward(scaled, (gate) => mul(x, add(Math.SQRT1_2, gate)));
  recomputeInBackward(onePlusErf, (_, get) => add(erf(get(scaled)), 1));
  recomputeInBackward(y, (_, get) => mul(get(half), get(onePlusErf)));
  return y;
}

/**
 * QuickGELU (OpenAI CLIP): x·σ(1.702·x). σ(1.702·x) and the output are recomputed from x in the
 * backward pass (bit for bit: 1.702 + 0 is 1.702), so only x is kept from the forward pass.
 */
export function quickGelu(x: Value): Value {
  const s = sigmoid(mul(x, 1.702));
  const y = mul(x, s);
  recomputeInBackward(s, (gate) => sigmoid(mul(x, add(1.702, gate))));
  recomputeInBackward(y, (_, get) => mul(x, get(s)));
  return y;
}

/** x / ‖x‖₂ along axis (no epsilon unless given, as OpenAI CLIP). */
export function l2Normalize(x: Value, axis = -1, eps = 0): Value {
  const ss = reduceSum(mul(x, x), [axis], true);
  return div(x, sqrt(eps ? add(ss, eps) : ss));
}

/** Mean cross-entropy of logits [N, C] against integer labels [N]: −mean log softmax(logits)[label]. */
export function crossEntropy(logits: Value, labels: Value): Value {
  const logp = logSoftmax(logits, 1);
  const picked = gatherElements(logp, unsqueeze(labels, [1]), 1);
  return neg(reduceMean(squeeze(picked, [1])));
}

