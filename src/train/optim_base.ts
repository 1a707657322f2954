// The optimizer machinery shared by AdamW, Adam and SGD (optim.ts): parameter groups, state stores,
// the onnxruntime step, state dicts and their files. Clipping and the NaN/Inf check live inside the
// update graph (optim_graph.ts); JS only computes per-step scalars (bias corrections, in double).
//
// The step is double-buffered: onnxruntime writes the new parameters and state into spare stores,
// which then swap buffers with the live ones, so the caller's ParamStore holds the new values
// without a per-element copy. A failed step (non-finite gradient) swaps nothing.
//
// Standalone use: `await opt.step(params, grads)`. Fused use: `opt.build(g, paramValues,
// gradValues)` inside a training graph, then `opt.runStep(session, update, params, dataFeeds)`.

import { ConfigError, NonFiniteError, ParamError } from '../errors.js';
import { Graph } from '../onnx/graph.js';
import type { Value } from '../onnx/graph.js';
import type { ParamShape } from '../runtime/params.js';
import { ParamStore } from '../runtime/params.js';
import type { StTensor } from '../runtime/safetensors.js';
import { readSafetensors, writeSafetensors } from '../runtime/safetensors.js';
import type { SessionOptions, Tensor } from '../runtime/session.js';
import { Session } from '../runtime/session.js';
import type { UpdateGraph, UpdateRule } from './optim_graph.js';
import { buildUpdate } from './optim_graph.js';

export interface ParamGroupOptions {
  /** Names of the parameters in this group. */
  params: readonly string[];
  lr?: number;
  weightDecay?: number;
}

export interface ParamGroup {
  readonly params: readonly string[];
  lr: number;
  readonly weightDecay: number;
}

export interface OptimizerOptions {
  lr?: number;
  weightDecay?: number;
  /** Parameter groups; parameters in no group are frozen. Default: one group holding every parameter. */
  groups?: readonly ParamGroupOptions[];
  /** Clip gradients to this global 2-norm before the update (torch clip_grad_norm_). */
  maxGradNorm?: number;
  /** Throw NonFiniteError (and leave everything unchanged) when a gradient holds NaN or Inf. */
  checkFinite?: boolean;
  /**
   * Write updates into the live parameter and state stores (half the memory; a failed NaN/Inf check
   * then leaves them updated). Exact: the update graph orders each write after the whole backward pass.
   */
  inPlace?: boolean;
  /** onnxruntime options for the standalone update session. */
  session?: SessionOptions;
}

export interface AdamOptions extends OptimizerOptions {
  betas?: readonly [number, number];
  eps?: number;
}

export interface SgdOptions extends OptimizerOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export interface StepResult {
  /** The step just taken (1-based). */
  step: number;
  /** Global gradient norm before clipping, when clipping is on. */
  gradNorm: number | null;
  /** The session's other outputs (e.g. the loss, in a fused training graph). */
  outputs: Record<string, Tensor>;
}

export interface OptimizerStateDict {
  kind: string;
  step: number;
  groups: { params: string[]; lr: number; weightDecay: number }[];
  /** Fixed hyperparameters (betas, eps, momentum …), checked on load. */
  hyper: Record<string, number | boolean>;
  /** Per-parameter state by slot (exp_avg, exp_avg_sq, momentum_buffer), copies. */
  state: Record<string, ParamStore>;
}

const META_KEY = 'clipfit.optimizer';

function scalarTensor(x: number): Tensor {
  return { dtype: 'float32', shape: [], data: new Float32Array([x]) };
}

/** Index and value of the first NaN/Inf in a, or null. Only run once a step has already failed. */
function firstNonFinite(a: Float32Array): [number, number] | null {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return [i, a[i]!];
  return null;
}

export abstract class Optimizer {
  abstract readonly kind: string;
  readonly groups: ParamGroup[];
  /** Updated parameters, group by group. */
  readonly names: string[];
  /** Steps taken so far. */
  stepCount = 0;
  /** Shape and size of each updated parameter. */
  protected readonly entries: Map<string, { shape: readonly number[]; size: number }>;
  private readonly subShapes: ParamShape[];
  private readonly groupOfName = new Map<string, number>();
  private spareParams: ParamStore | null = null;
  private spareState: Record<string, ParamStore> = {};
  private standalone: Promise<{ session: Session; update: UpdateGraph }> | null = null;
  private ruleBuilt: UpdateRule | null = null;
  private readonly stateStores: Record<string, ParamStore> = {};

  protected constructor(
    layout: ParamStore | readonly ParamShape[],
    protected readonly opts: OptimizerOptions,
    defaults: { lr: number; weightDecay: number },
  ) {
    const shapes: ParamShape[] = layout instanceof ParamStore ? [...layout.entries] : [...layout];
    const byName = new Map(shapes.map((s) => [s.name, s]));
    const lr = opts.lr ?? defaults.lr;
    const wd = opts.weightDecay ?? defaults.weightDecay;
    const groupOpts = opts.groups ?? [{ params: shapes.map((s) => s.name) }];
    this.groups = groupOpts.map((g, k) => {
      const glr = g.lr ?? lr;
      const gwd = g.weightDecay ?? wd;
      if (!(glr >= 0)) throw new ConfigError(`groups[${k}].lr`, `must be ≥ 0, got ${glr}`);
      if (!(gwd >= 0)) throw new ConfigError(`groups[${k}].weightDecay`, `must be ≥ 0, got ${gwd}`);
      return { params: [...g.params], lr: glr, weightDecay: gwd };
    });
    this.names = [];
    this.groups.forEach((g, k) => {
      for (const name of g.params) {
        if (!byName.has(name)) throw new ParamError(name, `groups[${k}] lists a parameter that the store does not hold`);
        if (this.groupOfName.has(name)) throw new ParamError(name, `listed in groups[${this.groupOfName.get(name)}] and groups[${k}]`);
        this.groupOfName.set(name, k);
        this.names.push(name);
      }
    });
    if (this.names.length === 0) throw new ConfigError('groups', 'no parameters to optimize');
    if (opts.maxGradNorm !== undefined && !(opts.maxGradNorm > 0)) throw new ConfigError('maxGradNorm', `must be > 0, got ${opts.maxGradNorm}`);
    const sub = this.names.map((n) => byName.get(n)!);
    this.entries = new Map(sub.map((e) => [e.name, { shape: e.shape, size: e.shape.reduce((a, d) => a * d, 1) }]));
    this.subShapes = sub;
  }

  /** The options this optimizer was made with (clipping, the finiteness check, in place). */
  get options(): Readonly<OptimizerOptions> {
    return this.opts;
  }

  /** The graph rule; built once (subclasses fix their hyperparameters in the constructor). */
  protected abstract makeRule(): UpdateRule;
  /** Fixed hyperparameters, saved with the state and checked on load. */
  protected abstract hyper(): Record<string, number | boolean>;

  get rule(): UpdateRule {
    if (!this.ruleBuilt) {
      this.ruleBuilt = this.makeRule();
      for (const slot of this.ruleBuilt.slots) this.stateStores[slot] = ParamStore.fromShapes(this.subShapes);
    }
    return this.ruleBuilt;
  }

  /** Per-parameter state by slot (exp_avg, exp_avg_sq / momentum_buffer), over the updated parameters only. */
  get state(): Readonly<Record<string, ParamStore>> {
    void this.rule;
    return this.stateStores;
  }

  /** Set the learning rate of one group, or of all (for schedulers). Takes effect at the next step. */
  setLr(group: number | 'all', lr: number): void {
    if (!(lr >= 0)) throw new ConfigError('lr', `must be ≥ 0, got ${lr}`);
    if (group === 'all') for (const g of this.groups) g.lr = lr;
    else {
      const g = this.groups[group];
      if (!g) throw new ConfigError('group', `no parameter group ${group} (there are ${this.groups.length})`);
      g.lr = lr;
    }
  }

  /**
   * Emit this optimizer's update into g (e.g. a training graph): `params` are the parameter values
   * (named as in the store, every optimized one exactly once), `grads` their gradients.
   */
  build(g: Graph, params: readonly Value[], grads: readonly Value[]): UpdateGraph {
    const seen = new Set<string>();
    for (const p of params) {
      if (!this.groupOfName.has(p.name)) throw new ParamError(p.name, 'not optimized by this optimizer');
      if (seen.has(p.name)) throw new ParamError(p.name, 'passed twice to build()');
      const e = this.entries.get(p.name)!;
      if (p.shape.length !== e.shape.length || p.shape.some((d, i) => d !== e.shape[i]))
        throw new ParamError(p.name, `graph value has shape [${p.shape}], the store [${e.shape}]`);
      seen.add(p.name);
    }
    const missing = this.names.find((n) => !seen.has(n));
    if (missing) throw new ParamError(missing, 'optimized but not passed to build()');
    const buildOpts: Parameters<typeof buildUpdate>[4] = { groupOf: params.map((p) => this.groupOfName.get(p.name)!) };
    if (this.opts.maxGradNorm !== undefined) buildOpts.maxGradNorm = this.opts.maxGradNorm;
    if (this.opts.checkFinite) buildOpts.checkFinite = true;
    // In place, the new values land in the buffers the parameters are fed from while the run goes
    // on: order every write after every gradient and every output the graph already has.
    if (this.opts.inPlace) buildOpts.after = [...grads, ...g.outputs];
    return buildUpdate(g, this.rule, params, grads, buildOpts);
  }

  private standaloneSession(): Promise<{ session: Session; update: UpdateGraph }> {
    if (!this.standalone) {
      this.standalone = (async () => {
        const g = new Graph(`${this.kind}_step`);
        const ps = this.subShapes.map((s) => g.param(s.name, s.shape));
        const gs = this.subShapes.map((s) => g.input(`${s.name}_grad`, 'float32', s.shape));
        const update = this.build(g, ps, gs);
        return { session: await Session.fromGraph(g, this.opts.session ?? {}), update };
      })();
      this.standalone.catch(() => (this.standalone = null));
    }
    return this.standalone;
  }

  /** One step with gradients computed elsewhere (by name: `grads[name]` or a ParamStore). */
  async step(params: ParamStore, grads: Record<string, Float32Array> | ParamStore): Promise<StepResult> {
    const feeds: Record<string, Tensor> = {};
    for (const name of this.names) {
      const e = this.entries.get(name)!;
      let data: Float32Array | undefined;
      if (grads instanceof ParamStore) data = grads.has(name) ? grads.view(name) : undefined;
      else data = grads[name];
      if (!data) throw new ParamError(name, 'no gradient given');
      if (data.length !== e.size) throw new ParamError(name, `gradient has ${data.length} elements, the parameter ${e.size}`);
      feeds[`${name}_grad`] = { dtype: 'float32', shape: [...e.shape], data };
    }
    const { session, update } = await this.standaloneSession();
    return this.runStep(session, update, params, feeds, (name) => feeds[`${name}_grad`]!.data as Float32Array);
  }

  /**
   * One step through a session whose graph holds `update` (from build()). Feeds the store's
   * parameters, the state and the step's scalars plus `extra` (data inputs); writes the new
   * parameters and state into the spare buffers and swaps them in. Returns every other output.
   */
  async runStep(
    session: Session,
    update: UpdateGraph,
    params: ParamStore,
    extra: Record<string, Tensor> = {},
    gradOf?: (name: string) => Float32Array,
  ): Promise<StepResult> {
    for (const name of this.names) {
      const e = this.entries.get(name)!;
      if (!params.has(name)) throw new ParamError(name, 'optimized but missing from the parameter store');
      const pe = params.entry(name);
      if (pe.size !== e.size || pe.shape.some((d, i) => d !== e.shape[i])) throw new ParamError(name, `store shape [${pe.shape}] differs from the optimizer's [${e.shape}]`);
    }
    // In place, onnxruntime writes the new values straight into the live stores during the run (it
    // does not copy at the end): build() ordered every such write after the backward pass, through a
    // data dependency. Double-buffered, a step that fails its NaN/Inf check leaves everything as it
    // was, at the cost of a second copy of the parameters and the state.
    const rule = update.rule;
    const inPlace = this.opts.inPlace ?? false;
    if (!inPlace) {
      if (!this.spareParams || !this.spareParams.sameLayout(params)) this.spareParams = ParamStore.fromShapes(params.entries);
      for (const slot of rule.slots) if (!this.spareState[slot]) this.spareState[slot] = ParamStore.fromShapes(this.subShapes);
    }
    const paramsOut = inPlace ? params : this.spareParams!;
    const stateOut = (slot: string): ParamStore => (inPlace ? this.state[slot]! : this.spareState[slot]!);

    const t = this.stepCount + 1;
    const inputs = new Set(session.inputNames);
    const feeds: Record<string, Tensor> = { ...extra };
    for (const e of params.entries) if (inputs.has(e.name)) feeds[e.name] = params.tensor(e.name);
    const into: Record<string, Tensor> = {};
    update.params.forEach((p, i) => {
      into[update.newParams[i]!.name] = paramsOut.tensor(p.name);
      rule.slots.forEach((slot, k) => {
        feeds[update.stateInputs[k]![i]!.name] = this.state[slot]!.tensor(p.name);
        into[update.newState[k]![i]!.name] = stateOut(slot).tensor(p.name);
      });
    });
    const sc = rule.scalars(t, this.groups.map((g) => g.lr));
    for (const [name, s] of update.scalarInputs) {
      const v = s.group === null ? sc.global[s.key] : sc.groups[s.group]?.[s.key];
      if (v === undefined) throw new ConfigError(name, `the ${rule.kind} rule gives no value for this scalar input`);
      feeds[name] = scalarTensor(v);
    }

    const out = await session.run(feeds, into);

    if (update.nonFinite) {
      update.nonFinite.forEach((flag, i) => {
        if (Number.isFinite((out[flag.name]!.data as Float32Array)[0]!)) return;
        const name = update.params[i]!.name;
        // Index −1: not located (a fused graph keeps its gradients), or only the sum of squares overflowed.
        const hit = gradOf ? firstNonFinite(gradOf(name)) : null;
        throw new NonFiniteError(`${name}_grad`, hit ? hit[0] : -1, hit ? hit[1] : gradOf ? Infinity : NaN, t);
      });
    }
    // Parameters the update does not touch (frozen) carry over into the new buffer.
    const updated = new Set(update.params.map((p) => p.name));
    if (!inPlace) {
      for (const e of params.entries) if (!updated.has(e.name)) this.spareParams!.view(e.name).set(params.view(e.name));
      params.swap(this.spareParams!);
      for (const slot of rule.slots) this.state[slot]!.swap(this.spareState[slot]!);
    }
    this.stepCount = t;

    const rest: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) if (!(k in into)) rest[k] = v;
    const gradNorm = update.gradNorm ? (out[update.gradNorm.name]!.data as Float32Array)[0]! : null;
    return { step: t, gradNorm, outputs: rest };
  }

  stateDict(): OptimizerStateDict {
    const rule = this.rule;
    const state: Record<string, ParamStore> = {};
    for (const slot of rule.slots) state[slot] = this.state[slot]!.clone();
    return {
      kind: this.kind,
      step: this.stepCount,
      groups: this.groups.map((g) => ({ params: [...g.params], lr: g.lr, weightDecay: g.weightDecay })),
      hyper: this.hyper(),
      state,
    };
  }

  /** Restore a state dict: step count, group learning rates and state. Layout and fixed hyperparameters must match. */
  loadStateDict(sd: OptimizerStateDict, file?: string): void {
    const rule = this.rule;
    if (sd.kind !== this.kind) throw new ConfigError('kind', `state is for ${sd.kind}, this optimizer is ${this.kind}`, file);
    if (!Number.isInteger(sd.step) || sd.step < 0) throw new ConfigError('step', `bad step count ${sd.step}`, file);
    const hyper = this.hyper();
    for (const [k, v] of Object.entries(hyper))
      if (sd.hyper[k] !== v) throw new ConfigError(`hyper.${k}`, `state has ${sd.hyper[k]}, this optimizer ${v}`, file);
    if (sd.groups.length !== this.groups.length) throw new ConfigError('groups', `state has ${sd.groups.length} groups, this optimizer ${this.groups.length}`, file);
    sd.groups.forEach((g, k) => {
      const mine = this.groups[k]!;
      const n = Math.max(g.params.length, mine.params.length);
      for (let i = 0; i < n; i++)
        if (g.params[i] !== mine.params[i]) throw new ParamError(g.params[i] ?? mine.params[i]!, `groups[${k}] differs at position ${i} between the state and this optimizer`, file);
      if (g.weightDecay !== mine.weightDecay) throw new ConfigError(`groups[${k}].weightDecay`, `state has ${g.weightDecay}, this optimizer ${mine.weightDecay}`, file);
    });
    for (const slot of rule.slots) {
      const s = sd.state[slot];
      if (!s) throw new ParamError(`${slot}.*`, 'state slot missing', file);
      if (!s.sameLayout(this.state[slot]!)) {
        const bad = this.names.find((n) => !s.has(n) || s.entry(n).size !== this.entries.get(n)!.size) ?? slot;
        throw new ParamError(`${slot}.${bad}`, 'state layout differs from the optimizer', file);
      }
    }
    for (const slot of rule.slots) this.state[slot]!.copyFrom(sd.state[slot]!);
    sd.groups.forEach((g, k) => (this.groups[k]!.lr = g.lr));
    this.stepCount = sd.step;
  }

  /** Save the state: tensors `<slot>.<param>` (F32) and the rest as JSON in the metadata. */
  async save(file: string): Promise<void> {
    const sd = this.stateDict();
    const meta = { kind: sd.kind, step: sd.step, groups: sd.groups, hyper: sd.hyper, slots: Object.keys(sd.state) };
    const tensors = Object.entries(sd.state).flatMap(([slot, store]) => [...store.tensors(`${slot}.`)]);
    await writeSafetensors(file, tensors, { [META_KEY]: JSON.stringify(meta) });
  }

  /** Restore state written by save(). */
  async load(file: string): Promise<void> {
    const st = await readSafetensors(file);
    const raw = st.metadata[META_KEY];
    if (!raw) throw new ConfigError(META_KEY, 'metadata missing: not an optimizer state file', file);
    let meta: Omit<OptimizerStateDict, 'state'> & { slots: string[] };
    try {
      meta = JSON.parse(raw);
    } catch (err) {
      throw new ConfigError(META_KEY, `bad JSON (${(err as Error).message})`, file);
    }
    const state: Record<string, ParamStore> = {};
    for (const slot of meta.slots ?? []) {
      const store = ParamStore.fromShapes(this.subShapes);
      const sub = new Map<string, StTensor>();
      for (const [k, v] of st.tensors) if (k.startsWith(`${slot}.`)) sub.set(k.slice(slot.length + 1), v);
      store.load(sub, { file });
      state[slot] = store;
    }
    this.loadStateDict({ ...meta, state }, file);
  }

  async dispose(): Promise<void> {
    const s = this.standalone;
    this.standalone = null;
    if (s) await (await s).session.release();
  }
}
