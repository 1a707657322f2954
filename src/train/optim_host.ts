// The optimizer step outside onnxruntime: Adam/AdamW run by wasm kernels (wasm_arena.ts) on the
// parameters, gradients and state where they live, in one WebAssembly memory.
//
// Why: onnxruntime-node copies every output of a run into a fresh JS buffer, even an output bound
// to a caller's buffer. With the update fused into the training run, the new parameters and both
// moment buffers (3× the parameters, 1.8 GB for ViT-B/32) were copied out of every step and the
// update made ~14 elementwise passes. Here the run outputs only the gradients (written straight into
// the arena) and one fused SIMD pass updates p, m and v in place.
//
// The arithmetic is the graph rule's (optim_graph.ts adamRule), one float32 rounding per operation
// in the same order, so both paths give the same bits. Clipping by global norm sums squares in
// float64 (the graph path sums float32 per-tensor norms): equal up to rounding, not bit for bit.
// A NaN/Inf gradient is found before anything is written, so a failed step changes nothing.

import { ConfigError, NonFiniteError, ParamError } from '../errors.js';
import type { ParamStore } from '../runtime/params.js';
import type { Session, Tensor } from '../runtime/session.js';
import type { Optimizer, StepResult } from './optim_base.js';
import { AdamW } from './optim.js';
import { WasmArena } from './wasm_arena.js';

/** A gradient output of the training graph and the parameter it belongs to. */
export interface GradOutput {
  param: string;
  output: string;
}

export class HostUpdate {
  /** Gradients of the optimized parameters, in the arena (a run writes them here). */
  readonly grads: ParamStore;

  private constructor(
    readonly opt: AdamW,
    readonly params: ParamStore,
    private readonly arena: WasmArena,
  ) {
    const sub = params.entries.filter((e) => opt.names.includes(e.name));
    const order = new Map(opt.names.map((n, i) => [n, i]));
    sub.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
    params.moveTo(arena.alloc(params.size));
    for (const slot of opt.rule.slots) opt.state[slot]!.moveTo(arena.alloc(opt.state[slot]!.size));
    this.grads = opt.state[opt.rule.slots[0]!]!.clone();
    this.grads.moveTo(arena.alloc(this.grads.size));
  }

  /**
   * The host update for `opt` over `params`, or a reason why not: only Adam and AdamW have kernels,
   * and the parameters, gradients and two moments must fit in one wasm32 memory (4 GiB: up to
   * ~250M parameters, all of them trained).
   */
  static create(opt: Optimizer, params: ParamStore): HostUpdate | string {
    if (!(opt instanceof AdamW)) return `${opt.kind} has no wasm kernel`;
    const n = opt.state[opt.rule.slots[0]!]!.size;
    const arena = WasmArena.tryCreate([params.size, n, n, n]);
    if (!arena) return `${params.size.toLocaleString('en-US')} parameters with ${n.toLocaleString('en-US')} trained do not fit in one wasm memory`;
    return new HostUpdate(opt, params, arena);
  }

  /**
   * One training step: run `session` (a training graph whose outputs include the gradients, named
   * in `gradOutputs`) on `extra` plus the parameters, then update. Returns the run's other outputs.
   */
  async runStep(session: Session, gradOutputs: readonly GradOutput[], extra: Record<string, Tensor>): Promise<StepResult> {
    this.rebind();
    const feeds: Record<string, Tensor> = { ...extra };
    for (const name of session.inputNames) if (!(name in feeds) && this.params.has(name)) feeds[name] = this.params.tensor(name);
    const into: Record<string, Tensor> = {};
    for (const g of gradOutputs) {
      if (!this.grads.has(g.param)) throw new ParamError(g.param, 'has a gradient output but is not optimized');
      into[g.output] = this.grads.tensor(g.param);
    }
    if (gradOutputs.length !== this.opt.names.length) throw new ConfigError('gradOutputs', `${gradOutputs.length} gradients for ${this.opt.names.length} optimized parameters`);
    const out = await session.run(feeds, into);
    const r = this.apply();
    const rest: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) if (!(k in into)) rest[k] = v;
    return { ...r, outputs: rest };
  }

  /** Update from the gradients now in `grads`: finiteness check, clipping, Adam(W). */
  apply(): Omit<StepResult, 'outputs'> {
    this.rebind();
    const opt = this.opt;
    const t = opt.stepCount + 1;
    const o = opt.options;
    let total = 0;
    for (const name of opt.names) {
      const g = this.grads.view(name);
      const s = this.arena.sumsq(g);
      if (!Number.isFinite(s) && o.checkFinite) {
        const i = g.findIndex((x) => !Number.isFinite(x));
        throw new NonFiniteError(`${name}_grad`, i, i >= 0 ? g[i]! : Infinity, t);
      }
      total += s;
    }
    let gradNorm: number | null = null;
    if (o.maxGradNorm !== undefined) {
      // torch.nn.utils.clip_grad_norm_: g ← g·min(max_norm / (‖g‖ + 1e-6), 1), always multiplied.
      gradNorm = Math.sqrt(total);
      const coef = Math.min(o.maxGradNorm / (gradNorm + 1e-6), 1);
      for (const name of opt.names) this.arena.scale(this.grads.view(name), coef);
    }
    const sc = opt.rule.scalars(t, opt.groups.map((g) => g.lr));
    const [beta1, beta2] = opt.betas;
    const decoupled = opt.kind === 'adamw';
    const [mSlot, vSlot] = opt.rule.slots as [string, string];
    opt.groups.forEach((grp, k) => {
      const s = sc.groups[k]!;
      const scalars = {
        beta1,
        beta2,
        eps: opt.eps,
        negStep: s['neg_step']!,
        bc2Sqrt: sc.global['bc2_sqrt']!,
        decay: decoupled && grp.weightDecay !== 0 ? s['decay']! : 1,
        l2: decoupled ? 0 : grp.weightDecay,
      };
      for (const name of grp.params)
        this.arena.adam(this.params.view(name), this.grads.view(name), opt.state[mSlot]!.view(name), opt.state[vSlot]!.view(name), scalars);
    });
    opt.stepCount = t;
    return { step: t, gradNorm };
  }

  /** Put buffers that were replaced (e.g. a swap by other code) back into the arena. */
  private rebind(): void {
    const stores = [this.params, this.grads, ...this.opt.rule.slots.map((s) => this.opt.state[s]!)];
    for (const st of stores) if (!this.arena.owns(st.data)) throw new ParamError('<store>', 'a store the wasm optimizer updates was given another buffer');
  }
}
