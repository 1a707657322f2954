// fit()'s defaults and validation (every bad option is a ConfigError naming the field), and the
// optimizer the options ask for.

import { DEFAULT_MODEL } from '../models/clip/registry.js';
import os from 'node:os';
import { ConfigError } from '../errors.js';
import type { ParamStore } from '../runtime/params.js';
import type { FitOptions, OptimizerOptionsJson, SchedulerOptionsJson } from './fit_types.js';
import { Adam, AdamW, SGD } from './optim.js';
import type { Optimizer, ParamGroupOptions } from './optim.js';

export interface ResolvedFitOptions extends Required<Omit<FitOptions, 'tokenizer' | 'evalData' | 'runName' | 'experimentName' | 'workDir' | 'maxGradNorm' | 'freeze'>> {
  tokenizer?: string;
  evalData?: string;
  runName?: string;
  experimentName?: string;
  workDir?: string;
  maxGradNorm?: number;
  freeze: NonNullable<FitOptions['freeze']>;
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
  const model = o.model ?? DEFAULT_MODEL;
  if (typeof model !== 'string' || !model) throw new ConfigError('model', 'give a model folder or name::tag');
  if (typeof o.trainData !== 'string' || !o.trainData) throw new ConfigError('trainData', 'give a CSV, JSONL, image folder or dataset:NAME');
  const valSplit = nonNegative('valSplit', o.valSplit ?? 0);
  if (valSplit >= 1) throw new ConfigError('valSplit', `must be below 1, got ${valSplit}`);
  const optimizer = oneOf('optimizer', o.optimizer ?? 'adamw', ['adamw', 'adam', 'sgd'] as const);
  const oo = o.optimizerOptions ?? {};
  const betas = oo.betas ?? [0.9, 0.98];
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
    epochs: positiveInt('epochs', o.epochs ?? 5),
    batchSize: positiveInt('batchSize', o.batchSize ?? 32),
    learningRate: nonNegative('learningRate', o.learningRate ?? 1e-5),
    optimizer,
    optimizerOptions: { ...oo, betas: betas as [number, number] },
    weightDecay: nonNegative('optimizerOptions.weightDecay', oo.weightDecay ?? (optimizer === 'adamw' ? 0.2 : 0)),
    scheduler: oneOf('scheduler', o.scheduler ?? 'constant', ['constant', 'linear', 'cosine'] as const),
    schedulerOptions: so,
    loss: oneOf('loss', o.loss ?? 'CLIPLoss', ['CLIPLoss'] as const),
    labelAwareLoss: o.labelAwareLoss ?? false,
    freeze: o.freeze ?? {},
    callbacks: o.callbacks ?? [],
    runName: o.runName,
    experimentName: o.experimentName,
    device: oneOf('device', o.device ?? 'cpu', ['cpu', 'cuda'] as const),
    numWorkers: nonNegative('numWorkers', o.numWorkers ?? Math.min(2, Math.max(1, os.cpus().length - 1))),
    toOnnx: o.toOnnx ?? false,
    seed: o.seed ?? 42,
    shuffle: o.shuffle ?? true,
    maxGradNorm: o.maxGradNorm,
    skipBadRows: o.skipBadRows ?? false,
    workDir: o.workDir,
    keepCheckpoints: ckpt?.lastKEpochs ?? 1,
    pixelCacheMB: nonNegative('pixelCacheMB', o.pixelCacheMB ?? 1024),
  };
}

export function makeOptimizer(o: ResolvedFitOptions, params: ParamStore, groups: ParamGroupOptions[]): Optimizer {
  const common = { lr: o.learningRate, groups, maxGradNorm: o.maxGradNorm, checkFinite: true, inPlace: true, session: { device: o.device } };
  const oo = o.optimizerOptions;
  if (o.optimizer === 'sgd') return new SGD(params, { ...common, momentum: oo.momentum ?? 0.9, nesterov: oo.nesterov ?? false });
  const adam = { ...common, betas: oo.betas as [number, number], eps: oo.eps ?? 1e-6 };
  return o.optimizer === 'adam' ? new Adam(params, adam) : new AdamW(params, adam);
}
