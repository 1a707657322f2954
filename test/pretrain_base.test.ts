// `npm run pretrain:base` end to end on one small icon set: corpus, BPE, fresh init, fit, export as a
// float16 open_clip folder that loads, the model card; a rerun resumes instead of starting over.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pretrainBase } from '../src/app/pretrain/base.js';
import { exportBaseModel } from '../src/app/pretrain/export_base.js';
import { evaluateBase, windowLosses, writeModelCard } from '../src/app/pretrain/model_card.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { readSafetensors } from '../src/runtime/safetensors.js';

test('pretrains on one icon set, resumes on rerun, exports a float16 model with a card', { timeout: 600_000 }, async () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'clipfit-pretrain-'));
  const logs: string[] = [];
  const first = await pretrainBase({ work, epochs: 1, sets: ['flat-color-icons'], architecture: 'tiny-test', log: (m) => logs.push(m) });
  assert.equal(first.fit.epochs, 1);
  assert.ok(existsSync(path.join(work, 'tokenizer', 'merges.txt')));
  // A rerun with more epochs continues from the epoch-1 checkpoint.
  const second = await pretrainBase({ work, epochs: 2, sets: ['flat-color-icons'], architecture: 'tiny-test', log: (m) => logs.push(m) });
  assert.ok(logs.some((l) => /resumed from the checkpoint of epoch 1/.test(l)), logs.join('\n'));
  assert.equal(second.fit.epochs, 2);
  assert.equal(JSON.parse(readFileSync(path.join(work, 'sessions.json'), 'utf8')).sessions.length, 2);

  const out = path.join(work, 'shipped');
  await exportBaseModel(second, { out });
  const st = await readSafetensors(path.join(out, 'open_clip_model.safetensors'));
  assert.ok([...st.tensors.values()].every((t) => t.dtype === 'F16'));
  // The exported half-precision model encodes like the float32 artifact: unit embeddings at cosine ≈ 1.
  const [a, b] = [await ClipModel.load(second.fit.artifactDir), await ClipModel.load(out)];
  const [ea, eb] = [await a.encodeTexts(['home', 'camera']), await b.encodeTexts(['home', 'camera'])];
  const dim = ea.shape[1];
  for (let r = 0; r < 2; r++) {
    let cos = 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) cos += ea.data[i]! * eb.data[i]!;
    assert.ok(cos > 0.999, `row ${r}: cosine ${cos} between the float32 and float16 embeddings`);
  }
  await a.release();
  await b.release();

  const evals = await evaluateBase(out, path.join(work, 'init'), second.corpus.heldOut);
  assert.equal(evals.length, 1);
  assert.ok(evals[0]!.trained['hit_at_k']! >= 0 && evals[0]!.random['hit_at_k']! >= 0);
  const card = readFileSync(await writeModelCard(out, evals), 'utf8');
  assert.match(card, /npm run pretrain:base/);
  assert.match(card, /Icons8/);
  assert.match(readFileSync(path.join(out, 'loss.svg'), 'utf8'), /<polyline[^>]+points="[\d.]+,[\d.]+/);
});

test('window losses undo the running epoch mean', () => {
  // Steps 1–10 all 4, steps 11–20 all 2 → running means 4 then 3; a new epoch restarts the mean.
  const csv = 'epoch,step,steps,loss,elapsed_s\n1,10,20,4,1\n1,20,20,3,2\n2,10,20,1,3\n';
  assert.deepEqual(windowLosses(csv), [[10, 4], [20, 2], [30, 1]]);
});
