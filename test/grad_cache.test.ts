// GradCache against the full-batch step, on the tiny fixture CLIP and its batch of 6 real pairs:
// chunks of 1, 2, 3, 4 (the last chunk smaller) and 6 give every parameter's gradient within 1e-5
// of the full-batch graph's and the same AdamW step within 1e-6, with the label-aware loss and with
// frozen towers (features fed in, a tower that only runs forward, part of a tower frozen), and with
// adapters that are extra tower parameters while the base weights are frozen.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { grad } from '../src/autodiff/grad.js';
import { ConfigError } from '../src/errors.js';
import type { ClipModelCfg } from '../src/models/clip/config.js';
import { clipHead, imageTower, textTower } from '../src/models/clip/model.js';
import type { TowerHooks } from '../src/models/clip/model.js';
import { Graph } from '../src/onnx/graph.js';
import { add, linear, reshape } from '../src/ops/index.js';
import { ParamStore } from '../src/runtime/params.js';
import { Session } from '../src/runtime/session.js';
import type { Tensor } from '../src/runtime/session.js';
import { GradCache, rowSlice } from '../src/train/grad_cache.js';
import type { GradCacheOptions } from '../src/train/grad_cache.js';
import { buildTowerForward } from '../src/train/grad_cache_graphs.js';
import { AdamW } from '../src/train/optim.js';
import { clipLoss } from '../src/train/loss.js';
import { trainableFilter } from '../src/train/param_groups.js';
import { buildTrainGraph } from '../src/train/train_graph.js';
import type { TrainGraphOptions } from '../src/train/train_graph.js';
import { loadTiny, tinyConfig } from './clip_fixture.js';
import { requireFixture } from './fixtures.js';
import { maxAbsDiff } from './tolerance.js';

const dir = requireFixture('tiny');
let fx: Awaited<ReturnType<typeof loadTiny>>;
let cfg: ClipModelCfg;

before(async () => {
  if (!dir) return;
  fx = await loadTiny(dir);
  cfg = tinyConfig(dir);
});

/** The fixture's initial weights in a store laid out as the full model's. */
function initialParams(): ParamStore {
  const g = buildTrainGraph(cfg).graph;
  const p = ParamStore.fromShapes(g.params.map((v) => ({ name: v.name, shape: v.shape as number[] })));
  for (const v of g.params) p.set(v.name, fx.model.tensors.get(v.name)!.data as Float32Array);
  return p;
}

/** One fixture batch (6 pairs): pixels [6, 3, 32, 32] and token ids [6, 77]. */
function batch(f: typeof fx.forward): Record<string, Tensor> {
  const texts = f.tensors.get('texts')!.data as BigInt64Array;
  const n = texts.length / 77;
  return {
    images: { dtype: 'float32', shape: [n, 3, 32, 32], data: f.tensors.get('images')!.data as Float32Array },
    texts: { dtype: 'int64', shape: [n, 77], data: texts },
  };
}

const LABELS: Tensor = { dtype: 'int64', shape: [6], data: BigInt64Array.from([0n, 1n, 0n, 2n, 1n, 0n]) };

/** The full-batch graph's loss and gradients by parameter name. */
async function fullBatch(params: ParamStore, feeds: Record<string, Tensor>, opts: TrainGraphOptions): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const tg = buildTrainGraph(cfg, opts);
  const s = await Session.fromGraph(tg.graph);
  const f: Record<string, Tensor> = {};
  for (const n of s.inputNames) f[n] = params.has(n) ? params.tensor(n) : feeds[n]!;
  const out = await s.run(f);
  await s.release();
  return { loss: (out['loss']!.data as Float32Array)[0]!, grads: new Map(tg.trainable.map((p, i) => [p.name, out[tg.grads[i]!.name]!.data as Float32Array])) };
}

/** Worst |GradCache − full batch| over every gradient; both must cover the same parameters. */
function compareGrads(gc: GradCache, ref: Map<string, Float32Array>): { max: number; at: string } {
  assert.deepEqual([...gc.trainable].sort(), [...ref.keys()].sort(), 'the same parameters get gradients');
  let max = 0;
  let at = '';
  for (const [name, want] of ref) {
    const d = maxAbsDiff(gc.grads.view(name), want);
    if (!(d <= max)) [max, at] = [d, name];
  }
  return { max, at };
}

async function gradCache(opts: Omit<GradCacheOptions, 'chunk'>, chunk: number): Promise<GradCache> {
  return GradCache.create(cfg, { chunk, session: { threads: 2 }, ...opts });
}

test('chunks of 1, 2, 3, 4 (last one smaller) and 6: the loss and every gradient equal the full batch within 1e-5', async (t) => {
  if (!dir) return t.skip();
  const params = initialParams();
  const b1 = batch(fx.forward);
  const ref = await fullBatch(params, b1, {});
  const report: string[] = [];
  for (const chunk of [1, 2, 3, 4, 6]) {
    const gc = await gradCache({}, chunk);
    if (chunk === 4) assert.deepEqual(gc.chunks(6), [[0, 4], [4, 6]], 'a chunk of 4 leaves a last chunk of 2');
    // Another batch first: the accumulators must start from zero on every batch.
    await gc.gradients(params, batch(fx.step2));
    const loss = await gc.gradients(params, b1);
    assert.ok(Math.abs(loss - ref.loss) <= 1e-6, `chunk ${chunk}: loss ${loss} vs ${ref.loss}`);
    const { max, at } = compareGrads(gc, ref.grads);
    report.push(`chunk ${chunk}: ${max.toExponential(2)} (${at})`);
    assert.ok(max <= 1e-5, `chunk ${chunk}: max |diff| ${max} at ${at}`);
    await gc.release();
  }
  t.diagnostic(`max |gradient diff| vs the full batch: ${report.join('; ')}`);
});

test('label-aware loss: chunks of 2 and 4 give the full batch gradients within 1e-5', async (t) => {
  if (!dir) return t.skip();
  const params = initialParams();
  const feeds = { ...batch(fx.forward), labels: LABELS };
  const ref = await fullBatch(params, feeds, { labelAware: true });
  const plain = await fullBatch(params, feeds, {});
  assert.ok(Math.abs(ref.loss - plain.loss) > 1e-3, 'the labels change the loss (pairs 0, 2 and 5 share a label)');
  const report: string[] = [];
  for (const chunk of [2, 4]) {
    const gc = await gradCache({ labelAware: true }, chunk);
    const loss = await gc.gradients(params, feeds);
    assert.ok(Math.abs(loss - ref.loss) <= 1e-6, `chunk ${chunk}: loss ${loss} vs ${ref.loss}`);
    const { max, at } = compareGrads(gc, ref.grads);
    report.push(`chunk ${chunk}: ${max.toExponential(2)} (${at})`);
    assert.ok(max <= 1e-5, `chunk ${chunk}: max |diff| ${max} at ${at}`);
    await gc.release();
  }
  t.diagnostic(`label-aware, max |gradient diff|: ${report.join('; ')}`);
});

test('frozen towers: features fed in, a tower that only runs forward, all but the last block frozen: gradients within 1e-5', async (t) => {
  if (!dir) return t.skip();
  const params = initialParams();
  const b1 = batch(fx.forward);
  // The image tower's features for the case where they come in as feeds (as fit's FeatureCache).
  const fwd = await Session.fromGraph(buildTowerForward(cfg, 'image'));
  const f: Record<string, Tensor> = { images: b1['images']! };
  for (const n of fwd.inputNames) if (params.has(n)) f[n] = params.tensor(n);
  const imageFeatures = (await fwd.run(f))['image_features']!;
  await fwd.release();

  const cases = [
    { name: 'image frozen, its features fed in', freeze: { image: true }, featureInputs: { image: true } },
    { name: 'text frozen, run forward only', freeze: { text: true }, featureInputs: {} },
    { name: 'image all but its last block, text all but 0 blocks', freeze: { image: { allButLast: 1 }, text: { allButLast: 0 } }, featureInputs: {} },
  ];
  const report: string[] = [];
  for (const c of cases) {
    const trainable = trainableFilter(cfg, c.freeze);
    const feeds = { ...b1, ...(c.featureInputs.image ? { image_features: imageFeatures } : {}) };
    const ref = await fullBatch(params, feeds, { trainable, featureInputs: c.featureInputs });
    const gc = await gradCache({ trainable, featureInputs: c.featureInputs }, 4);
    await gc.gradients(params, feeds);
    const { max, at } = compareGrads(gc, ref.grads);
    report.push(`${c.name}: ${max.toExponential(2)} (${at}; ${gc.trainable.length} trainable)`);
    assert.ok(max <= 1e-5, `${c.name}: max |diff| ${max} at ${at}`);
    assert.ok(!gc.trainable.some((n) => !trainable(n)), `${c.name}: no frozen parameter gets a gradient`);
    await gc.release();
  }
  t.diagnostic(report.join('; '));
});

// AdamW's first step is Δθ = −lr·g/(|g| + eps) (bias corrections cancel at t = 1), whose slope in g is
// lr·eps/(|g| + eps)² ≤ lr/eps = 1000 here: where |g| ≥ 1e-4 a rounding-level gradient difference
// (≤ 1e-5) moves the step by less than 1e-6, but where the exact gradient is zero (attention key
// biases: softmax ignores a shift shared by every key) float noise of 1e-9 becomes a step of
// lr·noise/eps. There the step can only be held to that slope times the measured gradient difference.
const HYPER = { lr: 1e-3, betas: [0.9, 0.98] as [number, number], eps: 1e-6, weightDecay: 0.2, inPlace: true, checkFinite: true };

test('one AdamW step equals the full-batch step within 1e-6 where |g| ≥ 1e-4, elsewhere within lr·|Δg|/eps; chunks 1 to 4', async (t) => {
  if (!dir) return t.skip();
  const b1 = batch(fx.forward);
  const ref = await fullBatch(initialParams(), b1, {});
  const plain = initialParams();
  const popt = new AdamW(plain, HYPER);
  await popt.step(plain, Object.fromEntries(ref.grads));
  await popt.dispose();
  const report: string[] = [];
  for (const chunk of [1, 2, 3, 4]) {
    const params = initialParams();
    const opt = new AdamW(params, HYPER);
    const gc = await gradCache({}, chunk);
    await gc.step(params, opt, b1);
    let well = 0;
    let ill = 0;
    let illCount = 0;
    for (const [name, g] of ref.grads) {
      const got = params.view(name);
      const want = plain.view(name);
      const mine = gc.grads.view(name);
      for (let i = 0; i < g.length; i++) {
        const d = Math.abs(got[i]! - want[i]!);
        if (Math.abs(g[i]!) >= 1e-4) {
          well = Math.max(well, d);
          assert.ok(d <= 1e-6, `chunk ${chunk}: ${name}[${i}] step differs by ${d} (gradient ${g[i]})`);
        } else {
          const bound = 1e-7 + (HYPER.lr * Math.abs(mine[i]! - g[i]!)) / HYPER.eps;
          assert.ok(d <= bound, `chunk ${chunk}: ${name}[${i}] step differs by ${d} > ${bound} (gradient ${g[i]} vs ${mine[i]})`);
          ill = Math.max(ill, d);
          if (d > 1e-6) illCount++;
        }
      }
    }
    report.push(`chunk ${chunk}: ${well.toExponential(2)} where |g| ≥ 1e-4; ${ill.toExponential(2)} elsewhere (${illCount} elements above 1e-6)`);
    await gc.release();
    await opt.dispose();
  }
  t.diagnostic(`max |weight diff| after one step: ${report.join('; ')}`);
});

test('adapters added through the towers\' linear hook, base weights frozen (as LoRA): gradients within 1e-5 of the full batch', async (t) => {
  if (!dir) return t.skip();
  // y = x·Wᵀ + b + (x·Aᵀ)·Bᵀ beside every MLP c_fc, rank 2; B is not zero so that A gets a gradient.
  const hook: TowerHooks = {
    linear: (x, w, b) => {
      // The patch embedding comes through the hook too, its weight [width, 3, p, p].
      const y = linear(x, w.rank === 2 ? w : reshape(w, [w.shape[0] as number, -1]), b);
      if (!w.name.endsWith('mlp.c_fc.weight')) return y;
      const [out, inp] = w.shape as number[];
      const a = w.graph.param(`${w.name}.lora_A`, [2, inp!]);
      const bb = w.graph.param(`${w.name}.lora_B`, [out!, 2]);
      return add(y, linear(linear(x, a, null), bb, null));
    },
  };
  const trainable = (name: string) => name.includes('.lora_');
  // The full-batch reference: both towers with the hook, CLIPLoss, gradients of the adapters only.
  const g = new Graph('adapter_reference');
  const s = cfg.vision_cfg.image_size;
  const it = imageTower(g, cfg, g.input('images', 'float32', ['batch', 3, s, s]), hook);
  const tt = textTower(g, cfg, g.input('texts', 'int64', ['batch', 'seq']), hook);
  const head = clipHead(g, it.features, tt.features);
  const loss = clipLoss(head.logitsPerImage, head.logitsPerText);
  const wrt = g.params.filter((p) => trainable(p.name));
  g.output(loss, ...grad(loss, wrt));
  const params = ParamStore.fromShapes(g.params.map((v) => ({ name: v.name, shape: v.shape as number[] })));
  let seed = 7;
  for (const v of g.params) {
    const base = fx.model.tensors.get(v.name);
    if (base) params.set(v.name, base.data as Float32Array);
    else params.view(v.name).forEach((_, i, a) => (a[i] = ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.1));
  }
  const feeds = batch(fx.forward);
  const session = await Session.fromGraph(g);
  const out = await session.run(Object.fromEntries(session.inputNames.map((n) => [n, params.has(n) ? params.tensor(n) : feeds[n]!])));
  await session.release();
  const ref = new Map(wrt.map((p, i) => [p.name, out[g.outputs[i + 1]!.name]!.data as Float32Array]));
  assert.equal(ref.size, 8, 'an A and a B beside each of the 2 + 2 blocks');

  const gc = await gradCache({ trainable, hooks: { image: hook, text: hook } }, 4);
  const l = await gc.gradients(params, feeds);
  assert.ok(Math.abs(l - (out[loss.name]!.data as Float32Array)[0]!) <= 1e-6, 'the same loss');
  const { max, at } = compareGrads(gc, ref);
  t.diagnostic(`adapters, chunk 4: max |gradient diff| ${max.toExponential(2)} (${at})`);
  assert.ok(max <= 1e-5, `${max} at ${at}`);
  assert.ok([...ref.values()].every((v) => v.some((x) => x !== 0)), 'every adapter gets a non-zero gradient');
  await gc.release();
});

test('two AdamW steps (in place, as fit makes them) stay within 1e-4 of the fused full-batch steps, chunks 1 to 4', async (t) => {
  if (!dir) return t.skip();
  const batches = [batch(fx.forward), batch(fx.step2)];
  // The plain step: the fused graph fit() runs without GradCache.
  const plain = initialParams();
  {
    const tg = buildTrainGraph(cfg, { outputGradients: false });
    const opt = new AdamW(plain, HYPER);
    const update = opt.build(tg.graph, tg.trainable, tg.grads);
    const s = await Session.fromGraph(tg.graph, { memPattern: false });
    for (const b of batches) await opt.runStep(s, update, plain, b);
    await s.release();
    await opt.dispose();
  }
  const initial = initialParams();
  const report: string[] = [];
  for (const chunk of [1, 2, 3, 4]) {
    const params = initialParams();
    const opt = new AdamW(params, HYPER);
    const gc = await gradCache({}, chunk);
    for (const b of batches) await gc.step(params, opt, b);
    let max = 0;
    let at = '';
    for (const e of params.entries) {
      const d = maxAbsDiff(params.view(e.name), plain.view(e.name));
      if (!(d <= max)) [max, at] = [d, e.name];
    }
    report.push(`chunk ${chunk}: ${max.toExponential(2)} (${at})`);
    // The fixture README's tolerance for a step through one's own backward; see the slope above.
    assert.ok(max <= 1e-4, `chunk ${chunk}: max |diff| ${max} at ${at}`);
    assert.ok(maxAbsDiff(params.view('visual.proj'), initial.view('visual.proj')) > 1e-4, 'the weights moved');
    assert.equal(opt.stepCount, 2);
    await gc.release();
    await opt.dispose();
  }
  t.diagnostic(`max |weight diff| after two steps vs the fused step: ${report.join('; ')}`);
});

test('rowSlice views rows without copying; the chunks cover the batch once', async (t) => {
  if (!dir) return t.skip();
  const x: Tensor = { dtype: 'int64', shape: [5, 3], data: BigInt64Array.from({ length: 15 }, (_, i) => BigInt(i)) };
  const s = rowSlice(x, 3, 5);
  assert.deepEqual(s.shape, [2, 3]);
  assert.deepEqual([...(s.data as BigInt64Array)], [9n, 10n, 11n, 12n, 13n, 14n]);
  assert.equal(s.data.buffer, x.data.buffer, 'a view');
  const gc = await gradCache({}, 4);
  assert.deepEqual(gc.chunks(9), [[0, 4], [4, 8], [8, 9]]);
  assert.deepEqual(gc.chunks(3), [[0, 3]], 'a chunk above the batch is one chunk');
  await gc.release();
});

test('a chunk ≤ 0 or not an integer is a ConfigError naming gradCache.chunk', async (t) => {
  if (!dir) return t.skip();
  for (const chunk of [0, -2, 2.5, Number.NaN, '4' as unknown as number]) {
    await assert.rejects(GradCache.create(cfg, { chunk }), (e: unknown) => e instanceof ConfigError && e.field === 'gradCache.chunk' && /positive integer/.test(e.message), `chunk ${chunk}`);
  }
});
