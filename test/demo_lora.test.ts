// The main job with LoRA (`clipfit demo --lora-rank 4`) on a small random CLIP and 40 emoji items:
// its own checkpoint folder, the setup the comparison reads (trainable parameters, step time, peak
// RSS, artifact size), and the merged fine-tuned model scoring what fit()'s EvaluationCallback
// measured with the adapter graph at the last epoch.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runDemo } from '../src/app/demo/run_demo.js';
import { loraLayers, loraParamCount, resolveLora } from '../src/models/clip/lora.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { trainBpe, writeVocabMerges } from '../src/models/clip/text/bpe_train.js';
import { createModelFolder } from '../src/models/clip/weights/init.js';

test('runDemo with LoRA trains adapters only and reports their size and cost', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-demo-lora-'));
  const tok = await writeVocabMerges(path.join(dir, 'tok'), trainBpe(['grinning face', 'red heart', 'thumbs up', 'face with tears of joy'], { merges: 50 }));
  const base = path.join(dir, 'base');
  await createModelFolder(base, 'tiny-test', { kind: 'vocab-merges', ...tok }, 3);
  const res = await runDemo({ model: base, work: path.join(dir, 'work'), report: path.join(dir, 'report'), limit: 40, epochs: 2, lora: { rank: 4 }, learningRate: 1e-3, log: () => {} });
  const s = res.report.setup;
  assert.equal(s['fine-tuning'], 'LoRA rank 4, alpha 4, attn+mlp of text+image');
  assert.equal(s['learning rate'], 1e-3);
  const cfg = (await ClipModel.load(base)).config.model_cfg;
  assert.equal(s['trainable parameters'], loraParamCount(loraLayers(cfg, resolveLora({ rank: 4 }, cfg)), 4));
  assert.ok(Number(s['step s (mean)']) > 0 && Number(s['peak RSS MB']) > 0);
  // The artifact is the adapter: 4 bytes per trainable parameter and a small header.
  const adapterMB = (Number(s['trainable parameters']) * 4) / 2 ** 20;
  assert.ok(Number(s['artifact MB']) >= adapterMB && Number(s['artifact MB']) < adapterMB + 0.05, `${s['artifact MB']} MB for ${adapterMB} MB of adapters`);
  assert.ok(existsSync(path.join(dir, 'work', 'fit-limit40-lora-r4-a4-attn+mlp-text+image-lr0.001', 'artifact', 'adapter_config.json')));
  const get = (v: string) => res.report.results.find((x) => x.variant === v && x.evalSet === 'in-domain' && x.querySet === 'en')!.metrics;
  const last = res.report.history.at(-1)!.metrics;
  for (const k of ['hit_at_k', 'recall_at_1', 'reciprocal_rank'])
    assert.ok(Math.abs(get('fine-tuned')[k]! - last[`clip-text-to-clip-vision_${k}`]!) < 1e-6, `${k}: merged ${get('fine-tuned')[k]} vs adapter graph ${last[`clip-text-to-clip-vision_${k}`]}`);
  assert.ok(res.report.results.some((x) => x.variant === 'WiSE-FT α=0.5'));
});
