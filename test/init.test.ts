// Fresh CLIP parameters follow OpenAI's initialisation: checked by their statistics.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseModelConfig } from '../src/models/clip/config.js';
import { createModelFolder, initClipParams } from '../src/models/clip/weights/init.js';
import { fit } from '../src/train/fit.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, REPO_ROOT, requireFixture } from './fixtures.js';

const cfg = parseModelConfig(JSON.parse(readFileSync(path.join(REPO_ROOT, 'src/models/clip/configs/tiny-test.json'), 'utf8')), 'tiny-test');

function stats(a: Float32Array) {
  let s = 0;
  let s2 = 0;
  for (const x of a) {
    s += x;
    s2 += x * x;
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), min: Math.min(...a.subarray(0, 100000)), max: Math.max(...a.subarray(0, 100000)) };
}

test('initialisation matches clip/model.py: scales of every kind of parameter, deterministic by seed', () => {
  const p = initClipParams(cfg, 7);
  const close = (name: string, std: number) => {
    const st = stats(p.view(name));
    assert.ok(Math.abs(st.mean) < 3 * std / Math.sqrt(p.view(name).length) + 1e-3, `${name} mean ${st.mean}`);
    assert.ok(Math.abs(st.std / std - 1) < 0.05, `${name} std ${st.std} vs ${std}`);
  };
  close('token_embedding.weight', 0.02);
  close('positional_embedding', 0.01);
  close('visual.positional_embedding', 128 ** -0.5);
  close('transformer.resblocks.0.attn.in_proj_weight', 48 ** -0.5);
  close('visual.transformer.resblocks.1.mlp.c_fc.weight', (2 * 128) ** -0.5);
  close('visual.transformer.resblocks.1.mlp.c_proj.weight', 128 ** -0.5 * (2 * 2) ** -0.5);
  const conv = stats(p.view('visual.conv1.weight'));
  assert.ok(conv.max <= 1 / Math.sqrt(3 * 64) && conv.min >= -1 / Math.sqrt(3 * 64), 'conv1 kaiming-uniform bound');
  assert.deepEqual(new Set(p.view('visual.ln_pre.weight')), new Set([1]));
  assert.deepEqual(new Set(p.view('ln_final.bias')), new Set([0]));
  assert.deepEqual(new Set(p.view('transformer.resblocks.1.attn.in_proj_bias')), new Set([0]));
  assert.ok(Math.abs(p.view('logit_scale')[0]! - Math.log(1 / 0.07)) < 1e-6);
  assert.deepEqual(initClipParams(cfg, 7).data, p.data, 'same seed, same weights');
  assert.notDeepEqual(initClipParams(cfg, 8).data, p.data);
});

test('a fresh model folder loads and trains from scratch with fit()', async (t) => {
  if (!requireFixture('bpe_simple_vocab_16e6.txt.gz', t)) return;
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'clipfit-init-')), 'model');
  await createModelFolder(dir, 'tiny-test', { kind: 'bpe-gz', file: path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz') }, 3);
  const { csv } = await makeShapesCsv(16);
  const r = await fit({ model: dir, trainData: csv, epochs: 3, batchSize: 8, learningRate: 1e-3 });
  const losses = r.history.map((h) => h.metrics['train_loss']!);
  assert.ok(losses[2]! < losses[0]!, `train_loss ${losses.join(' → ')}`);
});
