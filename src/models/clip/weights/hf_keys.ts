// Hugging Face transformers' CLIPModel layout ↔ OpenAI's: tensor names, the two layout changes,
// and config.json / preprocessor_config.json ↔ ClipModelCfg / PreprocessCfg.
//   in_proj_weight [3w, w] = concat_rows(q_proj.weight, k_proj.weight, v_proj.weight)   (same for biases)
//   visual.proj [vw, e]     = visual_projection.weight [e, vw]ᵀ   (HF stores nn.Linear weights [out, in])
//   text_projection [w, e]  = text_projection.weight [e, w]ᵀ
// Everything else is a rename. The int64 `*.position_ids` buffers some checkpoints carry are
// arange(n) and are ignored.

import { ConfigError, ArchitectureError } from '../../../errors.js';
import type { ClipModelCfg, PreprocessCfg } from '../config.js';
import { OPENAI_MEAN, OPENAI_STD } from '../image/preprocess_constants.js';

export interface DenseTensor {
  shape: number[];
  data: Float32Array;
}

/** HF name of a non-attention OpenAI parameter inside a block (`ln_1.weight` → `layer_norm1.weight`). */
const BLOCK_RENAME: Record<string, string> = {
  'attn.out_proj.weight': 'self_attn.out_proj.weight',
  'attn.out_proj.bias': 'self_attn.out_proj.bias',
  'ln_1.weight': 'layer_norm1.weight',
  'ln_1.bias': 'layer_norm1.bias',
  'ln_2.weight': 'layer_norm2.weight',
  'ln_2.bias': 'layer_norm2.bias',
  'mlp.c_fc.weight': 'mlp.fc1.weight',
  'mlp.c_fc.bias': 'mlp.fc1.bias',
  'mlp.c_proj.weight': 'mlp.fc2.weight',
  'mlp.c_proj.bias': 'mlp.fc2.bias',
};

const PLAIN_RENAME: Record<string, string> = {
  positional_embedding: 'text_model.embeddings.position_embedding.weight',
  'token_embedding.weight': 'text_model.embeddings.token_embedding.weight',
  'ln_final.weight': 'text_model.final_layer_norm.weight',
  'ln_final.bias': 'text_model.final_layer_norm.bias',
  logit_scale: 'logit_scale',
  'visual.class_embedding': 'vision_model.embeddings.class_embedding',
  'visual.positional_embedding': 'vision_model.embeddings.position_embedding.weight',
  'visual.conv1.weight': 'vision_model.embeddings.patch_embedding.weight',
  'visual.ln_pre.weight': 'vision_model.pre_layrnorm.weight',
  'visual.ln_pre.bias': 'vision_model.pre_layrnorm.bias',
  'visual.ln_post.weight': 'vision_model.post_layernorm.weight',
  'visual.ln_post.bias': 'vision_model.post_layernorm.bias',
};

/** How one OpenAI parameter is made from HF tensors. */
export type HfSource =
  | { kind: 'rename'; hf: string }
  | { kind: 'transpose'; hf: string }
  | { kind: 'qkv'; hf: [string, string, string] };

/** The HF tensors an OpenAI parameter comes from. */
export function hfSourceOf(key: string): HfSource {
  if (key === 'visual.proj') return { kind: 'transpose', hf: 'visual_projection.weight' };
  if (key === 'text_projection') return { kind: 'transpose', hf: 'text_projection.weight' };
  const plain = PLAIN_RENAME[key];
  if (plain) return { kind: 'rename', hf: plain };
  const m = /^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const prefix = `${m[1] ? 'vision_model' : 'text_model'}.encoder.layers.${m[2]}`;
    const rest = m[3]!;
    if (rest === 'attn.in_proj_weight' || rest === 'attn.in_proj_bias') {
      const suffix = rest.endsWith('weight') ? 'weight' : 'bias';
      return { kind: 'qkv', hf: [`${prefix}.self_attn.q_proj.${suffix}`, `${prefix}.self_attn.k_proj.${suffix}`, `${prefix}.self_attn.v_proj.${suffix}`] };
    }
    const r = BLOCK_RENAME[rest];
    if (r) return { kind: 'rename', hf: `${prefix}.${r}` };
  }
  throw new ArchitectureError(key, 'no Hugging Face CLIPModel tensor corresponds to this parameter');
}

/** 2-D transpose of a row-major [rows, cols] matrix. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/** Tensors HF checkpoints carry that are no parameters. */
export function isHfBuffer(name: string): boolean {
  return name.endsWith('.position_ids');
}

/**
 * OpenAI weights (in `order`) → HF tensors, in transformers' CLIPModel order: text_model, vision_model,
 * visual_projection, text_projection, logit_scale.
 */
export function toHfTensors(weights: Map<string, DenseTensor>, order: string[]): [string, DenseTensor][] {
  const out = new Map<string, DenseTensor>();
  for (const key of order) {
    const t = weights.get(key)!;
    const src = hfSourceOf(key);
    if (src.kind === 'rename') out.set(src.hf, t);
    else if (src.kind === 'transpose') {
      const [r, c] = t.shape as [number, number];
      out.set(src.hf, { shape: [c, r], data: transpose2d(t.data, r, c) });
    } else {
      const rows = t.shape[0]! / 3;
      const inner = t.data.length / t.shape[0]!;
      src.hf.forEach((name, i) =>
        out.set(name, { shape: [rows, ...t.shape.slice(1)], data: t.data.slice(i * rows * inner, (i + 1) * rows * inner) }),
      );
    }
  }
  const rank = (k: string) => (k.startsWith('text_model.') ? 0 : k.startsWith('vision_model.') ? 1 : k.startsWith('visual_projection') ? 2 : k.startsWith('text_projection') ? 3 : 4);
  const layerOf = (k: string) => Number(/\.layers\.(\d+)\./.exec(k)?.[1] ?? -1);
  // Within a tower: embeddings, pre_layrnorm, layers in order, then the final norms.
  const part = (k: string) => (k.includes('.embeddings.') ? 0 : k.includes('pre_layrnorm') ? 1 : k.includes('.encoder.') ? 2 : 3);
  const keys = [...out.keys()];
  const pos = new Map(keys.map((k, i) => [k, i]));
  keys.sort((a, b) => rank(a) - rank(b) || part(a) - part(b) || layerOf(a) - layerOf(b) || pos.get(a)! - pos.get(b)!);
  return keys.map((k) => [k, out.get(k)!]);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

// transformers' CLIPTextConfig / CLIPVisionConfig defaults, for configs that omit them.
const TEXT_DEFAULTS = { vocab_size: 49408, hidden_size: 512, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 8, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };
const VISION_DEFAULTS = { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3, image_size: 224, patch_size: 32, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };

function int(o: Obj, key: string, dflt: number, field: string, source: string): number {
  const v = o[key] ?? dflt;
  if (!(typeof v === 'number' && Number.isInteger(v) && v > 0)) throw new ConfigError(field, `must be a positive integer, got ${JSON.stringify(v)}`, source);
  return v;
}

/** A Hugging Face CLIPModel config.json → ClipModelCfg. */
export function hfConfigToModelCfg(json: unknown, source: string): ClipModelCfg {
  if (!isObj(json)) throw new ConfigError('(root)', 'must be a JSON object', source);
  const mt = json['model_type'];
  const arch = json['architectures'];
  if (mt !== undefined && mt !== 'clip')
    throw new ArchitectureError(source, `model_type ${JSON.stringify(mt)}: only Hugging Face 'clip' (CLIPModel) folders are supported`);
  if (Array.isArray(arch) && arch.length && !arch.includes('CLIPModel'))
    throw new ArchitectureError(source, `architectures ${JSON.stringify(arch)}: only CLIPModel is supported`);
  const tc = json['text_config'] ?? json['text_config_dict'];
  const vc = json['vision_config'] ?? json['vision_config_dict'];
  if (!isObj(tc) || !isObj(vc)) throw new ArchitectureError(source, 'not a CLIPModel config: text_config and vision_config objects are required');
  const t = { ...TEXT_DEFAULTS, ...tc } as Obj;
  const v = { ...VISION_DEFAULTS, ...vc } as Obj;
  const embed = int(json, 'projection_dim', 512, 'projection_dim', source);
  for (const [c, name] of [[t, 'text_config'], [v, 'vision_config']] as const) {
    if (c['projection_dim'] !== undefined && c['projection_dim'] !== embed && json['projection_dim'] !== undefined)
      throw new ConfigError(`${name}.projection_dim`, `must equal projection_dim (${embed}), got ${JSON.stringify(c['projection_dim'])}`, source);
    if (c['layer_norm_eps'] !== 1e-5) throw new ConfigError(`${name}.layer_norm_eps`, `only 1e-5 is supported, got ${JSON.stringify(c['layer_norm_eps'])}`, source);
    if (c['hidden_act'] !== 'quick_gelu' && c['hidden_act'] !== 'gelu')
      throw new ConfigError(`${name}.hidden_act`, `only 'quick_gelu' or 'gelu' is supported, got ${JSON.stringify(c['hidden_act'])}`, source);
  }
  if (t['hidden_act'] !== v['hidden_act'])
    throw new ConfigError('vision_config.hidden_act', `must equal text_config.hidden_act (${JSON.stringify(t['hidden_act'])}), got ${JSON.stringify(v['hidden_act'])}`, source);
  if (v['num_channels'] !== 3) throw new ConfigError('vision_config.num_channels', `only 3 is supported, got ${JSON.stringify(v['num_channels'])}`, source);
  const vw = int(v, 'hidden_size', 0, 'vision_config.hidden_size', source);
  const vh = int(v, 'num_attention_heads', 0, 'vision_config.num_attention_heads', source);
  if (vw % vh) throw new ConfigError('vision_config.hidden_size', `must be divisible by num_attention_heads (${vh}), got ${vw}`, source);
  const tw = int(t, 'hidden_size', 0, 'text_config.hidden_size', source);
  const th = int(t, 'num_attention_heads', 0, 'text_config.num_attention_heads', source);
  if (tw % th) throw new ConfigError('text_config.hidden_size', `must be divisible by num_attention_heads (${th}), got ${tw}`, source);
  const image_size = int(v, 'image_size', 0, 'vision_config.image_size', source);
  const patch_size = int(v, 'patch_size', 0, 'vision_config.patch_size', source);
  if (image_size % patch_size) throw new ConfigError('vision_config.image_size', `must be a multiple of patch_size (${patch_size}), got ${image_size}`, source);
  return {
    embed_dim: embed,
    quick_gelu: t['hidden_act'] === 'quick_gelu',
    vision_cfg: {
      image_size,
      layers: int(v, 'num_hidden_layers', 0, 'vision_config.num_hidden_layers', source),
      width: vw,
      patch_size,
      head_width: vw / vh,
      mlp_ratio: int(v, 'intermediate_size', 0, 'vision_config.intermediate_size', source) / vw,
    },
    text_cfg: {
      context_length: int(t, 'max_position_embeddings', 0, 'text_config.max_position_embeddings', source),
      vocab_size: int(t, 'vocab_size', 0, 'text_config.vocab_size', source),
      width: tw,
      heads: th,
      layers: int(t, 'num_hidden_layers', 0, 'text_config.num_hidden_layers', source),
      mlp_ratio: int(t, 'intermediate_size', 0, 'text_config.intermediate_size', source) / tw,
    },
  };
}

/** ClipModelCfg → a full Hugging Face CLIPModel config.json (every field explicit). */
export function modelCfgToHfConfig(cfg: ClipModelCfg): Obj {
  const act = cfg.quick_gelu ? 'quick_gelu' : 'gelu';
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: cfg.embed_dim,
    logit_scale_init_value: 2.6592,
    initializer_factor: 1.0,
    text_config: {
      model_type: 'clip_text_model',
      hidden_size: t.width,
      intermediate_size: Math.round(t.width * t.mlp_ratio),
      num_attention_heads: t.heads,
      num_hidden_layers: t.layers,
      max_position_embeddings: t.context_length,
      vocab_size: t.vocab_size,
      hidden_act: act,
      layer_norm_eps: 1e-5,
      projection_dim: cfg.embed_dim,
      bos_token_id: 49406,
      eos_token_id: 49407,
      pad_token_id: 1,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: v.width,
      intermediate_size: Math.round(v.width * v.mlp_ratio),
      num_attention_heads: v.width / v.head_width,
      num_hidden_layers: v.layers,
      image_size: v.image_size,
      patch_size: v.patch_size,
      num_channels: 3,
      hidden_act: act,
      layer_norm_eps: 1e-5,
      projection_dim: cfg.embed_dim,
    },
  };
}

function sizeOf(v: unknown, keys: string[]): number | undefined {
  if (typeof v === 'number') return v;
  if (isObj(v)) for (const k of keys) if (typeof v[k] === 'number') return v[k] as number;
  return undefined;
}

/** preprocessor_config.json (CLIPImageProcessor) → PreprocessCfg. Resample 3 is PIL BICUBIC. */
export function hfPreprocessToCfg(json: unknown, source: string, imageSize: number): PreprocessCfg {
  if (!isObj(json)) throw new ConfigError('(root)', 'must be a JSON object', source);
  const triple = (k: string): [number, number, number] | undefined => {
    const x = json[k];
    if (x === undefined) return undefined;
    if (!(Array.isArray(x) && x.length === 3 && x.every((n) => typeof n === 'number'))) throw new ConfigError(k, `must be three numbers, got ${JSON.stringify(x)}`, source);
    return [x[0], x[1], x[2]];
  };
  if (json['resample'] !== undefined && json['resample'] !== 3) throw new ConfigError('resample', `only 3 (bicubic) is supported, got ${JSON.stringify(json['resample'])}`, source);
  const size = sizeOf(json['size'], ['shortest_edge']) ?? imageSize;
  const crop = sizeOf(json['crop_size'], ['height']) ?? size;
  if (isObj(json['crop_size']) && json['crop_size']['width'] !== undefined && json['crop_size']['width'] !== crop)
    throw new ConfigError('crop_size', `must be square, got ${JSON.stringify(json['crop_size'])}`, source);
  if (json['do_center_crop'] === false || crop !== size)
    throw new ConfigError('crop_size', `only "resize the short side to N, centre-crop N×N" is supported, got size ${size} and crop ${crop}`, source);
  return {
    mean: triple('image_mean') ?? [...OPENAI_MEAN],
    std: triple('image_std') ?? [...OPENAI_STD],
    interpolation: 'bicubic',
    resize_mode: 'shortest',
    image_size: crop,
  };
}

/** PreprocessCfg → preprocessor_config.json (CLIPImageProcessor). */
export function preprocessToHf(pp: PreprocessCfg): Obj {
  return {
    crop_size: { height: pp.image_size, width: pp.image_size },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: pp.mean,
    image_std: pp.std,
    resample: 3,
    rescale_factor: 1 / 255,
    size: { shortest_edge: pp.image_size },
    image_processor_type: 'CLIPImageProcessor',
    processor_class: 'CLIPProcessor',
  };
}
