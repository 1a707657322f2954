// Each tower exports alone as an ONNX file that plain onnxruntime runs (no clipfit code involved),
// with a dynamic batch and a dynamic text length, and gives the reference features.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { writeTowerOnnx } from '../src/models/clip/export.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { tinyConfig } from './clip_fixture.js';
import { requireFixture } from './fixtures.js';
import { checkTensor, loadTolerances } from './tolerance.js';

test('exported towers run in plain onnxruntime with any batch and text length', async (t) => {
  const dir = requireFixture('tiny', t);
  if (!dir) return;
  const cfg = tinyConfig(dir);
  const model = await readSafetensors(path.join(dir, 'model.safetensors'));
  const fwd = await readSafetensors(path.join(dir, 'forward.safetensors'));
  const tol = loadTolerances(path.join(dir, 'tolerances.json'));
  const weights = (n: string) => model.tensors.get(n)!.data as Float32Array;
  const out = mkdtempSync(path.join(os.tmpdir(), 'clipfit-export-'));
  const visionFile = await writeTowerOnnx(out, cfg, 'clip-vision', weights);
  const textFile = await writeTowerOnnx(out, cfg, 'clip-text', weights);
  assert.equal(path.relative(out, visionFile), path.join('clip-vision', 'model.onnx'));

  const vision = await ort.InferenceSession.create(visionFile);
  assert.deepEqual(vision.inputNames, ['pixel_values']);
  const images = fwd.tensors.get('images')!.data as Float32Array;
  const imgFeat = fwd.tensors.get('image_features')!.data as Float32Array;
  // Batch 6, then batch 2 (the same session).
  const r6 = await vision.run({ pixel_values: new ort.Tensor('float32', images, [6, 3, 32, 32]) });
  checkTensor('image_features', r6['image_embeds']!.data as Float32Array, imgFeat, tol['image_features']!.suggested_atol);
  const r2 = await vision.run({ pixel_values: new ort.Tensor('float32', images.subarray(0, 2 * 3072), [2, 3, 32, 32]) });
  checkTensor('image_features[:2]', r2['image_embeds']!.data as Float32Array, imgFeat.subarray(0, 64), tol['image_features']!.suggested_atol);

  const text = await ort.InferenceSession.create(textFile);
  assert.deepEqual(text.inputNames, ['input_ids']);
  const ids = fwd.tensors.get('texts')!.data as BigInt64Array;
  const txtFeat = fwd.tensors.get('text_features')!.data as Float32Array;
  const t77 = await text.run({ input_ids: new ort.Tensor('int64', ids, [6, 77]) });
  checkTensor('text_features', t77['text_embeds']!.data as Float32Array, txtFeat, tol['text_features']!.suggested_atol);
  // The first caption alone, cut to its own length (sot … eot).
  const len = Array.from(ids.subarray(0, 77)).indexOf(49407n) + 1;
  const t1 = await text.run({ input_ids: new ort.Tensor('int64', ids.slice(0, len), [1, len]) });
  checkTensor('text_features[0] at its own length', t1['text_embeds']!.data as Float32Array, txtFeat.subarray(0, 32), tol['text_features']!.suggested_atol);
});
