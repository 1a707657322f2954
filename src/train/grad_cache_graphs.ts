// The graphs of a GradCache step (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size
// under Memory Limited Setup"). CLIPLoss couples every pair of the batch, but each tower maps one
// row to one feature vector independently of the other rows, so with f_i = tower(x_i; θ):
//
//   dL/dθ = Σ_i (dL/df_i)ᵀ · ∂f_i/∂θ = Σ_chunks d/dθ [ Σ_{i∈chunk} ⟨f_i(θ), g_i⟩ ],  g_i = dL/df_i fixed.
//
// So the step runs in three kinds of graph:
//   forward   (per tower)  x_chunk → f_chunk, no gradients, so no activation outlives its chunk;
//   loss                   f_image, f_text [batch, E] (+ labels) → L, g_image, g_text, dL/d logit_scale;
//   backward  (per tower)  x_chunk, g_chunk, acc → acc + d/dθ ⟨f(x_chunk; θ), g_chunk⟩, i.e. the
//                          surrogate's gradient (grad() seeded with g_chunk instead of 1) summed
//                          into an accumulator fed in and written back into the same buffer.

import { grad } from '../autodiff/grad.js';
import { Graph } from '../onnx/graph.js';
import type { Value } from '../onnx/graph.js';
import type { ClipModelCfg } from '../models/clip/config.js';
import { clipHead, imageTower, textTower } from '../models/clip/model.js';
import type { TowerHooks } from '../models/clip/model.js';
import { add } from '../ops/index.js';
import { clipLoss, clipLossLabelAware } from './loss.js';
import { nameValue } from './optim_graph.js';

export type TowerName = 'image' | 'text';

/** The data input a tower reads: pixels [batch, 3, s, s] or token ids [batch, seq]. */
export const TOWER_INPUT: Record<TowerName, string> = { image: 'images', text: 'texts' };
/** Feature (and, with `_grad`, feature-gradient) names in the loss graph: as train_graph's featureInputs. */
export const FEATURES: Record<TowerName, string> = { image: 'image_features', text: 'text_features' };
/** The backward graph's seed input: dL/df of the chunk's rows [chunk, embed_dim]. */
export const SEED = 'features_grad';
/** Accumulator input and output of a parameter's gradient in a backward graph. */
export const accIn = (param: string) => `${param}.grad_acc`;
export const accOut = (param: string) => `${param}.grad_acc.next`;

function towerOf(g: Graph, cfg: ClipModelCfg, which: TowerName, hooks?: TowerHooks): Value {
  if (which === 'image') {
    const s = cfg.vision_cfg.image_size;
    return imageTower(g, cfg, g.input(TOWER_INPUT.image, 'float32', ['batch', 3, s, s]), hooks).features;
  }
  return textTower(g, cfg, g.input(TOWER_INPUT.text, 'int64', ['batch', 'seq']), hooks).features;
}

/** x → unnormalised features [batch, embed_dim], output `image_features` / `text_features`. */
export function buildTowerForward(cfg: ClipModelCfg, which: TowerName, hooks?: TowerHooks): Graph {
  const g = new Graph(`gradcache_${which}_forward`);
  const f = towerOf(g, cfg, which, hooks);
  g.output(nameValue(g, f, FEATURES[which]));
  return g;
}

export interface TowerBackward {
  graph: Graph;
  /** Names of the tower's parameters that get gradients (empty: the tower is frozen). */
  trainable: string[];
}

/**
 * x, g (the seed), θ and one accumulator per trainable parameter → acc + d⟨f(x; θ), g⟩/dθ.
 * The forward part is the very same graph as the forward-only one, so both passes compute the same
 * features (no randomness depends on which graph runs; inputs other than x and θ are fed alike).
 */
export function buildTowerBackward(cfg: ClipModelCfg, which: TowerName, trainable: (name: string) => boolean, hooks?: TowerHooks): TowerBackward {
  const g = new Graph(`gradcache_${which}_backward`);
  const f = towerOf(g, cfg, which, hooks);
  const params = g.params.filter((p) => trainable(p.name));
  if (params.length === 0) return { graph: g, trainable: [] };
  const seed = g.input(SEED, 'float32', ['batch', cfg.embed_dim]);
  const grads = grad(f, params, { seed });
  params.forEach((p, i) => {
    const acc = g.input(accIn(p.name), 'float32', p.shape);
    g.output(nameValue(g, add(acc, grads[i]!), accOut(p.name)));
  });
  return { graph: g, trainable: params.map((p) => p.name) };
}

export interface LossGraph {
  graph: Graph;
  /** Whether logit_scale trains (its gradient is output as `logit_scale_grad`). */
  logitScale: boolean;
}

/**
 * f_image, f_text [batch, E] (+ int64 labels [batch] when label-aware) and logit_scale → `loss`,
 * `image_features_grad`, `text_features_grad` and, when logit_scale trains, `logit_scale_grad`.
 */
export function buildLossGraph(cfg: ClipModelCfg, opts: { labelAware?: boolean; trainable?: (name: string) => boolean } = {}): LossGraph {
  const g = new Graph('gradcache_loss');
  const fi = g.input(FEATURES.image, 'float32', ['batch', cfg.embed_dim]);
  const ft = g.input(FEATURES.text, 'float32', ['batch', cfg.embed_dim]);
  const head = clipHead(g, fi, ft);
  const loss = opts.labelAware
    ? clipLossLabelAware(head.logitsPerImage, head.logitsPerText, g.input('labels', 'int64', ['batch']))
    : clipLoss(head.logitsPerImage, head.logitsPerText);
  g.rename(loss, 'loss');
  const logitScale = opts.trainable ? opts.trainable('logit_scale') : true;
  const wrt = [fi, ft, ...(logitScale ? [g.getParam('logit_scale')] : [])];
  const grads = grad(loss, wrt);
  g.output(loss, nameValue(g, grads[0]!, `${FEATURES.image}_grad`), nameValue(g, grads[1]!, `${FEATURES.text}_grad`));
  if (logitScale) g.output(nameValue(g, grads[2]!, 'logit_scale_grad'));
  return { graph: g, logitScale };
}
