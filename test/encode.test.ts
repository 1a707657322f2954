// Encoding through a loaded model folder, from raw captions and image files, in both layouts:
// the embeddings equal the reference's normalised features.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TokenizerFileError } from '../src/errors.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { FIXTURES, requireFixture } from './fixtures.js';
import { checkTensor, loadTolerances } from './tolerance.js';

test('open_clip and Hugging Face folders encode captions and image files as the reference does', async (t) => {
  const tiny = requireFixture('tiny', t);
  const hf = requireFixture('tiny-hf', t);
  if (!tiny || !hf) return;
  const cfg = JSON.parse(readFileSync(path.join(tiny, 'config.json'), 'utf8'));
  const fwd = await readSafetensors(path.join(tiny, 'forward.safetensors'));
  const tol = loadTolerances(path.join(tiny, 'tolerances.json'));
  const captions: string[] = cfg.batch1.captions;
  const images = (cfg.batch1.image_files as string[]).map((f) => path.join(FIXTURES, 'images', f));
  const refText = fwd.tensors.get('text_features_normalized')!.data as Float32Array;
  const refImage = fwd.tensors.get('image_features_normalized')!.data as Float32Array;

  const a = await ClipModel.load(tiny, { tokenizer: path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'), threads: 1 });
  const b = await ClipModel.load(hf, { threads: 1 });
  assert.equal(a.layout, 'open_clip');
  assert.equal(b.layout, 'hf');
  for (const m of [a, b]) {
    const te = await m.encodeTexts(captions, { batchSize: 4 });
    assert.deepEqual(te.shape, [6, 32]);
    checkTensor(`${m.layout} text embeddings`, te.data, refText, tol['text_features_normalized']!.suggested_atol);
    const ie = await m.encodeImages(images, { batchSize: 4 });
    checkTensor(`${m.layout} image embeddings`, ie.data, refImage, tol['image_features_normalized']!.suggested_atol);
  }
  // Unnormalised features too.
  const raw = await a.encodeTexts(captions, { normalize: false });
  checkTensor('text features', raw.data, fwd.tensors.get('text_features')!.data as Float32Array, tol['text_features']!.suggested_atol);
  // Identical parameters from both layouts.
  for (const e of a.params.entries) assert.deepEqual(b.params.view(e.name), a.params.view(e.name), e.name);
  await a.release();
  await b.release();
});

test('an open_clip folder without tokenizer files needs one, and says so', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  await assert.rejects(ClipModel.load(tiny), (e: unknown) => e instanceof TokenizerFileError && e.message.includes(tiny) && /no tokenizer files/.test(e.message));
});
