// The main job end to end on a small random CLIP and 40 emoji items: dataset, fine-tuning, the five
// variants on both eval sets and every query set, the report. Cross-checks: the fine-tuned scores
// equal what fit()'s EvaluationCallback measured on the same sets at the last epoch, and α = 0 / 1
// ends of WiSE-FT are the zero-shot and fine-tuned models.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runDemo } from '../src/app/demo/run_demo.js';
import { trainBpe, writeVocabMerges } from '../src/models/clip/text/bpe_train.js';
import { createModelFolder } from '../src/models/clip/weights/init.js';

test('runDemo fine-tunes, scores every variant and writes the report', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-demo-'));
  const tok = await writeVocabMerges(path.join(dir, 'tok'), trainBpe(['grinning face', 'red heart', 'thumbs up', 'face with tears of joy'], { merges: 50 }));
  await createModelFolder(path.join(dir, 'base'), 'tiny-test', { kind: 'vocab-merges', ...tok }, 3);
  const logs: string[] = [];
  const res = await runDemo({ model: path.join(dir, 'base'), work: path.join(dir, 'work'), report: path.join(dir, 'report'), limit: 40, epochs: 2, log: (m) => logs.push(m) });
  const r = res.report;
  const variants = ['zero-shot', 'WiSE-FT α=0.25', 'WiSE-FT α=0.5', 'WiSE-FT α=0.75', 'fine-tuned'];
  for (const v of variants)
    for (const e of ['in-domain', 'shifted'])
      for (const q of ['en', 'de', 'tags']) assert.ok(r.results.some((x) => x.variant === v && x.evalSet === e && x.querySet === q), `${v} ${e} ${q}`);
  const get = (v: string, e: string) => r.results.find((x) => x.variant === v && x.evalSet === e && x.querySet === 'en')!.metrics;
  // fit()'s own evaluation of the final weights on queries-en × eval-in-domain.
  const last = r.history.at(-1)!.metrics;
  for (const k of ['hit_at_k', 'recall_at_1', 'reciprocal_rank', 'ndcg_at_k'])
    assert.ok(Math.abs(get('fine-tuned', 'in-domain')[k]! - last[`clip-text-to-clip-vision_${k}`]!) < 1e-6, `${k}: ${get('fine-tuned', 'in-domain')[k]} vs ${last[`clip-text-to-clip-vision_${k}`]}`);
  // Epoch 0 of the history is the zero-shot model on the same sets.
  const first = r.history[0]!.metrics;
  assert.ok(Math.abs(get('zero-shot', 'in-domain')['hit_at_k']! - first['clip-text-to-clip-vision_hit_at_k']!) < 1e-6);
  for (const m of Object.values(get('WiSE-FT α=0.5', 'shifted'))) assert.ok(m >= 0 && m <= 1 + 1e-9);
  assert.equal(r.examples.length, Math.min(12, Number(r.setup['held-out items'])));
  assert.ok(r.examples.length >= 5);
  for (const ex of r.examples) {
    assert.equal(ex.zeroShot.length, 5);
    assert.ok(ex.zeroShot.every((h, i) => i === 0 || h.score <= ex.zeroShot[i - 1]!.score));
    assert.ok(ex.fineTuned.some((h) => h.relevant) === ex.fineTuned.some((h) => h.key === ex.relevantKey));
  }
  assert.ok(existsSync(path.join(res.reportDir, 'index.html')));
  assert.deepEqual(JSON.parse(readFileSync(path.join(res.reportDir, 'metrics.json'), 'utf8')).results, r.results);
  // A rerun resumes: the dataset is reused and fit starts past its last epoch.
  const again: string[] = [];
  await runDemo({ model: path.join(dir, 'base'), work: path.join(dir, 'work'), report: path.join(dir, 'report2'), limit: 40, epochs: 2, log: (m) => again.push(m) });
  assert.ok(again.some((l) => /resumed from the checkpoint of epoch 2/.test(l)), again.join('\n'));
});
