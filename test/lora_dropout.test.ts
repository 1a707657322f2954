// LoRA dropout (models/clip/lora_dropout.ts): the graph's masks equal a BigInt reference of the
// SplitMix64 hash element by element; they drop a fraction p; they repeat for the same (seed, step)
// and change with the step, the module and the row; a chunk fed its row offset draws the full
// batch's rows. On the tiny fixture CLIP: the training graph drops, the encoders and val_loss's graph
// do not; GradCache with chunks gives the full batch's gradients with dropout on; fit records
// lora_dropout and trains other adapters than without it.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { ConfigError } from '../src/errors.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { isLoraParam, resolveLora } from '../src/models/clip/lora.js';
import { LORA_DROPOUT_SEED, LORA_ROW_OFFSET, dropoutStepSeed, keepMask, keepThreshold, mix64, moduleKey } from '../src/models/clip/lora_dropout.js';
import { Graph } from '../src/onnx/graph.js';
import type { Dim } from '../src/onnx/dims.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { Session } from '../src/runtime/session.js';
import type { Tensor } from '../src/runtime/session.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { GradCache } from '../src/train/grad_cache.js';
import { buildTrainGraph } from '../src/train/train_graph.js';
import { loadTiny } from './clip_fixture.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';
import { maxAbsDiff } from './tolerance.js';

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
const int64 = (v: bigint | number): Tensor => ({ dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(v)) });

/** A session computing keepMask of x [batch, seq, width] for one module at probability p. */
async function maskSession(p: number, module: string, width: number): Promise<Session> {
  const g = new Graph('mask');
  const x = g.input('x', 'float32', ['batch', 'seq' as Dim, width]);
  const m = keepMask(x, { p, module, seed: g.input(LORA_DROPOUT_SEED, 'int64', []), rowOffset: g.input(LORA_ROW_OFFSET, 'int64', []) });
  g.rename(m, 'keep');
  g.output(m);
  return Session.fromGraph(g, { threads: 1 });
}

async function maskOf(s: Session, shape: [number, number, number], seed: bigint, offset = 0): Promise<Uint8Array> {
  const x: Tensor = { dtype: 'float32', shape, data: new Float32Array(shape[0] * shape[1] * shape[2]) };
  const out = await s.run({ x, [LORA_DROPOUT_SEED]: int64(seed), [LORA_ROW_OFFSET]: int64(offset) });
  return out['keep']!.data as Uint8Array;
}

/**
 * The mask's definition in BigInt arithmetic: z_g = mix(mix(k ⊕ c_mod) + g·γ); with four lanes
 * element i = 4g + l reads bits [16l, 16l + 16) of z_g, with one lane (width not a multiple of 4)
 * element i = g reads the top 16 bits; kept when that is ≥ round(p·2^16).
 */
function referenceKeep(seed: bigint, module: string, i: number, p: number, lanes: 1 | 4): boolean {
  const key = mix64(BigInt.asUintN(64, seed) ^ moduleKey(module));
  const z = mix64(key + BigInt(Math.floor(i / lanes)) * 0x9e3779b97f4a7c15n);
  const u = lanes === 4 ? (z >> BigInt(16 * (i % 4))) & 0xffffn : z >> 48n;
  return u >= keepThreshold(p);
}

const fractionKept = (m: Uint8Array) => m.reduce((a, b) => a + b, 0) / m.length;
const fractionDiffering = (a: Uint8Array, b: Uint8Array) => a.reduce((n, x, i) => n + (x !== b[i] ? 1 : 0), 0) / a.length;

test('the graph mask is the hash of its definition element by element, and drops a fraction p (|Δ| ≤ 0.004 over 532,480 elements, ≥ 5.8σ)', async (t) => {
  const mod = 'visual.transformer.resblocks.0.attn.in_proj';
  const seed = dropoutStepSeed(7, 3);
  // Width 8: four lanes a hash; width 6: a hash an element. Row b of this run is batch row 2 + b.
  for (const [width, lanes] of [[8, 4], [6, 1]] as const) {
    const s = await maskSession(0.3, mod, width);
    const got = await maskOf(s, [4, 5, width], seed, 2);
    const row = 5 * width;
    for (let i = 0; i < got.length; i++) assert.equal(got[i] === 1, referenceKeep(seed, mod, 2 * row + i, 0.3, lanes), `width ${width}, element ${i}`);
    assert.ok(got.includes(0) && got.includes(1));
    await s.release();
  }

  const report: string[] = [];
  for (const p of [0.05, 0.1, 0.5, 0.9]) {
    const s = await maskSession(p, 'transformer.resblocks.1.mlp.c_fc', 64);
    const m = await maskOf(s, [128, 65, 64], dropoutStepSeed(42, 1000));
    const dropped = 1 - fractionKept(m);
    report.push(`p ${p}: dropped ${dropped.toFixed(5)}`);
    assert.ok(Math.abs(dropped - p) <= 0.004, `p ${p}: dropped ${dropped}`);
    await s.release();
  }
  t.diagnostic(report.join('; '));
});

test('the same (seed, step) draws the same mask; another step, seed or module another one; a chunk with its row offset draws the full batch\'s rows', async (t) => {
  const mod = 'transformer.resblocks.0.attn.out_proj';
  const s = await maskSession(0.5, mod, 48);
  const shape: [number, number, number] = [8, 11, 48];
  const a = await maskOf(s, shape, dropoutStepSeed(5, 17));
  assert.deepEqual(await maskOf(s, shape, dropoutStepSeed(5, 17)), a, 'the same (seed, step) twice');
  // Independent masks at p = 0.5 differ in half their elements.
  const other = {
    step: fractionDiffering(a, await maskOf(s, shape, dropoutStepSeed(5, 18))),
    seed: fractionDiffering(a, await maskOf(s, shape, dropoutStepSeed(6, 17))),
    module: 0,
  };
  const s2 = await maskSession(0.5, 'transformer.resblocks.0.attn.in_proj', 48);
  other.module = fractionDiffering(a, await maskOf(s2, shape, dropoutStepSeed(5, 17)));
  t.diagnostic(`fraction of elements differing from step 17's mask: step 18 ${other.step.toFixed(4)}, seed 6 ${other.seed.toFixed(4)}, another module ${other.module.toFixed(4)}`);
  for (const [what, f] of Object.entries(other)) assert.ok(Math.abs(f - 0.5) < 0.03, `${what}: ${f}`);
  // Rows of one batch differ from one another (the row is part of the index).
  const row = 11 * 48;
  assert.ok(Math.abs(fractionDiffering(a.subarray(0, row), a.subarray(row, 2 * row)) - 0.5) < 0.1, 'row 0 vs row 1');
  // Rows [3, 7) run alone with offset 3 are rows 3..6 of the whole batch.
  const part = await maskOf(s, [4, 11, 48], dropoutStepSeed(5, 17), 3);
  assert.deepEqual(part, a.subarray(3 * row, 7 * row));
  assert.notDeepEqual(await maskOf(s, [4, 11, 48], dropoutStepSeed(5, 17), 0), part, 'offset 0 is rows 0..3, not 3..6');
  await s.release();
  await s2.release();
});

test('the step key is a function of (seed, step) alone, distinct across steps and seeds', () => {
  assert.equal(dropoutStepSeed(7, 1), dropoutStepSeed(7, 1));
  const keys = new Set<bigint>();
  for (const seed of [0, 1, 7, 42, 1.5]) for (let step = 0; step < 200; step++) keys.add(dropoutStepSeed(seed, step));
  assert.equal(keys.size, 5 * 200);
});

// ---- the tiny fixture CLIP ---------------------------------------------------------------------

let fx: Awaited<ReturnType<typeof loadTiny>>;
before(async () => {
  if (tiny) fx = await loadTiny(tiny);
});

/** The fixture's batch of 6 pairs. */
function batch(): Record<string, Tensor> {
  const texts = fx.forward.tensors.get('texts')!.data as BigInt64Array;
  const n = texts.length / 77;
  return {
    images: { dtype: 'float32', shape: [n, 3, 32, 32], data: fx.forward.tensors.get('images')!.data as Float32Array },
    texts: { dtype: 'int64', shape: [n, 77], data: texts },
  };
}

/** The tiny model with rank-4 adapters at dropout p, B set to small non-zero values (so A gets gradients). */
async function adapted(p: number): Promise<ClipModel> {
  const base = await ClipModel.load(tiny!, { tokenizer: bpe });
  const m = base.withLora(resolveLora({ rank: 4, alpha: 8, dropout: p }, base.config.model_cfg), { base: tiny!, seed: 3 });
  let k = 0;
  for (const l of m.lora!.layers) m.params.view(l.b).forEach((_, i, b) => (b[i] = Math.sin(++k) * 0.05));
  await base.release();
  return m;
}

/** Loss and adapter gradients of the full-batch training graph built with `training` hooks. */
async function fullBatch(m: ClipModel, training: boolean, feeds: Record<string, Tensor>) {
  const hooks = { image: m.towerHooks('image', { training }), text: m.towerHooks('text', { training }) };
  const tg = buildTrainGraph(m.config.model_cfg, { trainable: isLoraParam, hooks });
  const s = await Session.fromGraph(tg.graph, { threads: 2 });
  const f: Record<string, Tensor> = {};
  for (const n of s.inputNames) f[n] = m.params.has(n) ? m.params.tensor(n) : feeds[n]!;
  const out = await s.run(f);
  await s.release();
  return { inputs: s.inputNames, loss: (out['loss']!.data as Float32Array)[0]!, grads: new Map(tg.trainable.map((p, i) => [p.name, out[tg.grads[i]!.name]!.data as Float32Array])) };
}

test('the training graph drops (its loss moves with p and the step); the eval graph and the encoders do not', async (t) => {
  if (!tiny) return t.skip();
  const [m0, m5] = [await adapted(0), await adapted(0.5)];
  const at = (step: number) => ({ ...batch(), [LORA_DROPOUT_SEED]: int64(dropoutStepSeed(7, step)), [LORA_ROW_OFFSET]: int64(0) });
  const plain = await fullBatch(m0, true, batch());
  assert.ok(!plain.inputs.includes(LORA_DROPOUT_SEED), 'p = 0: no dropout input, the graph of before');
  const s1 = await fullBatch(m5, true, at(1));
  assert.ok(s1.inputs.includes(LORA_DROPOUT_SEED) && s1.inputs.includes(LORA_ROW_OFFSET));
  const again = await fullBatch(m5, true, at(1));
  const s2 = await fullBatch(m5, true, at(2));
  t.diagnostic(`loss p=0 ${plain.loss}, p=0.5 step 1 ${s1.loss}, step 2 ${s2.loss}`);
  assert.notEqual(s1.loss, plain.loss, 'p = 0.5 changes the training loss');
  assert.equal(again.loss, s1.loss, 'the same step twice: the same loss bit for bit');
  assert.notEqual(s2.loss, s1.loss, 'another step, another mask');
  for (const [n, g] of s1.grads) assert.deepEqual(again.grads.get(n), g, `${n}: the same gradient bit for bit`);
  // The evaluation graph (val_loss) of the p = 0.5 model is the p = 0 training graph's forward.
  const ev = await fullBatch(m5, false, batch());
  assert.ok(!ev.inputs.includes(LORA_DROPOUT_SEED));
  assert.equal(ev.loss, plain.loss, 'val_loss graph: no dropout');
  // Encoders: bit for bit the p = 0 model's.
  const texts = ['a red square', 'a blue circle'];
  assert.deepEqual((await m5.encodeTexts(texts)).data, (await m0.encodeTexts(texts)).data);
  const px = batch()['images']!.data as Float32Array;
  assert.deepEqual((await m5.encodePixels(px, 6)).data, (await m0.encodePixels(px, 6)).data);
  await m0.release();
  await m5.release();
});

test('GradCache with dropout: chunks of 1, 2, 4 (last smaller) give the full batch\'s loss and adapter gradients within 1e-5', async (t) => {
  if (!tiny) return t.skip();
  const m = await adapted(0.3);
  const feeds = { ...batch(), [LORA_DROPOUT_SEED]: int64(dropoutStepSeed(11, 4)), [LORA_ROW_OFFSET]: int64(0) };
  const ref = await fullBatch(m, true, feeds);
  const undropped = await fullBatch(m, false, batch());
  const moved = Math.max(...[...ref.grads].map(([n, g]) => maxAbsDiff(g, undropped.grads.get(n)!)));
  assert.ok(moved > 1e-3, `dropout changes the gradients (max |Δ| ${moved})`);
  const hooks = { image: m.towerHooks('image', { training: true }), text: m.towerHooks('text', { training: true }) };
  const report: string[] = [];
  for (const chunk of [1, 2, 4]) {
    const gc = await GradCache.create(m.config.model_cfg, { chunk, trainable: isLoraParam, hooks, session: { threads: 2 } });
    const loss = await gc.gradients(m.params, feeds);
    assert.ok(Math.abs(loss - ref.loss) <= 1e-6, `chunk ${chunk}: loss ${loss} vs ${ref.loss}`);
    let max = 0;
    let at = '';
    for (const [n, want] of ref.grads) {
      const d = maxAbsDiff(gc.grads.view(n), want);
      if (d > max) [max, at] = [d, n];
    }
    report.push(`chunk ${chunk}: ${max.toExponential(2)}`);
    assert.ok(max <= 1e-5, `chunk ${chunk}: ${max} at ${at}`);
    await gc.release();
  }
  t.diagnostic(`max |gradient diff| vs the full batch with dropout 0.3 (dropout itself moves them by ${moved.toExponential(2)}): ${report.join('; ')}`);
  await m.release();
});

test('fit with lora.dropout: recorded as lora_dropout, trains other adapters than p = 0, and GradCache follows the plain step', async (t) => {
  if (!tiny) return t.skip();
  const { csv } = await makeShapesCsv(24);
  const opts = (lora: FitOptions['lora'], o: Partial<FitOptions> = {}): FitOptions => ({
    model: tiny, tokenizer: bpe, trainData: csv, epochs: 1, batchSize: 8, learningRate: 1e-2, numWorkers: 1, seed: 7, lora,
    workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-lora-dropout-')), ...o,
  });
  const adapters = async (dir: string) => (await readSafetensors(path.join(dir, 'adapter_model.safetensors'))).tensors;
  const dropped = await fit(opts({ rank: 4, dropout: 0.5 }));
  const plain = await fit(opts({ rank: 4 }));
  const chunked = await fit(opts({ rank: 4, dropout: 0.5 }, { gradCache: { chunk: 3 } }));
  assert.equal(JSON.parse(readFileSync(path.join(dropped.artifactDir, 'adapter_config.json'), 'utf8')).lora_dropout, 0.5);
  // Loaded back (unmerged), the adapter keeps its recorded dropout and encodes without it: as merged.
  const loaded = await ClipModel.load(dropped.artifactDir, { mergeAdapter: false });
  assert.equal(loaded.lora!.spec.dropout, 0.5);
  const merged = loaded.merged();
  const texts = ['a red square', 'a green circle'];
  assert.ok(maxAbsDiff((await loaded.encodeTexts(texts)).data, (await merged.encodeTexts(texts)).data) < 1e-5);
  await loaded.release();
  await merged.release();
  const [a, b, c] = [await adapters(dropped.artifactDir), await adapters(plain.artifactDir), await adapters(chunked.artifactDir)];
  let vsPlain = 0;
  let vsChunked = 0;
  for (const [n, x] of a) {
    vsPlain = Math.max(vsPlain, maxAbsDiff(x.data as Float32Array, b.get(n)!.data as Float32Array));
    vsChunked = Math.max(vsChunked, maxAbsDiff(x.data as Float32Array, c.get(n)!.data as Float32Array));
  }
  t.diagnostic(`adapters after 3 steps, max |Δ|: dropout 0.5 vs 0 ${vsPlain.toExponential(2)}; plain vs GradCache (chunk 3) both at 0.5 ${vsChunked.toExponential(2)}`);
  assert.ok(vsPlain > 1e-3, 'dropout changes what trains');
  // Equal gradients (1e-5, test above) still part by float rounding through three AdamW steps, whose
  // m/√v magnifies differences where gradients are tiny; other masks part by ~1e-2 (dropout vs none).
  assert.ok(vsChunked < 1e-3, `GradCache draws the plain step's masks: ${vsChunked}`);
});

test('lora.dropout below 0, at or above 1, or not a number is a ConfigError naming lora.dropout', async (t) => {
  if (!tiny) return t.skip();
  const cfg = (await ClipModel.load(tiny, { tokenizer: bpe })).config.model_cfg;
  for (const d of [-0.1, 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '0.1'])
    assert.throws(() => resolveLora({ rank: 4, dropout: d as number }, cfg), (e: unknown) => e instanceof ConfigError && /^lora\.dropout: must be a probability in \[0, 1\), got /.test(e.message), String(d));
  assert.equal(resolveLora({ rank: 4, dropout: 0.999 }, cfg).dropout, 0.999);
});
