// The training step fit() and the benchmarks run: the training graph in onnxruntime, and the
// optimizer either as wasm kernels on the gradients the run writes out (optim_host.ts; the default
// on the CPU for Adam/AdamW) or fused into the same onnxruntime run (optim_graph.ts; SGD, CUDA,
// models too big for one wasm memory, or asked for).

import type { ClipModelCfg } from '../models/clip/config.js';
import type { ParamStore } from '../runtime/params.js';
import { Session } from '../runtime/session.js';
import type { SessionOptions, Tensor } from '../runtime/session.js';
import type { Optimizer, StepResult } from './optim_base.js';
import { HostUpdate } from './optim_host.js';
import { buildTrainGraph } from './train_graph.js';
import type { TrainGraphOptions } from './train_graph.js';
import { GradCache } from './grad_cache.js';
import type { GradCacheOptions } from './grad_cache.js';

export type OptimizerBackend = 'wasm' | 'onnxruntime';

export interface TrainStep {
  /** The onnxruntime session of a plain step (null for GradCache's several). */
  readonly session: Session | null;
  /** Where the update runs (the backend asked for, or onnxruntime when wasm cannot take it). */
  readonly backend: OptimizerBackend;
  /** Why the wasm backend was not used, when it was asked for. */
  readonly fallback: string | null;
  /** One step on a batch's data feeds: forward, backward, update. */
  run(data: Record<string, Tensor>): Promise<StepResult>;
  release(): Promise<void>;
}

export async function makeTrainStep(
  cfg: ClipModelCfg,
  opt: Optimizer,
  params: ParamStore,
  graphOpts: Omit<TrainGraphOptions, 'outputGradients'>,
  sessionOpts: SessionOptions,
  backend: OptimizerBackend = 'wasm',
): Promise<TrainStep> {
  const { host, fallback } = hostFor(opt, params, sessionOpts, backend);
  const tg = buildTrainGraph(cfg, { ...graphOpts, outputGradients: host !== null });
  // Memory-pattern planning held ~2 GB more at ViT-B/32 batch 32 and was slower (bench:clip).
  const so: SessionOptions = { ...sessionOpts, memPattern: false };
  if (host) {
    const gradOutputs = host.gradOutputs(tg.trainable.map((p, i) => ({ param: p.name, output: tg.grads[i]!.name })));
    const session = await Session.fromGraph(tg.graph, so);
    return { session, backend: 'wasm', fallback, run: (data) => host.runStep(session, gradOutputs, data), release: () => session.release() };
  }
  const update = opt.build(tg.graph, tg.trainable, tg.grads);
  const session = await Session.fromGraph(tg.graph, so);
  return {
    session,
    backend: 'onnxruntime',
    fallback,
    run: (data) => opt.runStep(session, update, params, data),
    release: () => session.release(),
  };
}

function hostFor(opt: Optimizer, params: ParamStore, so: SessionOptions, backend: OptimizerBackend): { host: HostUpdate | null; fallback: string | null } {
  if (backend !== 'wasm') return { host: null, fallback: null };
  const h = so.device === 'cuda' ? 'the update stays on the GPU' : HostUpdate.create(opt, params);
  return typeof h === 'string' ? { host: null, fallback: h } : { host: h, fallback: null };
}

/**
 * The GradCache step (grad_cache.ts): the batch's gradients summed chunk by chunk, then one update,
 * in wasm or by the optimizer's own session.
 */
export async function makeGradCacheStep(
  cfg: ClipModelCfg,
  opt: Optimizer,
  params: ParamStore,
  gcOpts: Omit<GradCacheOptions, 'session'>,
  sessionOpts: SessionOptions,
  backend: OptimizerBackend = 'wasm',
): Promise<TrainStep> {
  const { host, fallback } = hostFor(opt, params, sessionOpts, backend);
  const gc = await GradCache.create(cfg, { ...gcOpts, session: sessionOpts });
  return {
    session: null,
    backend: host ? 'wasm' : 'onnxruntime',
    fallback,
    async run(data) {
      const loss = await gc.gradients(params, data);
      const r = host ? host.apply((name) => gc.grads.view(name)) : await opt.step(params, gc.grads);
      return { step: r.step, gradNorm: r.gradNorm, outputs: { loss: { dtype: 'float32', shape: [], data: new Float32Array([loss]) } } };
    },
    release: () => gc.release(),
  };
}
