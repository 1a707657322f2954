// The residual attention block of OpenAI CLIP (clip/model.py ResidualAttentionBlock), pre-LN:
//   x = x + out_proj(attn(ln_1(x)))
//   x = x + c_proj(act(c_fc(ln_2(x))))
// with torch 1.13 nn.MultiheadAttention: qkv = x·W_inᵀ + b_in split into q, k, v; heads are
// contiguous chunks of the width; scores = (q/√d)·kᵀ (+ additive mask); softmax; ·v; out_proj.
// Activations stay batch-first [batch, seq, width]; parameters keep OpenAI's names and layouts.

import type { Graph, Value } from '../../onnx/graph.js';
import { add, layerNorm, linear, matmul, matmulT, quickGelu, gelu, reshape, softmax, transpose, split, squeeze } from '../../ops/index.js';

export interface BlockParams {
  ln1w: Value;
  ln1b: Value;
  inW: Value;
  inB: Value;
  outW: Value;
  outB: Value;
  ln2w: Value;
  ln2b: Value;
  fcW: Value;
  fcB: Value;
  projW: Value;
  projB: Value;
}

/** Declare one block's parameters under `prefix` (e.g. `visual.transformer.resblocks.3`). */
export function blockParams(g: Graph, prefix: string, width: number, mlpRatio = 4): BlockParams {
  const hidden = Math.round(width * mlpRatio);
  const p = (name: string, shape: number[]) => g.param(`${prefix}.${name}`, shape);
  return {
    inW: p('attn.in_proj_weight', [3 * width, width]),
    inB: p('attn.in_proj_bias', [3 * width]),
    outW: p('attn.out_proj.weight', [width, width]),
    outB: p('attn.out_proj.bias', [width]),
    ln1w: p('ln_1.weight', [width]),
    ln1b: p('ln_1.bias', [width]),
    fcW: p('mlp.c_fc.weight', [hidden, width]),
    fcB: p('mlp.c_fc.bias', [hidden]),
    projW: p('mlp.c_proj.weight', [width, hidden]),
    projB: p('mlp.c_proj.bias', [width]),
    ln2w: p('ln_2.weight', [width]),
    ln2b: p('ln_2.bias', [width]),
  };
}

/** x·Wᵀ + b with a PyTorch-layout weight W [out, in] (the int8 towers swap in a quantized one). */
export type LinearFn = (x: Value, w: Value, b: Value | null) => Value;

export type AttentionFn = (x: Value, p: BlockParams, o: AttentionOpts) => Value;

export interface AttentionOpts {
  heads: number;
  /** The linear layers' implementation (default: fp32 `linear`). */
  linear?: LinearFn;
  /** The whole attention sublayer's implementation (default: selfAttention). */
  attention?: AttentionFn;
  /** The mask is the causal one (an attention implementation may apply it itself). */
  causal?: boolean;
  /** Additive mask broadcast to [seq, seq] (e.g. the causal −∞ mask), or null. */
  mask?: Value | null;
}

/** Multi-head self-attention on [batch, seq, width]. */
export function selfAttention(x: Value, p: BlockParams, o: AttentionOpts): Value {
  const width = x.shape[x.rank - 1] as number;
  const d = width / o.heads;
  const lin = o.linear ?? linear;
  const qkv = lin(x, p.inW, p.inB); // [B, S, 3W]
  // [B, S, 3, H, D] → [3, B, H, S, D]
  const heads = transpose(reshape(qkv, [0, 0, 3, o.heads, d]), [2, 0, 3, 1, 4]);
  const [q, k, v] = split(heads, 0, 3).map((t) => squeeze(t, [0])) as [Value, Value, Value];
  let scores = matmulT(q, k, { transB: true, alpha: 1 / Math.sqrt(d) }); // [B, H, S, S]
  if (o.mask) scores = add(scores, o.mask);
  const ctx = matmul(softmax(scores, -1), v); // [B, H, S, D]
  const merged = reshape(transpose(ctx, [0, 2, 1, 3]), [0, 0, width]);
  return lin(merged, p.outW, p.outB);
}

export interface BlockOpts extends AttentionOpts {
  quickGelu: boolean;
}

export function residualBlock(x: Value, p: BlockParams, o: BlockOpts): Value {
  const h = add(x, (o.attention ?? selfAttention)(layerNorm(x, p.ln1w, p.ln1b), p, o));
  const act = o.quickGelu ? quickGelu : gelu;
  const lin = o.linear ?? linear;
  const m = lin(act(lin(layerNorm(h, p.ln2w, p.ln2b), p.fcW, p.fcB)), p.projW, p.projB);
  return add(h, m);
}
