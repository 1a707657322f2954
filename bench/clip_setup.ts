// What the CLIP benchmarks run on without downloading anything: a named model config, random
// weights (seeded), and token ids (the PyTorch baseline's when the vocabulary is OpenAI's).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { paramShapes, parseModelConfig } from '../src/models/clip/config.js';
import type { ClipModelCfg } from '../src/models/clip/config.js';
import { ParamStore } from '../src/runtime/params.js';
import type { Tensor } from '../src/runtime/session.js';
import { randomArray } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASELINE = path.resolve(here, '../../shared/tools/torch-baseline');
export const CONFIG_FILES: Record<string, string> = { vitb32: 'ViT-B-32.json', tiny: 'tiny-test.json', vitt864: 'ViT-T-8-64.json' };

export function config(name: string): ClipModelCfg {
  const file = path.resolve(here, '../src/models/clip/configs', CONFIG_FILES[name]!);
  const cfg = parseModelConfig(JSON.parse(readFileSync(file, 'utf8')), file);
  // OpenAI's model code always uses QuickGELU; the cost is the same as GELU's.
  return { ...cfg, quick_gelu: true };
}

export function randomParams(cfg: ClipModelCfg): ParamStore {
  const store = ParamStore.fromShapes(paramShapes(cfg));
  let seed = 1;
  for (const e of store.entries) {
    const v = store.view(e.name);
    if (/ln_/.test(e.name) && e.name.endsWith('weight')) v.fill(1);
    else if (e.name === 'logit_scale') v[0] = Math.log(1 / 0.07);
    else v.set(randomArray(v.length, 0.02, seed++));
  }
  return store;
}

/** The baseline's token ids (OpenAI's tokenizer), or for another vocabulary its 20-token captions of stand-in ids. */
export function tokenIds(cfg: ClipModelCfg, batch: number, trim: boolean): Tensor {
  const ctx = cfg.text_cfg.context_length;
  const v = cfg.text_cfg.vocab_size;
  const rows: number[][] = [];
  if (v === 49408) {
    const tok = (JSON.parse(readFileSync(path.join(BASELINE, 'tokens.json'), 'utf8')) as { tokens: number[][] }).tokens;
    for (let i = 0; i < batch; i++) rows.push(tok[i % tok.length]!.slice(0, ctx));
  } else {
    for (let i = 0; i < batch; i++) {
      const r = new Array<number>(ctx).fill(0);
      r[0] = v - 2;
      for (let j = 1; j < 19; j++) r[j] = 1 + ((i * 37 + j * 11) % (v - 3));
      r[19] = v - 1;
      rows.push(r);
    }
  }
  const eot = Math.max(v - 1, 0);
  const len = trim ? Math.max(...rows.map((r) => r.indexOf(eot) + 1)) : ctx;
  const out = new BigInt64Array(batch * len);
  rows.forEach((r, i) => r.slice(0, len).forEach((id, j) => (out[i * len + j] = BigInt(id))));
  return { dtype: 'int64', shape: [batch, len], data: out };
}

/**
 * Multiply–add FLOPs (2 per MAC) of one training step: the dense matmuls and attention products of
 * both towers' forward pass, ×3 for forward plus backward (dX and dW each cost one forward matmul),
 * the usual count. Elementwise work is left out: it is what the step does beyond the MatMul rate.
 */
export function trainStepFlops(cfg: ClipModelCfg, batch: number, textLen: number): number {
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  const block = (s: number, w: number, hidden: number) => s * w * 3 * w + 2 * s * s * w + s * w * w + 2 * s * w * hidden;
  const grid = (v.image_size / v.patch_size) ** 2;
  const img = grid * 3 * v.patch_size ** 2 * v.width + v.layers * block(grid + 1, v.width, v.width * v.mlp_ratio) + v.width * cfg.embed_dim;
  const txt = t.layers * block(textLen, t.width, t.width * (t.mlp_ratio ?? 4)) + t.width * cfg.embed_dim;
  return 3 * 2 * batch * (img + txt);
}
