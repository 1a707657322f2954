// Model folders in the two layouts published CLIP checkpoints come in:
//   open_clip: open_clip_config.json ({model_cfg, preprocess_cfg}) + open_clip_model.safetensors (OpenAI key names;
//              LAION's repos name the safetensors copy open_clip_pytorch_model.safetensors, read as well)
//              + tokenizer files only when the config names a Hugging Face tokenizer; otherwise, as in
//              open_clip, OpenAI's BPE (bundled_bpe.ts) for a 49,408-token vocabulary
//   hf:        config.json (CLIPModel) + model.safetensors (transformers key names, see hf_keys.ts)
//              + vocab.json/merges.txt + preprocessor_config.json
// Either loads to the same thing: a ClipConfig and dense float32 weights under OpenAI's names, in
// OpenAI's state_dict order, checked tensor by tensor against the config.

import { existsSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ArchitectureError, ConfigError, ParamError, UnknownModelError } from '../../../errors.js';
import { readSafetensors, writeSafetensors } from '../../../runtime/safetensors.js';
import type { StInput, StTensor } from '../../../runtime/safetensors.js';
import type { ClipConfig, ClipModelCfg } from '../config.js';
import { paramShapes, parseOpenClipConfig, toOpenClipConfigJson, defaultPreprocess } from '../config.js';
import type { DenseTensor } from './hf_keys.js';
import { hfConfigToModelCfg, hfPreprocessToCfg, hfSourceOf, isHfBuffer, modelCfgToHfConfig, preprocessToHf, toHfTensors, transpose2d } from './hf_keys.js';
import type { Layout } from './registry.js';
import { BUNDLED_BPE_NAME, CLIP_VOCAB_SIZE, bundledBpeFile } from '../text/bundled_bpe.js';

export type { Layout } from './registry.js';
export type { DenseTensor } from './hf_keys.js';
export type Weights = Map<string, DenseTensor>;

export type TokenizerFiles =
  /** `bundled`: the package's copy of OpenAI's BPE, used because the folder has none. */
  | { kind: 'bpe-gz'; file: string; bundled?: boolean }
  | { kind: 'vocab-merges'; vocab: string; merges: string }
  | { kind: 'tokenizer-json'; file: string }
  | null;

export interface ModelFolder {
  dir: string;
  layout: Layout;
  config: ClipConfig;
  /** OpenAI key names, paramShapes order, dense float32. */
  weights: Weights;
  /** The tokenizer the folder loads with (its own files, or the bundled BPE); null when it has none. */
  tokenizer: TokenizerFiles;
  /** Why `tokenizer` is null: what is missing and what to do (for the error when no tokenizer is passed). */
  tokenizerMissing?: string;
}

export const OPEN_CLIP_CONFIG = 'open_clip_config.json';
export const OPEN_CLIP_WEIGHTS = 'open_clip_model.safetensors';
/** The name SFconvertbot gave the safetensors copy of open_clip_pytorch_model.bin in LAION's repos. */
export const OPEN_CLIP_WEIGHTS_ALT = 'open_clip_pytorch_model.safetensors';
export const HF_CONFIG = 'config.json';
export const HF_WEIGHTS = 'model.safetensors';
export const HF_PREPROCESSOR = 'preprocessor_config.json';
export const BPE_FILE = 'bpe_simple_vocab_16e6.txt.gz';

const has = (dir: string, f: string) => existsSync(path.join(dir, f));

/** The open_clip weights file of a folder: open_clip_model.safetensors, else LAION's open_clip_pytorch_model.safetensors. */
export function openClipWeightsFile(dir: string): string | null {
  for (const f of [OPEN_CLIP_WEIGHTS, OPEN_CLIP_WEIGHTS_ALT]) if (has(dir, f)) return path.join(dir, f);
  return null;
}

/** 'open_clip' when open_clip_config.json + open_clip_model.safetensors are there; else 'hf' when config.json + model.safetensors are. */
export function detectLayout(dir: string): Layout {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UnknownModelError(dir, 'no such model folder');
  if (has(dir, OPEN_CLIP_CONFIG) && openClipWeightsFile(dir)) return 'open_clip';
  if (has(dir, HF_CONFIG) && has(dir, HF_WEIGHTS)) return 'hf';
  if (has(dir, OPEN_CLIP_CONFIG) && has(dir, 'open_clip_pytorch_model.bin'))
    throw new UnknownModelError(dir, `holds only open_clip_pytorch_model.bin (a pickle); clipfit reads ${OPEN_CLIP_WEIGHTS} only`);
  if (has(dir, HF_CONFIG) && has(dir, 'pytorch_model.bin'))
    throw new UnknownModelError(dir, `holds only pytorch_model.bin (a pickle); clipfit reads ${HF_WEIGHTS} only`);
  throw new UnknownModelError(
    dir,
    `not a model folder: expected ${OPEN_CLIP_CONFIG} + ${OPEN_CLIP_WEIGHTS} (open_clip layout) or ${HF_CONFIG} + ${HF_WEIGHTS} (Hugging Face layout)`,
  );
}

/** A Hugging Face tokenizer named by an open_clip config (text_cfg.hf_tokenizer_name), if any. */
export function hfTokenizerName(openClipJson: unknown): string | undefined {
  const t = (openClipJson as { model_cfg?: { text_cfg?: { hf_tokenizer_name?: unknown } } } | null)?.model_cfg?.text_cfg?.hf_tokenizer_name;
  return typeof t === 'string' && t ? t : undefined;
}

/** The tokenizer files a folder holds (vocab.json + merges.txt, tokenizer.json, OpenAI's BPE file), in the layout's order of preference. */
export function tokenizerFilesIn(dir: string, layout: Layout): TokenizerFiles {
  const vm: TokenizerFiles = has(dir, 'vocab.json') && has(dir, 'merges.txt') ? { kind: 'vocab-merges', vocab: path.join(dir, 'vocab.json'), merges: path.join(dir, 'merges.txt') } : null;
  const tj: TokenizerFiles = has(dir, 'tokenizer.json') ? { kind: 'tokenizer-json', file: path.join(dir, 'tokenizer.json') } : null;
  const bpeName = [BPE_FILE, 'bpe_simple_vocab_16e6.txt'].find((f) => has(dir, f));
  const bpe: TokenizerFiles = bpeName ? { kind: 'bpe-gz', file: path.join(dir, bpeName) } : null;
  return layout === 'hf' ? (vm ?? tj ?? bpe) : (bpe ?? vm ?? tj);
}

/**
 * The tokenizer of a model folder, as open_clip picks it: the folder's own files; else, for an
 * open_clip folder whose config names no Hugging Face tokenizer and whose vocabulary is CLIP's
 * 49,408 tokens, OpenAI's BPE bundled with clipfit. Otherwise none, with the reason.
 */
export function resolveTokenizer(dir: string, layout: Layout, config: ClipConfig, openClipJson?: unknown): { files: TokenizerFiles; missing?: string } {
  const own = tokenizerFilesIn(dir, layout);
  if (own) return { files: own };
  const looked = 'vocab.json + merges.txt, tokenizer.json or bpe_simple_vocab_16e6.txt.gz';
  if (layout === 'hf') return { files: null, missing: `the model folder has no tokenizer files (${looked}); add them or pass the tokenizer option` };
  const hf = hfTokenizerName(openClipJson);
  if (hf)
    return {
      files: null,
      missing: `${OPEN_CLIP_CONFIG} names the Hugging Face tokenizer '${hf}' (text_cfg.hf_tokenizer_name) and the folder has none of its files; put tokenizer.json (or vocab.json + merges.txt) from https://huggingface.co/${hf} into the folder, or pass the tokenizer option`,
    };
  const vocab = config.model_cfg.text_cfg.vocab_size;
  if (vocab !== CLIP_VOCAB_SIZE)
    return { files: null, missing: `the model folder has no tokenizer files (${looked}) and its vocabulary (text_cfg.vocab_size ${vocab}) is not OpenAI's BPE (${CLIP_VOCAB_SIZE}); add its tokenizer files or pass the tokenizer option` };
  const bundled = bundledBpeFile();
  if (!bundled) return { files: null, missing: `OpenAI's BPE (assets/${BUNDLED_BPE_NAME}) is missing from this clipfit installation; reinstall clipfit or pass the tokenizer option` };
  return { files: { kind: 'bpe-gz', file: bundled, bundled: true } };
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, file);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError('(root)', `not valid JSON (${(err as Error).message})`, file);
  }
}

const fmt = (s: number[]) => `[${s.join(', ')}]`;
const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function asF32(t: StTensor, key: string, file: string): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.data instanceof Float64Array) return Float32Array.from(t.data);
  throw new ParamError(key, `dtype ${t.dtype} is not a floating-point type`, file);
}

/** Tell-tale keys of towers clipfit does not build. */
function checkArchitecture(keys: Iterable<string>, file: string): void {
  for (const k of keys) {
    if (/^visual\.(layer\d|attnpool|bn\d|conv[23])/.test(k)) throw new ArchitectureError(file, `tensor '${k}' belongs to a ResNet (ModifiedResNet) image tower; only ViT CLIP is supported`);
    if (k.startsWith('visual.trunk.')) throw new ArchitectureError(file, `tensor '${k}' belongs to a timm image tower; only OpenAI-style ViT CLIP is supported`);
    if (k.startsWith('text.')) throw new ArchitectureError(file, `tensor '${k}' belongs to a custom text tower (CustomTextCLIP); only CLIP's own text transformer is supported`);
    if (k === 'logit_bias') throw new ArchitectureError(file, "tensor 'logit_bias' belongs to a SigLIP-style sigmoid head; only CLIP's softmax head is supported");
  }
}

/**
 * Check OpenAI-named weights against the config: every parameter present with its shape, nothing
 * else. Returns them in paramShapes order. Throws ParamError naming the key and both shapes.
 */
export function checkWeights(weights: Map<string, DenseTensor>, cfg: ClipModelCfg, file: string): Weights {
  checkArchitecture(weights.keys(), file);
  const expected = paramShapes(cfg);
  const out: Weights = new Map();
  for (const [key, shape] of expected) {
    const t = weights.get(key);
    if (!t) throw new ParamError(key, `missing (expected shape ${fmt(shape)})`, file);
    if (!sameShape(t.shape, shape)) throw new ParamError(key, `shape ${fmt(t.shape)} does not match the config's ${fmt(shape)}`, file);
    const n = shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== n) throw new ParamError(key, `holds ${t.data.length} values, shape ${fmt(shape)} needs ${n}`, file);
    out.set(key, t);
  }
  for (const [key, t] of weights) if (!out.has(key)) throw new ParamError(key, `unexpected tensor (shape ${fmt(t.shape)}): the config has no such parameter`, file);
  return out;
}

function openClipWeights(tensors: Map<string, StTensor>, cfg: ClipModelCfg, file: string): Weights {
  const dense = new Map<string, DenseTensor>();
  for (const [k, t] of tensors) {
    if (k === 'attn_mask' || k.endsWith('.attn_mask')) continue; // buffers some exports carry
    dense.set(k, { shape: t.shape, data: asF32(t, k, file) });
  }
  return checkWeights(dense, cfg, file);
}

function hfWeights(tensors: Map<string, StTensor>, cfg: ClipModelCfg, file: string): Weights {
  const used = new Set<string>();
  const get = (hf: string, shape: number[], forKey: string): Float32Array => {
    const t = tensors.get(hf);
    if (!t) throw new ParamError(hf, `missing (expected shape ${fmt(shape)}, for '${forKey}')`, file);
    // logit_scale is 0-d in transformers; some exports store it as [1].
    const ok = sameShape(t.shape, shape) || (hf === 'logit_scale' && sameShape(t.shape, [1]));
    if (!ok) throw new ParamError(hf, `shape ${fmt(t.shape)} does not match the config's ${fmt(shape)} (for '${forKey}')`, file);
    used.add(hf);
    return asF32(t, hf, file);
  };
  const out: Weights = new Map();
  for (const [key, shape] of paramShapes(cfg)) {
    const src = hfSourceOf(key);
    if (src.kind === 'rename') out.set(key, { shape, data: get(src.hf, shape, key) });
    else if (src.kind === 'transpose') {
      const [r, c] = shape as [number, number];
      out.set(key, { shape, data: transpose2d(get(src.hf, [c, r], key), c, r) });
    } else {
      const part = [shape[0]! / 3, ...shape.slice(1)];
      const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
      src.hf.forEach((hf, i) => data.set(get(hf, part, key), (i * data.length) / 3));
      out.set(key, { shape, data });
    }
  }
  for (const [k, t] of tensors) {
    if (used.has(k) || isHfBuffer(k)) continue;
    throw new ParamError(k, `unexpected tensor (shape ${fmt(t.shape)}): a CLIPModel with this config has no such parameter`, file);
  }
  return out;
}

/** Read a folder's config only (no weights); `raw` is the open_clip_config.json as written. */
export async function readFolderConfig(dir: string, name = path.basename(path.resolve(dir))): Promise<{ layout: Layout; config: ClipConfig; raw?: unknown }> {
  const layout = detectLayout(dir);
  if (layout === 'open_clip') {
    const file = path.join(dir, OPEN_CLIP_CONFIG);
    const raw = await readJson(file);
    return { layout, config: parseOpenClipConfig(raw, file, name), raw };
  }
  const file = path.join(dir, HF_CONFIG);
  const model_cfg = hfConfigToModelCfg(await readJson(file), file);
  const ppFile = path.join(dir, HF_PREPROCESSOR);
  const preprocess_cfg = existsSync(ppFile) ? hfPreprocessToCfg(await readJson(ppFile), ppFile, model_cfg.vision_cfg.image_size) : defaultPreprocess(model_cfg);
  if (preprocess_cfg.image_size !== model_cfg.vision_cfg.image_size)
    throw new ConfigError('crop_size', `${preprocess_cfg.image_size} differs from vision_config.image_size ${model_cfg.vision_cfg.image_size}`, ppFile);
  return { layout, config: { name, model_cfg, preprocess_cfg } };
}

/** Load a model folder of either layout: config, OpenAI-named float32 weights, tokenizer files. */
export async function loadModelFolder(dir: string, opts: { name?: string } = {}): Promise<ModelFolder> {
  const { layout, config, raw } = await readFolderConfig(dir, opts.name);
  const file = layout === 'open_clip' ? openClipWeightsFile(dir)! : path.join(dir, HF_WEIGHTS);
  const st = await readSafetensors(file);
  const weights = layout === 'open_clip' ? openClipWeights(st.tensors, config.model_cfg, file) : hfWeights(st.tensors, config.model_cfg, file);
  const tok = resolveTokenizer(dir, layout, config, raw);
  return { dir: path.resolve(dir), layout, config, weights, tokenizer: tok.files, ...(tok.missing ? { tokenizerMissing: tok.missing } : {}) };
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fsp.writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await fsp.rename(tmp, file);
}

async function copyInto(src: string, dir: string, name: string): Promise<void> {
  const dest = path.join(dir, name);
  if (path.resolve(src) === path.resolve(dest)) return;
  const tmp = path.join(dir, `.${name}.${process.pid}.tmp`);
  await fsp.copyFile(src, tmp);
  await fsp.rename(tmp, dest);
}

/**
 * Write a model folder in either layout. Weights are checked against the config first (ParamError
 * on any mismatch); the safetensors file is written atomically. Tokenizer files, when given, are
 * copied in under their canonical names.
 */
export async function saveModelFolder(
  dir: string,
  config: ClipConfig,
  weights: Map<string, DenseTensor>,
  layout: Layout,
  tokenizerFiles: TokenizerFiles = null,
  /** 'F16' halves the file (weights are widened back to float32 on load). */
  weightDtype: 'F32' | 'F16' = 'F32',
): Promise<void> {
  const cfg = config.model_cfg;
  const ordered = checkWeights(weights, cfg, dir);
  await fsp.mkdir(dir, { recursive: true });
  const order = paramShapes(cfg).map(([k]) => k);
  if (layout === 'open_clip') {
    await writeSafetensors(path.join(dir, OPEN_CLIP_WEIGHTS), order.map((k): [string, StInput] => [k, { ...ordered.get(k)!, dtype: weightDtype }]), { format: 'pt', producer: 'clipfit' });
    await writeJsonAtomic(path.join(dir, OPEN_CLIP_CONFIG), toOpenClipConfigJson(config));
  } else if (layout === 'hf') {
    await writeSafetensors(path.join(dir, HF_WEIGHTS), toHfTensors(ordered, order).map(([k, t]): [string, StInput] => [k, { ...t, dtype: weightDtype }]), { format: 'pt', producer: 'clipfit' });
    await writeJsonAtomic(path.join(dir, HF_PREPROCESSOR), preprocessToHf(config.preprocess_cfg));
    await writeJsonAtomic(path.join(dir, HF_CONFIG), modelCfgToHfConfig(cfg));
  } else {
    throw new ConfigError('layout', `must be 'open_clip' or 'hf', got ${JSON.stringify(layout)}`);
  }
  if (tokenizerFiles?.kind === 'bpe-gz') await copyInto(tokenizerFiles.file, dir, BPE_FILE);
  if (tokenizerFiles?.kind === 'tokenizer-json') await copyInto(tokenizerFiles.file, dir, 'tokenizer.json');
  if (tokenizerFiles?.kind === 'vocab-merges') {
    await copyInto(tokenizerFiles.vocab, dir, 'vocab.json');
    await copyInto(tokenizerFiles.merges, dir, 'merges.txt');
    if (layout === 'hf') {
      const special = { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: '<|endoftext|>' };
      await writeJsonAtomic(path.join(dir, 'special_tokens_map.json'), special);
      await writeJsonAtomic(path.join(dir, 'tokenizer_config.json'), {
        ...special,
        tokenizer_class: 'CLIPTokenizer',
        model_max_length: cfg.text_cfg.context_length,
        do_lower_case: true,
      });
    }
  }
}
