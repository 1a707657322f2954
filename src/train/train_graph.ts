// The training step's graph: both towers, the head, CLIPLoss and the gradients of the trainable
// parameters (frozen branches pruned). A fully frozen tower can be left out: its features
// [batch, embed_dim] (computed once, outside the step) then come in as an input.

import { grad } from '../autodiff/grad.js';
import { Graph } from '../onnx/graph.js';
import type { Value } from '../onnx/graph.js';
import type { ClipModelCfg } from '../models/clip/config.js';
import { clipHead, imageTower, textTower } from '../models/clip/model.js';
import type { ClipHead, Tower, TowerHooks } from '../models/clip/model.js';
import { clipLoss, clipLossLabelAware } from './loss.js';

export interface TrainGraph {
  graph: Graph;
  /** The pixels input, or with `featureInputs.image` the `image_features` input [batch, embed_dim]. */
  images: Value;
  /** The token ids input, or with `featureInputs.text` the `text_features` input [batch, embed_dim]. */
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
  /**
   * Mark the gradients as graph outputs (default true). A graph whose optimizer update is fused in
   * consumes them inside the run: as outputs, onnxruntime would give each one a fresh buffer every
   * step (the size of the parameters) and copy it out to JS, for nothing.
   */
  outputGradients?: boolean;
  /**
   * Towers whose features come in as inputs (`image_features`, `text_features`, float32
   * [batch, embed_dim], unnormalised as the tower's output) instead of being computed: for a frozen
   * tower, whose features do not change from step to step. Its parameters are then not in the graph.
   */
  featureInputs?: { image?: boolean; text?: boolean };
  /** The towers' layer swaps (e.g. LoRA adapters beside the linear weights: ClipModel.towerHooks). */
  hooks?: { image?: TowerHooks; text?: TowerHooks };
}

export function buildTrainGraph(cfg: ClipModelCfg, opts: TrainGraphOptions = {}): TrainGraph {
  const g = new Graph('clip_train');
  const s = cfg.vision_cfg.image_size;
  const given = (name: string): Tower => ({ features: g.input(name, 'float32', ['batch', cfg.embed_dim]), taps: {} });
  const images = opts.featureInputs?.image ? null : g.input('images', 'float32', ['batch', 3, s, s]);
  const texts = opts.featureInputs?.text ? null : g.input('texts', 'int64', ['batch', 'seq']);
  const it = images ? imageTower(g, cfg, images, opts.hooks?.image) : given('image_features');
  const tt = texts ? textTower(g, cfg, texts, opts.hooks?.text) : given('text_features');
  const head = clipHead(g, it.features, tt.features);
  const loss = opts.labelAware
    ? clipLossLabelAware(head.logitsPerImage, head.logitsPerText, g.input('labels', 'int64', ['batch']))
    : clipLoss(head.logitsPerImage, head.logitsPerText);
  g.rename(loss, 'loss');
  const trainable = g.params.filter((p) => (opts.trainable ? opts.trainable(p.name) : true));
  const grads = grad(loss, trainable);
  const taps = opts.taps ? { ...it.taps, ...tt.taps } : {};
  g.output(loss);
  if (opts.outputGradients ?? true) g.output(...grads);
  if (opts.taps) g.output(...Object.values(taps), it.features, tt.features, head.imageNormalized, head.textNormalized, head.logitScaleExp, head.logitsPerImage, head.logitsPerText);
  return { graph: g, images: images ?? it.features, texts: texts ?? tt.features, loss, head, imageFeatures: it.features, textFeatures: tt.features, grads, trainable, taps };
}
