// getModel / encode (Finetuner's get_model and encode): the ONNX and safetensors paths against the
// reference features of the tiny fixture, against each other on a fine-tuned artifact, Documents
// getting their embeddings, and the errors.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Document, DocumentArray, pairDocument } from '../src/data/index.js';
import { ConfigError, MissingOnnxError, ModalityError } from '../src/errors.js';
import { encode, getModel } from '../src/inference/index.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { fit } from '../src/train/fit.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';
import { checkTensor, loadTolerances, maxAbsDiff } from './tolerance.js';

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-inference-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let shapes: { dir: string; csv: string; captions: string[] };
let artifact = '';
/** The pretrained tiny model saved as an artifact: model folder + tokenizer + ONNX towers. */
let pretrained = '';

before(async () => {
  if (!tiny) return;
  shapes = await makeShapesCsv(24);
  const r = await fit({ model: tiny, tokenizer: bpe, trainData: shapes.csv, epochs: 1, batchSize: 8, learningRate: 1e-3, numWorkers: 1, seed: 5, toOnnx: true, workDir: path.join(tmp, 'run') });
  artifact = r.artifactDir;
  pretrained = path.join(tmp, 'pretrained');
  const m = await ClipModel.load(tiny, { tokenizer: bpe });
  await m.save(pretrained);
  await m.exportOnnx(pretrained);
  await m.release();
});

const imagesOf = (n: number) => Array.from({ length: n }, (_, i) => path.join(shapes.dir, `img${String(i).padStart(3, '0')}.png`));

test('both paths give the reference features of the tiny CLIP (captions and image files)', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const cfg = JSON.parse(readFileSync(path.join(tiny, 'config.json'), 'utf8'));
  const fwd = await readSafetensors(path.join(tiny, 'forward.safetensors'));
  const tol = loadTolerances(path.join(tiny, 'tolerances.json'));
  const captions: string[] = cfg.batch1.captions;
  const images = (cfg.batch1.image_files as string[]).map((f) => path.join(FIXTURES, 'images', f));
  for (const isOnnx of [true, false]) {
    const text = await getModel(pretrained, { selectModel: 'clip-text', isOnnx });
    const vision = await getModel(pretrained, { selectModel: 'clip-vision', isOnnx });
    assert.equal(text.embedDim, 32);
    assert.equal(text.isOnnx, isOnnx);
    const te = await encode(text, captions, { batchSize: 4 });
    assert.deepEqual(te.shape, [6, 32]);
    checkTensor(`onnx=${isOnnx} text`, te.data, fwd.tensors.get('text_features_normalized')!.data as Float32Array, tol['text_features_normalized']!.suggested_atol);
    const raw = await encode(text, captions, { normalize: false });
    checkTensor(`onnx=${isOnnx} raw text`, raw.data, fwd.tensors.get('text_features')!.data as Float32Array, tol['text_features']!.suggested_atol);
    const ie = await encode(vision, images, { batchSize: 4 });
    checkTensor(`onnx=${isOnnx} image`, ie.data, fwd.tensors.get('image_features_normalized')!.data as Float32Array, tol['image_features_normalized']!.suggested_atol);
    await text.release();
    await vision.release();
  }
});

test('on a fine-tuned artifact the ONNX and safetensors paths agree to 1e-5, and differ from the pretrained model', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  for (const f of ['clip-text/model.onnx', 'clip-vision/model.onnx', 'clip-text/model_int8.onnx', 'clip-vision/model_int8.onnx', 'metadata.json']) assert.ok(existsSync(path.join(artifact, f)), f);
  const texts = [...shapes.captions.slice(0, 10), 'a photo of a cat', ''];
  const images = imagesOf(10);
  const got: Record<string, Float32Array> = {};
  for (const isOnnx of [true, false])
    for (const selectModel of ['clip-text', 'clip-vision'] as const) {
      const m = await getModel(artifact, { selectModel, isOnnx });
      got[`${selectModel}/${isOnnx}`] = (await encode(m, selectModel === 'clip-text' ? texts : images, { batchSize: 3 })).data;
      await m.release();
    }
  const dt = maxAbsDiff(got['clip-text/true']!, got['clip-text/false']!);
  const di = maxAbsDiff(got['clip-vision/true']!, got['clip-vision/false']!);
  t.diagnostic(`max |onnx − safetensors|: text ${dt.toExponential(2)}, image ${di.toExponential(2)}`);
  assert.ok(dt <= 1e-5, `text ${dt}`);
  assert.ok(di <= 1e-5, `image ${di}`);
  const base = await getModel(pretrained, { selectModel: 'clip-text', isOnnx: true });
  const before0 = (await encode(base, texts)).data;
  await base.release();
  assert.ok(maxAbsDiff(before0, got['clip-text/true']!) > 1e-3, 'the artifact holds the fine-tuned weights');
});

test('encode sets each Document’s embedding: text documents, image documents, pairs, bytes', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const text = await getModel(artifact, { selectModel: 'clip-text', isOnnx: true });
  const vision = await getModel(artifact, { selectModel: 'clip-vision', isOnnx: true });
  const files = imagesOf(3);
  const textDocs = new DocumentArray(shapes.captions.slice(0, 3).map((c) => ({ text: c })));
  const imageDocs = [
    new Document({ uri: files[0]! }),
    new Document({ uri: `file://${files[1]}` }),
    new Document({ blob: new Uint8Array(readFileSync(files[2]!)), modality: 'image' }),
  ];
  const pairs = new DocumentArray(files.map((f, i) => pairDocument(shapes.captions[i]!, { uri: f })));
  const te = await encode(text, textDocs);
  const ie = await encode(vision, imageDocs);
  const fromStrings = { t: await encode(text, shapes.captions.slice(0, 3)), i: await encode(vision, files) };
  assert.deepEqual(te.data, fromStrings.t.data, 'documents embed as their text');
  assert.deepEqual(ie.data, fromStrings.i.data, 'path, file:// and blob give the same image');
  textDocs.forEach((d, i) => assert.deepEqual(d.embedding, te.data.slice(i * 32, i * 32 + 32)));
  imageDocs.forEach((d, i) => {
    assert.deepEqual(d.embedding, ie.data.slice(i * 32, i * 32 + 32));
    assert.ok(Math.abs(Math.hypot(...d.embedding!) - 1) < 1e-5, 'L2-normalised');
  });
  // Pairs: the text tower takes their caption, the image tower their image; the root gets the row.
  assert.deepEqual((await encode(text, pairs)).data, te.data);
  assert.deepEqual(pairs.embeddings.data, te.data);
  assert.deepEqual((await encode(vision, pairs)).data, ie.data);
  assert.deepEqual(pairs[2]!.embedding, ie.data.slice(64, 96));
  // Empty input.
  assert.deepEqual((await encode(text, [])).shape, [0, 32]);
  await text.release();
  await vision.release();
});

test('errors: the wrong modality names the document index, a missing ONNX file names the path', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const text = await getModel(artifact, { selectModel: 'clip-text', isOnnx: true });
  const vision = await getModel(artifact, { selectModel: 'clip-vision' });
  const docs = [new Document({ text: 'a red square' }), new Document({ text: 'a blue circle' }), new Document({ uri: imagesOf(1)[0]! })];
  await assert.rejects(encode(text, docs), (e: unknown) => e instanceof ModalityError && e.index === 2 && /documents\[2\] \(clip-text\).*image document.*select clip-vision/.test(e.message));
  await assert.rejects(encode(vision, docs), (e: unknown) => e instanceof ModalityError && e.index === 0 && /documents\[0\] \(clip-vision\).*text document.*select clip-text/.test(e.message));
  await assert.rejects(encode(vision, [imagesOf(1)[0]!, 'a red square']), (e: unknown) => e instanceof ModalityError && e.index === 1 && /select clip-text/.test(e.message));
  assert.equal(docs[0]!.embedding, undefined, 'nothing is set when the input is rejected');
  await text.release();
  await vision.release();

  // A model folder without exported towers.
  const plain = path.join(tmp, 'plain');
  const m = await ClipModel.load(tiny, { tokenizer: bpe });
  await m.save(plain);
  await m.release();
  const onnx = path.join(plain, 'clip-vision', 'model.onnx');
  await assert.rejects(getModel(plain, { selectModel: 'clip-vision', isOnnx: true }), (e: unknown) => e instanceof MissingOnnxError && e.file === onnx && e.message.includes(onnx) && /toOnnx/.test(e.message));
  // …still loads through its safetensors.
  const ok = await getModel(plain, { selectModel: 'clip-vision' });
  assert.equal((await encode(ok, imagesOf(2))).shape[0], 2);
  await ok.release();
  await assert.rejects(getModel(artifact, { selectModel: 'clip-audio' as never }), (e: unknown) => e instanceof ConfigError && /selectModel/.test(e.message));
});
