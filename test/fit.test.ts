// fit() end to end on the tiny fixture CLIP and a generated set of 24 pairs.

import assert from 'node:assert/strict';
import { existsSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { ConfigError, FitStoppedError } from '../src/errors.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { ParamStore } from '../src/runtime/params.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { makeShapesCsv, tinyFitOptions } from './fit_data.js';
import { requireFixture } from './fixtures.js';

const tiny = requireFixture('tiny');
let csv = '';
before(async () => {
  csv = (await makeShapesCsv(24)).csv;
});

const base = (): FitOptions => tinyFitOptions(tiny!, csv);

async function paramsOf(dir: string): Promise<ParamStore> {
  return ParamStore.fromSafetensors(path.join(dir, 'open_clip_model.safetensors'));
}

test('fit trains, evaluates zero-shot and per epoch, and writes a loadable artifact with ONNX towers', async (t) => {
  if (!tiny) return t.skip();
  const metrics: [number, Record<string, number>][] = [];
  const progress: { epoch: number; step: number; loss: number; stepLoss?: number }[] = [];
  const r = await fit(
    { ...base(), epochs: 3, toOnnx: true, callbacks: [{ type: 'EvaluationCallback', queryData: csv, indexData: csv, limit: 5 }] },
    { metrics: (e, v) => metrics.push([e, v]), progress: (p) => progress.push(p) },
  );
  assert.deepEqual(metrics.map(([e]) => e), [0, 1, 2, 3]);
  // Each step reports its own loss and the epoch's running mean of them; an epoch's train_loss is their mean.
  assert.deepEqual(progress.map((p) => `${p.epoch}:${p.step}`), ['1:1', '1:2', '1:3', '2:1', '2:2', '2:3', '3:1', '3:2', '3:3']);
  for (const e of [1, 2, 3]) {
    const steps = progress.filter((p) => p.epoch === e);
    steps.forEach((p, i) => {
      assert.ok(Number.isFinite(p.stepLoss) && p.stepLoss! > 0);
      const mean = steps.slice(0, i + 1).reduce((a, q) => a + q.stepLoss!, 0) / (i + 1);
      assert.ok(Math.abs(p.loss - mean) < 1e-12, `epoch ${e} step ${i + 1}: running mean ${p.loss} of step losses ${mean}`);
    });
    assert.ok(Math.abs(metrics[e]![1]['train_loss']! - steps.at(-1)!.loss) < 1e-12);
  }
  assert.ok(new Set(progress.map((p) => p.stepLoss)).size > 1, 'step losses differ');
  const name = 'clip-text-to-clip-vision_';
  for (const m of ['precision_at_k', 'recall_at_k', 'f1_score_at_k', 'hit_at_k', 'average_precision', 'reciprocal_rank', 'r_precision', 'dcg_at_k', 'ndcg_at_k'])
    assert.ok(name + m in metrics[0]![1], `zero-shot ${name + m}`);
  const first = metrics[1]![1]['train_loss']!;
  const last = metrics[3]![1]['train_loss']!;
  t.diagnostic(`train_loss ${first.toFixed(3)} → ${last.toFixed(3)}; MRR ${metrics[0]![1][name + 'reciprocal_rank']!.toFixed(3)} → ${metrics[3]![1][name + 'reciprocal_rank']!.toFixed(3)}`);
  assert.ok(last < first, 'the loss goes down');
  assert.ok(metrics[3]![1][name + 'reciprocal_rank']! > metrics[0]![1][name + 'reciprocal_rank']!, 'retrieval improves over zero-shot');
  assert.equal(r.epochs, 3);
  assert.equal(r.steps, 9);
  for (const f of ['open_clip_config.json', 'open_clip_model.safetensors', 'bpe_simple_vocab_16e6.txt.gz', 'metadata.json', 'clip-text/model.onnx', 'clip-vision/model.onnx'])
    assert.ok(existsSync(path.join(r.artifactDir, f)), f);
  // The artifact is itself a model folder; its ONNX text tower and its safetensors agree.
  const m = await ClipModel.load(r.artifactDir);
  const e = await m.encodeTexts(['a red square', 'a blue circle']);
  const ort = await import('onnxruntime-node');
  const s = await ort.InferenceSession.create(path.join(r.artifactDir, 'clip-text/model.onnx'));
  const ids = m.tokenize(['a red square', 'a blue circle']);
  const out = (await s.run({ input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.shape) }))['text_embeds']!.data as Float32Array;
  for (let i = 0; i < 2; i++) {
    const row = out.subarray(i * 32, i * 32 + 32);
    const norm = Math.hypot(...row);
    for (let j = 0; j < 32; j++) assert.ok(Math.abs(row[j]! / norm - e.data[i * 32 + j]!) < 1e-5);
  }
  await m.release();
});

test('a run stopped mid-way resumes from its checkpoint to the same final weights', async (t) => {
  if (!tiny) return t.skip();
  const opts = { ...base(), epochs: 3 };
  const whole = await fit(opts);
  const resumedOpts = { ...base(), epochs: 3 };
  let steps = 0;
  // 24 pairs in batches of 8: step 7 is the first of epoch 3; epochs 1 and 2 are checkpointed.
  await assert.rejects(
    fit(resumedOpts, { shouldStop: () => ++steps === 7 }),
    (err: unknown) => err instanceof FitStoppedError && err.epoch === 3 && err.step === 7 && err.epochsDone === 2 && /stopped on request at epoch 3, step 7/.test(err.message),
  );
  const resumed = await fit(resumedOpts);
  assert.equal(resumed.epochs, 3);
  const a = await paramsOf(whole.artifactDir);
  const b = await paramsOf(resumed.artifactDir);
  assert.deepEqual(b.data, a.data, 'bit-identical weights');
});

test('WiSE-FT with alpha 0 returns the pretrained weights exactly; a bad alpha fails before training', async (t) => {
  if (!tiny) return t.skip();
  const r = await fit({ ...base(), epochs: 1, callbacks: [{ type: 'WiSEFTCallback', alpha: 0 }] });
  const got = await paramsOf(r.artifactDir);
  const want = await ParamStore.fromSafetensors(path.join(tiny, 'open_clip_model.safetensors'));
  for (const e of want.entries) assert.deepEqual(got.view(e.name), want.view(e.name), e.name);
  let loaded = false;
  await assert.rejects(
    fit({ ...base(), callbacks: [{ type: 'WiSEFTCallback', alpha: 1.5 }] }, { log: () => (loaded = true) }),
    (e: unknown) => e instanceof ConfigError && /WiSEFTCallback.alpha: must be in \[0, 1\], got 1.5/.test(e.message),
  );
  assert.equal(loaded, false, 'nothing was loaded or trained');
});

test('bad options are ConfigErrors naming the field', async (t) => {
  if (!tiny) return t.skip();
  await assert.rejects(fit({ ...base(), batchSize: 100 }), /batchSize: 100 is larger than the 24 training pairs/);
  await assert.rejects(fit({ ...base(), epochs: 0 }), /epochs: must be a positive integer/);
  await assert.rejects(fit({ ...base(), optimizer: 'lion' as never }), /optimizer: must be one of adamw, adam, sgd/);
  await assert.rejects(fit({ ...base(), trainData: '/nonexistent/x.csv' }), /trainData: no such file/);
  await assert.rejects(fit({ ...base(), model: '/nonexistent-model' }), /nonexistent-model/);
});

test('without shuffling the seed does not matter; with it, it does; label-aware loss and freezing run', async (t) => {
  if (!tiny) return t.skip();
  const a = await fit({ ...base(), epochs: 1, shuffle: false, seed: 1 });
  const b = await fit({ ...base(), epochs: 1, shuffle: false, seed: 2 });
  const c = await fit({ ...base(), epochs: 1, shuffle: true, seed: 2 });
  assert.deepEqual((await paramsOf(b.artifactDir)).data, (await paramsOf(a.artifactDir)).data);
  assert.notDeepEqual((await paramsOf(c.artifactDir)).data, (await paramsOf(a.artifactDir)).data);
  const frozen = await fit({ ...base(), epochs: 1, labelAwareLoss: true, freeze: { image: true } });
  const w = await paramsOf(frozen.artifactDir);
  const init = await ParamStore.fromSafetensors(path.join(tiny, 'open_clip_model.safetensors'));
  assert.deepEqual(w.view('visual.conv1.weight'), init.view('visual.conv1.weight'), 'the locked image tower is unchanged');
  assert.notDeepEqual(w.view('text_projection'), init.view('text_projection'), 'the text tower trained');
});

test('a NaN loss fails the fit naming the step, and the last good checkpoint is kept', async (t) => {
  if (!tiny) return t.skip();
  const opts = { ...base(), epochs: 1 };
  await fit(opts);
  const ckpt = path.join(opts.workDir!, 'checkpoints', 'epoch-0001', 'params.safetensors');
  const before = await ParamStore.fromSafetensors(ckpt);
  // Resume for a second epoch with an absurd learning rate: AdamW moves every weight by ~lr.
  await assert.rejects(fit({ ...opts, epochs: 2, learningRate: 1e38 }), (e: unknown) => {
    assert.match(String((e as Error).message), /training failed at step \d+: .*(non-finite|loss is NaN)/);
    return true;
  });
  const after = await ParamStore.fromSafetensors(ckpt);
  assert.deepEqual(after.data, before.data, 'the epoch-1 checkpoint is untouched');
});

test('resume passes over a damaged newest checkpoint for the one before it, and names every damaged one when none reads', async (t) => {
  if (!tiny) return t.skip();
  const opts = { ...base(), epochs: 2, callbacks: [{ type: 'TrainingCheckpoint' as const, lastKEpochs: 2 }] };
  const full = await fit(opts);
  const want = (await paramsOf(full.artifactDir)).data;
  const ckpt = (e: number) => path.join(opts.workDir!, 'checkpoints', `epoch-000${e}`);
  // A damaged disk: the newest checkpoint's parameters are cut short.
  const p2 = path.join(ckpt(2), 'params.safetensors');
  truncateSync(p2, statSync(p2).size - 100);
  const logs: string[] = [];
  const again = await fit(opts, { log: (_, m) => logs.push(m) });
  assert.ok(logs.some((m) => m.includes('passed over the damaged checkpoint') && m.includes('epoch-0002')), logs.join('\n'));
  assert.ok(logs.some((m) => /resumed from the checkpoint of epoch 1/.test(m)), logs.join('\n'));
  assert.deepEqual((await paramsOf(again.artifactDir)).data, want, 'epoch 2 trained again to the same weights');
  // Every checkpoint damaged: a clear error, and nothing trained over them.
  writeFileSync(path.join(ckpt(1), 'state.json'), '{not json');
  writeFileSync(path.join(ckpt(2), 'optimizer.safetensors'), 'garbage');
  await assert.rejects(fit({ ...opts, epochs: 3 }), /no checkpoint in .*checkpoints can be read: epoch-0002 \(.*\); epoch-0001 \(/);
});
