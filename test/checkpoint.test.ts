// Model folders: the tiny model in open_clip layout (tiny/) and Hugging Face layout (tiny-hf/) must
// load to the same config and bit-identical OpenAI-named weights, equal to OpenAI's own state_dict
// (tiny/model.safetensors); saving in either layout must reproduce the fixture files.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ArchitectureError, ConfigError, ParamError, UnknownModelError } from '../src/errors.js';
import { detectLayout, loadModelFolder, saveModelFolder } from '../src/models/clip/weights/checkpoint.js';
import type { Weights } from '../src/models/clip/weights/checkpoint.js';
import { readSafetensors, writeSafetensors } from '../src/runtime/safetensors.js';
import type { StTensor } from '../src/runtime/safetensors.js';
import { requireFixture } from './fixtures.js';

function tmpDir(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'clipfit-ckpt-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function assertSameWeights(a: Weights, b: Map<string, { shape: number[]; data: Float32Array }>, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: key order`);
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.deepEqual(t.shape, u.shape, `${what}: shape of ${k}`);
    assert.ok(bytes(t.data).equals(bytes(u.data)), `${what}: bits of ${k}`);
  }
}

test('detectLayout tells the two fixture folders apart', (t) => {
  const oc = requireFixture('tiny', t);
  const hf = requireFixture('tiny-hf', t);
  if (!oc || !hf) return;
  assert.equal(detectLayout(oc), 'open_clip');
  assert.equal(detectLayout(hf), 'hf');
});

test('tiny/ and tiny-hf/ load to the same config and bit-identical weights, equal to OpenAI state_dict', async (t) => {
  const oc = requireFixture('tiny', t);
  const hf = requireFixture('tiny-hf', t);
  if (!oc || !hf) return;
  const a = await loadModelFolder(oc);
  const b = await loadModelFolder(hf);
  assert.equal(a.layout, 'open_clip');
  assert.equal(b.layout, 'hf');
  assert.deepEqual(a.config.model_cfg, b.config.model_cfg);
  assert.deepEqual(a.config.preprocess_cfg, b.config.preprocess_cfg);
  assert.equal(a.config.model_cfg.quick_gelu, true); // hidden_act quick_gelu ↔ quick_gelu
  assert.equal(a.weights.size, 62);
  assertSameWeights(a.weights, b.weights, 'open_clip vs hf');
  const ref = await readSafetensors(path.join(oc, 'model.safetensors'));
  const refDense = new Map([...ref.tensors].map(([k, v]: [string, StTensor]) => [k, { shape: v.shape, data: v.data as Float32Array }]));
  assertSameWeights(b.weights, refDense, 'hf vs OpenAI model.safetensors');
  // open_clip folders carry no tokenizer: OpenAI's BPE, bundled with clipfit, as open_clip does.
  assert.deepEqual(a.tokenizer, { kind: 'bpe-gz', file: path.resolve('assets/bpe_simple_vocab_16e6.txt.gz'), bundled: true });
  assert.deepEqual(b.tokenizer, { kind: 'vocab-merges', vocab: path.join(hf, 'vocab.json'), merges: path.join(hf, 'merges.txt') });
});

test('HF q/k/v are the row thirds of in_proj; projections are transposed', async (t) => {
  const hf = requireFixture('tiny-hf/model.safetensors', t);
  const ref = requireFixture('tiny/model.safetensors', t);
  if (!hf || !ref) return;
  const h = (await readSafetensors(hf)).tensors;
  const o = (await readSafetensors(ref)).tensors;
  const inW = o.get('visual.transformer.resblocks.1.attn.in_proj_weight')!.data as Float32Array; // [384, 128]
  const k = h.get('vision_model.encoder.layers.1.self_attn.k_proj.weight')!.data as Float32Array; // [128, 128]
  assert.ok(bytes(k).equals(bytes(inW.subarray(128 * 128, 2 * 128 * 128))));
  const proj = o.get('visual.proj')!.data as Float32Array; // [128, 32]
  const vp = h.get('visual_projection.weight')!.data as Float32Array; // [32, 128]
  assert.equal(vp[5 * 128 + 7], proj[7 * 32 + 5]);
});

test('save → load round-trips in both layouts and reproduces the fixture HF files', async (t) => {
  const oc = requireFixture('tiny', t);
  const hf = requireFixture('tiny-hf', t);
  if (!oc || !hf) return;
  const src = await loadModelFolder(oc);
  const hfSrc = await loadModelFolder(hf);
  const dir = tmpDir(t);

  const ocDir = path.join(dir, 'oc');
  await saveModelFolder(ocDir, src.config, src.weights, 'open_clip');
  assert.equal(detectLayout(ocDir), 'open_clip');
  const back = await loadModelFolder(ocDir);
  assert.deepEqual(back.config, src.config);
  assertSameWeights(back.weights, src.weights, 'open_clip round trip');
  // The written weights file holds OpenAI's tensors in OpenAI's order, like the fixture.
  const written = await readSafetensors(path.join(ocDir, 'open_clip_model.safetensors'));
  const fixture = await readSafetensors(path.join(oc, 'open_clip_model.safetensors'));
  assert.deepEqual([...written.tensors.keys()], [...fixture.tensors.keys()]);

  const hfDir = path.join(dir, 'hf');
  await saveModelFolder(hfDir, src.config, src.weights, 'hf', hfSrc.tokenizer);
  assert.equal(detectLayout(hfDir), 'hf');
  const back2 = await loadModelFolder(hfDir);
  assert.deepEqual(back2.config.model_cfg, src.config.model_cfg);
  assert.deepEqual(back2.config.preprocess_cfg, src.config.preprocess_cfg);
  assertSameWeights(back2.weights, src.weights, 'hf round trip');
  for (const f of ['config.json', 'preprocessor_config.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    assert.deepEqual(JSON.parse(readFileSync(path.join(hfDir, f), 'utf8')), JSON.parse(readFileSync(path.join(hf, f), 'utf8')), f);
  for (const f of ['vocab.json', 'merges.txt']) assert.ok(readFileSync(path.join(hfDir, f)).equals(readFileSync(path.join(hf, f))), f);
  // Every HF parameter tensor equals the fixture's, bit for bit (position_ids buffers are not written).
  const mine = (await readSafetensors(path.join(hfDir, 'model.safetensors'))).tensors;
  const theirs = (await readSafetensors(path.join(hf, 'model.safetensors'))).tensors;
  const params = [...theirs.keys()].filter((k) => !k.endsWith('position_ids'));
  assert.deepEqual([...mine.keys()].sort(), params.sort());
  for (const k of params) assert.ok(bytes(mine.get(k)!.data as Float32Array).equals(bytes(theirs.get(k)!.data as Float32Array)), k);
  assert.equal(back2.tokenizer?.kind, 'vocab-merges');

  // open_clip folder with the BPE file copied in.
  const bpe = requireFixture('bpe_simple_vocab_16e6.txt.gz', t);
  if (!bpe) return;
  const ocTok = path.join(dir, 'oc-tok');
  await saveModelFolder(ocTok, src.config, src.weights, 'open_clip', { kind: 'bpe-gz', file: bpe });
  const withTok = await loadModelFolder(ocTok);
  assert.deepEqual(withTok.tokenizer, { kind: 'bpe-gz', file: path.join(ocTok, 'bpe_simple_vocab_16e6.txt.gz') });
});

/** A copy of tiny/ (open_clip layout) whose weights file is rewritten by `edit`. */
async function editedOpenClip(t: Parameters<typeof tmpDir>[0], oc: string, edit: (m: Map<string, StTensor>) => void): Promise<string> {
  const d = tmpDir(t);
  cpSync(path.join(oc, 'open_clip_config.json'), path.join(d, 'open_clip_config.json'));
  const st = await readSafetensors(path.join(oc, 'open_clip_model.safetensors'));
  edit(st.tensors);
  await writeSafetensors(path.join(d, 'open_clip_model.safetensors'), st.tensors);
  return d;
}

async function editedHf(t: Parameters<typeof tmpDir>[0], hf: string, edit: (m: Map<string, StTensor>) => void, cfgEdit?: (c: Record<string, any>) => void): Promise<string> {
  const d = tmpDir(t);
  for (const f of ['config.json', 'preprocessor_config.json']) cpSync(path.join(hf, f), path.join(d, f));
  if (cfgEdit) {
    const c = JSON.parse(readFileSync(path.join(d, 'config.json'), 'utf8'));
    cfgEdit(c);
    writeFileSync(path.join(d, 'config.json'), JSON.stringify(c));
  }
  const st = await readSafetensors(path.join(hf, 'model.safetensors'));
  edit(st.tensors);
  await writeSafetensors(path.join(d, 'model.safetensors'), st.tensors);
  return d;
}

const paramErr = (key: string, re: RegExp) => (e: Error) => e instanceof ParamError && e.key === key && re.test(e.message);

test('missing, extra and mis-shaped tensors are ParamErrors naming the key and both shapes', async (t) => {
  const oc = requireFixture('tiny', t);
  const hf = requireFixture('tiny-hf', t);
  if (!oc || !hf) return;
  const missing = await editedOpenClip(t, oc, (m) => m.delete('visual.proj'));
  await assert.rejects(loadModelFolder(missing), paramErr('visual.proj', /open_clip_model\.safetensors: parameter 'visual\.proj': missing \(expected shape \[128, 32\]\)/));

  const extra = await editedOpenClip(t, oc, (m) => m.set('visual.extra_token', { dtype: 'F32', shape: [2], data: new Float32Array(2) }));
  await assert.rejects(loadModelFolder(extra), paramErr('visual.extra_token', /unexpected tensor \(shape \[2\]\)/));

  const shaped = await editedOpenClip(t, oc, (m) => {
    const pe = m.get('positional_embedding')!;
    m.set('positional_embedding', { ...pe, shape: [48, 77] });
  });
  await assert.rejects(loadModelFolder(shaped), paramErr('positional_embedding', /shape \[48, 77\] does not match the config's \[77, 48\]/));

  // A config that disagrees with the weights: embed_dim 16 against [48, 32] projections.
  const cfgDir = await editedOpenClip(t, oc, () => {});
  const cfg = JSON.parse(readFileSync(path.join(cfgDir, 'open_clip_config.json'), 'utf8'));
  cfg.model_cfg.embed_dim = 16;
  writeFileSync(path.join(cfgDir, 'open_clip_config.json'), JSON.stringify(cfg));
  await assert.rejects(loadModelFolder(cfgDir), paramErr('text_projection', /shape \[48, 32\] does not match the config's \[48, 16\]/));

  const hfMissing = await editedHf(t, hf, (m) => m.delete('text_model.encoder.layers.1.self_attn.v_proj.bias'));
  await assert.rejects(
    loadModelFolder(hfMissing),
    paramErr('text_model.encoder.layers.1.self_attn.v_proj.bias', /missing \(expected shape \[48\], for 'transformer\.resblocks\.1\.attn\.in_proj_bias'\)/),
  );
  const hfShape = await editedHf(t, hf, (m) => {
    const v = m.get('visual_projection.weight')!;
    m.set('visual_projection.weight', { ...v, shape: [128, 32] });
  });
  await assert.rejects(loadModelFolder(hfShape), paramErr('visual_projection.weight', /shape \[128, 32\] does not match the config's \[32, 128\]/));
  const hfExtra = await editedHf(t, hf, (m) => m.set('vision_model.encoder.layers.2.mlp.fc1.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }));
  await assert.rejects(loadModelFolder(hfExtra), paramErr('vision_model.encoder.layers.2.mlp.fc1.weight', /unexpected tensor/));

  const src = await loadModelFolder(oc);
  const partial = new Map(src.weights);
  partial.delete('ln_final.bias');
  await assert.rejects(saveModelFolder(path.join(tmpDir(t), 'x'), src.config, partial, 'open_clip'), paramErr('ln_final.bias', /missing \(expected shape \[48\]\)/));
});

test('other architectures and non-folders are typed errors that say so', async (t) => {
  const oc = requireFixture('tiny', t);
  const hf = requireFixture('tiny-hf', t);
  if (!oc || !hf) return;
  const resnet = await editedOpenClip(t, oc, (m) => m.set('visual.layer1.0.conv1.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) }));
  await assert.rejects(loadModelFolder(resnet), (e: Error) => e instanceof ArchitectureError && /visual\.layer1\.0\.conv1\.weight.*ResNet/.test(e.message));

  const noPatch = await editedOpenClip(t, oc, () => {});
  const cfg = JSON.parse(readFileSync(path.join(noPatch, 'open_clip_config.json'), 'utf8'));
  delete cfg.model_cfg.vision_cfg.patch_size;
  writeFileSync(path.join(noPatch, 'open_clip_config.json'), JSON.stringify(cfg));
  await assert.rejects(loadModelFolder(noPatch), (e: Error) => e instanceof ArchitectureError && /open_clip_config\.json: unsupported architecture: vision_cfg\.patch_size is missing/.test(e.message));

  const siglip = await editedHf(t, hf, () => {}, (c) => (c.model_type = 'siglip'));
  await assert.rejects(loadModelFolder(siglip), (e: Error) => e instanceof ArchitectureError && /model_type "siglip"/.test(e.message));
  const badAct = await editedHf(t, hf, () => {}, (c) => (c.vision_config.hidden_act = 'gelu'));
  await assert.rejects(loadModelFolder(badAct), (e: Error) => e instanceof ConfigError && /config\.json: vision_config\.hidden_act: must equal text_config\.hidden_act/.test(e.message));
  const badHeads = await editedHf(t, hf, () => {}, (c) => (c.vision_config.num_attention_heads = 3));
  await assert.rejects(loadModelFolder(badHeads), /vision_config\.hidden_size: must be divisible by num_attention_heads \(3\), got 128/);

  const empty = tmpDir(t);
  assert.throws(() => detectLayout(empty), (e: Error) => e instanceof UnknownModelError && /not a model folder/.test(e.message));
  assert.throws(() => detectLayout(path.join(empty, 'nope')), /no such model folder/);
  writeFileSync(path.join(empty, 'open_clip_config.json'), '{}');
  writeFileSync(path.join(empty, 'open_clip_pytorch_model.bin'), '');
  assert.throws(() => detectLayout(empty), /only open_clip_pytorch_model\.bin \(a pickle\)/);
});
