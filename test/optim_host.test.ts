// The wasm optimizer (train/optim_host.ts) against the onnxruntime update graph it replaces on the
// CPU: the same bits for Adam and AdamW (groups, weight decay on and off, lengths that are not a
// multiple of 4), clipping to rounding, a NaN gradient that changes nothing, and fit() end to end
// with either backend giving the same weights.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { before, test } from 'node:test';
import { NonFiniteError } from '../src/errors.js';
import { ParamStore } from '../src/runtime/params.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { Adam, AdamW, SGD } from '../src/train/optim.js';
import type { AdamOptions } from '../src/train/optim.js';
import { HostUpdate } from '../src/train/optim_host.js';
import { WASM_MAX_BYTES, WasmArena } from '../src/train/wasm_arena.js';
import { makeShapesCsv, tinyFitOptions } from './fit_data.js';
import { requireFixture } from './fixtures.js';

const SHAPES: [string, number[]][] = [
  ['w', [7, 5]],
  ['b', [3]],
  ['ln.weight', [13]],
  ['big', [64, 33]],
];

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function store(seed: number, scale = 1): ParamStore {
  const p = ParamStore.fromShapes(SHAPES);
  const r = seeded(seed);
  for (let i = 0; i < p.data.length; i++) p.data[i] = r() * scale;
  return p;
}

const groups = [
  { params: ['w', 'big'], lr: 3e-3, weightDecay: 0.1 },
  { params: ['b', 'ln.weight'], lr: 1e-3, weightDecay: 0 },
];

/** Three steps through the wasm kernels and through the onnxruntime graph, on the same gradients. */
async function both(make: (p: ParamStore, o: AdamOptions) => AdamW, o: AdamOptions = {}) {
  const pHost = store(1);
  const pGraph = store(1);
  const host = HostUpdate.create(make(pHost, { groups, ...o }), pHost);
  assert.ok(typeof host !== 'string', String(host));
  const graphOpt = make(pGraph, { groups, ...o });
  const norms: [number | null, number | null][] = [];
  for (let step = 0; step < 3; step++) {
    const g = store(100 + step, 0.02);
    const a = host.apply((name) => g.view(name));
    const b = await graphOpt.step(pGraph, g);
    norms.push([a.gradNorm, b.gradNorm]);
  }
  await graphOpt.dispose();
  return { pHost, pGraph, host, graphOpt, norms };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('AdamW in wasm gives the onnxruntime graph’s bits, parameters and both moments, over three steps', async () => {
  const { pHost, pGraph, host, graphOpt } = await both((p, o) => new AdamW(p, { betas: [0.9, 0.98], eps: 1e-6, ...o }));
  assert.deepEqual(pHost.data, pGraph.data);
  for (const slot of ['exp_avg', 'exp_avg_sq']) assert.deepEqual(host.opt.state[slot]!.data, graphOpt.state[slot]!.data, slot);
  assert.equal(host.opt.stepCount, 3);
  assert.ok(maxDiff(pHost.data, store(1).data) > 1e-4, 'the parameters moved');
});

test('Adam (L2 weight decay in the gradient) in wasm gives the graph’s bits', async () => {
  const { pHost, pGraph } = await both((p, o) => new Adam(p, { weightDecay: 0.05, ...o }));
  assert.deepEqual(pHost.data, pGraph.data);
});

test('clipping by global norm: the same total norm and parameters up to float32 rounding', async () => {
  const { pHost, pGraph, norms } = await both((p, o) => new AdamW(p, o), { maxGradNorm: 0.05 });
  for (const [a, b] of norms) assert.ok(Math.abs(a! - b!) < 1e-6 * b!, `norm ${a} vs ${b}`);
  assert.ok(norms[0]![0]! > 0.05, 'the clip was active');
  assert.ok(maxDiff(pHost.data, pGraph.data) < 1e-6, `max |diff| ${maxDiff(pHost.data, pGraph.data)}`);
});

test('a NaN gradient is named, and nothing is written: parameters, moments and step count stay', () => {
  const p = store(5);
  const host = HostUpdate.create(new AdamW(p, { groups, checkFinite: true }), p);
  assert.ok(typeof host !== 'string');
  const g = store(6, 0.01);
  host.apply((name) => g.view(name));
  const before = [p.data.slice(), host.opt.state['exp_avg']!.data.slice(), host.opt.state['exp_avg_sq']!.data.slice()];
  g.view('big')[77] = NaN;
  assert.throws(
    () => host.apply((name) => g.view(name)),
    (e: unknown) => e instanceof NonFiniteError && /big_grad/.test(e.message) && /77/.test(e.message),
  );
  assert.deepEqual(p.data, before[0]);
  assert.deepEqual(host.opt.state['exp_avg']!.data, before[1]);
  assert.deepEqual(host.opt.state['exp_avg_sq']!.data, before[2]);
  assert.equal(host.opt.stepCount, 1);
});

test('what the wasm backend cannot take is said: SGD, and more than one wasm memory holds', () => {
  const p = store(1);
  assert.match(String(HostUpdate.create(new SGD(p, { lr: 0.1 }), p)), /sgd has no wasm kernel/);
  assert.equal(WasmArena.tryCreate([WASM_MAX_BYTES / 4 + 1]), null);
  assert.equal(WasmArena.bytesFor([1, 4, 5]), 16 + 16 + 32);
});

test('the committed kernel bytes are the assembled adam.wat', () => {
  execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { stdio: 'pipe' });
});

const tiny = requireFixture('tiny');
let csv = '';
before(async () => {
  csv = (await makeShapesCsv(16)).csv;
});

test('fit() with the wasm optimizer and with the fused onnxruntime one writes the same weights', async (t) => {
  if (!tiny) return t.skip();
  const run = async (optimizerBackend: 'wasm' | 'onnxruntime', extra: Partial<FitOptions> = {}) => {
    const logs: string[] = [];
    const r = await fit(
      tinyFitOptions(tiny, csv, { optimizerBackend, ...extra }),
      { log: (_l, m) => logs.push(m) },
    );
    return { params: await ParamStore.fromSafetensors(path.join(r.artifactDir, 'open_clip_model.safetensors')), logs };
  };
  const a = await run('wasm');
  const b = await run('onnxruntime');
  assert.ok(!a.logs.some((m) => /optimizer step in onnxruntime/.test(m)), 'the wasm backend ran');
  assert.deepEqual(a.params.data, b.params.data);
  const sgd = await run('wasm', { optimizer: 'sgd', epochs: 1 });
  assert.ok(sgd.logs.some((m) => /optimizer step in onnxruntime: sgd has no wasm kernel/.test(m)), sgd.logs.join('\n'));
});
