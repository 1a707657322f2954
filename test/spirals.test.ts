// Proof that the engine trains: an MLP built with the graph builder, differentiated by grad(),
// updated by AdamW inside the same onnxruntime session, fits the two-spirals set.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../src/autodiff/grad.js';
import { Graph } from '../src/onnx/graph.js';
import type { Value } from '../src/onnx/graph.js';
import { argMax, crossEntropy, linear, tanh } from '../src/ops/index.js';
import { ParamStore } from '../src/runtime/params.js';
import type { Tensor } from '../src/runtime/session.js';
import { Session } from '../src/runtime/session.js';
import { AdamW } from '../src/train/optim.js';

/** mulberry32: a small seeded PRNG, so data and init are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Two interleaved spirals of `n` points each, two full turns, radius ≤ 1, small jitter. */
function spirals(n: number, seed: number): { x: Float32Array; y: BigInt64Array } {
  const rand = prng(seed);
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

function mlp(g: Graph, x: Value): Value {
  let h = x;
  LAYERS.forEach(([name, fin, fout], i) => {
    h = linear(h, g.param(`${name}.weight`, [fout, fin]), g.param(`${name}.bias`, [fout]));
    if (i < LAYERS.length - 1) h = tanh(h);
  });
  return h;
}

test('an MLP trained with grad() and AdamW in onnxruntime separates two spirals (≥ 97 %)', async () => {
  const N = 400;
  const data = spirals(N / 2, 7);
  const feeds: Record<string, Tensor> = {
    x: { dtype: 'float32', shape: [N, 2], data: data.x },
    labels: { dtype: 'int64', shape: [N], data: data.y },
  };

  // Training graph: forward, loss, gradients and the AdamW update, one session run per step.
  const g = new Graph('spirals_train');
  const logits = mlp(g, g.input('x', 'float32', [N, 2]));
  const loss = crossEntropy(logits, g.input('labels', 'int64', [N]));
  g.rename(loss, 'loss');
  const params = ParamStore.fromGraph(g);
  const grads = grad(loss, g.params);
  g.output(loss);
  const opt = new AdamW(params, { lr: 0.01, betas: [0.9, 0.999], weightDecay: 1e-4 });
  const update = opt.build(g, g.params, grads);
  const train = await Session.fromGraph(g, { threads: 1 });

  // torch nn.Linear's default init: U(−1/√fan_in, 1/√fan_in) for weight and bias, seeded.
  const rand = prng(1);
  for (const e of params.entries) {
    const fanIn = LAYERS.find(([n]) => e.name.startsWith(`${n}.`))![1];
    const bound = 1 / Math.sqrt(fanIn);
    const v = params.view(e.name);
    for (let i = 0; i < v.length; i++) v[i] = (2 * rand() - 1) * bound;
  }

  const eg = new Graph('spirals_eval');
  const pred = argMax(mlp(eg, eg.input('x', 'float32', [N, 2])), 1);
  eg.rename(pred, 'pred');
  eg.output(pred);
  const evalSession = await Session.fromGraph(eg, { threads: 1 });
  const accuracy = async (): Promise<number> => {
    const out = await evalSession.run({ ...params.feeds(), x: feeds['x']! });
    const p = out['pred']!.data as BigInt64Array;
    let ok = 0;
    for (let i = 0; i < N; i++) if (p[i] === data.y[i]) ok++;
    return ok / N;
  };

  const start = Date.now();
  const losses: number[] = [];
  let acc = 0;
  for (let step = 1; step <= 3000; step++) {
    const r = await opt.runStep(train, update, params, feeds);
    losses.push((r.outputs['loss']!.data as Float32Array)[0]!);
    if (step % 250 === 0 && (acc = await accuracy()) >= 0.99) break;
  }
  acc = await accuracy();
  const secs = (Date.now() - start) / 1000;
  // eslint-disable-next-line no-console
  console.log(`spirals: ${losses.length} steps in ${secs.toFixed(1)} s, loss ${losses[0]!.toFixed(4)} → ${losses.at(-1)!.toFixed(4)}, accuracy ${(acc * 100).toFixed(1)} %`);
  assert.ok(Math.abs(losses[0]! - Math.log(2)) < 0.2, `initial loss ${losses[0]} should be near ln 2`);
  assert.ok(losses.at(-1)! < 0.1, `final loss ${losses.at(-1)}`);
  assert.ok(acc >= 0.97, `training accuracy ${acc}`);
  await Promise.all([train.release(), evalSession.release(), opt.dispose()]);
});
