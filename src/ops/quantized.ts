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
