// fit()'s defaults (fit_defaults.ts) and validation (every bad option is a ConfigError naming the field), and the
// optimizer the options ask for.

import { ConfigError } from '../errors.js';
import type { ParamStore } from '../runtime/params.js';
import { FIT_DEFAULTS as D, defaultNumWorkers } from './fit_defaults.js';
import type { FitOptions, OptimizerOptionsJson, SchedulerOptionsJson } from './fit_types.js';
import { checkChunk } from './grad_cache.js';
import { Adam, AdamW, SGD } from './optim.js';
import type { Optimizer, ParamGroupOptions } from './optim.js';

export interface ResolvedFitOptions extends Required<Omit<FitOptions, 'tokenizer' | 'evalData' | 'runName' | 'experimentName' | 'workDir' | 'maxGradNorm' | 'freeze' | 'lora'>> {
  tokenizer?: string;
  evalData?: string;
  runName?: string;
  experimentName?: string;
  workDir?: string;
  maxGradNorm?: number;
  freeze: NonNullable<FitOptions['freeze']>;
  lora?: FitOptions['lora'];
  optimizerOptions: OptimizerOptionsJson;
  schedulerOptions: SchedulerOptionsJson;
  weightDecay: number;
  keepCheckpoints: number;
  /** Memory for preprocessed pixels kept across epochs (MB). */
  pixelCacheMB: number;
}

function positiveInt(field: string, v: unknown): number {
  if (!(typeof v === 'number' && Number.isInteger(v) && v > 0)) throw new ConfigError(field, `must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function nonNegative(field: string, v: unknown): number {
  if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new ConfigError(field, `must be a non-negative number, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) throw new ConfigError(field, `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function resolveOptions(o: FitOptions): ResolvedFitOptions {
  if (!o || typeof o !== 'object') throw new ConfigError('options', 'fit() needs an options object');
  const model = o.model ?? D.model;
  if (typeof model !== 'string' || !model) throw new ConfigError('model', 'give a model folder or name::tag');
  if (typeof o.trainData !== 'string' || !o.trainData) throw new ConfigError('trainData', 'give a CSV, JSONL, image folder or dataset:NAME');
  const valSplit = nonNegative('valSplit', o.valSplit ?? D.valSplit);
  if (valSplit >= 1) throw new ConfigError('valSplit', `must be below 1, got ${valSplit}`);
  const optimizer = oneOf('optimizer', o.optimizer ?? D.optimizer, ['adamw', 'adam', 'sgd'] as const);
  const oo = o.optimizerOptions ?? {};
  const betas = oo.betas ?? [...D.betas];
  if (!Array.isArray(betas) || betas.length !== 2 || betas.some((b) => !(b >= 0 && b < 1))) throw new ConfigError('optimizerOptions.betas', `must be two numbers in [0, 1), got ${JSON.stringify(betas)}`);
  const ckpt = (o.callbacks ?? []).find((c) => c.type === 'TrainingCheckpoint') as { lastKEpochs?: number } | undefined;
  if (o.callbacks !== undefined && !Array.isArray(o.callbacks)) throw new ConfigError('callbacks', 'must be a list');
  if (o.maxGradNorm !== undefined && !(o.maxGradNorm > 0)) throw new ConfigError('maxGradNorm', `must be positive, got ${o.maxGradNorm}`);
  const so = o.schedulerOptions ?? {};
  if (so.stepOn !== undefined) oneOf('schedulerOptions.stepOn', so.stepOn, ['batch', 'epoch'] as const);
  return {
    model,
    tokenizer: o.tokenizer,
    trainData: o.trainData,
    evalData: o.evalData,
    valSplit,
    epochs: positiveInt('epochs', o.epochs ?? D.epochs),
    batchSize: positiveInt('batchSize', o.batchSize ?? D.batchSize),
    learningRate: nonNegative('learningRate', o.learningRate ?? D.learningRate),
    optimizer,
    optimizerOptions: { ...oo, betas: betas as [number, number] },
    weightDecay: nonNegative('optimizerOptions.weightDecay', oo.weightDecay ?? D.weightDecay[optimizer]),
    scheduler: oneOf('scheduler', o.scheduler ?? D.scheduler, ['constant', 'linear', 'cosine'] as const),
    schedulerOptions: so,
    loss: oneOf('loss', o.loss ?? D.loss, ['CLIPLoss'] as const),
    labelAwareLoss: o.labelAwareLoss ?? D.labelAwareLoss,
    freeze: o.freeze ?? {},
    callbacks: o.callbacks ?? [],
    runName: o.runName,
    experimentName: o.experimentName,
    device: oneOf('device', o.device ?? D.device, ['cpu', 'cuda'] as const),
    numWorkers: nonNegative('numWorkers', o.numWorkers ?? defaultNumWorkers()),
    toOnnx: o.toOnnx ?? D.toOnnx,
    seed: o.seed ?? D.seed,
    shuffle: o.shuffle ?? D.shuffle,
    maxGradNorm: o.maxGradNorm,
    skipBadRows: o.skipBadRows ?? D.skipBadRows,
    workDir: o.workDir,
    keepCheckpoints: ckpt?.lastKEpochs ?? D.keepCheckpoints,
    pixelCacheMB: nonNegative('pixelCacheMB', o.pixelCacheMB ?? D.pixelCacheMB),
    reuseFrozenFeatures: o.reuseFrozenFeatures ?? D.reuseFrozenFeatures,
    optimizerBackend: oneOf('optimizerBackend', o.optimizerBackend ?? D.optimizerBackend, ['wasm', 'onnxruntime'] as const),
    ...(o.lora !== undefined ? { lora: o.lora } : {}),
    gradCache: gradCacheOf(o.gradCache),
  };
}

function gradCacheOf(v: unknown): { chunk: number } | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError('gradCache', `must be { chunk: N } or null, got ${JSON.stringify(v)}`);
  return { chunk: checkChunk((v as { chunk?: unknown }).chunk) };
}

export function makeOptimizer(o: ResolvedFitOptions, params: ParamStore, groups: ParamGroupOptions[]): Optimizer {
  const common = { lr: o.learningRate, groups, maxGradNorm: o.maxGradNorm, checkFinite: true, inPlace: true, session: { device: o.device } };
  const oo = o.optimizerOptions;
  if (o.optimizer === 'sgd') return new SGD(params, { ...common, momentum: oo.momentum ?? D.momentum, nesterov: oo.nesterov ?? D.nesterov });
  const adam = { ...common, betas: oo.betas as [number, number], eps: oo.eps ?? D.eps };
  return o.optimizer === 'adam' ? new Adam(params, adam) : new AdamW(params, adam);
}
