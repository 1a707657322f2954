// The options of fit() and what it reports while it runs. Everything here is plain JSON so a run
// can be started in a detached worker process and recorded in the run store (Documents given as
// evaluation data travel as their JSON).

import type { Document, DocumentJson } from '../data/document.js';
import type { LoraOptions } from '../models/clip/lora.js';

export type OptimizerName = 'adamw' | 'adam' | 'sgd';
export type SchedulerName = 'constant' | 'linear' | 'cosine';

export interface OptimizerOptionsJson {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  nesterov?: boolean;
  /**
   * Parameters that get no weight decay. 'default' is open_clip's rule: gains, biases and
   * logit_scale (every parameter with fewer than 2 dims, or named ln/bias/logit_scale); 'none'
   * decays every parameter; a list gives substrings of names to exclude.
   */
  weightDecayExclude?: 'default' | 'none' | string[];
}

export interface SchedulerOptionsJson {
  warmupSteps?: number;
  /** Step the schedule after every batch (default) or every epoch. */
  stepOn?: 'batch' | 'epoch';
}

/** Lock a tower: fully (true) or all but its last N residual blocks (and its head). */
export type FreezeSpec = boolean | { allButLast: number };

/** Callbacks as JSON, so a detached worker can rebuild them. */
export type CallbackSpec =
  | {
      type: 'EvaluationCallback';
      /** A data file, folder or dataset:NAME, or Documents (their JSON in a detached run): text–image
       * pairs, or labelled text Documents (clip-text queries). */
      queryData: string | readonly Document[] | readonly DocumentJson[];
      /** The same for the index: pairs, or labelled image Documents (clip-vision). */
      indexData: string | readonly Document[] | readonly DocumentJson[];
      model?: 'clip-text' | 'clip-vision';
      indexModel?: 'clip-text' | 'clip-vision';
      limit?: number;
      distance?: 'cosine' | 'euclidean' | 'sqeuclidean';
      excludeSelf?: boolean;
      batchSize?: number;
      /** Skip (and count) bad query and index rows instead of failing (default: fit's skipBadRows). */
      skipBadRows?: boolean;
    }
  | { type: 'WiSEFTCallback'; alpha: number }
  | { type: 'EarlyStopping'; monitor?: string; mode?: 'min' | 'max'; patience?: number; minDelta?: number; baseline?: number }
  | { type: 'BestModelCheckpoint'; monitor?: string; mode?: 'min' | 'max' }
  | { type: 'TrainingCheckpoint'; lastKEpochs?: number };

export interface FitOptions {
  /** `name::tag` or a model folder (default DEFAULT_MODEL, the shipped ViT-T-8-64::icons). */
  model?: string;
  /** Tokenizer folder or BPE file, when the model folder carries none. */
  tokenizer?: string;
  /** A CSV, JSONL file, image folder, or `dataset:NAME[@vN]` from the local dataset store. */
  trainData: string;
  evalData?: string;
  /** Fraction of trainData held out for val_loss when evalData is not given. */
  valSplit?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  optimizer?: OptimizerName;
  optimizerOptions?: OptimizerOptionsJson;
  scheduler?: SchedulerName;
  schedulerOptions?: SchedulerOptionsJson;
  loss?: 'CLIPLoss';
  /** Count pairs with the same label in a batch as positives instead of false negatives. */
  labelAwareLoss?: boolean;
  freeze?: { image?: FreezeSpec; text?: FreezeSpec };
  /**
   * A fully frozen tower's features are computed once and reused by every step and evaluation
   * (default true); false runs the frozen tower again in every step.
   */
  reuseFrozenFeatures?: boolean;
  /**
   * GradCache (Gao et al., 2021): run the towers `chunk` rows at a time, so memory grows with the
   * chunk rather than the batch, while the gradient stays the full batch's (CLIPLoss over the
   * whole batch). Costs one extra forward pass of each trained tower. null/absent: off.
   */
  gradCache?: { chunk: number } | null;
  callbacks?: CallbackSpec[];
  /**
   * Where Adam/AdamW's update runs: 'wasm' (default on the CPU: SIMD kernels on the gradients, in
   * place, no copies of the parameters out of onnxruntime) or 'onnxruntime' (fused into the
   * training run; always used for SGD, CUDA, and models too big for one wasm memory). Both give the
   * same bits without clipping.
   */
  optimizerBackend?: 'wasm' | 'onnxruntime';
  runName?: string;
  experimentName?: string;
  device?: 'cpu' | 'cuda';
  /** Images decoded in parallel with training. */
  numWorkers?: number;
  /** Memory for preprocessed pixels kept across epochs, in MB (default 1024; 0 decodes every epoch). */
  pixelCacheMB?: number;
  toOnnx?: boolean;
  seed?: number;
  shuffle?: boolean;
  maxGradNorm?: number;
  /** Skip (and count) bad CSV rows instead of failing. */
  skipBadRows?: boolean;
  /** Folder where the run keeps checkpoints and its artifact (set by the run store). */
  workDir?: string;
  /**
   * Train LoRA adapters instead of the weights (models/clip/lora.ts): the artifact is the adapter
   * (adapter_model.safetensors + adapter_config.json), plus the merged model with toOnnx or lora.merge.
   */
  lora?: LoraOptions;
}

export type LogLevel = 'info' | 'warn' | 'error';

/** What fit() reports as it goes; the run worker records all of it. */
export interface FitHooks {
  log?(level: LogLevel, message: string): void;
  /** After each step: `step` of `steps` in the epoch, the epoch's running mean `loss` (for a live
   * bar) and this step's own loss `stepLoss` (fit always gives it). */
  progress?(p: { epoch: number; epochs: number; step: number; steps: number; loss: number; stepLoss?: number; elapsedS: number }): void;
  /** Metrics after an epoch (epoch 0 = zero-shot, before training). */
  metrics?(epoch: number, values: Record<string, number>): void;
  /** Checked after each step: return true to stop. fit() then throws FitStoppedError (the run is CANCELED). */
  shouldStop?(): boolean;
}

export interface FitResult {
  /** Epochs completed. */
  epochs: number;
  steps: number;
  /** Metrics per epoch, 0 being the zero-shot evaluation. */
  history: { epoch: number; metrics: Record<string, number> }[];
  /** Folder of the final model (a model folder, plus ONNX towers when toOnnx). */
  artifactDir: string;
  stoppedEarly: boolean;
  /** Where the wall time went, in seconds. */
  timings: FitTimings;
  /** Elements of the parameters the optimizer updated. */
  trainableParameters?: number;
}

export interface FitTimings {
  /** The whole fit, loading included. */
  totalS: number;
  /** Inside training steps (forward, backward and update). */
  stepS: number;
  /** Steps waiting for their batch's images (decoded in workers during the previous step). */
  dataWaitS: number;
  /** In callbacks' evaluations (zero-shot and per epoch) and val_loss. */
  evalS: number;
}
