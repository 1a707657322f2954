// Matrix products: MatMul (batched, broadcasting), Gemm, and onnxruntime's FusedMatMul
// (com.microsoft: MatMul with transposes and a scale folded in, an inference kernel that ships
// with onnxruntime-node). With Y = α·op(A)·op(B):
//   dA = α·dY·op(B)ᵀ   (transposed back when transA),   dB = α·op(A)ᵀ·dY   (likewise when transB).
// When B is a 2-D weight and A is batched, dB is one GEMM over the flattened rows (no per-batch
// [batch, K, N] partials to reduce afterwards).

import type { Dim } from '../onnx/dims.js';
import { broadcastShapes, sameDim, isStatic } from '../onnx/dims.js';
import type { InferContext, OutInfo } from './registry.js';
import { Value, attrFloat, attrInt, defineOp, emit1 } from './registry.js';
import { concat, reshape, shapeOf, slice } from './shape_ops.js';

function matmulShape(c: InferContext, a: readonly Dim[], b: readonly Dim[]): Dim[] {
  if (a.length < 2 || b.length < 2) return c.fail('operands must have rank ≥ 2 (unsqueeze vectors first)');
  const [m, k1] = a.slice(-2) as [Dim, Dim];
  const [k2, n] = b.slice(-2) as [Dim, Dim];
  if (!sameDim(k1, k2) && isStatic(k1) && isStatic(k2)) c.fail(`inner dims differ: ${k1} vs ${k2}`);
  const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
  if (!batch) c.fail('batch dims do not broadcast');
  return [...batch, m, n];
}

function swapLast(s: readonly Dim[]): Dim[] {
  const out = [...s];
  const r = out.length;
  [out[r - 2], out[r - 1]] = [out[r - 1]!, out[r - 2]!];
  return out;
}

defineOp({
  op: 'MatMul',
  infer: (c) => {
    const [a, b] = [c.x(0), c.x(1)];
    if (a.dtype !== b.dtype) c.fail(`dtypes differ: ${a.dtype} and ${b.dtype}`);
    return [{ dtype: a.dtype, shape: matmulShape(c, a.shape, b.shape) }];
  },
  grad: (c) => {
    const [a, b, dy] = [c.x(0), c.x(1), c.dy(0)!];
    return [
      c.needs(0) ? matmulT(dy, b, { transB: true }) : null,
      c.needs(1) ? (b.rank === 2 && a.rank > 2 ? weightGrad(a, dy, false) : matmulT(a, dy, { transA: true })) : null,
    ];
  },
});

/** A·B with numpy batching. */
export const matmul = (a: Value, b: Value): Value => emit1('MatMul', [a, b]);

interface MatMulOpts {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
}

/** A product with transposes and α folded in: matmulT (any rank) or Gemm (2-D). */
type Product = (x: Value, y: Value, o: MatMulOpts) => Value;

/** The gradients of Y = α·op(A)·op(B), each one product with the transposes folded in — the one
 * case table FusedMatMul and Gemm share:
 *   dA = α·dY·op(B)ᵀ, or its transpose α·op(B)·dYᵀ when transA;
 *   dB = α·op(A)ᵀ·dY, or its transpose α·dYᵀ·op(A) when transB. */
const productGrad = {
  a: (mm: Product, b: Value, dy: Value, tA: boolean, tB: boolean, alpha: number): Value =>
    tA ? mm(b, dy, { transA: tB, transB: true, alpha }) : mm(dy, b, { transB: !tB, alpha }),
  b: (mm: Product, a: Value, dy: Value, tA: boolean, tB: boolean, alpha: number): Value =>
    tB ? mm(dy, a, { transA: true, transB: tA, alpha }) : mm(a, dy, { transA: !tA, alpha }),
};

const gemm2: Product = (x, y, o) => gemm(x, y, null, o);

defineOp({
  op: 'FusedMatMul',
  domain: 'com.microsoft',
  infer: (c) => {
    const [a, b] = [c.x(0), c.x(1)];
    if (a.dtype !== b.dtype) c.fail(`dtypes differ: ${a.dtype} and ${b.dtype}`);
    const sa = attrInt(c.attrs, 'transA', 0) ? swapLast(a.shape) : a.shape;
    const sb = attrInt(c.attrs, 'transB', 0) ? swapLast(b.shape) : b.shape;
    return [{ dtype: a.dtype, shape: matmulShape(c, sa, sb) }];
  },
  grad: (c) => {
    const [a, b, dy] = [c.x(0), c.x(1), c.dy(0)!];
    const tA = attrInt(c.node.attrs, 'transA', 0) === 1;
    const tB = attrInt(c.node.attrs, 'transB', 0) === 1;
    const alpha = attrFloat(c.node.attrs, 'alpha', 1);
    const dA = c.needs(0) ? productGrad.a(matmulT, b, dy, tA, tB, alpha) : null;
    const dB = !c.needs(1) ? null : b.rank === 2 && a.rank > 2 && !tA ? weightGrad(a, dy, tB, alpha) : productGrad.b(matmulT, a, dy, tA, tB, alpha);
    return [dA, dB];
  },
});

/** α·op(A)·op(B) with optional transposes of the last two axes (one kernel, no Transpose node). */
export function matmulT(a: Value, b: Value, o: MatMulOpts = {}): Value {
  const tA = o.transA ?? false;
  const tB = o.transB ?? false;
  const alpha = o.alpha ?? 1;
  if (!tA && !tB && alpha === 1) return matmul(a, b);
  if (a.rank === 2 && b.rank === 2) return gemm(a, b, null, { transA: tA, transB: tB, alpha });
  return emit1('FusedMatMul', [a, b], {
    transA: { i: tA ? 1 : 0 },
    transB: { i: tB ? 1 : 0 },
    alpha: { f: alpha },
  });
}

/** Gradient of a 2-D weight used by batched rows A[…, K]: Σ over rows of A·dY → [K, N] (or [N, K]). */
function weightGrad(a: Value, dy: Value, transposed: boolean, alpha = 1): Value {
  const k = a.shape[a.rank - 1]!;
  const n = dy.shape[dy.rank - 1]!;
  const a2 = reshape(a, [-1, k as number]);
  const dy2 = reshape(dy, [-1, n as number]);
  return transposed ? gemm(dy2, a2, null, { transA: true, alpha }) : gemm(a2, dy2, null, { transA: true, alpha });
}

// Gemm: Y = α·op(A)·op(B) + β·C, A and B 2-D.
defineOp({
  op: 'Gemm',
  infer: (c) => {
    const [a, b] = [c.x(0), c.x(1)];
    if (a.rank !== 2 || b.rank !== 2) c.fail('A and B must be 2-D');
    const sa = attrInt(c.attrs, 'transA', 0) ? swapLast(a.shape) : a.shape;
    const sb = attrInt(c.attrs, 'transB', 0) ? swapLast(b.shape) : b.shape;
    const shape = matmulShape(c, sa, sb);
    const cc = c.inputs[2];
    if (cc && !broadcastShapes(cc.shape, shape)) c.fail('C does not broadcast to the output');
    return [{ dtype: a.dtype, shape }] as OutInfo[];
  },
  grad: (c) => {
    const [a, b, dy] = [c.x(0), c.x(1), c.dy(0)!];
    const tA = attrInt(c.node.attrs, 'transA', 0) === 1;
    const tB = attrInt(c.node.attrs, 'transB', 0) === 1;
    const alpha = attrFloat(c.node.attrs, 'alpha', 1);
    const beta = attrFloat(c.node.attrs, 'beta', 1);
    const dA = c.needs(0) ? productGrad.a(gemm2, b, dy, tA, tB, alpha) : null;
    const dB = c.needs(1) ? productGrad.b(gemm2, a, dy, tA, tB, alpha) : null;
    const cIn = c.node.inputs[2];
    const dC = cIn && c.needs(2) ? (beta === 1 ? dy : emit1('Mul', [dy, dy.graph.constant(beta, dy.dtype, [])])) : null;
    return [dA, dB, dC];
  },
});

export function gemm(a: Value, b: Value, cIn: Value | null, o: MatMulOpts & { beta?: number } = {}): Value {
  const attrs: Record<string, { i: number } | { f: number }> = {};
  if (o.transA) attrs['transA'] = { i: 1 };
  if (o.transB) attrs['transB'] = { i: 1 };
  if (o.alpha !== undefined && o.alpha !== 1) attrs['alpha'] = { f: o.alpha };
  if (o.beta !== undefined && o.beta !== 1) attrs['beta'] = { f: o.beta };
  return emit1('Gemm', cIn ? [a, b, cIn] : [a, b], attrs);
}

/**
 * x·Wᵀ + b with a PyTorch-layout weight W [out, in] (nn.Linear); x may be batched. Batched rows are
 * flattened into one Gemm (transB, bias fused), and so are both of its gradients: onnxruntime's
 * FusedMatMul with a non-constant 2-D B runs per batch and measured 4× slower here.
 */
export function linear(x: Value, w: Value, b?: Value | null): Value {
  if (x.rank === 2) return gemm(x, w, b ?? null, { transB: true });
  const k = w.shape[1] as number;
  const n = w.shape[0] as number;
  const rows = reshape(x, [-1, k]);
  const y = gemm(rows, w, b ?? null, { transB: true });
  const lead = slice(shapeOf(x), [0], [x.rank - 1], [0]);
  return reshape(y, concat([lead, x.graph.constant([n], 'int64', [1])], 0));
}
