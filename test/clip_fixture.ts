// Reading the tiny CLIP fixture: its config, its parameters (with the row-sparse
// token_embedding.weight of every file but model.safetensors made dense again), its batches.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ClipModelCfg } from '../src/models/clip/config.js';
import type { StFile } from '../src/runtime/safetensors.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import type { Tensor } from '../src/runtime/session.js';

/** The tiny model's config from its open_clip_config.json, defaults filled as open_clip does. */
export function tinyConfig(dir: string): ClipModelCfg {
  const raw = JSON.parse(readFileSync(path.join(dir, 'open_clip_config.json'), 'utf8')).model_cfg;
  return {
    embed_dim: raw.embed_dim,
    quick_gelu: raw.quick_gelu,
    vision_cfg: { head_width: 64, mlp_ratio: 4, ...raw.vision_cfg },
    text_cfg: { mlp_ratio: 4, ...raw.text_cfg },
  } as ClipModelCfg;
}

/**
 * Dense parameters `prefix<name>` from a fixture file. For token_embedding.weight stored as
 * `@rows`/`@values`, the unlisted rows come from `base` mapped through `fill` (zero for gradients,
 * the decayed initial value for AdamW steps).
 */
export function denseParam(
  f: StFile,
  prefix: string,
  name: string,
  base?: Float32Array,
  fill: (x: number) => number = () => 0,
): Float32Array {
  const t = f.tensors.get(prefix + name);
  if (t) return t.data as Float32Array;
  const rows = f.tensors.get(`${prefix}${name}@rows`)!.data as BigInt64Array;
  const vals = f.tensors.get(`${prefix}${name}@values`)!;
  const width = vals.shape[1]!;
  const out = base ? Float32Array.from(base, fill) : new Float32Array(0);
  rows.forEach((r, j) => out.set((vals.data as Float32Array).subarray(j * width, (j + 1) * width), Number(r) * width));
  return out;
}

export function paramFeeds(names: string[], get: (name: string) => { shape: number[]; data: Float32Array }): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const n of names) {
    const t = get(n);
    feeds[n] = { dtype: 'float32', shape: t.shape, data: t.data };
  }
  return feeds;
}

export async function loadTiny(dir: string) {
  const [model, forward, grads, step1, step2] = await Promise.all(
    ['model', 'forward', 'grads', 'adamw_step1', 'step2'].map((f) => readSafetensors(path.join(dir, `${f}.safetensors`))),
  );
  return { model: model!, forward: forward!, grads: grads!, step1: step1!, step2: step2! };
}
