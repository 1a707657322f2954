// Callbacks, as Finetuner names them. Each runs at the start of training (onTrainBegin: the
// zero-shot evaluation), after every epoch (onEpochEnd, seeing the epoch's logs: train_loss,
// val_loss and the metrics so far) and at the end (onTrainEnd), in the order given.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { evaluateRetrieval } from '../eval/evaluate.js';
import { directionPrefix } from '../eval/metric_names.js';
import { FIT_DEFAULTS } from './fit_defaults.js';
import type { ClipModel } from '../models/clip/clip_model.js';
import { ParamStore } from '../runtime/params.js';
import { scaleAdapters } from '../models/clip/lora.js';
import type { CallbackSpec, LogLevel } from './fit_types.js';
import { imageFailure, loadEvalSets } from '../eval/eval_data.js';
import type { EvalData, EvalSets, EvalSide } from '../eval/eval_data.js';
import { preprocessInputs } from './pixels.js';

export interface TrainContext {
  model: ClipModel;
  /** The parameters before fine-tuning (for WiSE-FT). */
  pretrained: ParamStore;
  workDir: string;
  log(level: LogLevel, message: string): void;
  /** Set to stop after this epoch (EarlyStopping). */
  stop: boolean;
  /** Towers with no trainable parameter: their embeddings do not change during training. */
  frozen?: { image: boolean; text: boolean };
}

export type Logs = Record<string, number>;

export abstract class Callback {
  abstract readonly spec: CallbackSpec;
  async onTrainBegin(_ctx: TrainContext): Promise<Logs | void> {}
  async onEpochEnd(_ctx: TrainContext, _epoch: number, _logs: Logs): Promise<Logs | void> {}
  async onTrainEnd(_ctx: TrainContext): Promise<void> {}
}

type Tower = 'clip-text' | 'clip-vision';
type EvaluationSpec = Extract<CallbackSpec, { type: 'EvaluationCallback' }>;

/** Retrieval metrics of query documents against index documents, zero-shot and after every epoch.
 * The data: text–image pairs, or labelled text (query) and image (index) Documents (eval_data.ts). */
export class EvaluationCallback extends Callback {
  readonly spec: EvaluationSpec;
  private data: EvalSets | null = null;
  private pixels = new Map<'query' | 'index', Float32Array>();
  /** Embeddings by role from a frozen tower, computed at the first evaluation and reused. */
  private frozenEmbeddings = new Map<'query' | 'index', { data: Float32Array; shape: number[] }>();

  constructor(queryData: EvalData, indexData: EvalData, opts: Omit<EvaluationSpec, 'type' | 'queryData' | 'indexData'> = {}) {
    super();
    for (const [k, v] of Object.entries({ model: opts.model, indexModel: opts.indexModel }))
      if (v !== undefined && v !== 'clip-text' && v !== 'clip-vision') throw new ConfigError(`EvaluationCallback.${k}`, `must be clip-text or clip-vision, got ${JSON.stringify(v)}`);
    if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit > 0)) throw new ConfigError('EvaluationCallback.limit', `must be a positive integer, got ${opts.limit}`);
    for (const [k, v] of Object.entries({ queryData, indexData }))
      if (typeof v !== 'string' && !Array.isArray(v)) throw new ConfigError(`EvaluationCallback.${k}`, 'give a data file, folder, dataset:NAME or an array of Documents');
    this.spec = { type: 'EvaluationCallback', queryData, indexData, ...opts };
  }

  private async encode(ctx: TrainContext, tower: Tower, side: EvalSide, role: 'query' | 'index') {
    if (!ctx.frozen?.[tower === 'clip-text' ? 'text' : 'image']) return this.encodeNow(ctx, tower, side, role);
    let e = this.frozenEmbeddings.get(role);
    if (!e) this.frozenEmbeddings.set(role, (e = await this.encodeNow(ctx, tower, side, role)));
    return e;
  }

  private async encodeNow(ctx: TrainContext, tower: Tower, side: EvalSide, role: 'query' | 'index') {
    const bs = this.spec.batchSize ?? 32;
    if (tower === 'clip-text') return ctx.model.encodeTexts(side.texts, { batchSize: bs });
    let px = this.pixels.get(role);
    if (!px) {
      // Preprocess once; later evaluations only run the tower.
      const pp = ctx.model.config.preprocess_cfg;
      px = await preprocessInputs(side.images.inputs, side.images.names, { size: pp.image_size, mean: pp.mean, std: pp.std }).catch(async (err: unknown) => {
        throw await imageFailure(err, side);
      });
      this.pixels.set(role, px);
    }
    return ctx.model.encodePixels(px, side.docs.length, { batchSize: bs });
  }

  async evaluate(ctx: TrainContext): Promise<Logs> {
    const qm = this.spec.model ?? 'clip-text';
    const im = this.spec.indexModel ?? 'clip-vision';
    if (!this.data) {
      this.data = await loadEvalSets(this.spec.queryData, this.spec.indexData, {
        queryTower: qm,
        indexTower: im,
        skipBadRows: this.spec.skipBadRows,
        fields: { query: 'EvaluationCallback.queryData', index: 'EvaluationCallback.indexData' },
      });
      for (const [role, side] of [['query', this.data.query], ['index', this.data.index]] as const)
        if (side.skipped.length) ctx.log('warn', `EvaluationCallback: skipped ${side.skipped.length} bad ${role} row(s): ${side.skipped.slice(0, 3).map((s) => `${s.file} ${s.row}: ${s.reason}`).join('; ')}`);
    }
    const { query, index } = this.data;
    const q = await this.encode(ctx, qm, query, 'query');
    const x = await this.encode(ctx, im, index, 'index');
    return evaluateRetrieval({
      queryEmbeddings: q.data,
      queryLabels: query.labels,
      queryIds: query.ids,
      indexEmbeddings: x.data,
      indexLabels: index.labels,
      indexIds: index.ids,
      limit: this.spec.limit ?? FIT_DEFAULTS.evalLimit,
      distance: this.spec.distance ?? 'cosine',
      excludeSelf: this.spec.excludeSelf ?? false,
      prefix: directionPrefix(qm, im),
    });
  }

  override onTrainBegin(ctx: TrainContext): Promise<Logs> {
    return this.evaluate(ctx);
  }
  override onEpochEnd(ctx: TrainContext): Promise<Logs> {
    return this.evaluate(ctx);
  }
}

/** WiSE-FT: at the end, θ = (1−α)·θ_pretrained + α·θ_finetuned over every parameter. */
export class WiSEFTCallback extends Callback {
  readonly spec: Extract<CallbackSpec, { type: 'WiSEFTCallback' }>;
  constructor(readonly alpha: number) {
    super();
    if (!(typeof alpha === 'number' && alpha >= 0 && alpha <= 1)) throw new ConfigError('WiSEFTCallback.alpha', `must be in [0, 1], got ${alpha}`);
    this.spec = { type: 'WiSEFTCallback', alpha };
  }
  override async onTrainEnd(ctx: TrainContext): Promise<void> {
    // With LoRA adapters the base weights are the pretrained ones, and the mix of the merged weights
    // (1−α)·W + α·(W + s·B·A) is the adapter with B scaled by α.
    const lora = ctx.model.lora;
    if (lora) scaleAdapters(ctx.model.params, lora.layers, this.alpha);
    else wiseFt(ctx.model.params, ctx.pretrained, this.alpha);
    ctx.log('info', `WiSE-FT: merged fine-tuned and pretrained weights with alpha ${this.alpha}`);
  }
}

/** In place: θ ← (1−α)·θ0 + α·θ; α = 0 gives θ0 and α = 1 gives θ exactly. */
export function wiseFt(params: ParamStore, pretrained: ParamStore, alpha: number): void {
  const a = params.data;
  const b = pretrained.data;
  if (alpha === 0) return a.set(b);
  if (alpha === 1) return;
  for (let i = 0; i < a.length; i++) a[i] = (1 - alpha) * b[i]! + alpha * a[i]!;
}

function improved(mode: 'min' | 'max', value: number, best: number, minDelta: number): boolean {
  return mode === 'min' ? value < best - minDelta : value > best + minDelta;
}

function checkMode(who: string, mode: unknown): 'min' | 'max' {
  if (mode !== 'min' && mode !== 'max') throw new ConfigError(`${who}.mode`, `must be min or max, got ${JSON.stringify(mode)}`);
  return mode;
}

/** Stop when `monitor` has not improved by more than minDelta for `patience` epochs. */
export class EarlyStopping extends Callback {
  readonly spec: Extract<CallbackSpec, { type: 'EarlyStopping' }>;
  private best: number;
  private wait = 0;
  constructor(opts: { monitor?: string; mode?: 'min' | 'max'; patience?: number; minDelta?: number; baseline?: number } = {}) {
    super();
    const mode = checkMode('EarlyStopping', opts.mode ?? 'min');
    if (opts.patience !== undefined && !(Number.isInteger(opts.patience) && opts.patience >= 0)) throw new ConfigError('EarlyStopping.patience', `must be a non-negative integer, got ${opts.patience}`);
    this.spec = { type: 'EarlyStopping', monitor: opts.monitor ?? 'val_loss', mode, patience: opts.patience ?? 2, minDelta: opts.minDelta ?? 0, baseline: opts.baseline };
    this.best = opts.baseline ?? (mode === 'min' ? Infinity : -Infinity);
  }
  override async onEpochEnd(ctx: TrainContext, epoch: number, logs: Logs): Promise<void> {
    const v = logs[this.spec.monitor!];
    if (v === undefined) return ctx.log('warn', `EarlyStopping: no '${this.spec.monitor}' in the epoch's logs (${Object.keys(logs).join(', ')})`);
    if (improved(this.spec.mode!, v, this.best, this.spec.minDelta!)) {
      this.best = v;
      this.wait = 0;
    } else if (++this.wait >= this.spec.patience!) {
      ctx.stop = true;
      ctx.log('info', `EarlyStopping: ${this.spec.monitor} has not improved for ${this.wait} epoch(s); stopping after epoch ${epoch}`);
    }
  }
}

/** Keep the weights of the best epoch by `monitor`; at the end the model is that epoch's. */
export class BestModelCheckpoint extends Callback {
  readonly spec: Extract<CallbackSpec, { type: 'BestModelCheckpoint' }>;
  private best: number;
  bestEpoch: number | null = null;
  constructor(opts: { monitor?: string; mode?: 'min' | 'max' } = {}) {
    super();
    const mode = checkMode('BestModelCheckpoint', opts.mode ?? 'min');
    this.spec = { type: 'BestModelCheckpoint', monitor: opts.monitor ?? 'val_loss', mode };
    this.best = mode === 'min' ? Infinity : -Infinity;
  }
  private file(ctx: TrainContext): string {
    return path.join(ctx.workDir, 'best', 'params.safetensors');
  }
  override async onEpochEnd(ctx: TrainContext, epoch: number, logs: Logs): Promise<void> {
    const v = logs[this.spec.monitor!];
    if (v === undefined) return ctx.log('warn', `BestModelCheckpoint: no '${this.spec.monitor}' in the epoch's logs`);
    if (!improved(this.spec.mode!, v, this.best, 0)) return;
    this.best = v;
    this.bestEpoch = epoch;
    await fsp.mkdir(path.dirname(this.file(ctx)), { recursive: true });
    await ctx.model.params.toSafetensors(this.file(ctx), { epoch: String(epoch), [this.spec.monitor!]: String(v) });
    ctx.log('info', `BestModelCheckpoint: epoch ${epoch} is the best so far (${this.spec.monitor} ${v.toFixed(4)})`);
  }
  override async onTrainEnd(ctx: TrainContext): Promise<void> {
    if (this.bestEpoch === null) return;
    ctx.model.params.copyFrom(await ParamStore.fromSafetensors(this.file(ctx)));
    ctx.log('info', `BestModelCheckpoint: restored the weights of epoch ${this.bestEpoch}`);
  }
}

/** Training checkpoints (parameters, optimizer state, position) after each epoch; fit() resumes from the newest. */
export class TrainingCheckpoint extends Callback {
  readonly spec: Extract<CallbackSpec, { type: 'TrainingCheckpoint' }>;
  constructor(opts: { lastKEpochs?: number } = {}) {
    super();
    const k = opts.lastKEpochs ?? 1;
    if (!(Number.isInteger(k) && k >= 1)) throw new ConfigError('TrainingCheckpoint.lastKEpochs', `must be a positive integer, got ${k}`);
    this.spec = { type: 'TrainingCheckpoint', lastKEpochs: k };
  }
}

/** The callback a spec describes; `defaults.skipBadRows` (fit's) applies where the spec does not say. */
export function callbackFromSpec(s: CallbackSpec, defaults: { skipBadRows?: boolean } = {}): Callback {
  switch (s.type) {
    case 'EvaluationCallback': {
      const { type: _t, queryData, indexData, ...rest } = s;
      return new EvaluationCallback(queryData, indexData, { ...(defaults.skipBadRows !== undefined ? { skipBadRows: defaults.skipBadRows } : {}), ...rest });
    }
    case 'WiSEFTCallback':
      return new WiSEFTCallback(s.alpha);
    case 'EarlyStopping':
      return new EarlyStopping(s);
    case 'BestModelCheckpoint':
      return new BestModelCheckpoint(s);
    case 'TrainingCheckpoint':
      return new TrainingCheckpoint(s);
    default:
      throw new ConfigError('callbacks', `unknown callback type ${JSON.stringify((s as { type?: unknown }).type)}`);
  }
}
