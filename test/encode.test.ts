// Encoding through a loaded model folder, from raw captions and image files, in both layouts:
// the embeddings equal the reference's normalised features.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { TokenizerFileError } from '../src/errors.js';
import { loadModelFolder, saveModelFolder } from '../src/models/clip/weights/checkpoint.js';
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

test('an open_clip folder without tokenizer files loads with the bundled OpenAI BPE and matches the reference', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const cfg = JSON.parse(readFileSync(path.join(tiny, 'config.json'), 'utf8'));
  const fwd = await readSafetensors(path.join(tiny, 'forward.safetensors'));
  const tol = loadTolerances(path.join(tiny, 'tolerances.json'));
  const m = await ClipModel.load(tiny, { threads: 1 });
  assert.deepEqual(m.tokenizerFiles, { kind: 'bpe-gz', file: path.resolve('assets/bpe_simple_vocab_16e6.txt.gz'), bundled: true });
  const te = await m.encodeTexts(cfg.batch1.captions);
  checkTensor('text embeddings', te.data, fwd.tensors.get('text_features_normalized')!.data as Float32Array, tol['text_features_normalized']!.suggested_atol);
  // The shipped copy is byte for byte OpenAI's file.
  assert.ok(readFileSync(path.resolve('assets/bpe_simple_vocab_16e6.txt.gz')).equals(readFileSync(path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'))));
  await m.release();
});

/** A copy of tiny/ (config and weights only) with `edit` applied to its open_clip_config.json. */
function tinyCopy(t: { after: (fn: () => void) => void }, tiny: string, edit: (cfg: { model_cfg: { text_cfg: Record<string, unknown> } }) => void, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(path.join(tiny, 'open_clip_model.safetensors'), path.join(dir, 'open_clip_model.safetensors'));
  const cfg = JSON.parse(readFileSync(path.join(tiny, 'open_clip_config.json'), 'utf8'));
  edit(cfg);
  writeFileSync(path.join(dir, 'open_clip_config.json'), JSON.stringify(cfg));
  for (const [f, body] of Object.entries(extra)) writeFileSync(path.join(dir, f), body);
  return dir;
}

test('an open_clip config naming a Hugging Face tokenizer needs its files; the error names the folder and the tokenizer', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const dir = tinyCopy(t, tiny, (c) => void (c.model_cfg.text_cfg['hf_tokenizer_name'] = 'org/some-tokenizer'));
  await assert.rejects(
    ClipModel.load(dir),
    (e: unknown) => e instanceof TokenizerFileError && e.file === dir && /'org\/some-tokenizer'/.test(e.message) && /huggingface\.co\/org\/some-tokenizer/.test(e.message),
  );
  // With the tokenizer option it loads.
  const m = await ClipModel.load(dir, { tokenizer: path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz') });
  await m.release();
});

test('a folder with its own tokenizer files keeps them; a broken one is a typed error naming the file', async (t) => {
  const tiny = requireFixture('tiny', t);
  const hf = requireFixture('tiny-hf', t);
  if (!tiny || !hf) return;
  const own = tinyCopy(t, tiny, () => {}, { 'vocab.json': readFileSync(path.join(hf, 'vocab.json'), 'utf8'), 'merges.txt': readFileSync(path.join(hf, 'merges.txt'), 'utf8') });
  const m = await ClipModel.load(own);
  assert.deepEqual(m.tokenizerFiles, { kind: 'vocab-merges', vocab: path.join(own, 'vocab.json'), merges: path.join(own, 'merges.txt') });
  await m.release();
  const broken = tinyCopy(t, tiny, () => {}, { 'tokenizer.json': '{"model": {"type": "BPE", "vocab": ' });
  await assert.rejects(ClipModel.load(broken), (e: unknown) => e instanceof TokenizerFileError && e.file === path.join(broken, 'tokenizer.json') && /not valid JSON/.test(e.message));
});

test('a model with another vocabulary size and no tokenizer files is a typed error naming the folder', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // tiny/ with its token embedding cut to 4096 rows: a model of another vocabulary.
  const src = await loadModelFolder(tiny);
  const emb = src.weights.get('token_embedding.weight')!;
  const width = emb.shape[1]!;
  src.weights.set('token_embedding.weight', { shape: [4096, width], data: emb.data.slice(0, 4096 * width) });
  const model_cfg = { ...src.config.model_cfg, text_cfg: { ...src.config.model_cfg.text_cfg, vocab_size: 4096 } };
  await saveModelFolder(dir, { ...src.config, model_cfg }, src.weights, 'open_clip');
  await assert.rejects(ClipModel.load(dir), (e: unknown) => e instanceof TokenizerFileError && e.file === dir && /vocab_size 4096/.test(e.message) && /49408/.test(e.message));
});
