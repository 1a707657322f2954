// Optimizers whose step onnxruntime runs, with torch 1.13 semantics: AdamW, Adam and SGD (with
// momentum, dampening, Nesterov). Groups, clipping, the NaN/Inf check, double-buffered steps and
// state files come from optim_base.ts; the update math from optim_graph.ts.

import { ConfigError } from '../errors.js';
import type { ParamShape } from '../runtime/params.js';
import type { ParamStore } from '../runtime/params.js';
import type { AdamOptions, SgdOptions } from './optim_base.js';
import { Optimizer } from './optim_base.js';
import type { UpdateRule } from './optim_graph.js';
import { adamRule, sgdRule } from './optim_graph.js';

export * from './optim_base.js';
export { adamRule, buildUpdate, nameValue, sgdRule } from './optim_graph.js';
export type { BuildUpdateOptions, UpdateGraph, UpdateRule } from './optim_graph.js';
export { clipGradNorm, globalNorm } from './clip_grad.js';

/** torch.optim.AdamW: decoupled weight decay (default lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01). */
export class AdamW extends Optimizer {
  readonly kind: string = 'adamw';
  readonly betas: readonly [number, number];
  readonly eps: number;
  constructor(layout: ParamStore | readonly ParamShape[], opts: AdamOptions = {}) {
    super(layout, opts, { lr: 1e-3, weightDecay: 1e-2 });
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new ConfigError(`betas[${i}]`, `must be in [0, 1), got ${b}`);
    });
    if (!(this.eps >= 0)) throw new ConfigError('eps', `must be ≥ 0, got ${this.eps}`);
  }
  protected decoupled(): boolean {
    return true;
  }
  protected makeRule(): UpdateRule {
    return adamRule({
      beta1: this.betas[0],
      beta2: this.betas[1],
      eps: this.eps,
      weightDecay: this.groups.map((g) => g.weightDecay),
      decoupled: this.decoupled(),
    });
  }
  protected hyper(): Record<string, number | boolean> {
    return { beta1: this.betas[0], beta2: this.betas[1], eps: this.eps };
  }
}

/** torch.optim.Adam: weight decay as an L2 term added to the gradient (default wd 0). */
export class Adam extends AdamW {
  override readonly kind: string = 'adam';
  constructor(layout: ParamStore | readonly ParamShape[], opts: AdamOptions = {}) {
    super(layout, { ...opts, weightDecay: opts.weightDecay ?? 0 });
  }
  protected override decoupled(): boolean {
    return false;
  }
}

/** torch.optim.SGD with momentum, dampening, Nesterov and L2 weight decay. */
export class SGD extends Optimizer {
  readonly kind: string = 'sgd';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  constructor(layout: ParamStore | readonly ParamShape[], opts: SgdOptions) {
    if (opts.lr === undefined) throw new ConfigError('lr', 'SGD needs a learning rate');
    super(layout, opts, { lr: opts.lr, weightDecay: 0 });
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (!(this.momentum >= 0)) throw new ConfigError('momentum', `must be ≥ 0, got ${this.momentum}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0))
      throw new ConfigError('nesterov', 'Nesterov momentum needs momentum > 0 and dampening 0');
  }
  protected makeRule(): UpdateRule {
    return sgdRule({ momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov, weightDecay: this.groups.map((g) => g.weightDecay) });
  }
  protected hyper(): Record<string, number | boolean> {
    return { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov };
  }
}
