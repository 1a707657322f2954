// Elementwise ops: numpy broadcasting, one output. Each gradient is written for the broadcast
// output shape; the autodiff walk unbroadcasts it to the input's shape.

import type { DType } from '../onnx/dtype.js';
import { ONNX_DTYPE, isFloat } from '../onnx/dtype.js';
import { broadcastShapes } from '../onnx/dims.js';
import type { InferContext, OutInfo } from './registry.js';
import { Value, defineOp, emit1 } from './registry.js';
import { ShapeError } from '../errors.js';

export type Operand = Value | number;

/** A number becomes a scalar constant of the other operand's dtype. */
export function lift(x: Operand, like: Value): Value {
  return typeof x === 'number' ? like.graph.constant(x, like.dtype, []) : x;
}

function pair(a: Operand, b: Operand): [Value, Value] {
  if (typeof a === 'number' && typeof b === 'number') throw new ShapeError('elementwise', '(none yet)', 'an op needs at least one Value operand, got two numbers');
  const av = typeof a === 'number' ? lift(a, b as Value) : a;
  const bv = typeof b === 'number' ? lift(b, av) : b;
  return [av, bv];
}

function broadcastInfer(c: InferContext, firstData = 0, outDtype?: DType): OutInfo[] {
  const ins = c.inputs.slice(firstData).filter((v): v is Value => v !== null);
  let shape = ins[0]!.shape;
  for (const v of ins.slice(1)) {
    if (v.dtype !== ins[0]!.dtype) c.fail(`dtypes differ: ${ins[0]!.dtype} and ${v.dtype}`);
    const s = broadcastShapes(shape, v.shape);
    if (!s) return c.fail('shapes do not broadcast');
    shape = s;
  }
  return [{ dtype: outDtype ?? ins[0]!.dtype, shape }];
}

function unaryInfer(c: InferContext): OutInfo[] {
  const x = c.x(0);
  return [{ dtype: x.dtype, shape: x.shape }];
}

function floatUnaryInfer(c: InferContext): OutInfo[] {
  const x = c.x(0);
  if (!isFloat(x.dtype)) c.fail(`needs a float input, got ${x.dtype}`);
  return [{ dtype: x.dtype, shape: x.shape }];
}

// ---- binary arithmetic ----------------------------------------------------------------------

defineOp({ op: 'Add', infer: (c) => broadcastInfer(c), grad: (c) => [c.dy(0), c.dy(0)] });
export const add = (a: Operand, b: Operand): Value => emit1('Add', pair(a, b));

defineOp({ op: 'Sub', infer: (c) => broadcastInfer(c), grad: (c) => [c.dy(0), c.needs(1) ? neg(c.dy(0)!) : null] });
export const sub = (a: Operand, b: Operand): Value => emit1('Sub', pair(a, b));

// d(a·b) = b·dY, a·dY
defineOp({
  op: 'Mul',
  infer: (c) => broadcastInfer(c),
  grad: (c) => [c.needs(0) ? mul(c.dy(0)!, c.x(1)) : null, c.needs(1) ? mul(c.dy(0)!, c.x(0)) : null],
});
export const mul = (a: Operand, b: Operand): Value => emit1('Mul', pair(a, b));

// y = a/b: da = dY/b, db = −dY·y/b
defineOp({
  op: 'Div',
  infer: (c) => broadcastInfer(c),
  grad: (c) => [
    c.needs(0) ? div(c.dy(0)!, c.x(1)) : null,
    c.needs(1) ? neg(div(mul(c.dy(0)!, c.y(0)), c.x(1))) : null,
  ],
});
export const div = (a: Operand, b: Operand): Value => emit1('Div', pair(a, b));

// y = a^b: da = dY·b·a^(b−1), db = dY·y·ln a
defineOp({
  op: 'Pow',
  infer: (c) => {
    const [a, b] = [c.x(0), c.x(1)];
    const s = broadcastShapes(a.shape, b.shape);
    if (!s) return c.fail('shapes do not broadcast');
    return [{ dtype: a.dtype, shape: s }];
  },
  grad: (c) => {
    const [a, b, dy] = [c.x(0), c.x(1), c.dy(0)!];
    return [
      c.needs(0) ? mul(dy, mul(b, pow(a, sub(b, 1)))) : null,
      c.needs(1) ? mul(dy, mul(c.y(0), log(a))) : null,
    ];
  },
});
export const pow = (a: Operand, b: Operand): Value => emit1('Pow', pair(a, b));

// Max(a, b): the gradient goes to the larger input (to a on ties); Min likewise to the smaller.
defineOp({
  op: 'Max',
  infer: (c) => broadcastInfer(c),
  grad: (c) => {
    const takeA = greaterOrEqual(c.x(0), c.x(1));
    const dy = c.dy(0)!;
    const zero = lift(0, dy);
    return [where(takeA, dy, zero), where(takeA, zero, dy)];
  },
});
export const max = (a: Operand, b: Operand): Value => emit1('Max', pair(a, b));

defineOp({
  op: 'Min',
  infer: (c) => broadcastInfer(c),
  grad: (c) => {
    const takeA = lessOrEqual(c.x(0), c.x(1));
    const dy = c.dy(0)!;
    const zero = lift(0, dy);
    return [where(takeA, dy, zero), where(takeA, zero, dy)];
  },
});
export const min = (a: Operand, b: Operand): Value => emit1('Min', pair(a, b));

// Where(c, a, b): the gradient goes to a where c holds, to b elsewhere.
defineOp({
  op: 'Where',
  infer: (c) => {
    if (c.x(0).dtype !== 'bool') c.fail('condition must be bool');
    const [a, b] = [c.x(1), c.x(2)];
    if (a.dtype !== b.dtype) c.fail(`dtypes differ: ${a.dtype} and ${b.dtype}`);
    const s1 = broadcastShapes(c.x(0).shape, a.shape);
    const s = s1 && broadcastShapes(s1, b.shape);
    if (!s) return c.fail('shapes do not broadcast');
    return [{ dtype: a.dtype, shape: s }];
  },
  grad: (c) => {
    const dy = c.dy(0)!;
    const zero = lift(0, dy);
    return [null, c.needs(1) ? where(c.x(0), dy, zero) : null, c.needs(2) ? where(c.x(0), zero, dy) : null];
  },
});
export const where = (cond: Value, a: Operand, b: Operand): Value => {
  const [av, bv] = pair(a, b);
  return emit1('Where', [cond, av, bv]);
};

// ---- unary math -----------------------------------------------------------------------------

defineOp({ op: 'Neg', infer: unaryInfer, grad: (c) => [neg(c.dy(0)!)] });
export const neg = (x: Value): Value => emit1('Neg', [x]);

defineOp({ op: 'Identity', infer: unaryInfer, grad: (c) => [c.dy(0)] });
export const identity = (x: Value): Value => emit1('Identity', [x]);

/** Identity in the forward pass; no gradient flows back through it. */
export function stopGradient(x: Value): Value {
  const y = emit1('Identity', [x], {}, { name: 'StopGradient' });
  y.stopGradient = true;
  return y;
}

// d exp(x) = y·dY
defineOp({ op: 'Exp', infer: floatUnaryInfer, grad: (c) => [mul(c.dy(0)!, c.y(0))] });
export const exp = (x: Value): Value => emit1('Exp', [x]);

// d ln(x) = dY/x
defineOp({ op: 'Log', infer: floatUnaryInfer, grad: (c) => [div(c.dy(0)!, c.x(0))] });
export const log = (x: Value): Value => emit1('Log', [x]);

// d √x = dY/(2y)
defineOp({ op: 'Sqrt', infer: floatUnaryInfer, grad: (c) => [div(mul(c.dy(0)!, 0.5), c.y(0))] });
export const sqrt = (x: Value): Value => emit1('Sqrt', [x]);

// d (1/x) = −dY·y²
defineOp({ op: 'Reciprocal', infer: floatUnaryInfer, grad: (c) => [neg(mul(c.dy(0)!, mul(c.y(0), c.y(0))))] });
export const reciprocal = (x: Value): Value => emit1('Reciprocal', [x]);

// d tanh(x) = dY·(1 − y²)
defineOp({ op: 'Tanh', infer: floatUnaryInfer, grad: (c) => [mul(c.dy(0)!, sub(1, mul(c.y(0), c.y(0))))] });
export const tanh = (x: Value): Value => emit1('Tanh', [x]);

// d erf(x) = dY·(2/√π)·exp(−x²)
defineOp({
  op: 'Erf',
  infer: floatUnaryInfer,
  grad: (c) => {
    const x = c.x(0);
    return [mul(c.dy(0)!, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  },
});
export const erf = (x: Value): Value => emit1('Erf', [x]);

// d σ(x) = dY·y·(1 − y)
defineOp({ op: 'Sigmoid', infer: floatUnaryInfer, grad: (c) => [mul(c.dy(0)!, mul(c.y(0), sub(1, c.y(0))))] });
export const sigmoid = (x: Value): Value => emit1('Sigmoid', [x]);

// d relu(x) = dY where x > 0
defineOp({ op: 'Relu', infer: unaryInfer, grad: (c) => [where(greater(c.x(0), 0), c.dy(0)!, 0)] });
export const relu = (x: Value): Value => emit1('Relu', [x]);

// d |x| = dY·sign(x)
defineOp({ op: 'Abs', infer: unaryInfer, grad: (c) => [mul(c.dy(0)!, sign(c.x(0)))] });
export const abs = (x: Value): Value => emit1('Abs', [x]);

defineOp({ op: 'Sign', infer: unaryInfer, grad: 'nondiff' });
export const sign = (x: Value): Value => emit1('Sign', [x]);

// Clip(x, lo, hi): dY passes where lo ≤ x ≤ hi. The bounds themselves get no gradient.
defineOp({
  op: 'Clip',
  infer: unaryInfer,
  grad: (c) => {
    const x = c.x(0);
    const node = c.node;
    let keep: Value | null = null;
    const lo = node.inputs[1] ?? null;
    const hi = node.inputs[2] ?? null;
    if (lo) keep = greaterOrEqual(x, lo);
    if (hi) keep = keep ? and(keep, lessOrEqual(x, hi)) : lessOrEqual(x, hi);
    return [keep ? where(keep, c.dy(0)!, 0) : c.dy(0), null, null];
  },
});
export function clip(x: Value, lo?: number, hi?: number): Value {
  const l = lo === undefined ? null : lift(lo, x);
  const h = hi === undefined ? null : lift(hi, x);
  return emit1('Clip', [x, l, h]);
}

// Cast: the gradient is cast back to the input's float type; integer casts carry none.
defineOp({
  op: 'Cast',
  infer: (c) => {
    const to = c.attrs['to'];
    if (!to || !('i' in to)) return c.fail('missing attribute to');
    return [{ dtype: dtypeFromOnnx(to.i, c), shape: c.x(0).shape }];
  },
  grad: (c) => {
    const x = c.x(0);
    return [isFloat(x.dtype) && isFloat(c.y(0).dtype) ? cast(c.dy(0)!, x.dtype) : null];
  },
});
function dtypeFromOnnx(code: number, c: InferContext): DType {
  const hit = (Object.entries(ONNX_DTYPE) as [DType, number][]).find(([, v]) => v === code);
  if (!hit) return c.fail(`unsupported cast target ${code}`);
  return hit[0];
}
export const cast = (x: Value, to: DType): Value => (x.dtype === to ? x : emit1('Cast', [x], { to: { i: ONNX_DTYPE[to] } }));

// ---- comparisons and logic: no gradient -------------------------------------------------------

for (const op of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']) {
  defineOp({ op, infer: (c) => broadcastInfer(c, 0, 'bool'), grad: 'nondiff' });
}
for (const op of ['And', 'Or']) defineOp({ op, infer: (c) => broadcastInfer(c, 0, 'bool'), grad: 'nondiff' });
defineOp({ op: 'Not', infer: unaryInfer, grad: 'nondiff' });

export const equal = (a: Operand, b: Operand): Value => emit1('Equal', pair(a, b));
export const less = (a: Operand, b: Operand): Value => emit1('Less', pair(a, b));
export const greater = (a: Operand, b: Operand): Value => emit1('Greater', pair(a, b));
export const lessOrEqual = (a: Operand, b: Operand): Value => emit1('LessOrEqual', pair(a, b));
export const greaterOrEqual = (a: Operand, b: Operand): Value => emit1('GreaterOrEqual', pair(a, b));
export const and = (a: Value, b: Value): Value => emit1('And', [a, b]);
export const or = (a: Value, b: Value): Value => emit1('Or', [a, b]);
export const not = (a: Value): Value => emit1('Not', [a]);

// Sum of any number of inputs (used to accumulate gradients on fan-out): dX_i = dY.
defineOp({ op: 'Sum', infer: (c) => broadcastInfer(c), grad: (c) => c.node.inputs.map(() => c.dy(0)) });
export const sum = (xs: Value[]): Value => (xs.length === 1 ? xs[0]! : xs.length === 2 ? add(xs[0]!, xs[1]!) : emit1('Sum', xs));
