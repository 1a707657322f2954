// A freshly initialised CLIP, as OpenAI's clip/model.py does it (CLIP.initialize_parameters plus
// PyTorch's default init for what that leaves alone), so clipfit can train a model from scratch:
//   token_embedding ~ N(0, 0.02²)          positional_embedding ~ N(0, 0.01²)
//   visual class/positional/proj ~ w_v^−½·N(0, 1)
//   attn in_proj ~ N(0, w^−1), out_proj ~ N(0, w^−1·(2L)^−1), mlp c_fc ~ N(0, (2w)^−1), c_proj ~ N(0, w^−1·(2L)^−1)
//   text_projection ~ N(0, w_t^−1)         logit_scale = ln(1/0.07)
//   conv1 and Linear weights otherwise: kaiming-uniform U(±1/√fan_in); Linear biases U(±1/√fan_in);
//   MultiheadAttention biases 0; LayerNorm γ = 1, β = 0.

import { ParamStore } from '../../../runtime/params.js';
import { seededRandom } from '../../../util/random.js';
import { saveModelFolder } from './checkpoint.js';
import type { TokenizerFiles, Weights } from './checkpoint.js';
import type { ClipConfig, ClipModelCfg } from '../config.js';
import { defaultPreprocess, paramShapes } from '../config.js';
import { defaultRegistry } from './registry.js';
import { ArchitectureError } from '../../../errors.js';

export function initClipParams(cfg: ClipModelCfg, seed = 0): ParamStore {
  const store = ParamStore.fromShapes(paramShapes(cfg));
  const rand = seededRandom(seed);
  // Box–Muller normal from the seeded uniform stream.
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const fillNormal = (v: Float32Array, std: number) => {
    for (let i = 0; i < v.length; i++) v[i] = normal() * std;
  };
  const fillUniform = (v: Float32Array, bound: number) => {
    for (let i = 0; i < v.length; i++) v[i] = (2 * rand() - 1) * bound;
  };
  const vw = cfg.vision_cfg.width;
  const tw = cfg.text_cfg.width;
  for (const e of store.entries) {
    const v = store.view(e.name);
    const n = e.name;
    const vision = n.startsWith('visual.');
    const w = vision ? vw : tw;
    const layers = vision ? cfg.vision_cfg.layers : cfg.text_cfg.layers;
    const attnStd = w ** -0.5;
    const projStd = attnStd * (2 * layers) ** -0.5;
    if (n === 'logit_scale') v[0] = Math.log(1 / 0.07);
    else if (n === 'token_embedding.weight') fillNormal(v, 0.02);
    else if (n === 'positional_embedding') fillNormal(v, 0.01);
    else if (n === 'text_projection') fillNormal(v, tw ** -0.5);
    else if (n === 'visual.class_embedding' || n === 'visual.positional_embedding' || n === 'visual.proj') fillNormal(v, vw ** -0.5);
    else if (n === 'visual.conv1.weight') fillUniform(v, 1 / Math.sqrt(e.shape[1]! * e.shape[2]! * e.shape[3]!));
    else if (/\.(ln_\w+|ln_pre|ln_post|ln_final)\.weight$|^ln_final\.weight$|^visual\.ln_(pre|post)\.weight$/.test(n)) v.fill(1);
    else if (/ln_\w*\.bias$|ln_final\.bias$/.test(n)) v.fill(0);
    else if (n.endsWith('attn.in_proj_weight')) fillNormal(v, attnStd);
    else if (n.endsWith('attn.out_proj.weight')) fillNormal(v, projStd);
    else if (n.endsWith('attn.in_proj_bias') || n.endsWith('attn.out_proj.bias')) v.fill(0);
    else if (n.endsWith('mlp.c_fc.weight')) fillNormal(v, (2 * w) ** -0.5);
    else if (n.endsWith('mlp.c_proj.weight')) fillNormal(v, projStd);
    else if (n.endsWith('mlp.c_fc.bias')) fillUniform(v, 1 / Math.sqrt(w));
    else if (n.endsWith('mlp.c_proj.bias')) fillUniform(v, 1 / Math.sqrt(w * cfg[vision ? 'vision_cfg' : 'text_cfg'].mlp_ratio));
    else throw new ArchitectureError(`parameter '${n}'`, 'initClipParams has no initialisation rule for it');
  }
  return store;
}

/**
 * Write a model folder (open_clip layout) holding a freshly initialised `architecture` from the
 * registry, with the given tokenizer files: fit() on it trains CLIP from scratch.
 */
export async function createModelFolder(dir: string, architecture: string, tokenizer: TokenizerFiles, seed = 0): Promise<void> {
  const entry = defaultRegistry().get(architecture);
  const config: ClipConfig = { name: architecture, model_cfg: entry.cfg, preprocess_cfg: defaultPreprocess(entry.cfg) };
  const params = initClipParams(entry.cfg, seed);
  const weights: Weights = new Map(params.entries.map((e) => [e.name, { shape: [...e.shape], data: params.view(e.name) }]));
  await saveModelFolder(dir, config, weights, 'open_clip', tokenizer);
}
