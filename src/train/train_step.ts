// The training step fit() and the benchmarks run: the training graph in onnxruntime, and the
// optimizer either as wasm kernels on the gradients the run writes out (optim_host.ts; the default
// on the CPU for Adam/AdamW) or fused into the same onnxruntime run (optim_graph.ts; SGD, CUDA,
// models too big for one wasm memory, or asked for).

import { ConfigError } from '../errors.js';
import type { ClipModelCfg } from '../models/clip/config.js';
import type { ParamStore } from '../runtime/params.js';
import { Session } from '../runtime/session.js';
import type { SessionOptions, Tensor } from '../runtime/session.js';
import type { Optimizer, StepResult } from './optim_base.js';
import { HostUpdate } from './optim_host.js';
import type { GradOutput } from './optim_host.js';
import { buildTrainGraph } from './train_graph.js';
import type { TrainGraph, TrainGraphOptions } from './train_graph.js';

export type OptimizerBackend = 'wasm' | 'onnxruntime';

export interface TrainStep {
  readonly graph: TrainGraph;
  readonly session: Session;
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
  let fallback: string | null = null;
  let host: HostUpdate | null = null;
  if (backend === 'wasm') {
    const h = sessionOpts.device === 'cuda' ? 'the update stays on the GPU' : HostUpdate.create(opt, params);
    if (typeof h === 'string') fallback = h;
    else host = h;
  }
  const tg = buildTrainGraph(cfg, { ...graphOpts, outputGradients: host !== null });
  // Memory-pattern planning held ~2 GB more at ViT-B/32 batch 32 and was slower (bench:clip).
  const so: SessionOptions = { ...sessionOpts, memPattern: false };
  if (host) {
    const names = new Set(opt.names);
    const gradOutputs: GradOutput[] = tg.trainable.map((p, i) => ({ param: p.name, output: tg.grads[i]!.name }));
    if (gradOutputs.length !== names.size || gradOutputs.some((g) => !names.has(g.param)))
      throw new ConfigError('optimizer', 'the optimizer groups differ from the training graph’s trainable parameters');
    const session = await Session.fromGraph(tg.graph, so);
    return { graph: tg, session, backend: 'wasm', fallback, run: (data) => host.runStep(session, gradOutputs, data), release: () => session.release() };
  }
  const update = opt.build(tg.graph, tg.trainable, tg.grads);
  const session = await Session.fromGraph(tg.graph, so);
  return {
    graph: tg,
    session,
    backend: 'onnxruntime',
    fallback,
    run: (data) => opt.runStep(session, update, params, data),
    release: () => session.release(),
  };
}
