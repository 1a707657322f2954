// The optimizer step outside onnxruntime: Adam/AdamW run by wasm kernels (wasm_arena.ts) on the
// parameters and both moments where they live, in one WebAssembly memory.
//
// Why: onnxruntime-node copies every output of a run into a fresh JS buffer, even an output bound
// to a caller's buffer. With the update fused into the training run, the new parameters and both
// moments (3× the parameters, 1.8 GB at ViT-B/32) were copied out of every step, and the update
// made ~14 elementwise passes. Here the run outputs only the gradients (onnxruntime's copies, taken
// as they come and collected right after the update) and one fused SIMD pass per tensor updates
// p, m and v in place. ViT-B/32 batch 32: peak RSS 6.7 → 5.5 GB, CPU per step −18% (bench:clip).
//
// The arithmetic is the graph rule's (optim_graph.ts adamRule), one float32 rounding per operation
// in the same order, so both paths give the same bits. Clipping by global norm sums squares in
// float64 (the graph path sums float32 per-tensor norms): equal up to rounding, not bit for bit.
// A NaN/Inf gradient is found before anything is written, so a failed step changes nothing.

import { ConfigError, NonFiniteError, ParamError } from '../errors.js';
import { ParamStore } from '../runtime/params.js';
import { collectGarbage, collectIfLarge } from '../util/gc.js';
import type { Session, Tensor } from '../runtime/session.js';
import type { Optimizer, StepResult } from './optim_base.js';
import { AdamW } from './optim.js';
import { WasmArena } from './wasm_arena.js';

/** A gradient output of the training graph and the parameter it belongs to. */
export interface GradOutput {
  param: string;
  output: string;
}

/** Each optimized parameter's gradient output, checked by HostUpdate.gradOutputs(). */
export type GradOutputs = ReadonlyMap<string, string> & { readonly checked: true };

export class HostUpdate {
  /** One tensor's gradient at a time, in the arena (the largest optimized tensor's size). */
  private readonly scratch: Float32Array;
  /** Elements of all the gradients of a step. */
  private readonly gradElements: number;

  private constructor(
    readonly opt: AdamW,
    readonly params: ParamStore,
    private readonly arena: WasmArena,
    largest: number,
  ) {
    params.moveTo(arena.alloc(params.size));
    for (const slot of opt.rule.slots) opt.state[slot]!.moveTo(arena.alloc(opt.state[slot]!.size));
    this.scratch = arena.alloc(largest);
    this.gradElements = opt.state[opt.rule.slots[0]!]!.size;
    collectGarbage(); // the buffers just left behind (the parameters: 600 MB at ViT-B/32)
  }

  /**
   * The host update for `opt` over `params`, or a reason why not: only Adam and AdamW have kernels,
   * and the parameters and two moments must fit in one wasm32 memory (4 GiB: ~350M parameters).
   */
  static create(opt: Optimizer, params: ParamStore): HostUpdate | string {
    if (!(opt instanceof AdamW)) return `${opt.kind} has no wasm kernel`;
    const state = opt.state[opt.rule.slots[0]!]!;
    const largest = Math.max(...state.entries.map((e) => e.size));
    const arena = WasmArena.tryCreate([params.size, state.size, state.size, largest]);
    if (!arena) return `${params.size.toLocaleString('en-US')} parameters with ${state.size.toLocaleString('en-US')} trained do not fit in one wasm memory`;
    return new HostUpdate(opt, params, arena, largest);
  }

  /** The training graph's gradient outputs by parameter, checked once: exactly the optimized parameters. */
  gradOutputs(list: readonly GradOutput[]): GradOutputs {
    const byParam = new Map(list.map((g) => [g.param, g.output]));
    const missing = this.opt.names.find((n) => !byParam.has(n));
    if (missing !== undefined || byParam.size !== this.opt.names.length || list.length !== byParam.size)
      throw new ConfigError('gradOutputs', `the training graph's gradients (${list.length}) are not the optimized parameters' (${this.opt.names.length})${missing ? `: none for '${missing}'` : ''}`);
    return Object.assign(byParam, { checked: true as const });
  }

  /**
   * One training step: run `session` (a training graph whose outputs include the gradients, named
   * in `byParam`) on `extra` plus the parameters, then update. Returns the run's other outputs.
   * The gradients come back as onnxruntime's own output copies (binding them to buffers of ours
   * would still leave a copy per step, and keep a gradient-sized buffer alive between steps).
   */
  async runStep(session: Session, byParam: GradOutputs, extra: Record<string, Tensor>): Promise<StepResult> {
    const feeds: Record<string, Tensor> = { ...extra };
    for (const name of session.inputNames) if (!(name in feeds) && this.params.has(name)) feeds[name] = this.params.tensor(name);
    let out: Record<string, Tensor> | null = await session.run(feeds);
    const r = this.apply((name) => out![byParam.get(name)!]!.data as Float32Array);
    const rest: Record<string, Tensor> = {};
    const grads = new Set(byParam.values());
    for (const [k, v] of Object.entries(out)) if (!grads.has(k)) rest[k] = v;
    out = null;
    collectIfLarge(4 * this.gradElements); // the step's gradients (600 MB at ViT-B/32), before the next step allocates
    return { ...r, outputs: rest };
  }

  /**
   * Update from the gradients `grad(name)` gives: finiteness check and the global norm first (no
   * write before every gradient has passed), then clipping and Adam(W), one tensor at a time through
   * the arena's scratch buffer.
   */
  apply(grad: (name: string) => Float32Array): Omit<StepResult, 'outputs'> {
    this.check();
    const opt = this.opt;
    const t = opt.stepCount + 1;
    const o = opt.options;
    const scratchOf = (name: string): Float32Array => {
      const g = grad(name);
      const n = this.params.entry(name).size;
      if (!g || g.length !== n) throw new ParamError(name, `gradient has ${g?.length ?? 0} elements, the parameter ${n}`);
      const s = this.scratch.subarray(0, n);
      s.set(g);
      return s;
    };
    let total = 0;
    for (const name of opt.names) {
      const s = this.arena.sumsq(scratchOf(name));
      if (!Number.isFinite(s) && o.checkFinite) {
        const g = grad(name);
        const i = g.findIndex((x) => !Number.isFinite(x));
        throw new NonFiniteError(`${name}_grad`, i, i >= 0 ? g[i]! : Infinity, t);
      }
      total += s;
    }
    let gradNorm: number | null = null;
    // torch.nn.utils.clip_grad_norm_: g ← g·min(max_norm / (‖g‖ + 1e-6), 1), always multiplied.
    let coef: number | null = null;
    if (o.maxGradNorm !== undefined) {
      gradNorm = Math.sqrt(total);
      coef = Math.min(o.maxGradNorm / (gradNorm + 1e-6), 1);
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
      for (const name of grp.params) {
        const g = scratchOf(name);
        if (coef !== null) this.arena.scale(g, coef);
        this.arena.adam(this.params.view(name), g, opt.state[mSlot]!.view(name), opt.state[vSlot]!.view(name), scalars);
      }
    });
    opt.stepCount = t;
    return { step: t, gradNorm };
  }

  /** The stores the kernels update must still be the arena's (nothing swapped another buffer in). */
  private check(): void {
    const stores = [this.params, ...this.opt.rule.slots.map((s) => this.opt.state[s]!)];
    for (const st of stores) if (!this.arena.owns(st.data)) throw new ParamError('<store>', 'a store the wasm optimizer updates was given another buffer');
  }
}
