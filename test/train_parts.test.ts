// Schedules, weight-decay groups and freezing, and the callbacks' decisions, on hand-computed cases.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../src/errors.js';
import { ParamStore } from '../src/runtime/params.js';
import { BestModelCheckpoint, EarlyStopping, EvaluationCallback, TrainingCheckpoint, WiSEFTCallback, wiseFt } from '../src/train/callbacks.js';
import type { TrainContext } from '../src/train/callbacks.js';
import { excludedFromDecay, paramGroups, trainableFilter } from '../src/train/param_groups.js';
import { makeSchedule } from '../src/train/schedule.js';
import type { ClipModelCfg } from '../src/models/clip/config.js';

test('schedules: warm-up, constant, linear and cosine', () => {
  const c = makeSchedule('constant', 1, 10, 2);
  assert.deepEqual([0, 1, 2, 9].map((t) => c.lr(t)), [0.5, 1, 1, 1]);
  const l = makeSchedule('linear', 1, 10, 0);
  assert.deepEqual([0, 5, 10].map((t) => l.lr(t)), [1, 0.5, 0]);
  const k = makeSchedule('cosine', 2, 11, 1);
  // After 1 warm-up step, p = (t − 1)/10: t = 6 → p = ½ → 2·½·(1 + cos(π/2)) = 1.
  assert.equal(k.lr(0), 2);
  assert.ok(Math.abs(k.lr(6) - 1) < 1e-12);
  assert.ok(Math.abs(k.lr(11)) < 1e-12);
  assert.throws(() => makeSchedule('step' as never, 1, 1), /scheduler: must be constant, linear or cosine/);
});

const cfg = { embed_dim: 8, quick_gelu: true, vision_cfg: { image_size: 32, layers: 4, width: 64, patch_size: 8, head_width: 64, mlp_ratio: 4 }, text_cfg: { context_length: 77, vocab_size: 10, width: 16, heads: 2, layers: 3, mlp_ratio: 4 } } as ClipModelCfg;

test("open_clip's weight-decay rule: gains, biases, logit_scale and 1-d parameters are excluded", () => {
  const e = (name: string, shape: number[]) => ({ name, shape, offset: 0, size: 1 });
  assert.equal(excludedFromDecay(e('visual.ln_pre.weight', [64])), true);
  assert.equal(excludedFromDecay(e('transformer.resblocks.0.attn.in_proj_bias', [48])), true);
  assert.equal(excludedFromDecay(e('logit_scale', [])), true);
  assert.equal(excludedFromDecay(e('visual.class_embedding', [64])), true);
  assert.equal(excludedFromDecay(e('visual.proj', [64, 8])), false);
  assert.equal(excludedFromDecay(e('token_embedding.weight', [10, 16])), false);
  assert.equal(excludedFromDecay(e('logit_scale', []), 'none'), false);
  const groups = paramGroups([e('a.weight', [2, 2]), e('a.bias', [2]), e('visual.x', [2, 2])], (n) => !n.startsWith('visual'), 1e-3, 0.2, 'default');
  assert.deepEqual(groups, [
    { params: ['a.weight'], lr: 1e-3, weightDecay: 0.2 },
    { params: ['a.bias'], lr: 1e-3, weightDecay: 0 },
  ]);
});

test('freezing: a whole tower, or all but its last N blocks and its head', () => {
  const full = trainableFilter(cfg, { image: true });
  assert.equal(full('visual.transformer.resblocks.3.ln_1.weight'), false);
  assert.equal(full('visual.proj'), false);
  assert.equal(full('transformer.resblocks.0.ln_1.weight'), true);
  assert.equal(full('logit_scale'), true);
  const last1 = trainableFilter(cfg, { text: { allButLast: 1 } });
  assert.equal(last1('transformer.resblocks.2.mlp.c_fc.weight'), true);
  assert.equal(last1('transformer.resblocks.1.mlp.c_fc.weight'), false);
  assert.equal(last1('token_embedding.weight'), false);
  assert.equal(last1('ln_final.weight'), true);
  assert.equal(last1('text_projection'), true);
  assert.equal(last1('visual.conv1.weight'), true);
});

function ctx(): TrainContext & { logs: string[] } {
  const logs: string[] = [];
  return { model: null as never, pretrained: null as never, workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-cb-')), stop: false, logs, log: (_l, m) => logs.push(m) };
}

test('EarlyStopping: patience, minDelta, mode and baseline', async () => {
  const c = ctx();
  const es = new EarlyStopping({ monitor: 'val_loss', patience: 2, minDelta: 0.1 });
  for (const [e, v] of [[1, 1.0], [2, 0.95], [3, 0.7], [4, 0.65]] as const) {
    await es.onEpochEnd(c, e, { val_loss: v });
    assert.equal(c.stop, false, `epoch ${e}`);
  }
  await es.onEpochEnd(c, 5, { val_loss: 0.66 });
  assert.equal(c.stop, true, 'two epochs without an improvement of more than 0.1 after epoch 3');
  const c2 = ctx();
  const es2 = new EarlyStopping({ monitor: 'hit', mode: 'max', patience: 1, baseline: 0.5 });
  await es2.onEpochEnd(c2, 1, { hit: 0.4 });
  assert.equal(c2.stop, true, 'never beat the baseline');
  assert.throws(() => new EarlyStopping({ mode: 'up' as never }), (e: unknown) => e instanceof ConfigError && /EarlyStopping.mode/.test(e.message));
});

test('WiSE-FT mixes every parameter; alpha is checked when the callback is made', () => {
  const a = ParamStore.fromShapes([{ name: 'w', shape: [3] }]);
  const b = a.clone();
  a.set('w', [1, 2, 3]);
  b.set('w', [3, 2, 1]);
  wiseFt(a, b, 0.25); // 0.75·b + 0.25·a
  assert.deepEqual(Array.from(a.view('w')), [2.5, 2, 1.5]);
  for (const bad of [-0.1, 1.1, Number.NaN]) assert.throws(() => new WiSEFTCallback(bad), /WiSEFTCallback.alpha: must be in \[0, 1\]/);
  assert.throws(() => new EvaluationCallback('q', 'i', { limit: 0 }), /EvaluationCallback.limit/);
  assert.throws(() => new TrainingCheckpoint({ lastKEpochs: 0 }), /lastKEpochs/);
});

test('BestModelCheckpoint keeps and restores the best epoch', async () => {
  const params = ParamStore.fromShapes([{ name: 'w', shape: [2] }]);
  const c = { ...ctx(), model: { params } as never };
  const cb = new BestModelCheckpoint({ monitor: 'val_loss', mode: 'min' });
  params.set('w', [1, 1]);
  await cb.onEpochEnd(c, 1, { val_loss: 0.5 });
  params.set('w', [2, 2]);
  await cb.onEpochEnd(c, 2, { val_loss: 0.7 });
  await cb.onTrainEnd(c);
  assert.equal(cb.bestEpoch, 1);
  assert.deepEqual(Array.from(params.view('w')), [1, 1]);
});
