// fit()'s defaults, written once: resolveOptions and the optimizer read them, and the CLI's help
// prints them, so `clipfit fit --help` can never disagree with what fit does.

import os from 'node:os';
import { DEFAULT_MODEL } from '../models/clip/weights/registry.js';

export const FIT_DEFAULTS = {
  model: DEFAULT_MODEL,
  epochs: 5,
  batchSize: 32,
  learningRate: 1e-5,
  optimizer: 'adamw',
  /** Adam(W) betas and epsilon: open_clip's fine-tuning values. */
  betas: [0.9, 0.98] as [number, number],
  eps: 1e-6,
  /** Weight decay per optimizer: CLIP's 0.2 for AdamW, none otherwise. */
  weightDecay: { adamw: 0.2, adam: 0, sgd: 0 },
  momentum: 0.9,
  nesterov: false,
  scheduler: 'constant',
  stepOn: 'batch',
  loss: 'CLIPLoss',
  valSplit: 0,
  device: 'cpu',
  seed: 42,
  shuffle: true,
  toOnnx: false,
  labelAwareLoss: false,
  skipBadRows: false,
  /** Epoch checkpoints kept (TrainingCheckpoint's lastKEpochs). */
  keepCheckpoints: 1,
  pixelCacheMB: 1024,
  reuseFrozenFeatures: true,
  optimizerBackend: 'wasm' as const,
  /** EvaluationCallback: matches per query. */
  evalLimit: 20,
} as const;

/** Image-decoding worker threads: one core is left to the training step, at most two are used. */
export const defaultNumWorkers = (): number => Math.min(2, Math.max(1, os.cpus().length - 1));
