// Gathers and their scatter-add gradients, and Range. Gather along axis a: dX = scatter-add of dY
// into zeros at the indices (ScatterND, with the data axis moved first when a ≠ 0);
// GatherElements: dX = ScatterElements(zeros, idx, dY, add).

import type { Dim } from '../onnx/dims.js';
import { ONNX_DTYPE } from '../onnx/dtype.js';
import { normAxis } from '../onnx/dims.js';
import { Value, attrInt, constInts, defineOp, emit1 } from './registry.js';
import { shapeOf, transpose, unsqueeze, zerosLike, zerosOfShape } from './shape_ops.js';

// Gather along axis a: dX = scatter-add of dY into zeros at the indices. ScatterND scatters along
// the leading axis, so for a ≠ 0 the data axis a is moved first and back again.
defineOp({
  op: 'Gather',
  infer: (c) => {
    const [x, idx] = [c.x(0), c.x(1)];
    if (idx.dtype !== 'int64' && idx.dtype !== 'int32') c.fail('indices must be int64 or int32');
    const a = normAxis(attrInt(c.attrs, 'axis', 0), x.rank);
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, a), ...idx.shape, ...x.shape.slice(a + 1)] }];
  },
  grad: (c) => {
    const [x, idx, dy] = [c.x(0), c.x(1), c.dy(0)!];
    const a = normAxis(attrInt(c.node.attrs, 'axis', 0), x.rank);
    const r = idx.rank;
    const idx64 = idx.dtype === 'int64' ? idx : emit1('Cast', [idx], { to: { i: ONNX_DTYPE.int64 } });
    const idxN = unsqueeze(idx64, [r]);
    if (a === 0) return [emit1('ScatterND', [zerosLike(x), idxN, dy], { reduction: { s: 'add' } }), null];
    // Move data axis a first: xp = transpose(x, [a, 0..a-1, a+1..]); dY's index block likewise.
    const xPerm = [a, ...x.shape.map((_, i) => i).filter((i) => i !== a)];
    const dyPerm = [
      ...Array.from({ length: r }, (_, i) => a + i),
      ...Array.from({ length: a }, (_, i) => i),
      ...Array.from({ length: x.rank - a - 1 }, (_, i) => a + r + i),
    ];
    const zeros = zerosOfShape(shapeOf(x), x.dtype);
    const zp = transpose(zeros, xPerm);
    const scattered = emit1('ScatterND', [zp, idxN, transpose(dy, dyPerm)], { reduction: { s: 'add' } });
    const inv = new Array<number>(xPerm.length);
    xPerm.forEach((p, i) => (inv[p] = i));
    return [transpose(scattered, inv), null];
  },
});
export const gather = (x: Value, indices: Value, axis = 0): Value => emit1('Gather', [x, indices], { axis: { i: axis } });

// dX = ScatterElements(zeros, idx, dY, add)
defineOp({
  op: 'GatherElements',
  infer: (c) => {
    const [x, idx] = [c.x(0), c.x(1)];
    if (idx.rank !== x.rank) c.fail('indices must have the data rank');
    return [{ dtype: x.dtype, shape: idx.shape }];
  },
  grad: (c) => [
    emit1('ScatterElements', [zerosLike(c.x(0)), c.x(1), c.dy(0)!], {
      axis: { i: attrInt(c.node.attrs, 'axis', 0) },
      reduction: { s: 'add' },
    }),
    null,
  ],
});
export const gatherElements = (x: Value, indices: Value, axis: number): Value =>
  emit1('GatherElements', [x, indices], { axis: { i: axis } });

// The scatters appear in backward graphs only; no second-order rules.
defineOp({ op: 'ScatterND', infer: (c) => [{ dtype: c.x(0).dtype, shape: c.x(0).shape }] });
defineOp({ op: 'ScatterElements', infer: (c) => [{ dtype: c.x(0).dtype, shape: c.x(0).shape }] });

defineOp({
  op: 'Range',
  infer: (c) => {
    const [s, l, d] = [constInts(c.x(0)), constInts(c.x(1)), constInts(c.x(2))];
    const n = s && l && d ? Math.max(0, Math.ceil((l[0]! - s[0]!) / d[0]!)) : `${c.node}_d0`;
    return [{ dtype: c.x(0).dtype, shape: [n] }];
  },
  grad: 'nondiff',
});
/** 0, 1, …, n−1 as int64 (n a number or a runtime int64 scalar). */
export function range(g: Value['graph'], n: number | Value, outDim?: Dim): Value {
  const limit = typeof n === 'number' ? g.constant(n, 'int64', []) : n;
  return emit1('Range', [g.constant(0, 'int64', []), limit, g.constant(1, 'int64', [])], {}, outDim !== undefined ? { outShapes: [[outDim]] } : {});
}
