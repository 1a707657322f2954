// OpenAI CLIP's two towers as graph builders (clip/model.py VisionTransformer and the text
// Transformer), with OpenAI's parameter names so checkpoints load without renaming.
//   image: patchify (the stride-p conv as one matmul) → [class token; patches] + positional
//          embedding → ln_pre → blocks → ln_post(x[:, 0]) → ·proj
//   text:  token embedding + positional embedding[:seq] → blocks with a causal −∞ mask →
//          ln_final → the row at the first maximum token id (the end-of-text token) → ·text_projection
// The text length is symbolic: a batch runs only up to its longest caption, and the causal mask
// makes the pooled output identical to running all 77 positions.

import type { Graph, Value } from '../../onnx/graph.js';
import type { Dim } from '../../onnx/dims.js';
import {
  add,
  argMax,
  cast,
  concat,
  dim,
  equal,
  expand,
  gather,
  layerNorm,
  matmul,
  matmulT,
  mul,
  range,
  reduceSum,
  reshape,
  slice,
  transpose,
  unsqueeze,
  exp,
  l2Normalize,
} from '../../ops/index.js';
import type { ClipModelCfg } from './config.js';
import { blockParams, residualBlock } from './transformer.js';
import type { AttentionFn, LinearFn } from './transformer.js';

/** Swaps for the towers' heavy layers (the int8 towers use them; absent: fp32). */
export interface TowerHooks {
  /** The blocks' linear layers, and the patch embedding as a linear over flattened patches. */
  linear?: LinearFn;
  /** The blocks' attention sublayer (x after ln_1 → out_proj's output). */
  attention?: AttentionFn;
  /** The token-embedding lookup: rows of `table` [vocab, width] at `ids`. */
  embed?: (table: Value, ids: Value) => Value;
}

export interface Tower {
  /** Projected features [batch, embed_dim] (not normalised). */
  features: Value;
  /** Intermediate activations for parity checks, keyed like the reference's `act.*`. */
  taps: Record<string, Value>;
}


export function imageTower(g: Graph, cfg: ClipModelCfg, images: Value, hooks: TowerHooks = {}): Tower {
  const v = cfg.vision_cfg;
  const w = v.width;
  const p = v.patch_size;
  const grid = v.image_size / p;
  const seq = grid * grid + 1;
  const conv = g.param('visual.conv1.weight', [w, 3, p, p]);
  const cls = g.param('visual.class_embedding', [w]);
  const pos = g.param('visual.positional_embedding', [seq, w]);
  const lnPreW = g.param('visual.ln_pre.weight', [w]);
  const lnPreB = g.param('visual.ln_pre.bias', [w]);
  const blocks = Array.from({ length: v.layers }, (_, i) => blockParams(g, `visual.transformer.resblocks.${i}`, w, v.mlp_ratio));
  const lnPostW = g.param('visual.ln_post.weight', [w]);
  const lnPostB = g.param('visual.ln_post.bias', [w]);
  const proj = g.param('visual.proj', [w, cfg.embed_dim]);
  const taps: Record<string, Value> = {};

  // Conv2d(3, w, p, stride p, no bias) = patches [B, g², 3·p·p] · W[w, 3·p·p]ᵀ.
  const patches = reshape(transpose(reshape(images, [0, 3, grid, p, grid, p]), [0, 2, 4, 1, 3, 5]), [0, grid * grid, 3 * p * p]);
  const x0 = hooks.linear ? hooks.linear(patches, conv, null) : matmulT(patches, reshape(conv, [w, 3 * p * p]), { transB: true }); // [B, g², w]
  taps['act.visual.conv1'] = x0;
  const clsRow = expand(reshape(cls, [1, 1, w]), concat([dim(images, 0), g.constant([1, w], 'int64', [2])], 0));
  let x = layerNorm(add(concat([clsRow, x0], 1), pos), lnPreW, lnPreB);
  taps['act.visual.ln_pre'] = x;
  const heads = w / v.head_width;
  blocks.forEach((bp, i) => {
    x = residualBlock(x, bp, { heads, quickGelu: cfg.quick_gelu, linear: hooks.linear, attention: hooks.attention });
    taps[`act.visual.transformer.resblocks.${i}`] = x;
  });
  const pooled = layerNorm(gather(x, g.constant(0, 'int64', []), 1), lnPostW, lnPostB); // [B, w]
  taps['act.visual.ln_post'] = pooled;
  return { features: matmul(pooled, proj), taps };
}

/** Causal additive mask [seq, seq]: 0 on and below the diagonal, −∞ above (sliced to the batch's length). */
function causalMask(g: Graph, ctx: number, tokens: Value, seqDim: Dim): Value {
  const m = new Float32Array(ctx * ctx);
  for (let i = 0; i < ctx; i++) for (let j = i + 1; j < ctx; j++) m[i * ctx + j] = -Infinity;
  const full = g.constant(m, 'float32', [ctx, ctx]);
  const len = dim(tokens, 1);
  return slice(full, [0, 0], concat([len, len], 0), [0, 1], undefined, [seqDim, seqDim]);
}

export function textTower(g: Graph, cfg: ClipModelCfg, tokens: Value, hooks: TowerHooks = {}): Tower {
  const t = cfg.text_cfg;
  const w = t.width;
  const pos = g.param('positional_embedding', [t.context_length, w]);
  const tokEmb = g.param('token_embedding.weight', [t.vocab_size, w]);
  const blocks = Array.from({ length: t.layers }, (_, i) => blockParams(g, `transformer.resblocks.${i}`, w, t.mlp_ratio));
  const lnW = g.param('ln_final.weight', [w]);
  const lnB = g.param('ln_final.bias', [w]);
  const textProj = g.param('text_projection', [w, cfg.embed_dim]);
  const taps: Record<string, Value> = {};
  const seqDim = tokens.shape[1]!;

  const emb = hooks.embed ? hooks.embed(tokEmb, tokens) : gather(tokEmb, tokens, 0); // [B, seq, w]
  taps['act.token_embedding'] = emb;
  const len = dim(tokens, 1);
  const posSeq = slice(pos, [0], len, [0], undefined, [seqDim, w]);
  let x = add(emb, posSeq);
  const mask = causalMask(g, t.context_length, tokens, seqDim);
  blocks.forEach((bp, i) => {
    x = residualBlock(x, bp, { heads: t.heads, quickGelu: cfg.quick_gelu, mask, causal: true, linear: hooks.linear, attention: hooks.attention });
    taps[`transformer.resblocks.${i}`.replace(/^/, 'act.')] = x;
  });
  x = layerNorm(x, lnW, lnB);
  taps['act.ln_final'] = x;
  // Pool at the first maximum id (argmax, as the reference): Σ_t x[b,t]·[t = eot_b], exact since
  // every other term is x·0.
  const eot = argMax(tokens, 1); // [B]
  taps['eot_index'] = eot;
  const positions = range(g, dim(tokens, 1, { scalar: true }), seqDim); // [seq]
  const onehot = cast(equal(unsqueeze(positions, [0]), unsqueeze(eot, [1])), 'float32'); // [B, seq]
  const pooled = reduceSum(mul(x, unsqueeze(onehot, [2])), [1]); // [B, w]
  return { features: matmul(pooled, textProj), taps };
}

export interface ClipHead {
  imageNormalized: Value;
  textNormalized: Value;
  logitScaleExp: Value;
  logitsPerImage: Value;
  logitsPerText: Value;
}

/** The CLIP head: normalise both features; logits = exp(logit_scale)·img·txtᵀ. */
export function clipHead(g: Graph, imageFeatures: Value, textFeatures: Value): ClipHead {
  const logitScale = g.param('logit_scale', []);
  const imageNormalized = l2Normalize(imageFeatures, 1);
  const textNormalized = l2Normalize(textFeatures, 1);
  const logitScaleExp = exp(logitScale);
  const logitsPerImage = mul(matmulT(imageNormalized, textNormalized, { transB: true }), logitScaleExp);
  return { imageNormalized, textNormalized, logitScaleExp, logitsPerImage, logitsPerText: transpose(logitsPerImage, [1, 0]) };
}
