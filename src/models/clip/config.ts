// CLIP model configs in open_clip's JSON schema (src/open_clip/model_configs/*.json), validated at
// load with errors that name the field, plus the parameter inventory they imply.
// Only OpenAI-style ViT CLIP is built: a ViT image tower (class token, ln_pre, pre-LN blocks,
// ln_post, proj) and the causal text transformer. Any other tower (ResNet, timm, HF text) is
// rejected with an ArchitectureError rather than half-loaded.

import { ArchitectureError, ConfigError } from '../../errors.js';
import { OPENAI_MEAN, OPENAI_STD } from './image/preprocess_constants.js';

export interface VisionCfg {
  /** Input side in pixels (square); must be a multiple of patch_size. */
  image_size: number;
  /** Number of residual blocks. */
  layers: number;
  /** Token width; heads = width / head_width. */
  width: number;
  /** Side of the square patches (the stride of conv1). */
  patch_size: number;
  /** Width of one attention head (open_clip default 64; OpenAI hard-codes heads = width // 64). */
  head_width: number;
  /** MLP hidden width = width · mlp_ratio (default 4). */
  mlp_ratio: number;
}

export interface TextCfg {
  /** Maximum tokens per caption, sot and eot included (77). */
  context_length: number;
  /** Rows of token_embedding (49408 for CLIP's BPE). */
  vocab_size: number;
  width: number;
  heads: number;
  layers: number;
  /** MLP hidden width = width · mlp_ratio (default 4). */
  mlp_ratio: number;
}

export interface ClipModelCfg {
  /** Width of the shared image–text embedding space. */
  embed_dim: number;
  /** QuickGELU x·σ(1.702x) (OpenAI weights) instead of erf GELU. */
  quick_gelu: boolean;
  vision_cfg: VisionCfg;
  text_cfg: TextCfg;
}

export interface PreprocessCfg {
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: 'bicubic';
  resize_mode: 'shortest';
  image_size: number;
}

export interface ClipConfig {
  name: string;
  model_cfg: ClipModelCfg;
  preprocess_cfg: PreprocessCfg;
}

export { OPENAI_MEAN, OPENAI_STD } from './image/preprocess_constants.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}

function posInt(o: Obj, key: string, field: string, source: string, dflt?: number): number {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  if (!(typeof v === 'number' && Number.isInteger(v) && v > 0))
    throw new ConfigError(field, `must be a positive integer, got ${show(v)}`, source);
  return v;
}

function posNum(o: Obj, key: string, field: string, source: string, dflt: number): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new ConfigError(field, `must be a positive number, got ${show(v)}`, source);
  return v;
}

/** Keys open_clip accepts that change the architecture; allowed only at the value that leaves OpenAI's ViT CLIP unchanged. */
const VISION_NEUTRAL: Record<string, unknown[]> = {
  patch_dropout: [0, 0.0],
  ls_init_value: [null],
  attentional_pool: [false],
  no_ln_pre: [false],
  pos_embed_type: ['learnable'],
  final_ln_after_pool: [false],
  pool_type: ['tok'],
  output_tokens: [false],
  act_kwargs: [null],
  norm_kwargs: [null],
};
const TEXT_NEUTRAL: Record<string, unknown[]> = {
  ls_init_value: [null],
  embed_cls: [false],
  pad_id: [0],
  no_causal_mask: [false],
  final_ln_after_pool: [false],
  pool_type: ['argmax'],
  proj_bias: [false],
  proj_type: ['linear'],
  output_tokens: [false],
  act_kwargs: [null],
  norm_kwargs: [null],
};

function checkKeys(o: Obj, known: string[], neutral: Record<string, unknown[]>, prefix: string, source: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (known.includes(k)) continue;
    const ok = neutral[k];
    if (!ok) throw new ConfigError(`${prefix}${k}`, `unknown field (known: ${[...known, ...Object.keys(neutral)].join(', ')})`, source);
    if (!ok.some((x) => x === v)) throw new ConfigError(`${prefix}${k}`, `only ${ok.map(show).join(' or ')} is supported, got ${show(v)}`, source);
  }
}

function parseVision(v: unknown, source: string): VisionCfg {
  if (v === undefined) throw new ArchitectureError(source, 'no vision_cfg: every CLIP config needs an image tower');
  if (!isObj(v)) throw new ConfigError('vision_cfg', `must be an object, got ${show(v)}`, source);
  if (v['timm_model_name'] != null)
    throw new ArchitectureError(source, `vision_cfg.timm_model_name ${show(v['timm_model_name'])}: timm image towers are not supported, only OpenAI-style ViT`);
  if (Array.isArray(v['layers']))
    throw new ArchitectureError(source, `vision_cfg.layers is a list ${show(v['layers'])}: that is a ResNet (ModifiedResNet) image tower, only ViT is supported`);
  if (v['patch_size'] == null)
    throw new ArchitectureError(source, `vision_cfg.patch_size is ${v['patch_size'] === null ? 'null' : 'missing'}: not a ViT image tower (ResNet configs have none), only ViT is supported`);
  checkKeys(v, ['image_size', 'layers', 'width', 'patch_size', 'head_width', 'mlp_ratio'], VISION_NEUTRAL, 'vision_cfg.', source);
  let sizeRaw = v['image_size'];
  if (Array.isArray(sizeRaw)) {
    if (sizeRaw.length !== 2 || sizeRaw[0] !== sizeRaw[1])
      throw new ConfigError('vision_cfg.image_size', `must be one integer or a square [n, n], got ${show(sizeRaw)}`, source);
    sizeRaw = sizeRaw[0];
  }
  const image_size = posInt({ image_size: sizeRaw }, 'image_size', 'vision_cfg.image_size', source);
  const layers = posInt(v, 'layers', 'vision_cfg.layers', source);
  const patch_size = posInt(v, 'patch_size', 'vision_cfg.patch_size', source);
  const head_width = posInt(v, 'head_width', 'vision_cfg.head_width', source, 64);
  const mlp_ratio = posNum(v, 'mlp_ratio', 'vision_cfg.mlp_ratio', source, 4);
  const width = v['width'];
  if (!(typeof width === 'number' && Number.isInteger(width) && width > 0 && width % head_width === 0))
    throw new ConfigError('vision_cfg.width', `must be a positive integer divisible by head_width (${head_width}), got ${show(width)}`, source);
  if (image_size % patch_size !== 0)
    throw new ConfigError('vision_cfg.image_size', `must be a multiple of patch_size (${patch_size}), got ${image_size}`, source);
  if (!Number.isInteger(width * mlp_ratio))
    throw new ConfigError('vision_cfg.mlp_ratio', `width·mlp_ratio must be an integer, got ${width}·${mlp_ratio}`, source);
  return { image_size, layers, width, patch_size, head_width, mlp_ratio };
}

function parseText(t: unknown, source: string): TextCfg {
  if (t === undefined) throw new ArchitectureError(source, 'no text_cfg: every CLIP config needs a text tower');
  if (!isObj(t)) throw new ConfigError('text_cfg', `must be an object, got ${show(t)}`, source);
  if (t['hf_model_name'] != null)
    throw new ArchitectureError(source, `text_cfg.hf_model_name ${show(t['hf_model_name'])}: Hugging Face text towers are not supported, only CLIP's own transformer`);
  const known = ['context_length', 'vocab_size', 'width', 'heads', 'layers', 'mlp_ratio'];
  // Tokenizer hints do not change the weights.
  const rest = Object.fromEntries(Object.entries(t).filter(([k]) => k !== 'hf_tokenizer_name' && k !== 'tokenizer_kwargs'));
  checkKeys(rest, known, TEXT_NEUTRAL, 'text_cfg.', source);
  const context_length = posInt(t, 'context_length', 'text_cfg.context_length', source, 77);
  const vocab_size = posInt(t, 'vocab_size', 'text_cfg.vocab_size', source, 49408);
  const heads = posInt(t, 'heads', 'text_cfg.heads', source);
  const layers = posInt(t, 'layers', 'text_cfg.layers', source);
  const mlp_ratio = posNum(t, 'mlp_ratio', 'text_cfg.mlp_ratio', source, 4);
  const width = t['width'];
  if (!(typeof width === 'number' && Number.isInteger(width) && width > 0 && width % heads === 0))
    throw new ConfigError('text_cfg.width', `must be a positive integer divisible by heads (${heads}), got ${show(width)}`, source);
  if (!Number.isInteger(width * mlp_ratio))
    throw new ConfigError('text_cfg.mlp_ratio', `width·mlp_ratio must be an integer, got ${width}·${mlp_ratio}`, source);
  return { context_length, vocab_size, width, heads, layers, mlp_ratio };
}

/**
 * Validate an open_clip model config (`{embed_dim, quick_gelu?, vision_cfg, text_cfg}`) and fill
 * open_clip's defaults. `source` (a file name) prefixes every error message.
 */
export function parseModelConfig(json: unknown, source: string): ClipModelCfg {
  if (!isObj(json)) throw new ConfigError('(root)', `must be a JSON object, got ${show(json)}`, source);
  if (json['custom_text'] === true)
    throw new ArchitectureError(source, 'custom_text: true (CustomTextCLIP, keys under text.*) is not supported');
  if (json['init_logit_bias'] != null)
    throw new ArchitectureError(source, `init_logit_bias ${show(json['init_logit_bias'])}: a SigLIP-style sigmoid head is not supported`);
  for (const k of ['multimodal_cfg', 'text_decoder_cfg']) if (json[k] !== undefined) throw new ArchitectureError(source, `${k}: CoCa-style models are not supported`);
  // init_logit_scale only sets the initial value of a parameter the checkpoint carries anyway.
  checkKeys(json, ['embed_dim', 'quick_gelu', 'vision_cfg', 'text_cfg', 'init_logit_scale'], { custom_text: [false], cast_dtype: [null] }, '', source);
  const embed_dim = posInt(json, 'embed_dim', 'embed_dim', source);
  const qg = json['quick_gelu'];
  if (qg !== undefined && typeof qg !== 'boolean') throw new ConfigError('quick_gelu', `must be true or false, got ${show(qg)}`, source);
  return { embed_dim, quick_gelu: qg === true, vision_cfg: parseVision(json['vision_cfg'], source), text_cfg: parseText(json['text_cfg'], source) };
}

function triple(v: unknown, field: string, source: string): [number, number, number] {
  if (!(Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x))))
    throw new ConfigError(field, `must be three numbers, got ${show(v)}`, source);
  return v as [number, number, number];
}

/** Validate open_clip's `preprocess_cfg` (mean, std, interpolation, resize_mode, size); image_size defaults to the tower's. */
export function parsePreprocessCfg(json: unknown, source: string, imageSize: number): PreprocessCfg {
  const o = json === undefined ? {} : json;
  if (!isObj(o)) throw new ConfigError('preprocess_cfg', `must be an object, got ${show(o)}`, source);
  const mean = o['mean'] === undefined ? OPENAI_MEAN : triple(o['mean'], 'preprocess_cfg.mean', source);
  const std = o['std'] === undefined ? OPENAI_STD : triple(o['std'], 'preprocess_cfg.std', source);
  if (std.some((s) => s <= 0)) throw new ConfigError('preprocess_cfg.std', `must be positive, got ${show(std)}`, source);
  const interp = o['interpolation'] ?? 'bicubic';
  if (interp !== 'bicubic') throw new ConfigError('preprocess_cfg.interpolation', `only 'bicubic' is supported, got ${show(interp)}`, source);
  const mode = o['resize_mode'] ?? 'shortest';
  if (mode !== 'shortest') throw new ConfigError('preprocess_cfg.resize_mode', `only 'shortest' (resize the short side, centre crop) is supported, got ${show(mode)}`, source);
  let size = o['image_size'] ?? o['size'] ?? imageSize;
  if (Array.isArray(size) && size.length === 2 && size[0] === size[1]) size = size[0];
  const image_size = posInt({ size }, 'size', 'preprocess_cfg.size', source);
  return { mean: [...mean], std: [...std], interpolation: 'bicubic', resize_mode: 'shortest', image_size };
}

/** Parse an `open_clip_config.json` (`{model_cfg, preprocess_cfg}`); `name` is used unless the file carries one. */
export function parseOpenClipConfig(json: unknown, source: string, name: string): ClipConfig {
  if (!isObj(json)) throw new ConfigError('(root)', `must be a JSON object, got ${show(json)}`, source);
  if (json['model_cfg'] === undefined) throw new ConfigError('model_cfg', 'missing: an open_clip_config.json holds {"model_cfg": …, "preprocess_cfg": …}', source);
  const model_cfg = parseModelConfig(json['model_cfg'], source);
  const preprocess_cfg = parsePreprocessCfg(json['preprocess_cfg'], source, model_cfg.vision_cfg.image_size);
  const n = json['name'];
  return { name: typeof n === 'string' && n ? n : name, model_cfg, preprocess_cfg };
}

/** The open_clip_config.json form of a config (what open_clip's hub loader reads). */
export function toOpenClipConfigJson(cfg: ClipConfig): Obj {
  const m = cfg.model_cfg;
  return {
    name: cfg.name,
    model_cfg: { embed_dim: m.embed_dim, quick_gelu: m.quick_gelu, vision_cfg: { ...m.vision_cfg }, text_cfg: { ...m.text_cfg } },
    preprocess_cfg: { mean: cfg.preprocess_cfg.mean, std: cfg.preprocess_cfg.std, interpolation: 'bicubic', resize_mode: 'shortest', size: cfg.preprocess_cfg.image_size },
  };
}

/** Default preprocessing for a model: OpenAI statistics, bicubic, shortest side at the tower's size. */
export function defaultPreprocess(cfg: ClipModelCfg): PreprocessCfg {
  return { mean: [...OPENAI_MEAN], std: [...OPENAI_STD], interpolation: 'bicubic', resize_mode: 'shortest', image_size: cfg.vision_cfg.image_size };
}

function blockShapes(prefix: string, w: number, mlpRatio: number): [string, number[]][] {
  const h = Math.round(w * mlpRatio);
  return [
    [`${prefix}.attn.in_proj_weight`, [3 * w, w]],
    [`${prefix}.attn.in_proj_bias`, [3 * w]],
    [`${prefix}.attn.out_proj.weight`, [w, w]],
    [`${prefix}.attn.out_proj.bias`, [w]],
    [`${prefix}.ln_1.weight`, [w]],
    [`${prefix}.ln_1.bias`, [w]],
    [`${prefix}.mlp.c_fc.weight`, [h, w]],
    [`${prefix}.mlp.c_fc.bias`, [h]],
    [`${prefix}.mlp.c_proj.weight`, [w, h]],
    [`${prefix}.mlp.c_proj.bias`, [w]],
    [`${prefix}.ln_2.weight`, [w]],
    [`${prefix}.ln_2.bias`, [w]],
  ];
}

/**
 * Every parameter of the model in OpenAI's state_dict names and order (module parameters first,
 * then submodules in registration order: visual, transformer, token_embedding, ln_final).
 * Linear weights are [out, in]; proj and text_projection are [in, out]; logit_scale is 0-d.
 */
export function paramShapes(cfg: ClipModelCfg): [string, number[]][] {
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  const vw = v.width;
  const grid = v.image_size / v.patch_size;
  const out: [string, number[]][] = [
    ['positional_embedding', [t.context_length, t.width]],
    ['text_projection', [t.width, cfg.embed_dim]],
    ['logit_scale', []],
    ['visual.class_embedding', [vw]],
    ['visual.positional_embedding', [grid * grid + 1, vw]],
    ['visual.proj', [vw, cfg.embed_dim]],
    ['visual.conv1.weight', [vw, 3, v.patch_size, v.patch_size]],
    ['visual.ln_pre.weight', [vw]],
    ['visual.ln_pre.bias', [vw]],
  ];
  for (let i = 0; i < v.layers; i++) out.push(...blockShapes(`visual.transformer.resblocks.${i}`, vw, v.mlp_ratio));
  out.push(['visual.ln_post.weight', [vw]], ['visual.ln_post.bias', [vw]]);
  for (let i = 0; i < t.layers; i++) out.push(...blockShapes(`transformer.resblocks.${i}`, t.width, t.mlp_ratio));
  out.push(['token_embedding.weight', [t.vocab_size, t.width]], ['ln_final.weight', [t.width]], ['ln_final.bias', [t.width]]);
  return out;
}

/** Total number of parameters (scalars count 1). */
export function countParams(cfg: ClipModelCfg): number {
  let n = 0;
  for (const [, s] of paramShapes(cfg)) n += s.reduce((a, d) => a * d, 1);
  return n;
}
