// Integer bit operations (ONNX BitwiseXor/BitwiseAnd, opset 18; BitShift, opset 11, unsigned types
// only). They build integer hashes inside a graph (LoRA dropout's masks); integers carry no gradient.

import type { InferContext, OutInfo } from './registry.js';
import { Value, defineOp, emit1 } from './registry.js';
import { broadcastShapes } from '../onnx/dims.js';

const INTEGER = new Set(['int64', 'uint64', 'int32', 'uint8', 'int8']);

function intBinary(c: InferContext, unsignedOnly: boolean): OutInfo[] {
  const [a, b] = [c.x(0), c.x(1)];
  if (a.dtype !== b.dtype) c.fail(`dtypes differ: ${a.dtype} and ${b.dtype}`);
  if (!INTEGER.has(a.dtype) || (unsignedOnly && !a.dtype.startsWith('uint'))) c.fail(`needs ${unsignedOnly ? 'unsigned ' : ''}integer inputs, got ${a.dtype}`);
  const s = broadcastShapes(a.shape, b.shape);
  if (!s) return c.fail('shapes do not broadcast');
  return [{ dtype: a.dtype, shape: s }];
}

defineOp({ op: 'BitwiseXor', infer: (c) => intBinary(c, false), grad: 'nondiff' });
defineOp({ op: 'BitwiseAnd', infer: (c) => intBinary(c, false), grad: 'nondiff' });
defineOp({ op: 'BitShift', infer: (c) => intBinary(c, true), grad: 'nondiff' });

export const bitwiseXor = (a: Value, b: Value): Value => emit1('BitwiseXor', [a, b]);
export const bitwiseAnd = (a: Value, b: Value): Value => emit1('BitwiseAnd', [a, b]);
/** a >> b, logical (a and b unsigned). */
export const shiftRight = (a: Value, b: Value): Value => emit1('BitShift', [a, b], { direction: { s: 'RIGHT' } });
