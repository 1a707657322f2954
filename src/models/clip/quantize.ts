// int8 towers for encoding and search. Weights: int8, symmetric, one scale per output channel,
//   s_n = max_k |W[n,k]| / 127,  q[n,k] = round(W[n,k] / s_n) ∈ [−127, 127].
// Activations: quantized at run time, one uint8 scale and zero point per tensor (ONNX's
// DynamicQuantizeLinear), so that
//   x·Wᵀ + b ≈ (s_x·s_n)·Σ_k (q_x[k] − z_x)·q[n,k] + b
// runs as an integer GEMM (u8·s8, the fast path of onnxruntime's kernels, VNNI where the CPU has it).
// Linear layers are written in standard ONNX (DynamicQuantizeLinear → MatMulInteger → Cast → Mul →
// Add), which onnxruntime fuses into one DynamicQuantizeMatMul kernel. The attention sublayer is
// onnxruntime's QAttention (com.microsoft): its int8 QKV GEMM writes q, k, v per head, which saves
// the Transpose and Split that cost 15% of the fp32-attention int8 tower here.
// Quantized: every block's in_proj, out_proj, c_fc, c_proj, the patch embedding (a linear over
// flattened patches) and the token embedding (int8 rows, one scale per row, dequantized after the
// lookup). Kept in float32: LayerNorm, softmax, attention's q·kᵀ and probs·v, positional and
// class embeddings, and the two output projections (a [batch, width] product, cheap, and the last
// word on the embedding).

import { ShapeError } from '../../errors.js';
import type { Value } from '../../onnx/graph.js';
import { add, cast, dynamicQuantizeLinear, gather, matmulInteger, mul, qAttention, unsqueeze } from '../../ops/index.js';
import type { TowerHooks } from './model.js';
import type { AttentionOpts, BlockParams } from './transformer.js';

export interface Int8Rows {
  /** int8 values, row-major [rows, cols] (or [cols, rows] when transposed). */
  q: Int8Array;
  /** One scale per row: the row's max |w| / 127 (1 for an all-zero row). */
  scale: Float32Array;
}

/** Symmetric per-row int8 quantization of a row-major [rows, cols] matrix; `transpose` stores q as [cols, rows]. */
export function quantizeRows(w: Float32Array, rows: number, cols: number, transpose = false): Int8Rows {
  if (w.length !== rows * cols) throw new ShapeError('quantizeRows', 'weights', `expected ${rows}×${cols} = ${rows * cols} values, got ${w.length}`);
  const q = new Int8Array(rows * cols);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(w[base + c]!));
    const s = m > 0 && Number.isFinite(m) ? m / 127 : 1;
    scale[r] = s;
    const inv = 1 / s;
    for (let c = 0; c < cols; c++) {
      const v = w[base + c]! * inv;
      // Round half away from zero, so ±v quantize symmetrically.
      const iv = Math.max(-127, Math.min(127, Math.sign(v) * Math.round(Math.abs(v))));
      q[transpose ? c * rows + r : base + c] = iv;
    }
  }
  return { q, scale };
}

/** w ≈ scale[r]·q[r, c] back in float32 (row-major, untransposed). */
export function dequantizeRows(r: Int8Rows, cols: number): Float32Array {
  const out = new Float32Array(r.q.length);
  for (let i = 0; i < out.length; i++) out[i] = r.q[i]! * r.scale[Math.floor(i / cols)]!;
  return out;
}

/**
 * Tower hooks that bake the int8 weights into the graph as initializers. `weights(name)` gives a
 * parameter's float32 values (OpenAI names); a weight [out, …] is read as [out, numel/out].
 */
export function int8Hooks(weights: (name: string) => Float32Array): TowerHooks {
  /** W [out, …] as int8 [in, out] (B of x·B) and its per-column scales. */
  const int8Weight = (x: Value, w: Value): [Value, Value] => {
    const g = x.graph;
    const n = w.shape[0] as number;
    const k = (w.shape as number[]).slice(1).reduce((a, d) => a * d, 1);
    const kx = x.shape[x.rank - 1];
    if (typeof kx === 'number' && kx !== k) throw new ShapeError('int8 linear', w.name, `input has ${kx} features, the weight ${k}`);
    const { q, scale } = quantizeRows(weights(w.name), n, k, true);
    return [g.constant(q, 'int8', [k, n]), g.constant(scale, 'float32', [n])];
  };
  const linear = (x: Value, w: Value, b: Value | null): Value => {
    const [qW, sW] = int8Weight(x, w);
    const [qx, sx, zx] = dynamicQuantizeLinear(x);
    const y = mul(cast(matmulInteger(qx, qW, zx), 'float32'), mul(sx, sW));
    return b ? add(y, b) : y;
  };
  // QAttention (com.microsoft): the in_proj GEMM in int8 writing q, k, v per head straight into the
  // layout attention reads (no Transpose or Split), attention in float32, then the int8 out_proj.
  // The weight's columns are in_proj's rows (q | k | v, heads contiguous), as QAttention wants.
  const attention = (x: Value, p: BlockParams, o: AttentionOpts): Value => {
    if (o.mask && !o.causal) throw new ShapeError('int8 attention', p.inW.name, 'only the causal mask is supported');
    const [qW, sW] = int8Weight(x, p.inW);
    const [qx, sx, zx] = dynamicQuantizeLinear(x);
    const ctx = qAttention(qx, qW, p.inB, sx, sW, zx, { heads: o.heads, unidirectional: o.causal === true && o.mask != null });
    return linear(ctx, p.outW, p.outB);
  };
  return {
    linear,
    attention,
    embed: (table, ids) => {
      const g = table.graph;
      const [rows, cols] = table.shape as [number, number];
      const { q, scale } = quantizeRows(weights(table.name), rows, cols);
      const qT = g.constant(q, 'int8', [rows, cols]);
      const sT = g.constant(scale, 'float32', [rows]);
      return mul(cast(gather(qT, ids, 0), 'float32'), unsqueeze(gather(sT, ids, 0), [ids.rank]));
    },
  };
}
