// CLIP configs: open_clip JSON parsing and validation, the parameter inventory against the tiny
// fixture (OpenAI's own state_dict), and the registry of known models and pretrained tags.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ArchitectureError, ConfigError, UnknownModelError } from '../src/errors.js';
import { countParams, paramShapes, parseModelConfig, parseOpenClipConfig, parsePreprocessCfg } from '../src/models/clip/config.js';
import { DEFAULT_MODEL, defaultRegistry, describeModels } from '../src/models/clip/weights/registry.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { REPO_ROOT, requireFixture } from './fixtures.js';

const tinyCfg = () => defaultRegistry().get('tiny-test').cfg;

test('paramShapes(tiny-test) equals the fixture param_shapes, in order', (t) => {
  const file = requireFixture('tiny/config.json', t);
  if (!file) return;
  const ref = JSON.parse(readFileSync(file, 'utf8')) as { param_shapes: Record<string, number[]> | [string, number[]][] };
  const refList: [string, number[]][] = Array.isArray(ref.param_shapes) ? ref.param_shapes : Object.entries(ref.param_shapes);
  assert.deepEqual(paramShapes(tinyCfg()), refList);
});

test('paramShapes(tiny-test) equals the tensors of tiny/model.safetensors (names, order, shapes)', async (t) => {
  const file = requireFixture('tiny/model.safetensors', t);
  if (!file) return;
  const st = await readSafetensors(file);
  assert.deepEqual(
    paramShapes(tinyCfg()),
    [...st.tensors].map(([k, v]) => [k, v.shape]),
  );
  const total = [...st.tensors.values()].reduce((a, v) => a + v.data.length, 0);
  assert.equal(total, 2_861_489);
  assert.equal(countParams(tinyCfg()), total);
});

test('countParams matches the fixture derived sizes', (t) => {
  const file = requireFixture('tiny/config.json', t);
  if (!file) return;
  const ref = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(countParams(tinyCfg()), ref.derived.n_parameters);
  const emb = paramShapes(tinyCfg()).find(([k]) => k === 'token_embedding.weight')!;
  assert.equal(emb[1][0]! * emb[1][1]!, 2_371_584);
});

test('tiny-test.json is the fixture open_clip_config.json model, defaults filled', (t) => {
  const file = requireFixture('tiny/open_clip_config.json', t);
  if (!file) return;
  const c = parseOpenClipConfig(JSON.parse(readFileSync(file, 'utf8')), file, 'tiny');
  assert.deepEqual(c.model_cfg, tinyCfg());
  assert.equal(c.model_cfg.vision_cfg.width / c.model_cfg.vision_cfg.head_width, 2); // OpenAI: heads = width // 64
  assert.equal(c.preprocess_cfg.image_size, 32);
  assert.deepEqual(c.preprocess_cfg.mean, [0.48145466, 0.4578275, 0.40821073]);
});

// Parameter counts of OpenAI's released models, as sum(p.numel()) prints them for clip.load()
// (OpenAI's notebook) and open_clip: ViT-B/32 151,277,313, ViT-B/16 149,620,737, ViT-L/14
// 427,616,513, ViT-L/14@336px 427,944,193.
test('built-in configs have the parameter counts of the released OpenAI models', () => {
  const reg = defaultRegistry();
  const expected: Record<string, number> = {
    'ViT-B-32': 151_277_313,
    'ViT-B-16': 149_620_737,
    'ViT-L-14': 427_616_513,
    'ViT-L-14-336': 427_944_193,
  };
  for (const [name, n] of Object.entries(expected)) {
    assert.equal(countParams(reg.get(name).cfg), n, name);
    assert.equal(countParams(reg.get(`${name}-quickgelu`).cfg), n, `${name}-quickgelu`);
    assert.equal(reg.get(`${name}-quickgelu`).cfg.quick_gelu, true);
    assert.equal(reg.get(name).cfg.quick_gelu, false);
  }
  // ViT-B/32 image tower alone: 87,849,216.
  const b32 = paramShapes(reg.get('ViT-B-32').cfg).filter(([k]) => k.startsWith('visual.'));
  assert.equal(b32.reduce((a, [, s]) => a + s.reduce((x, d) => x * d, 1), 0), 87_849_216);
});

test('parseModelConfig fills open_clip defaults', () => {
  const c = parseModelConfig(
    { embed_dim: 512, vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32 }, text_cfg: { width: 512, heads: 8, layers: 12 } },
    'x.json',
  );
  assert.deepEqual(c, {
    embed_dim: 512,
    quick_gelu: false,
    vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32, head_width: 64, mlp_ratio: 4 },
    text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12, mlp_ratio: 4 },
  });
});

const base = () => ({
  embed_dim: 512,
  vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32 } as Record<string, unknown>,
  text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 } as Record<string, unknown>,
} as Record<string, unknown> & { vision_cfg: Record<string, unknown>; text_cfg: Record<string, unknown> });

test('validation errors name the file and the field', () => {
  const bad = (mutate: (c: ReturnType<typeof base>) => void, re: RegExp, type: Function = ConfigError) => {
    const c = base();
    mutate(c);
    assert.throws(() => parseModelConfig(c, 'ViT-B-32.json'), (e: Error) => e instanceof type && re.test(e.message), re.source);
  };
  bad((c) => (c.vision_cfg['width'] = 100), /^ViT-B-32\.json: vision_cfg\.width: must be a positive integer divisible by head_width \(64\), got 100$/);
  bad((c) => (c.vision_cfg['layers'] = 0), /ViT-B-32\.json: vision_cfg\.layers: must be a positive integer, got 0/);
  bad((c) => (c.vision_cfg['image_size'] = 225), /vision_cfg\.image_size: must be a multiple of patch_size \(32\), got 225/);
  bad((c) => (c.vision_cfg['widht'] = 768), /vision_cfg\.widht: unknown field/);
  bad((c) => (c.vision_cfg['ls_init_value'] = 0.1), /vision_cfg\.ls_init_value: only null is supported, got 0\.1/);
  bad((c) => (c.text_cfg['width'] = 500), /text_cfg\.width: must be a positive integer divisible by heads \(8\), got 500/);
  bad((c) => delete c.text_cfg['heads'], /text_cfg\.heads: must be a positive integer, got nothing/);
  bad((c) => (c['embed_dim'] = '512'), /ViT-B-32\.json: embed_dim: must be a positive integer, got "512"/);
  bad((c) => (c['quick_gelu'] = 'yes'), /quick_gelu: must be true or false/);
  bad((c) => ((c as Record<string, unknown>)['vision_cfg'] = 3), /vision_cfg: must be an object/);
  assert.throws(() => parseModelConfig([], 'a.json'), /a\.json: \(root\): must be a JSON object/);
});

test('other architectures are rejected with ArchitectureError', () => {
  // open_clip's RN50.json, verbatim.
  const rn50 = { embed_dim: 1024, vision_cfg: { image_size: 224, layers: [3, 4, 6, 3], width: 64, patch_size: null }, text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 } };
  assert.throws(() => parseModelConfig(rn50, 'RN50.json'), (e: Error) => e instanceof ArchitectureError && /RN50\.json: .*ResNet/.test(e.message));
  const noPatch = base();
  delete noPatch.vision_cfg['patch_size'];
  assert.throws(() => parseModelConfig(noPatch, 'x.json'), (e: Error) => e instanceof ArchitectureError && /vision_cfg\.patch_size is missing: not a ViT/.test(e.message));
  const timm = base();
  timm.vision_cfg['timm_model_name'] = 'convnext_base';
  assert.throws(() => parseModelConfig(timm, 'x.json'), ArchitectureError);
  const hfText = base();
  hfText.text_cfg['hf_model_name'] = 'xlm-roberta-base';
  assert.throws(() => parseModelConfig(hfText, 'x.json'), /text_cfg\.hf_model_name/);
  assert.throws(() => parseModelConfig({ ...base(), init_logit_bias: -10 }, 'siglip.json'), /SigLIP/);
  const noVision = base() as Record<string, unknown>;
  delete noVision['vision_cfg'];
  assert.throws(() => parseModelConfig(noVision, 'x.json'), ArchitectureError);
});

test('preprocess_cfg validation', () => {
  assert.throws(() => parsePreprocessCfg({ interpolation: 'bilinear' }, 'p.json', 224), /p\.json: preprocess_cfg\.interpolation: only 'bicubic'/);
  assert.throws(() => parsePreprocessCfg({ resize_mode: 'squash' }, 'p.json', 224), /preprocess_cfg\.resize_mode/);
  assert.throws(() => parsePreprocessCfg({ mean: [0.5, 0.5] }, 'p.json', 224), /preprocess_cfg\.mean: must be three numbers/);
  assert.equal(parsePreprocessCfg({ size: [336, 336] }, 'p.json', 224).image_size, 336);
  assert.throws(() => parseOpenClipConfig({ preprocess_cfg: {} }, 'o.json', 'x'), /o\.json: model_cfg: missing/);
});

test('describeModels lists models with sizes and their pretrained repositories', () => {
  const all = describeModels();
  const names = all.map((d) => d.name);
  for (const n of ['ViT-B-32', 'ViT-B-32-quickgelu', 'ViT-B-16', 'ViT-B-16-quickgelu', 'ViT-L-14', 'ViT-L-14-quickgelu', 'ViT-L-14-336', 'ViT-L-14-336-quickgelu', 'tiny-test'])
    assert.ok(names.includes(n), n);
  const b32 = all.find((d) => d.name === 'ViT-B-32')!;
  assert.equal(b32.embed_dim, 512);
  assert.equal(b32.params, 151_277_313);
  assert.equal(b32.image_size, 224);
  assert.equal(b32.context_length, 77);
  const openai = b32.pretrained.find((p) => p.tag === 'openai')!;
  assert.equal(openai.id, 'ViT-B-32::openai');
  assert.equal(openai.repo, 'timm/vit_base_patch32_clip_224.openai');
  assert.deepEqual(openai.files, ['open_clip_model.safetensors']);
  assert.equal(openai.layout, 'open_clip');
  assert.equal(openai.quick_gelu, true); // OpenAI weights are QuickGELU whatever the name says
  const laion = b32.pretrained.find((p) => p.tag === 'laion2b_s34b_b79k')!;
  assert.equal(laion.repo, 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K');
  assert.equal(laion.quick_gelu, false);
  const l336 = all.find((d) => d.name === 'ViT-L-14-336')!;
  assert.equal(l336.image_size, 336);
  assert.equal(l336.pretrained[0]!.repo, 'timm/vit_large_patch14_clip_336.openai');
  const tiny = all.find((d) => d.name === 'tiny-test')!;
  assert.equal(tiny.params, 2_861_489);
});

test('registry: pretrained config applies tag overrides; unknown names and tags are typed errors', () => {
  const reg = defaultRegistry().clone();
  const { config } = reg.pretrained('ViT-B-32', 'openai');
  assert.equal(config.name, 'ViT-B-32::openai');
  assert.equal(config.model_cfg.quick_gelu, true);
  assert.equal(config.preprocess_cfg.image_size, 224);
  const l14 = reg.pretrained('ViT-L-14', 'laion2b_s32b_b82k').config;
  assert.deepEqual(l14.preprocess_cfg.mean, [0.5, 0.5, 0.5]);
  assert.throws(() => reg.pretrained('ViT-B-32', 'nope'), (e: Error) => e instanceof UnknownModelError && /openai, laion2b_s34b_b79k/.test(e.message));
  assert.throws(() => reg.get('ViT-Q-99'), UnknownModelError);
  reg.registerPretrained('tiny-test', 'local', { repo: 'me/tiny', layout: 'hf', files: ['config.json', 'model.safetensors'] });
  assert.equal(reg.pretrained('tiny-test', 'local').spec.repo, 'me/tiny');
  assert.equal(defaultRegistry().get('tiny-test').pretrained.has('local'), false); // the clone, not the default
  assert.throws(() => reg.registerPretrained('tiny-test', 'bad', { repo: 'no-slash', layout: 'hf', files: ['a'] }), /repo: must be 'owner\/name'/);
  assert.throws(() => reg.registerPretrained('tiny-test', 'bad', { repo: 'a/b', layout: 'hf', files: ['../etc/passwd'] }), /bad file name/);
  // A pull-request ref is a revision (model.safetensors of openai/clip-vit-base-patch32 lives on refs/pr/32); '..' is not.
  reg.registerPretrained('tiny-test', 'pr', { repo: 'a/b', revision: 'refs/pr/32', layout: 'hf', files: ['model.safetensors'] });
  assert.throws(() => reg.registerPretrained('tiny-test', 'bad', { repo: 'a/b', revision: 'refs/../../x', layout: 'hf', files: ['a'] }), /bad revision/);
  // LAION's L-14 repository holds its safetensors weights under open_clip's .bin name with .safetensors.
  assert.deepEqual(reg.pretrained('ViT-L-14', 'laion2b_s32b_b82k').spec.files, ['open_clip_pytorch_model.safetensors']);
});

test('the shipped base model is listed, is the default, and its folder name is checked', () => {
  const t = describeModels().find((d) => d.name === 'ViT-T-8-64')!;
  assert.equal(t.image_size, 64);
  assert.equal(t.context_length, 32);
  const icons = t.pretrained.find((p) => p.tag === 'icons')!;
  assert.equal(icons.id, DEFAULT_MODEL);
  assert.equal(icons.shipped, path.resolve(REPO_ROOT, 'models', 'ViT-T-8-64-icons'));
  const r = defaultRegistry().clone();
  assert.throws(() => r.extend({ pretrained: { 'ViT-T-8-64': { evil: { repo: 'a/b', layout: 'open_clip', files: ['x'], shipped: '../../etc' } } } }, 'test'), ConfigError);
});

test('the default model resolves to the folder shipped in the package, offline, and loads', async () => {
  const { resolveModel } = await import('../src/models/clip/weights/hub.js');
  const { ClipModel } = await import('../src/models/clip/clip_model.js');
  const dir = await resolveModel(DEFAULT_MODEL, { offline: true, home: '/nonexistent-clipfit-home' });
  assert.equal(dir, path.resolve(REPO_ROOT, 'models', 'ViT-T-8-64-icons'));
  const m = await ClipModel.load(DEFAULT_MODEL, { offline: true });
  assert.equal(m.embedDim, 256);
  // Its own vocabulary: 3,582 merges laid out as OpenAI's (256 + 256 byte symbols, merges, 2 specials).
  assert.equal(m.tokenizer.tokenize(['x']).ids[0], 4094);
  const e = await m.encodeTexts(['red heart', 'green book']);
  assert.equal(e.shape[1], 256);
  await m.release();
});
