// GradCache: a training step whose memory grows with a chunk of the batch, not the batch, and whose
// gradient is still the full batch's (the math is in grad_cache_graphs.ts). One step:
//   1. each tower's features, chunk by chunk, forward only (features given as feeds, e.g. a frozen
//      tower's FeatureCache, are used as they are);
//   2. CLIPLoss on the whole batch: the loss, dL/df for every row of both towers, dL/d logit_scale;
//   3. each tower again, chunk by chunk, forward and backward seeded with that chunk's dL/df, its
//      parameter gradients summed into one accumulator (written in place: no buffer per chunk);
//   4. one optimizer update with the summed gradients (the optimizer's own graph: exact AdamW etc.).
// Any trainable set works (freezing, adapters that are extra tower parameters): what has no
// gradient is pruned from the backward graphs, and a tower without trainable parameters runs only
// its forward pass. A tower graph reading `lora_row_offset` (LoRA dropout, whose masks are drawn per
// batch row) is fed each chunk's first row, so chunks draw the full batch's masks, in the forward
// and the backward pass alike.

import { ClipfitError, ConfigError } from '../errors.js';
import type { ClipModelCfg } from '../models/clip/config.js';
import type { TowerHooks } from '../models/clip/model.js';
import type { TypedArray } from '../onnx/dtype.js';
import { ParamStore } from '../runtime/params.js';
import { Session } from '../runtime/session.js';
import type { SessionOptions, Tensor } from '../runtime/session.js';
import { FEATURES, SEED, TOWER_INPUT, accIn, accOut, buildLossGraph, buildTowerBackward, buildTowerForward } from './grad_cache_graphs.js';
import type { TowerName } from './grad_cache_graphs.js';
import type { Optimizer, StepResult } from './optim_base.js';
import { LORA_ROW_OFFSET } from '../models/clip/lora_dropout.js';

export interface GradCacheOptions {
  /** Rows per tower run; the last chunk of a batch holds what is left (it may be smaller). */
  chunk: number;
  /** Which parameters get gradients (default: all). */
  trainable?: (name: string) => boolean;
  /** Label-aware CLIPLoss (an int64 `labels` feed [batch]). */
  labelAware?: boolean;
  /** Towers whose features come as feeds (`image_features` / `text_features`), as train_graph's. */
  featureInputs?: { image?: boolean; text?: boolean };
  /** The towers' layer hooks (e.g. adapters), the same in the forward and the backward graphs. */
  hooks?: { image?: TowerHooks; text?: TowerHooks };
  /** onnxruntime options for every session of the step. */
  session?: SessionOptions;
}

/** A positive integer chunk, or a ConfigError naming `field`. */
export function checkChunk(chunk: unknown, field = 'gradCache.chunk'): number {
  if (!(typeof chunk === 'number' && Number.isInteger(chunk) && chunk > 0))
    throw new ConfigError(field, `must be a positive integer (rows per chunk), got ${JSON.stringify(chunk)}`);
  return chunk;
}

/** Rows [start, end) of a tensor whose first dimension is the batch, as a view (no copy). */
export function rowSlice(t: Tensor, start: number, end: number): Tensor {
  const row = t.shape.slice(1).reduce((a, d) => a * d, 1);
  return { dtype: t.dtype, shape: [end - start, ...t.shape.slice(1)], data: t.data.subarray(start * row, end * row) as TypedArray };
}

interface TowerSessions {
  forward: Session | null;
  backward: Session | null;
  trainable: string[];
}

const TOWERS: readonly TowerName[] = ['image', 'text'];

/** The `lora_row_offset` feed of a chunk starting at batch row `start` (unused by graphs without it). */
const rowOffset = (start: number): Record<string, Tensor> => ({ [LORA_ROW_OFFSET]: { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(start)) } });

export class GradCache {
  private constructor(
    readonly chunk: number,
    private readonly embedDim: number,
    private readonly labelAware: boolean,
    private readonly towers: Partial<Record<TowerName, TowerSessions>>,
    private readonly loss: Session,
    private readonly logitScale: boolean,
    /** The summed gradients of the last batch, one entry per trainable parameter. */
    readonly grads: ParamStore,
  ) {}

  static async create(cfg: ClipModelCfg, opts: GradCacheOptions): Promise<GradCache> {
    const chunk = checkChunk(opts.chunk);
    const trainable = opts.trainable ?? (() => true);
    // Memory patterns off, as fit()'s fused step (they hold more and are slower at these sizes).
    const so: SessionOptions = { ...opts.session, memPattern: opts.session?.memPattern ?? false };
    const sessions: Session[] = [];
    const open = async (g: Parameters<typeof Session.fromGraph>[0]) => {
      const s = await Session.fromGraph(g, so);
      sessions.push(s);
      return s;
    };
    try {
      const towers: Partial<Record<TowerName, TowerSessions>> = {};
      const shapes: { name: string; shape: number[] }[] = [];
      for (const which of TOWERS) {
        if (opts.featureInputs?.[which]) continue;
        const bwd = buildTowerBackward(cfg, which, trainable, opts.hooks?.[which]);
        for (const name of bwd.trainable) shapes.push({ name, shape: [...(bwd.graph.getParam(name).shape as number[])] });
        towers[which] = {
          forward: await open(buildTowerForward(cfg, which, opts.hooks?.[which])),
          backward: bwd.trainable.length ? await open(bwd.graph) : null,
          trainable: bwd.trainable,
        };
      }
      const lg = buildLossGraph(cfg, { labelAware: opts.labelAware ?? false, trainable });
      if (lg.logitScale) shapes.push({ name: 'logit_scale', shape: [] });
      const loss = await open(lg.graph);
      if (shapes.length === 0) throw new ConfigError('gradCache', 'nothing to train: every parameter is frozen');
      return new GradCache(chunk, cfg.embed_dim, opts.labelAware ?? false, towers, loss, lg.logitScale, ParamStore.fromShapes(shapes));
    } catch (err) {
      for (const s of sessions) await s.release();
      throw err;
    }
  }

  /** Parameters that get gradients, in the order of `grads`. */
  get trainable(): string[] {
    return this.grads.names;
  }

  /** [start, end) of each chunk of a batch of `n` rows. */
  chunks(n: number): [number, number][] {
    const out: [number, number][] = [];
    for (let s = 0; s < n; s += this.chunk) out.push([s, Math.min(n, s + this.chunk)]);
    return out;
  }

  /**
   * The loss of one batch and its full-batch gradients, summed into `grads`. `feeds` holds the
   * batch (`images`, `texts`, `labels`, or a tower's features) and anything else the graphs read;
   * parameters come from `params`.
   */
  async gradients(params: ParamStore, feeds: Record<string, Tensor>): Promise<number> {
    const n = this.batchRows(feeds);
    this.grads.fill(0);
    const features: Record<string, Tensor> = {};
    for (const which of TOWERS) {
      const t = this.towers[which];
      const given = feeds[FEATURES[which]];
      if (!t) {
        if (!given) throw new ClipfitError(`GradCache: the ${which} tower's features are inputs, but no '${FEATURES[which]}' was fed`);
        features[FEATURES[which]] = given;
        continue;
      }
      // Forward only: each chunk's features land in their rows of one [batch, E] buffer.
      const data = new Float32Array(n * this.embedDim);
      const all: Tensor = { dtype: 'float32', shape: [n, this.embedDim], data };
      const x = this.data(feeds, which);
      for (const [s, e] of this.chunks(n))
        await t.forward!.run(this.feedsFor(t.forward!, params, feeds, { [TOWER_INPUT[which]]: rowSlice(x, s, e), ...rowOffset(s) }), { [FEATURES[which]]: rowSlice(all, s, e) });
      features[FEATURES[which]] = all;
    }

    if (this.labelAware && !feeds['labels']) throw new ClipfitError("GradCache: label-aware loss, but no 'labels' were fed");
    const into: Record<string, Tensor> = this.logitScale ? { logit_scale_grad: this.grads.tensor('logit_scale') } : {};
    const out = await this.loss.run(this.feedsFor(this.loss, params, feeds, features), into);
    const loss = (out['loss']!.data as Float32Array)[0]!;

    for (const which of TOWERS) {
      const t = this.towers[which];
      if (!t?.backward) continue;
      const x = this.data(feeds, which);
      const seed = out[`${FEATURES[which]}_grad`]!;
      // Each accumulator is fed and written back in place: its one reader is the Add that writes it.
      const acc: Record<string, Tensor> = {};
      const accNext: Record<string, Tensor> = {};
      for (const name of t.trainable) {
        acc[accIn(name)] = this.grads.tensor(name);
        accNext[accOut(name)] = this.grads.tensor(name);
      }
      for (const [s, e] of this.chunks(n))
        await t.backward.run(this.feedsFor(t.backward, params, feeds, { ...acc, [TOWER_INPUT[which]]: rowSlice(x, s, e), [SEED]: rowSlice(seed, s, e), ...rowOffset(s) }), accNext);
    }
    return loss;
  }

  /** gradients(), then one update of `params` by `opt` with the summed gradients. */
  async step(params: ParamStore, opt: Optimizer, feeds: Record<string, Tensor>): Promise<{ loss: number; result: StepResult }> {
    const loss = await this.gradients(params, feeds);
    const result = await opt.step(params, this.grads);
    return { loss, result };
  }

  async release(): Promise<void> {
    for (const t of Object.values(this.towers)) {
      await t.forward?.release();
      await t.backward?.release();
    }
    await this.loss.release();
  }

  private batchRows(feeds: Record<string, Tensor>): number {
    const t = feeds[TOWER_INPUT.image] ?? feeds[TOWER_INPUT.text] ?? feeds[FEATURES.image] ?? feeds[FEATURES.text];
    if (!t) throw new ClipfitError("GradCache: the batch has neither 'images', 'texts' nor features");
    return t.shape[0]!;
  }

  private data(feeds: Record<string, Tensor>, which: TowerName): Tensor {
    const x = feeds[TOWER_INPUT[which]];
    if (!x) throw new ClipfitError(`GradCache: no '${TOWER_INPUT[which]}' fed for the ${which} tower`);
    return x;
  }

  /** Every input of s: `given` first, then a parameter, then the step's other feeds. */
  private feedsFor(s: Session, params: ParamStore, extra: Record<string, Tensor>, given: Record<string, Tensor>): Record<string, Tensor> {
    const f: Record<string, Tensor> = {};
    for (const name of s.inputNames) {
      const t = given[name] ?? (params.has(name) ? params.tensor(name) : extra[name]);
      if (!t) throw new ClipfitError(`GradCache: nothing to feed '${name}' of ${s.name}`);
      f[name] = t;
    }
    return f;
  }
}
