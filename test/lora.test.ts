// LoRA adapters on the tiny fixture CLIP: the B = 0 graph is the base model bit for bit; training
// changes only the adapters; the merged model encodes as the adapter model does; the adapter
// artifact loads onto its base (and is refused by another); WiSE-FT mixes the merged weights.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { AdapterMismatchError, ConfigError } from '../src/errors.js';
import { getModel } from '../src/inference/get_model.js';
import { loadServeModel } from '../src/server/models.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { isLoraParam, loraLayers, loraParamCount, resolveLora } from '../src/models/clip/lora.js';
import { ParamStore } from '../src/runtime/params.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, REPO_ROOT, requireFixture } from './fixtures.js';

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
let data: { dir: string; csv: string; captions: string[] };
before(async () => {
  data = await makeShapesCsv(24);
});
const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));
const images = () => readdirSync(data.dir).filter((f) => f.endsWith('.png')).slice(0, 6).map((f) => path.join(data.dir, f));

const fitOptions = (o: Partial<FitOptions> = {}): FitOptions => ({
  model: tiny!,
  tokenizer: bpe,
  trainData: data.csv,
  epochs: 2,
  batchSize: 8,
  learningRate: 1e-2,
  numWorkers: 1,
  seed: 7,
  lora: { rank: 4 },
  workDir: tmp('clipfit-lora-'),
  ...o,
});

async function embed(m: ClipModel): Promise<{ text: Float32Array; image: Float32Array }> {
  const text = (await m.encodeTexts(data.captions.slice(0, 6), { normalize: false })).data;
  const image = (await m.encodeImages(images(), { normalize: false })).data;
  return { text, image };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('with B = 0 the LoRA graph gives the base model’s embeddings bit for bit; with B ≠ 0 they move and the merged model follows within 1e-5', async (t) => {
  if (!tiny) return t.skip();
  const base = await ClipModel.load(tiny, { tokenizer: bpe });
  const spec = resolveLora({ rank: 8 }, base.config.model_cfg);
  const lora = base.withLora(spec, { base: tiny, seed: 1 });
  const layers = lora.lora!.layers;
  assert.equal(layers.length, 2 * 4 + 2 * 4, '2 blocks × 4 weights in each tower');
  for (const l of layers) {
    assert.ok(lora.params.view(l.a).some((x) => x !== 0), `${l.a} is initialised`);
    assert.ok(lora.params.view(l.b).every((x) => x === 0), `${l.b} starts at 0`);
  }
  const [e0, e1] = [await embed(base), await embed(lora)];
  assert.deepEqual(e1.text, e0.text, 'text tower bit for bit');
  assert.deepEqual(e1.image, e0.image, 'image tower bit for bit');
  await lora.release();

  // Random B: the adapters now act, and merging W + s·B·A reproduces them.
  const moved = base.withLora(resolveLora({ rank: 8, alpha: 16 }, base.config.model_cfg), { base: tiny, seed: 1 });
  let k = 0;
  for (const l of layers) moved.params.view(l.b).forEach((_, i, b) => (b[i] = Math.sin(++k) * 0.05));
  const e2 = await embed(moved);
  assert.ok(maxAbsDiff(e2.text, e0.text) > 1e-2 && maxAbsDiff(e2.image, e0.image) > 1e-2, 'the adapters change both towers');
  const merged = moved.merged();
  assert.equal(merged.lora, null);
  assert.deepEqual(merged.params.names, base.params.names, 'the merged model has the base layout, no adapter');
  const e3 = await embed(merged);
  const d = Math.max(maxAbsDiff(e3.text, e2.text), maxAbsDiff(e3.image, e2.image));
  t.diagnostic(`merged vs adapter graph: max |Δ| ${d.toExponential(2)}`);
  assert.ok(d < 1e-5, `merged within 1e-5 of the adapter model, got ${d}`);
  for (const m of [base, moved, merged]) await m.release();
});

test('LoRA fit: only the adapters train (no optimizer state for the base), the base is unchanged bit for bit, and the adapter artifact loads onto its base', async (t) => {
  if (!tiny) return t.skip();
  const logs: string[] = [];
  const r = await fit(fitOptions({ toOnnx: false }), { log: (_l, m) => logs.push(m) });
  const base = await ClipModel.load(tiny, { tokenizer: bpe });
  const spec = resolveLora({ rank: 4 }, base.config.model_cfg);
  const expected = loraParamCount(loraLayers(base.config.model_cfg, spec), 4);
  assert.equal(r.trainableParameters, expected);
  assert.ok(logs.some((m) => m.includes(`${expected.toLocaleString('en-US')} trainable parameters`)), logs.join('\n'));

  // The last checkpoint: every base parameter equals the base model's bit for bit; every B moved.
  const ckpt = path.join(r.artifactDir, '..', 'checkpoints', 'epoch-0002');
  const p = await ParamStore.fromSafetensors(path.join(ckpt, 'params.safetensors'));
  for (const e of base.params.entries) assert.deepEqual(p.view(e.name), base.params.view(e.name), `${e.name} unchanged`);
  const adapters = p.names.filter(isLoraParam);
  assert.equal(adapters.length, 2 * loraLayers(base.config.model_cfg, spec).length);
  for (const n of adapters.filter((n) => n.includes('lora_B'))) assert.ok(p.view(n).some((x) => x !== 0), `${n} trained`);
  const opt = await readSafetensors(path.join(ckpt, 'optimizer.safetensors'));
  const stateNames = [...opt.tensors.keys()];
  assert.ok(stateNames.length > 0);
  for (const n of stateNames) assert.ok(/lora_[AB]\.weight$/.test(n), `optimizer state only for adapters, found ${n}`);

  // The artifact: the adapter alone (no merged model unless asked), small, PEFT-like.
  const art = r.artifactDir;
  assert.ok(existsSync(path.join(art, 'adapter_model.safetensors')));
  assert.ok(!existsSync(path.join(art, 'open_clip_model.safetensors')), 'no merged model without merge/toOnnx');
  const cfg = JSON.parse(readFileSync(path.join(art, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 4);
  assert.equal(cfg.base_model_name_or_path, path.resolve(tiny));
  assert.deepEqual(cfg.target_modules, ['attn.in_proj', 'attn.out_proj', 'mlp.c_fc', 'mlp.c_proj']);
  assert.match(cfg.base_model_fingerprint, /^sha256:[0-9a-f]{64}$/);
  const st = await readSafetensors(path.join(art, 'adapter_model.safetensors'));
  for (const n of adapters) assert.deepEqual(st.tensors.get(n)!.data, p.view(n), `${n} saved as trained`);

  // Loaded by folder: merged (default) and unmerged agree within 1e-5, and the unmerged one
  // is exactly the trained adapter model.
  const merged = await ClipModel.load(art);
  const unmerged = await ClipModel.load(art, { mergeAdapter: false });
  assert.equal(merged.lora, null);
  assert.ok(unmerged.lora);
  for (const n of adapters) assert.deepEqual(unmerged.params.view(n), p.view(n));
  const [em, eu] = [await embed(merged), await embed(unmerged)];
  const d = Math.max(maxAbsDiff(em.text, eu.text), maxAbsDiff(em.image, eu.image));
  assert.ok(d < 1e-5, `merged vs adapter model ${d}`);
  const e0 = await embed(base);
  assert.ok(maxAbsDiff(em.text, e0.text) > 1e-3, 'fine-tuned, not the base');
  // getModel on the artifact folder (the public inference API) gives the same embeddings.
  const gm = await getModel(art, { selectModel: 'clip-text' });
  const viaGet = await gm.encodeTextBatch(data.captions.slice(0, 6));
  assert.ok(maxAbsDiff(viaGet, em.text) < 1e-6);
  await gm.release();

  // The server needs a merged model: an adapter alone is refused with what to do.
  await assert.rejects(loadServeModel(art), /LoRA adapter without its merged model; serve a merged one/);

  // Another base: a typed error naming both.
  const other = tmp('clipfit-other-base-');
  const wrong = await ClipModel.load(tiny, { tokenizer: bpe });
  wrong.params.view('ln_final.weight')[0]! += 0.5;
  await wrong.save(other);
  await assert.rejects(ClipModel.load(art, { adapterBase: other }), (err: unknown) => {
    assert.ok(err instanceof AdapterMismatchError, String(err));
    assert.ok(err.message.includes(path.resolve(tiny)) && err.message.includes(other), err.message);
    return true;
  });
  // Another architecture (the shipped ViT-T-8-64): refused too, naming both.
  const shipped = path.join(REPO_ROOT, 'models', 'ViT-T-8-64-icons');
  await assert.rejects(ClipModel.load(art, { adapterBase: shipped }), (err: unknown) => err instanceof AdapterMismatchError && err.message.includes(shipped));
  for (const m of [base, merged, unmerged, wrong]) await m.release();
});

test('LoRA with merge and toOnnx writes the merged model beside the adapter; WiSE-FT mixes the merged weights', async (t) => {
  if (!tiny) return t.skip();
  const full = await fit(fitOptions({ lora: { rank: 4, targets: ['attn'], towers: ['image', 'text'] }, toOnnx: true }));
  const half = await fit(fitOptions({ lora: { rank: 4, targets: ['attn'], towers: ['image', 'text'], merge: true }, callbacks: [{ type: 'WiSEFTCallback', alpha: 0.5 }] }));
  for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'open_clip_model.safetensors', 'open_clip_config.json', 'clip-text/model.onnx', 'clip-vision/model.onnx'])
    assert.ok(existsSync(path.join(full.artifactDir, f)), f);
  const base = await ParamStore.fromSafetensors(path.join(tiny, 'open_clip_model.safetensors'));
  const ft = await ParamStore.fromSafetensors(path.join(full.artifactDir, 'open_clip_model.safetensors'));
  const wise = await ParamStore.fromSafetensors(path.join(half.artifactDir, 'open_clip_model.safetensors'));
  let d = 0;
  let moved = 0;
  for (const n of base.names) {
    const [b, f, w] = [base.view(n), ft.view(n), wise.view(n)];
    for (let i = 0; i < b.length; i++) {
      d = Math.max(d, Math.abs(w[i]! - (0.5 * b[i]! + 0.5 * f[i]!)));
      moved = Math.max(moved, Math.abs(f[i]! - b[i]!));
    }
  }
  assert.ok(moved > 1e-3, 'the merged weights moved');
  assert.ok(d < 1e-6, `WiSE-FT(0.5) of the merged weights, max |Δ| ${d}`);
  // Only the attention weights of the blocks differ from the base (targets: attn).
  for (const n of base.names) {
    const same = base.view(n).every((x, i) => x === ft.view(n)[i]);
    assert.equal(same, !/attn\.(in_proj_weight|out_proj\.weight)$/.test(n), n);
  }
  // The artifact folder with both loads the merged model directly; its exported ONNX tower (the
  // merged weights baked in) encodes as the adapter model does.
  const m = await ClipModel.load(full.artifactDir);
  assert.equal(m.lora, null);
  const adapter = await ClipModel.load(full.artifactDir, { mergeAdapter: false });
  assert.ok(adapter.lora);
  const onnx = await getModel(full.artifactDir, { selectModel: 'clip-vision', isOnnx: true });
  const viaOnnx = await onnx.encodeImageBatch(images());
  const viaAdapter = (await adapter.encodeImages(images(), { normalize: false })).data;
  assert.ok(maxAbsDiff(viaOnnx, viaAdapter) < 1e-5, `ONNX (merged) vs adapter graph ${maxAbsDiff(viaOnnx, viaAdapter)}`);
  for (const x of [m, adapter, onnx]) await x.release();
  // The server serves the merged model's ONNX towers.
  const served = await loadServeModel(full.artifactDir);
  assert.ok(served.isOnnx);
  await served.release();
});

test('bad LoRA options are ConfigErrors naming the field', async (t) => {
  if (!tiny) return t.skip();
  const cfg = (await ClipModel.load(tiny, { tokenizer: bpe })).config.model_cfg;
  const bad: [object, RegExp][] = [
    [{ rank: 0 }, /lora\.rank: must be a positive integer, got 0/],
    [{ rank: -2 }, /lora\.rank/],
    [{ rank: 2.5 }, /lora\.rank/],
    [{ rank: 64 }, /lora\.rank: 64 is above the width of transformer\.resblocks\.0\.attn\.in_proj_weight \(144×48\): at most 48 in the text tower/],
    [{ targets: ['foo'] }, /lora\.targets: unknown "foo": must be one of attn, mlp/],
    [{ targets: [] }, /lora\.targets/],
    [{ towers: ['audio'] }, /lora\.towers: unknown "audio": must be one of text, image/],
    [{ alpha: 0 }, /lora\.alpha/],
    [{ dropout: 1 }, /lora\.dropout: must be a probability in \[0, 1\), got 1/],
    [{ merge: 'yes' }, /lora\.merge/],
  ];
  for (const [o, re] of bad) assert.throws(() => resolveLora(o, cfg), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(o));
  // Rank 64 fits the image tower alone (width 128).
  assert.equal(resolveLora({ rank: 64, towers: ['image'] }, cfg).rank, 64);
  // Through fit: refused before any training, and together with freeze.
  await assert.rejects(fit(fitOptions({ lora: { rank: 0 } })), /lora\.rank/);
  await assert.rejects(fit(fitOptions({ lora: { targets: ['foo' as 'attn'] } })), /lora\.targets/);
  await assert.rejects(fit(fitOptions({ freeze: { image: true } })), /freeze: LoRA freezes every base weight already/);
  // A damaged adapter config names its file and field.
  const dir = tmp('clipfit-bad-adapter-');
  writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'IA3' }));
  await assert.rejects(ClipModel.load(dir), /adapter_config\.json: peft_type: must be "LORA"/);
});
