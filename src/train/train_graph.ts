// The training step's graph: both towers, the head, CLIPLoss and the gradients of the trainable
// parameters (frozen branches pruned).

import { grad } from '../autodiff/grad.js';
import { Graph } from '../onnx/graph.js';
import type { Value } from '../onnx/graph.js';
import type { ClipModelCfg } from '../models/clip/config.js';
import { clipHead, imageTower, textTower } from '../models/clip/model.js';
import type { ClipHead } from '../models/clip/model.js';
import { clipLoss, clipLossLabelAware } from './loss.js';

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
