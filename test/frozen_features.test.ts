// A fully frozen tower leaves the training step: its features are computed once and fed in. The
// step without the tower must equal the full step with the tower's parameters frozen, and fit()
// with a frozen tower must give what it gave when the tower ran in every step.

import assert from 'node:assert/strict';
import path from 'node:path';
import { before, test } from 'node:test';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { buildImageEncoder, buildTextEncoder } from '../src/models/clip/graphs.js';
import { ParamStore } from '../src/runtime/params.js';
import { Session } from '../src/runtime/session.js';
import type { Tensor } from '../src/runtime/session.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions, FitResult } from '../src/train/fit_types.js';
import { frozenTowers } from '../src/train/frozen_features.js';
import { trainableFilter } from '../src/train/param_groups.js';
import { buildTrainGraph } from '../src/train/train_graph.js';
import { makeShapesCsv, tinyFitOptions } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
let csv = '';
before(async () => {
  csv = (await makeShapesCsv(20)).csv;
});

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('frozenTowers: a tower counts as frozen only when none of its parameters trains', async (t) => {
  if (!tiny) return t.skip();
  const model = await ClipModel.load(tiny, { tokenizer: bpe });
  const cfg = model.config.model_cfg;
  const e = model.params.entries;
  assert.deepEqual(frozenTowers(e, trainableFilter(cfg, {})), { image: false, text: false });
  assert.deepEqual(frozenTowers(e, trainableFilter(cfg, { image: true })), { image: true, text: false });
  assert.deepEqual(frozenTowers(e, trainableFilter(cfg, { text: true })), { image: false, text: true });
  assert.deepEqual(frozenTowers(e, trainableFilter(cfg, { image: { allButLast: 1 } })), { image: false, text: false });
  assert.deepEqual(frozenTowers(e, trainableFilter(cfg, { image: { allButLast: 0 }, text: true })), { image: true, text: true });
  await model.release();
});

for (const tower of ['image', 'text'] as const) {
  test(`the step with the ${tower} tower's features fed in equals the full step with that tower frozen (loss and every gradient within 1e-6)`, async (t) => {
    if (!tiny) return t.skip();
    const model = await ClipModel.load(tiny, { tokenizer: bpe });
    const cfg = model.config.model_cfg;
    const trainable = trainableFilter(cfg, { [tower]: true });
    const p = model.params;
    const feedsOf = (s: Session) => Object.fromEntries(s.inputNames.filter((n) => p.has(n)).map((n) => [n, p.tensor(n)]));
    const n = 6;
    const s = cfg.vision_cfg.image_size;
    const pixels = Float32Array.from({ length: n * 3 * s * s }, (_, i) => Math.sin(i * 0.37));
    const images: Tensor = { dtype: 'float32', shape: [n, 3, s, s], data: pixels };
    const texts = model.tokenize(['a red circle', 'two blue squares on white', 'a green triangle', 'yellow star', 'a small black dot in the corner', 'stripes']);

    const full = buildTrainGraph(cfg, { trainable });
    const fs = await Session.fromGraph(full.graph, { threads: 1 });
    const want = await fs.run({ ...feedsOf(fs), images, texts });
    await fs.release();

    const enc = tower === 'image' ? buildImageEncoder(cfg) : buildTextEncoder(cfg);
    const es = await Session.fromGraph(enc.graph, { threads: 1 });
    const feats = (await es.run({ ...feedsOf(es), ...(tower === 'image' ? { pixel_values: images } : { input_ids: texts }) }))[enc.output.name]!;
    await es.release();
    const part = buildTrainGraph(cfg, { trainable, featureInputs: { [tower]: true } });
    assert.ok(!part.graph.params.some((v) => (tower === 'image') === v.name.startsWith('visual.') && v.name !== 'logit_scale'), `no ${tower} tower parameter in the graph`);
    assert.deepEqual(part.trainable.map((v) => v.name), full.trainable.map((v) => v.name));
    const ps = await Session.fromGraph(part.graph, { threads: 1 });
    const got = await ps.run({ ...feedsOf(ps), ...(tower === 'image' ? { image_features: feats, texts } : { text_features: feats, images }) });
    await ps.release();

    assert.ok(maxDiff(got['loss']!.data as Float32Array, want['loss']!.data as Float32Array) <= 1e-6, 'loss');
    let worst = 0;
    full.grads.forEach((gv, i) => {
      const d = maxDiff(got[part.grads[i]!.name]!.data as Float32Array, want[gv.name]!.data as Float32Array);
      assert.ok(d <= 1e-6, `${full.trainable[i]!.name}: gradients differ by ${d}`);
      worst = Math.max(worst, d);
    });
    t.diagnostic(`${full.grads.length} gradients, worst difference ${worst.toExponential(1)}`);
    await model.release();
  });
}

const base = (): FitOptions =>
  tinyFitOptions(tiny!, csv, {
    seed: 5,
    // Unshuffled, the cache's batches are the steps' batches, so each feature row is computed among
    // the same rows both ways. Shuffled, a row computed among other rows may differ at float rounding
    // (~1e-7), which AdamW at lr 1e-3 on this tiny model lifts to ~3e-6 in the weights after six steps.
    shuffle: false,
    callbacks: [{ type: 'EvaluationCallback', queryData: csv, indexData: csv, limit: 5 }],
  });

for (const tower of ['image', 'text'] as const) {
  test(`fit() with the ${tower} tower frozen: features computed once give the weights and metrics of running the tower every step (within 1e-6)`, async (t) => {
    if (!tiny) return t.skip();
    const run = async (reuse: boolean): Promise<{ r: FitResult; p: ParamStore; logs: string[] }> => {
      const logs: string[] = [];
      const r = await fit({ ...base(), freeze: { [tower]: true }, reuseFrozenFeatures: reuse }, { log: (_, m) => logs.push(m) });
      return { r, p: await ParamStore.fromSafetensors(path.join(r.artifactDir, 'open_clip_model.safetensors')), logs };
    };
    const every = await run(false);
    const once = await run(true);
    assert.ok(once.logs.some((m) => m.includes(`${tower} tower frozen: its features computed once`)), 'the cached path ran');
    assert.ok(!every.logs.some((m) => m.includes('features computed once')), 'the reference path ran the tower every step');
    let worst = 0;
    for (const e of every.p.entries) {
      const d = maxDiff(once.p.view(e.name), every.p.view(e.name));
      assert.ok(d <= 1e-6, `${e.name} differs by ${d}`);
      worst = Math.max(worst, d);
    }
    assert.equal(once.r.history.length, every.r.history.length);
    once.r.history.forEach((h, i) => {
      for (const [k, v] of Object.entries(every.r.history[i]!.metrics)) assert.ok(Math.abs(h.metrics[k]! - v) <= 1e-6, `epoch ${h.epoch} ${k}: ${h.metrics[k]} vs ${v}`);
    });
    t.diagnostic(`worst weight difference ${worst.toExponential(1)}`);
  });
}
