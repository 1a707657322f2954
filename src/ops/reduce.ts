// Reductions (opset 18: axes are an input). The gradient of a reduction re-inserts the reduced
// axes and expands back to the input's shape.

import { allStatic, normAxis } from '../onnx/dims.js';
import type { Dim } from '../onnx/dims.js';
import type { Attrs } from '../onnx/graph.js';
import { cast, div, equal, mul } from './elementwise.js';
import type { InferContext, OutInfo } from './registry.js';
import { Value, attrInt, constInts, defineOp, emit1 } from './registry.js';
import { expand, shapeOf, size, unsqueeze } from './shape_ops.js';

function reducedAxes(c: InferContext): number[] {
  const x = c.x(0);
  const axes = constInts(c.inputs[1] ?? null);
  if (c.inputs[1] && !axes) c.fail('axes must be a constant');
  const list = axes ?? x.shape.map((_, i) => i);
  return list.map((a) => {
    const n = normAxis(a, x.rank);
    if (n < 0 || n >= x.rank) c.fail(`axis ${a} out of range for rank ${x.rank}`);
    return n;
  });
}

function reduceInfer(c: InferContext): OutInfo[] {
  const x = c.x(0);
  const axes = new Set(reducedAxes(c));
  const keep = attrInt(c.attrs, 'keepdims', 1) === 1;
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.has(i)) shape.push(d);
    else if (keep) shape.push(1);
  });
  return [{ dtype: x.dtype, shape }];
}

/** dY with the reduced axes put back (as size 1), ready to broadcast against the input. */
function keepDims(dy: Value, node: { inputs: readonly (Value | null)[]; attrs: Attrs }): Value {
  if (attrInt(node.attrs, 'keepdims', 1) === 1) return dy;
  const x = node.inputs[0]!;
  const axes = (constInts(node.inputs[1] ?? null) ?? x.shape.map((_, i) => i)).map((a) => normAxis(a, x.rank));
  return unsqueeze(dy, [...axes].sort((a, b) => a - b));
}

// dX = expand(dY)
defineOp({
  op: 'ReduceSum',
  infer: reduceInfer,
  grad: (c) => [expand(keepDims(c.dy(0)!, c.node), shapeOf(c.x(0))), null],
});

// dX = expand(dY) / n, n = number of elements reduced into each output
defineOp({
  op: 'ReduceMean',
  infer: reduceInfer,
  grad: (c) => {
    const x = c.x(0);
    const y = c.y(0);
    const count =
      allStatic(x.shape) && allStatic(y.shape)
        ? x.shape.reduce((a, b) => a * b, 1) / Math.max(1, y.shape.reduce((a, b) => a * b, 1))
        : div(cast(size(x), x.dtype), cast(size(y), x.dtype));
    return [div(expand(keepDims(c.dy(0)!, c.node), shapeOf(x)), count), null];
  },
});

// dX = dY·[x = max] / (number of maxima), as torch.amax splits ties evenly
defineOp({
  op: 'ReduceMax',
  infer: reduceInfer,
  grad: (c) => {
    const x = c.x(0);
    const yk = keepDims(c.y(0), c.node);
    const mask = cast(equal(x, yk), x.dtype);
    const axesInput = c.node.inputs[1] ?? null;
    const count = emit1('ReduceSum', [mask, axesInput], { keepdims: { i: 1 } });
    return [mul(mask, div(keepDims(c.dy(0)!, c.node), count)), null];
  },
});

defineOp({
  op: 'ArgMax',
  infer: (c) => {
    const x = c.x(0);
    const axis = normAxis(attrInt(c.attrs, 'axis', 0), x.rank);
    const keep = attrInt(c.attrs, 'keepdims', 1) === 1;
    const shape = x.shape.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : []));
    return [{ dtype: 'int64', shape }];
  },
  grad: 'nondiff',
});

function reduce(op: string, x: Value, axes: number[] | undefined, keepdims: boolean): Value {
  const list = axes ?? x.shape.map((_, i) => i);
  const axesValue = x.graph.constant(list, 'int64', [list.length]);
  return emit1(op, [x, axesValue], { keepdims: { i: keepdims ? 1 : 0 } });
}

export const reduceSum = (x: Value, axes?: number[], keepdims = false): Value => reduce('ReduceSum', x, axes, keepdims);
export const reduceMean = (x: Value, axes?: number[], keepdims = false): Value => reduce('ReduceMean', x, axes, keepdims);
export const reduceMax = (x: Value, axes?: number[], keepdims = false): Value => reduce('ReduceMax', x, axes, keepdims);
/** Index of the first maximum along axis (as torch.argmax and numpy). */
export const argMax = (x: Value, axis: number, keepdims = false): Value =>
  emit1('ArgMax', [x], { axis: { i: axis }, keepdims: { i: keepdims ? 1 : 0 }, select_last_index: { i: 0 } });
