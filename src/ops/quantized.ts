// Integer matrix products for int8 inference (no gradient rules: the int8 towers are never trained).
//   DynamicQuantizeLinear (ONNX): x → (q uint8, s, z) with s = (max(x,0) − min(x,0))/255, z = round(−min/s),
//     q = saturate(round(x/s) + z): one scale for the whole tensor, asymmetric.
//   MatMulInteger (ONNX): (A − a_zp)·(B − b_zp) in int32.
//   DynamicQuantizeMatMul (com.microsoft): A float quantized as above, times B int8 with per-column
//     scales, back to float, plus bias — one kernel (onnxruntime's u8·s8 GEMM, VNNI where the CPU has it).
//   MatMulIntegerToFloat (com.microsoft): the same with A already quantized.

import type { Dim } from '../onnx/dims.js';
import { broadcastShapes, isStatic, sameDim } from '../onnx/dims.js';
import type { InferContext } from './registry.js';
import { Value, defineOp, emit, emit1 } from './registry.js';

function matmulShape(c: InferContext, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length < 2 || b.length !== 2) return c.fail('A must have rank ≥ 2 and B rank 2');
  const k1 = a[a.length - 1]!;
  const [k2, n] = b as [Dim, Dim];
  if (!sameDim(k1, k2) && isStatic(k1) && isStatic(k2)) c.fail(`inner dims differ: ${k1} vs ${k2}`);
  return [...a.slice(0, -1), n];
}

/** Per-column parameter of B [K, N]: a scalar or a vector of N. */
function checkPerColumn(c: InferContext, i: number, n: Dim, what: string): void {
  const v = c.inputs[i];
  if (!v) return;
  const ok = v.rank === 0 || (v.rank === 1 && (sameDim(v.shape[0]!, n) || !isStatic(n) || v.shape[0] === 1));
  if (!ok) c.fail(`${what} must be a scalar or have ${n} entries, got [${v.shape.join(', ')}]`);
}

defineOp({
  op: 'DynamicQuantizeLinear',
  infer: (c) => {
    const x = c.x(0);
    if (x.dtype !== 'float32') c.fail('input must be float32');
    return [
      { dtype: 'uint8', shape: x.shape },
      { dtype: 'float32', shape: [] },
      { dtype: 'uint8', shape: [] },
    ];
  },
});

/** (q, scale, zeroPoint) of x, quantized to uint8 with one scale for the whole tensor. */
export function dynamicQuantizeLinear(x: Value): [Value, Value, Value] {
  return emit('DynamicQuantizeLinear', [x]) as [Value, Value, Value];
}

defineOp({
  op: 'MatMulInteger',
  infer: (c) => {
    const [a, b] = [c.x(0), c.x(1)];
    if (a.dtype !== 'uint8' && a.dtype !== 'int8') c.fail('A must be uint8 or int8');
    if (b.dtype !== 'uint8' && b.dtype !== 'int8') c.fail('B must be uint8 or int8');
    return [{ dtype: 'int32', shape: matmulShape(c, a.shape, b.shape) }];
  },
});

/** (A − aZero)·(B − bZero) accumulated in int32; B [K, N]. */
export const matmulInteger = (a: Value, b: Value, aZero: Value | null, bZero: Value | null = null): Value =>
  emit1('MatMulInteger', bZero ? [a, b, aZero, bZero] : aZero ? [a, b, aZero] : [a, b]);

function floatOutInfer(c: InferContext, aIndex: 'float' | 'quant') {
  const [a, b] = [c.x(0), c.x(1)];
  if (aIndex === 'float' && a.dtype !== 'float32') c.fail('A must be float32');
  if (aIndex === 'quant' && a.dtype !== 'uint8' && a.dtype !== 'int8') c.fail('A must be uint8 or int8');
  if (b.dtype !== 'int8' && b.dtype !== 'uint8') c.fail('B must be int8 or uint8');
  const shape = matmulShape(c, a.shape, b.shape);
  const n = b.shape[1]!;
  return { shape, n };
}

defineOp({
  op: 'DynamicQuantizeMatMul',
  domain: 'com.microsoft',
  infer: (c) => {
    const { shape, n } = floatOutInfer(c, 'float');
    checkPerColumn(c, 2, n, 'b_scale');
    checkPerColumn(c, 3, n, 'b_zero_point');
    const bias = c.inputs[4];
    if (bias && !broadcastShapes(bias.shape, shape)) c.fail('bias does not broadcast to the output');
    return [{ dtype: 'float32', shape }];
  },
});

/** A·dequant(B) + bias with A quantized on the fly (uint8, per tensor); B int8 [K, N], bScale [N]. */
export function dynamicQuantizeMatMul(a: Value, b: Value, bScale: Value, bias: Value | null = null): Value {
  return emit1('DynamicQuantizeMatMul', bias ? [a, b, bScale, null, bias] : [a, b, bScale]);
}

defineOp({
  op: 'MatMulIntegerToFloat',
  domain: 'com.microsoft',
  infer: (c) => {
    const { shape, n } = floatOutInfer(c, 'quant');
    checkPerColumn(c, 3, n, 'b_scale');
    const bias = c.inputs[6];
    if (bias && !broadcastShapes(bias.shape, shape)) c.fail('bias does not broadcast to the output');
    return [{ dtype: 'float32', shape }];
  },
});

/** aScale·bScale·(A − aZero)·B + bias, A already quantized; B int8 [K, N] symmetric. */
export function matmulIntegerToFloat(a: Value, b: Value, aScale: Value, bScale: Value, aZero: Value | null, bias: Value | null = null): Value {
  const inputs = [a, b, aScale, bScale, aZero, null, bias];
  while (inputs.at(-1) === null) inputs.pop();
  return emit1('MatMulIntegerToFloat', inputs);
}

// QAttention (com.microsoft): multi-head self-attention with the QKV projection as one integer GEMM.
// Inputs: x uint8 [B, S, D] (quantized), W int8 [D, 3·N·H] (columns q | k | v, heads contiguous),
// bias [3·N·H], x_scale, W_scale (scalar or per column), mask_index, x_zero_point. The GEMM writes
// q, k, v straight into [B, N, S, H] (no Transpose or Split); scores = q·kᵀ/√H (causal when
// unidirectional), softmax and ·v run in float32; the output is [B, S, N·H].
defineOp({
  op: 'QAttention',
  domain: 'com.microsoft',
  infer: (c) => {
    const [x, w] = [c.x(0), c.x(1)];
    if (x.dtype !== 'uint8') c.fail('input must be uint8');
    if (w.dtype !== 'int8' && w.dtype !== 'uint8') c.fail('weight must be int8 or uint8');
    if (x.rank !== 3 || w.rank !== 2) c.fail('input must be [batch, seq, width] and weight [width, 3·hidden]');
    const n3 = w.shape[1];
    if (typeof n3 !== 'number' || n3 % 3 !== 0) return c.fail('weight columns must be 3·hidden');
    return [{ dtype: 'float32', shape: [x.shape[0]!, x.shape[1]!, n3 / 3] }];
  },
});

export interface QAttentionOpts {
  heads: number;
  /** Causal mask (position i attends to j ≤ i). */
  unidirectional?: boolean;
}

/** QAttention on a quantized input (see above); output float32 [B, S, hidden]. */
export function qAttention(qx: Value, w: Value, bias: Value, xScale: Value, wScale: Value, xZero: Value, o: QAttentionOpts): Value {
  return emit1('QAttention', [qx, w, bias, xScale, wScale, null, xZero], {
    num_heads: { i: o.heads },
    ...(o.unidirectional ? { unidirectional: { i: 1 } } : {}),
  });
}
