// Optimizer updates as ONNX graph ops, so onnxruntime runs the step like forward and backward. A
// rule emits one parameter's update; buildUpdate() wires the rules for a list of parameters into a
// graph (a standalone optimizer graph, or a training graph whose gradients come from grad()), with
// optional global-norm clipping and a NaN/Inf flag per gradient.
//
// Every float32 rounding follows torch 1.13's `_single_tensor_*` code: Python scalars become
// float32 constants, and per-step scalars (lr, bias corrections) are computed in double in JS and
// fed as float32 scalar inputs, so one session serves every step.

import { ClipfitError } from '../errors.js';
import type { Graph, Value } from '../onnx/graph.js';
import { add, div, identity, mul, reduceSum, reshape, slice, sqrt } from '../ops/index.js';
import { clipGradNorm } from './clip_grad.js';

/** Scalar input by name (created on first use; group scalars are per parameter group). */
export type ScalarLookup = (name: string) => Value;

export interface UpdateRule {
  readonly kind: string;
  /** State tensors per parameter, each shaped like the parameter (torch's state keys). */
  readonly slots: readonly string[];
  /**
   * Emit the update of one parameter: its new value and new state (in `slots` order).
   * `scalar` gives the group's per-step scalars, `global` the ones shared by all groups.
   */
  update(p: Value, grad: Value, state: readonly Value[], scalar: ScalarLookup, global: ScalarLookup, group: number): { param: Value; state: Value[] };
  /** Values of the scalars for step t (1-based) and each group's lr: names → doubles. */
  scalars(t: number, lrs: readonly number[]): { global: Record<string, number>; groups: Record<string, number>[] };
}

// ---- AdamW / Adam (torch 1.13 _single_tensor_adamw / _single_tensor_adam) ------------------------

export interface AdamRuleOptions {
  beta1: number;
  beta2: number;
  eps: number;
  /** Weight decay per group, fixed when the graph is built. */
  weightDecay: readonly number[];
  /** true: AdamW's decoupled decay p ← p·(1 − lr·wd). false: Adam's L2 term g ← g + wd·p. */
  decoupled: boolean;
}

/**
 *   (AdamW) p ← p·(1 − lr·wd)            (Adam) g ← g + wd·p
 *   m ← m·β1 + g·(1 − β1)
 *   v ← v·β2 + ((1 − β2)·g)·g
 *   p ← p + ((−lr/bc1)·m) / (√v / √bc2 + eps),   bc_i = 1 − β_i^t  (double, in JS)
 */
export function adamRule(o: AdamRuleOptions): UpdateRule {
  return {
    kind: o.decoupled ? 'adamw' : 'adam',
    slots: ['exp_avg', 'exp_avg_sq'],
    update(p, grad, [m, v], scalar, global, group) {
      const wd = o.weightDecay[group] ?? 0;
      let param = p;
      let g = grad;
      if (wd !== 0) {
        if (o.decoupled) param = mul(p, scalar('decay'));
        else g = add(g, mul(p, wd));
      }
      const m1 = add(mul(m!, o.beta1), mul(g, 1 - o.beta1));
      const v1 = add(mul(v!, o.beta2), mul(mul(g, 1 - o.beta2), g));
      const denom = add(div(sqrt(v1), global('bc2_sqrt')), o.eps);
      return { param: add(param, div(mul(scalar('neg_step'), m1), denom)), state: [m1, v1] };
    },
    scalars(t, lrs) {
      const bc1 = 1 - o.beta1 ** t;
      const bc2 = 1 - o.beta2 ** t;
      return {
        global: { bc2_sqrt: Math.sqrt(bc2) },
        groups: lrs.map((lr, k) => ({ neg_step: -(lr / bc1), decay: 1 - lr * (o.weightDecay[k] ?? 0) })),
      };
    },
  };
}

// ---- SGD with momentum (torch 1.13 _single_tensor_sgd) --------------------------------------------

export interface SgdRuleOptions {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: readonly number[];
}

/**
 *   d ← g + wd·p
 *   b ← b·μ' + d·δ'     with μ' = 0, δ' = 1 on the first step (torch clones d into the buffer),
 *                        μ' = μ, δ' = 1 − dampening afterwards (fed scalars)
 *   d ← nesterov ? d + μ·b : b
 *   p ← p + (−lr)·d
 */
export function sgdRule(o: SgdRuleOptions): UpdateRule {
  return {
    kind: 'sgd',
    slots: o.momentum !== 0 ? ['momentum_buffer'] : [],
    update(p, grad, state, scalar, global, group) {
      const wd = o.weightDecay[group] ?? 0;
      let d = wd !== 0 ? add(grad, mul(p, wd)) : grad;
      const next: Value[] = [];
      if (o.momentum !== 0) {
        const buf = add(mul(state[0]!, global('momentum')), mul(d, global('dampening')));
        next.push(buf);
        d = o.nesterov ? add(d, mul(buf, o.momentum)) : buf;
      }
      return { param: add(p, mul(d, scalar('neg_lr'))), state: next };
    },
    scalars(t, lrs) {
      const first = t === 1;
      const global: Record<string, number> = o.momentum !== 0 ? { momentum: first ? 0 : o.momentum, dampening: first ? 1 : 1 - o.dampening } : {};
      return {
        global,
        groups: lrs.map((lr) => ({ neg_lr: -lr })),
      };
    },
  };
}

// ---- wiring ---------------------------------------------------------------------------------------

export interface BuildUpdateOptions {
  /** Group index of each parameter (default: all in group 0). */
  groupOf?: readonly number[];
  /** Clip the gradients to this global 2-norm first (torch clip_grad_norm_). */
  maxGradNorm?: number;
  /** Also output, per gradient, a scalar that is 0 when every element is finite and NaN otherwise
   *  (‖g‖·0 when clipping, else Σ g·0). */
  checkFinite?: boolean;
  /** Mark the new values as graph outputs (default true). */
  markOutputs?: boolean;
  /**
   * Order every new parameter value after these values (in a fused training graph: every gradient
   * and every other output). Needed when the new values are written into the very buffers the
   * parameters are fed from: onnxruntime writes a pre-allocated output while the run goes on, so an
   * update that ran before the backward pass finished would change weights the backward still reads.
   */
  after?: readonly Value[];
}

export interface UpdateGraph {
  rule: UpdateRule;
  /** The parameters updated, in order, and their group indices. */
  params: Value[];
  groupOf: number[];
  /** New parameter values, named `<param>.next`. */
  newParams: Value[];
  /** State inputs [slot][param], named `optim.<slot>.<param>`. */
  stateInputs: Value[][];
  /** New state [slot][param], named `optim.<slot>.<param>.next`. */
  newState: Value[][];
  /** Scalar inputs by feed name: `optim.<name>` (global) and `optim.group<k>.<name>`. */
  scalarInputs: Map<string, { value: Value; group: number | null; key: string }>;
  /** Global gradient norm before clipping, `optim.grad_norm` (when clipping). */
  gradNorm: Value | null;
  /** Per-gradient finiteness flags, `optim.nonfinite.<param>` (when checking). */
  nonFinite: Value[] | null;
}

/** Give v the exact name `name` (through an Identity when v cannot be renamed). */
export function nameValue(g: Graph, v: Value, name: string): Value {
  if (v.name === name || g.rename(v, name)) return v;
  const id = identity(v);
  if (!g.rename(id, name)) throw new ClipfitError(`graph '${g.name}': the name '${name}' is already taken`);
  return id;
}

/**
 * Emit the optimizer update of `params` given `grads` into g. Creates the state inputs and the
 * scalar inputs the rule asks for; returns the new values (marked as outputs unless told not to).
 */
export function buildUpdate(g: Graph, rule: UpdateRule, params: readonly Value[], grads: readonly Value[], opts: BuildUpdateOptions = {}): UpdateGraph {
  if (params.length !== grads.length) throw new ClipfitError(`buildUpdate: ${params.length} parameters but ${grads.length} gradients`);
  if (params.length === 0) throw new ClipfitError('buildUpdate: no parameters to update');
  const groupOf = params.map((_, i) => opts.groupOf?.[i] ?? 0);
  params.forEach((p, i) => {
    const gr = grads[i]!;
    if (p.dtype !== 'float32' || gr.dtype !== 'float32')
      throw new ClipfitError(`buildUpdate: parameter '${p.name}' and its gradient must be float32 (got ${p.dtype}, ${gr.dtype})`);
    if (p.shape.length !== gr.shape.length || p.shape.some((d, k) => d !== gr.shape[k]))
      throw new ClipfitError(`buildUpdate: gradient '${gr.name}' shape [${gr.shape}] differs from parameter '${p.name}' [${p.shape}]`);
  });

  const scalarInputs: UpdateGraph['scalarInputs'] = new Map();
  const input = (group: number | null): ScalarLookup => (key) => {
    const name = group === null ? `optim.${key}` : `optim.group${group}.${key}`;
    let hit = scalarInputs.get(name);
    if (!hit) {
      hit = { value: g.input(name, 'float32', []), group, key };
      scalarInputs.set(name, hit);
    }
    return hit.value;
  };

  // The write barrier: z = 0·Σ_v v[0,…,0] over one element of each value in `after`, and every
  // scalar the rule reads becomes s + z. Each update's last node (the one that writes the live
  // buffer) reads a scalar, so it runs after every gradient exists, hence after every node of the
  // backward pass that reads a parameter. One element per value: O(#params) extra work, not a pass
  // over the gradients.
  const zero = opts.after?.length ? g.scope('optim/write_barrier', () => writeBarrier(opts.after!)) : null;
  const gated = new Map<string, Value>();
  const lookup = (group: number | null): ScalarLookup => (key) => {
    const raw = input(group)(key);
    if (!zero) return raw;
    let v = gated.get(raw.name);
    if (!v) {
      v = g.scope('optim/write_barrier', () => add(raw, zero));
      gated.set(raw.name, v);
    }
    return v;
  };
  const global = lookup(null);

  // Finiteness flags: x·0 is 0 for finite x and NaN for NaN/Inf. With clipping, each gradient's
  // norm (already computed) serves; without, one extra pass Σ g·0 per gradient.
  let used = [...grads];
  let gradNorm: Value | null = null;
  let norms: Value[] | null = null;
  if (opts.maxGradNorm !== undefined) {
    const c = g.scope('clip_grad_norm', () => clipGradNorm(grads, opts.maxGradNorm!));
    used = c.grads;
    norms = c.norms;
    gradNorm = nameValue(g, c.totalNorm, 'optim.grad_norm');
  }
  const nonFinite = opts.checkFinite
    ? params.map((p, i) => nameValue(g, norms ? mul(norms[i]!, 0) : reduceSum(mul(grads[i]!, 0)), `optim.nonfinite.${p.name}`))
    : null;

  const stateInputs = rule.slots.map((slot) => params.map((p) => g.input(`optim.${slot}.${p.name}`, 'float32', p.shape)));
  const newParams: Value[] = [];
  const newState: Value[][] = rule.slots.map(() => []);
  const gradSet = new Set(used); // where the barrier's dependency search stops
  params.forEach((p, i) => {
    const r = g.scope(`optim/${p.name}`, () =>
      rule.update(p, used[i]!, stateInputs.map((s) => s[i]!), lookup(groupOf[i]!), global, groupOf[i]!),
    );
    if (zero && !dependsOn(r.param, zero, gradSet))
      throw new ClipfitError(`buildUpdate: the ${rule.kind} update of '${p.name}' reads no scalar, so it cannot be ordered after the backward pass`);
    newParams.push(nameValue(g, r.param, `${p.name}.next`));
    r.state.forEach((s, k) => newState[k]!.push(nameValue(g, s, `optim.${rule.slots[k]}.${p.name}.next`)));
  });

  if (opts.markOutputs ?? true) {
    g.output(...newParams, ...newState.flat());
    if (gradNorm) g.output(gradNorm);
    if (nonFinite) g.output(...nonFinite);
  }
  return { rule, params: [...params], groupOf, newParams, stateInputs, newState, scalarInputs, gradNorm, nonFinite };
}

/** 0·Σ_v v[0,…,0]: a float32 zero that exists only once every value in `vals` does. */
function writeBarrier(vals: readonly Value[]): Value {
  let acc: Value | null = null;
  for (const v of vals) {
    if (v.dtype !== 'float32') continue;
    const r = v.shape.length;
    const one = r === 0 ? v : reshape(slice(v, new Array(r).fill(0), new Array(r).fill(1), [...Array(r).keys()]), []);
    acc = acc ? add(acc, one) : one;
  }
  if (!acc) throw new ClipfitError('buildUpdate: the write barrier needs at least one float32 value to follow');
  return mul(acc, 0);
}

/** Whether `target` is an ancestor of v, searching no further up than the values in `stop`. */
function dependsOn(v: Value, target: Value, stop: Set<Value>): boolean {
  const seen = new Set<Value>();
  const todo = [v];
  while (todo.length) {
    const x = todo.pop()!;
    if (x === target) return true;
    if (seen.has(x) || stop.has(x) || !x.producer) continue;
    seen.add(x);
    for (const i of x.producer.inputs) if (i) todo.push(i);
  }
  return false;
}
