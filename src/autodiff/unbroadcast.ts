// The one place where broadcasting is undone. A gradient rule may return a gradient with the
// broadcast (output) shape; it is summed over the axes the input was broadcast along:
// the extra leading axes, and every axis where the input has size 1 and the gradient does not.

import { sameShape } from '../onnx/dims.js';
import type { Value } from '../onnx/graph.js';
import { reduceSum } from '../ops/reduce.js';
import { squeeze } from '../ops/shape_ops.js';

export function unbroadcast(grad: Value, x: Value): Value {
  if (sameShape(grad.shape, x.shape)) return grad;
  const lead = grad.rank - x.rank;
  const axes: number[] = [];
  for (let i = 0; i < lead; i++) axes.push(i);
  x.shape.forEach((d, i) => {
    if (d === 1 && grad.shape[lead + i] !== 1) axes.push(lead + i);
  });
  if (axes.length === 0) return grad; // symbolic vs static dim of the same size
  const summed = reduceSum(grad, axes, true);
  return lead > 0 ? squeeze(summed, Array.from({ length: lead }, (_, i) => i)) : summed;
}
