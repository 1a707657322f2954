// The graphs a CLIP model runs as: the training step (both towers, head, CLIPLoss, gradients of
// the trainable parameters) and each tower alone for encoding and export.

import { grad } from '../../autodiff/grad.js';
import { Graph } from '../../onnx/graph.js';
import type { Value } from '../../onnx/graph.js';
import { l2Normalize } from '../../ops/index.js';
import { clipLoss, clipLossLabelAware } from '../../train/loss.js';
import type { ClipModelCfg } from './config.js';
import { clipHead, imageTower, textTower } from './model.js';
import type { ClipHead, TowerHooks } from './model.js';

export interface TrainGraph {
  graph: Graph;
  images: Value;
  texts: Value;
  loss: Value;
  head: ClipHead;
  imageFeatures: Value;
  textFeatures: Value;
  /** Gradients, in the order of `trainable`. */
  grads: Value[];
  trainable: Value[];
  taps: Record<string, Value>;
}

export interface TrainGraphOptions {
  /** Which parameters get gradients (default: all). The others are frozen and their branches pruned. */
  trainable?: (name: string) => boolean;
  /** Also output the intermediate activations (for parity checks). */
  taps?: boolean;
  /** Label-aware CLIPLoss: an int64 `labels` input [batch]; pairs sharing a label are positives. */
  labelAware?: boolean;
}

export function buildTrainGraph(cfg: ClipModelCfg, opts: TrainGraphOptions = {}): TrainGraph {
  const g = new Graph('clip_train');
  const s = cfg.vision_cfg.image_size;
  const images = g.input('images', 'float32', ['batch', 3, s, s]);
  const texts = g.input('texts', 'int64', ['batch', 'seq']);
  const it = imageTower(g, cfg, images);
  const tt = textTower(g, cfg, texts);
  const head = clipHead(g, it.features, tt.features);
  const loss = opts.labelAware
    ? clipLossLabelAware(head.logitsPerImage, head.logitsPerText, g.input('labels', 'int64', ['batch']))
    : clipLoss(head.logitsPerImage, head.logitsPerText);
  g.rename(loss, 'loss');
  const trainable = g.params.filter((p) => (opts.trainable ? opts.trainable(p.name) : true));
  const grads = grad(loss, trainable);
  const taps = opts.taps ? { ...it.taps, ...tt.taps } : {};
  g.output(loss, ...grads);
  if (opts.taps) g.output(...Object.values(taps), it.features, tt.features, head.imageNormalized, head.textNormalized, head.logitScaleExp, head.logitsPerImage, head.logitsPerText);
  return { graph: g, images, texts, loss, head, imageFeatures: it.features, textFeatures: tt.features, grads, trainable, taps };
}

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
