// The graphs a CLIP tower runs as alone, for encoding and export (the training step's graph is
// train/train_graph.ts).

import { Graph } from '../../onnx/graph.js';
import type { Value } from '../../onnx/graph.js';
import { l2Normalize } from '../../ops/index.js';
import type { ClipModelCfg } from './config.js';
import { imageTower, textTower } from './model.js';
import type { TowerHooks } from './model.js';

export interface EncoderGraph {
  graph: Graph;
  input: Value;
  /** Features [batch, embed_dim], L2-normalised when `normalize`. */
  output: Value;
}

/** The image tower alone: pixel_values [batch, 3, s, s] → image_embeds. */
export function buildImageEncoder(cfg: ClipModelCfg, normalize = false, hooks: TowerHooks = {}): EncoderGraph {
  const g = new Graph('clip_vision');
  const s = cfg.vision_cfg.image_size;
  const input = g.input('pixel_values', 'float32', ['batch', 3, s, s]);
  const f = imageTower(g, cfg, input, hooks).features;
  const output = normalize ? l2Normalize(f, 1) : f;
  g.rename(output, 'image_embeds');
  g.output(output);
  return { graph: g, input, output };
}

/** The text tower alone: input_ids int64 [batch, seq ≤ context_length] → text_embeds. */
export function buildTextEncoder(cfg: ClipModelCfg, normalize = false, hooks: TowerHooks = {}): EncoderGraph {
  const g = new Graph('clip_text');
  const input = g.input('input_ids', 'int64', ['batch', 'seq']);
  const f = textTower(g, cfg, input, hooks).features;
  const output = normalize ? l2Normalize(f, 1) : f;
  g.rename(output, 'text_embeds');
  g.output(output);
  return { graph: g, input, output };
}
