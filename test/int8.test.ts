// The int8 towers (int8 weights per output channel, activations quantized at run time) against the
// float32 ones on the fixture's images and captions, through the paths a user takes: ClipModel.load
// with int8, the exported model_int8.onnx (in plain onnxruntime and through getModel), and the CLI's
// encode --int8 and eval --int8.
//
// Tolerance: cosine between an item's int8 and float32 embedding ≥ 0.99 for every item, ≥ 0.999 on
// average. Measured on the tiny fixture: images mean 0.99999, worst 0.99998 (12 images); captions
// mean 0.9997, worst 0.9979 (300 captions of tokenizer.jsonl).

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { registerClipCommands } from '../src/app/cli/commands_clip.js';
import { registerEvalCommands } from '../src/app/cli/commands_eval.js';
import { MissingOnnxError } from '../src/errors.js';
import { parseNpy } from '../src/formats/npy.js';
import { encode, getModel } from '../src/inference/index.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { dequantizeRows, quantizeRows } from '../src/models/clip/quantize.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';
import { maxAbsDiff } from './tolerance.js';

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-int8-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const MIN_COS = 0.99;
const MEAN_COS = 0.999;

/** Cosine of each row pair of two row-major [n, dim] matrices. */
function rowCosines(a: Float32Array, b: Float32Array, dim: number): number[] {
  assert.equal(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < a.length / dim; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = i * dim; j < (i + 1) * dim; j++) {
      ab += a[j]! * b[j]!;
      aa += a[j]! * a[j]!;
      bb += b[j]! * b[j]!;
    }
    out.push(ab / Math.sqrt(aa * bb));
  }
  return out;
}

function assertClose(what: string, int8: Float32Array, fp32: Float32Array, dim: number): { mean: number; worst: number } {
  const c = rowCosines(int8, fp32, dim);
  const mean = c.reduce((x, y) => x + y, 0) / c.length;
  const worst = Math.min(...c);
  assert.ok(worst >= MIN_COS, `${what}: worst cosine int8 vs fp32 ${worst.toFixed(5)} < ${MIN_COS}`);
  assert.ok(mean >= MEAN_COS, `${what}: mean cosine int8 vs fp32 ${mean.toFixed(5)} < ${MEAN_COS}`);
  // Quantized for real: the embeddings are not float32's bit for bit.
  assert.ok(maxAbsDiff(int8, fp32) > 1e-6, `${what}: int8 embeddings equal float32's exactly (not quantized?)`);
  return { mean, worst };
}

const fixtureImages = (): string[] =>
  readdirSync(path.join(FIXTURES, 'images'))
    .filter((f) => /\.(png|jpe?g)$/.test(f))
    .sort()
    .map((f) => path.join(FIXTURES, 'images', f));

const fixtureCaptions = (): string[] =>
  readFileSync(path.join(FIXTURES, 'tokenizer.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { text: string }).text);

let fp32: ClipModel;
let int8: ClipModel;
/** The tiny model saved as a model folder with its ONNX towers, float32 and int8. */
let exported = '';

before(async () => {
  if (!tiny) return;
  fp32 = await ClipModel.load(tiny, { tokenizer: bpe, threads: 1 });
  int8 = await ClipModel.load(tiny, { tokenizer: bpe, threads: 1, int8: true });
  exported = path.join(tmp, 'exported');
  await fp32.save(exported);
  await fp32.exportOnnx(exported);
});
after(async () => {
  await fp32?.release();
  await int8?.release();
});

test('per-channel quantization: q ∈ [−127, 127], each row reaches ±127, and dequantizes within half a step', () => {
  const w = Float32Array.from([0.5, -1, 0.25, 0, 0, 0, 3, 2.9, -0.01]);
  const r = quantizeRows(w, 3, 3);
  assert.deepEqual([...r.q], [64, -127, 32, 0, 0, 0, 127, 123, 0]);
  assert.deepEqual([...r.scale], [1 / 127, 1, 3 / 127].map(Math.fround));
  const back = dequantizeRows(r, 3);
  w.forEach((v, i) => assert.ok(Math.abs(back[i]! - v) <= r.scale[Math.floor(i / 3)]! / 2 + 1e-7, `w[${i}]`));
  // Transposed storage is the same values as [cols, rows].
  const t = quantizeRows(w, 3, 3, true);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) assert.equal(t.q[j * 3 + i], r.q[i * 3 + j]);
});

test('int8 towers agree with float32 on the fixture images and captions', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  assert.equal(int8.int8, true);
  const dim = fp32.embedDim;
  const images = fixtureImages();
  assert.ok(images.length >= 10, 'fixture images');
  const img = assertClose('images', (await int8.encodeImages(images, { batchSize: 8 })).data, (await fp32.encodeImages(images, { batchSize: 8 })).data, dim);
  const captions = fixtureCaptions();
  assert.ok(captions.length >= 100, 'fixture captions');
  const txt = assertClose('captions', (await int8.encodeTexts(captions, { batchSize: 32 })).data, (await fp32.encodeTexts(captions, { batchSize: 32 })).data, dim);
  t.diagnostic(`cosine int8 vs fp32: images mean ${img.mean.toFixed(5)} worst ${img.worst.toFixed(5)}; captions mean ${txt.mean.toFixed(5)} worst ${txt.worst.toFixed(5)}`);
});

test('exportOnnx writes model_int8.onnx beside model.onnx: under a third of the size, run by plain onnxruntime and by getModel', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  for (const tower of ['clip-text', 'clip-vision'] as const) {
    const f32 = statSync(path.join(exported, tower, 'model.onnx')).size;
    const i8 = statSync(path.join(exported, tower, 'model_int8.onnx')).size;
    t.diagnostic(`${tower}: model.onnx ${f32} bytes, model_int8.onnx ${i8} bytes (${(i8 / f32).toFixed(3)})`);
    assert.ok(i8 < f32 / 3, `${tower}: model_int8.onnx is ${i8} bytes, model.onnx ${f32}`);
  }
  const images = fixtureImages();
  const captions = fixtureCaptions().slice(0, 40);
  // One batch each: activations share one quantization scale per batch, so an int8 embedding
  // depends (within the tolerance above) on the batch it was encoded in.
  const one = { normalize: false, batchSize: 64 };
  const want = { 'clip-vision': (await int8.encodeImages(images, one)).data, 'clip-text': (await int8.encodeTexts(captions, one)).data };

  // Plain onnxruntime, no clipfit code: the pixels and token ids ClipModel feeds.
  // One thread, as the ClipModel: activations are quantized with one scale per tensor, and a float
  // summed in another order can round one value to the neighbouring int8 step.
  const so = { intraOpNumThreads: 1 };
  const vision = await ort.InferenceSession.create(path.join(exported, 'clip-vision', 'model_int8.onnx'), so);
  const s = fp32.config.preprocess_cfg.image_size;
  const pixels = await int8.preprocess(images);
  const rv = await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [images.length, 3, s, s]) });
  assert.ok(maxAbsDiff(rv['image_embeds']!.data as Float32Array, want['clip-vision']) < 1e-5, 'plain onnxruntime, vision');
  const text = await ort.InferenceSession.create(path.join(exported, 'clip-text', 'model_int8.onnx'), so);
  const ids = int8.tokenize(captions);
  const rt = await text.run({ input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.shape) });
  assert.ok(maxAbsDiff(rt['text_embeds']!.data as Float32Array, want['clip-text']) < 1e-5, 'plain onnxruntime, text');
  await vision.release();
  await text.release();

  // getModel(isOnnx, int8) + encode: the same embeddings (normalised).
  for (const tower of ['clip-text', 'clip-vision'] as const) {
    const m = await getModel(exported, { selectModel: tower, isOnnx: true, int8: true, tokenizer: bpe, threads: 1 });
    const e = await encode(m, tower === 'clip-text' ? captions : images, one);
    assert.ok(maxAbsDiff(e.data, want[tower]) < 1e-5, `getModel ${tower}`);
    await m.release();
  }
});

test('getModel with int8 on an artifact exported without int8 towers names the missing file and the way out', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const dir = path.join(tmp, 'fp32-only');
  await fp32.save(dir);
  const files = await fp32.exportOnnx(dir, { int8: false });
  assert.deepEqual(files.map((f) => path.relative(dir, f)), [path.join('clip-text', 'model.onnx'), path.join('clip-vision', 'model.onnx')]);
  const missing = path.join(dir, 'clip-vision', 'model_int8.onnx');
  await assert.rejects(
    getModel(dir, { selectModel: 'clip-vision', isOnnx: true, int8: true }),
    (e: unknown) => e instanceof MissingOnnxError && e.file === missing && /re-export/.test(e.message) && /isOnnx: false/.test(e.message),
  );
  // Without isOnnx the same folder quantizes its weights on load.
  const m = await getModel(dir, { selectModel: 'clip-vision', int8: true, threads: 1 });
  const e = await encode(m, fixtureImages().slice(0, 3));
  assert.deepEqual(e.shape, [3, fp32.embedDim]);
  await m.release();
});

/** Run `clipfit <args>` in-process; resolves to the printed lines. */
async function cli(...args: string[]): Promise<string[]> {
  const out: string[] = [];
  const program = new Command().name('clipfit').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: () => {} });
  registerClipCommands(program, (line) => out.push(line));
  registerEvalCommands(program, (line) => out.push(line));
  await program.parseAsync(['node', 'clipfit', ...args]);
  return out;
}

test('clipfit encode --int8 writes the int8 embeddings; clipfit eval --int8 scores the same with and without --onnx', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  // Plain captions: a command line cannot carry the fixture's empty and whitespace-only ones.
  const captions = fixtureCaptions().filter((c) => /^[A-Za-z][\w ',.!]*$/.test(c)).slice(0, 20);
  const q8 = path.join(tmp, 'q8.npy');
  const q32 = path.join(tmp, 'q32.npy');
  const lines = await cli('encode', '--model', tiny, '--tokenizer', bpe, '--int8', '--text', ...captions, '--out', q8);
  assert.match(lines.join('\n'), /20 × 32 float32, L2-normalised \(int8 towers\)/);
  await cli('encode', '--model', tiny, '--tokenizer', bpe, '--text', ...captions, '--out', q32);
  const a = parseNpy(readFileSync(q8), q8);
  const b = parseNpy(readFileSync(q32), q32);
  assert.deepEqual(a.shape, [20, 32]);
  // The CLI runs on every core: compare with a ClipModel that does too (see the note on threads above).
  const ref = await ClipModel.load(tiny, { tokenizer: bpe, int8: true });
  assert.ok(maxAbsDiff(a.data, (await ref.encodeTexts(captions)).data) < 1e-6, 'encode --int8 = ClipModel int8');
  await ref.release();
  assertClose('clipfit encode', a.data, b.data, 32);

  // eval: the int8 towers quantized on load, and the exported model_int8.onnx, give the same metrics.
  const shapes = await makeShapesCsv(12);
  const evalArgs = ['eval', '--tokenizer', bpe, '--query-data', shapes.csv, '--index-data', shapes.csv, '--int8', '--json', '--limit', '5'];
  const onLoad = JSON.parse((await cli(...evalArgs, '--model', tiny)).join('\n')) as Record<string, number>;
  const onnx = JSON.parse((await cli(...evalArgs, '--model', exported, '--onnx')).join('\n')) as Record<string, number>;
  assert.ok(Object.keys(onLoad).length > 3);
  for (const [k, v] of Object.entries(onLoad)) assert.ok(Math.abs(v - onnx[k]!) < 1e-9, `${k}: ${v} vs ${onnx[k]}`);
  await assert.rejects(cli(...evalArgs, '--model', path.join(tmp, 'fp32-only'), '--onnx'), (e: unknown) => e instanceof MissingOnnxError && /model_int8\.onnx/.test(e.file));
});
