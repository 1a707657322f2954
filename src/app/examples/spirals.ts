// The engine's smallest complete example: a deterministic two-spirals set, an MLP written with the
// graph builder, its gradients from grad(), and AdamW fused into the same onnxruntime run.
// Used by `clipfit demo --engine` and by the test that proves the engine trains.

import { rng } from '../../autodiff/gradcheck.js';
import { grad } from '../../autodiff/grad.js';
import { Graph } from '../../onnx/graph.js';
import type { Value } from '../../onnx/graph.js';
import { argMax, crossEntropy, linear, tanh } from '../../ops/index.js';
import { ParamStore } from '../../runtime/params.js';
import { Session } from '../../runtime/session.js';
import type { Tensor } from '../../runtime/session.js';
import { AdamW } from '../../train/optim.js';

/** Two interleaved spirals of n points each, two full turns, radius ≤ 1, small jitter. */
export function spirals(n: number, seed: number): { x: Float32Array; y: BigInt64Array } {
  const rand = rng(seed);
  const x = new Float32Array(4 * n);
  const y = new BigInt64Array(2 * n);
  const turns = 4 * Math.PI;
  for (let c = 0; c < 2; c++) {
    for (let i = 0; i < n; i++) {
      const k = c * n + i;
      const t = 0.3 + (turns * i) / n;
      const r = t / (turns + 0.3);
      x[2 * k] = r * Math.cos(t + c * Math.PI) + (rand() - 0.5) * 0.02;
      x[2 * k + 1] = r * Math.sin(t + c * Math.PI) + (rand() - 0.5) * 0.02;
      y[k] = BigInt(c);
    }
  }
  return { x, y };
}

const LAYERS: [string, number, number][] = [
  ['fc1', 2, 64],
  ['fc2', 64, 64],
  ['fc3', 64, 2],
];

export function mlp(g: Graph, x: Value): Value {
  let h = x;
  LAYERS.forEach(([name, fin, fout], i) => {
    h = linear(h, g.param(`${name}.weight`, [fout, fin]), g.param(`${name}.bias`, [fout]));
    if (i < LAYERS.length - 1) h = tanh(h);
  });
  return h;
}

export interface SpiralsResult {
  steps: number;
  seconds: number;
  losses: number[];
  accuracy: number;
}

/** Train the MLP on 2×(points/2) spiral points until 99% training accuracy or maxSteps. */
export async function trainSpirals(opts: { points?: number; maxSteps?: number; threads?: number; log?: (line: string) => void } = {}): Promise<SpiralsResult> {
  const N = opts.points ?? 400;
  const data = spirals(N / 2, 7);
  const feeds: Record<string, Tensor> = {
    x: { dtype: 'float32', shape: [N, 2], data: data.x },
    labels: { dtype: 'int64', shape: [N], data: data.y },
  };
  const g = new Graph('spirals_train');
  const loss = crossEntropy(mlp(g, g.input('x', 'float32', ['batch', 2])), g.input('labels', 'int64', ['batch']));
  g.rename(loss, 'loss');
  const params = ParamStore.fromGraph(g);
  const grads = grad(loss, g.params);
  g.output(loss);
  const opt = new AdamW(params, { lr: 0.01, betas: [0.9, 0.999], weightDecay: 1e-4 });
  const update = opt.build(g, g.params, grads);
  const train = await Session.fromGraph(g, { threads: opts.threads ?? 1 });

  // torch nn.Linear's default init: U(−1/√fan_in, 1/√fan_in), seeded.
  const rand = rng(1);
  for (const e of params.entries) {
    const fanIn = LAYERS.find(([n]) => e.name.startsWith(`${n}.`))![1];
    const v = params.view(e.name);
    for (let i = 0; i < v.length; i++) v[i] = (2 * rand() - 1) / Math.sqrt(fanIn);
  }

  const eg = new Graph('spirals_eval');
  const pred = argMax(mlp(eg, eg.input('x', 'float32', ['batch', 2])), 1);
  eg.rename(pred, 'pred');
  eg.output(pred);
  const evalSession = await Session.fromGraph(eg, { threads: 1 });
  const accuracy = async (): Promise<number> => {
    const p = (await evalSession.run({ ...params.feeds(), x: feeds['x']! }))['pred']!.data as BigInt64Array;
    let ok = 0;
    for (let i = 0; i < N; i++) if (p[i] === data.y[i]) ok++;
    return ok / N;
  };

  const start = Date.now();
  const losses: number[] = [];
  let acc = 0;
  for (let step = 1; step <= (opts.maxSteps ?? 3000); step++) {
    const r = await opt.runStep(train, update, params, feeds);
    losses.push((r.outputs['loss']!.data as Float32Array)[0]!);
    if (step % 250 === 0) {
      acc = await accuracy();
      opts.log?.(`step ${step}: loss ${losses.at(-1)!.toFixed(4)}, training accuracy ${(acc * 100).toFixed(1)}%`);
      if (acc >= 0.99) break;
    }
  }
  acc = await accuracy();
  await Promise.all([train.release(), evalSession.release(), opt.dispose()]);
  return { steps: losses.length, seconds: (Date.now() - start) / 1000, losses, accuracy: acc };
}
