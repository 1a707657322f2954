// Export a tower as a standalone ONNX file: the forward graph itself, with the parameters baked in
// as initializers (dynamic batch; dynamic text length). onnxruntime runs it without clipfit, and
// baked weights let it pre-pack the GEMM operands once.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { encodeModel } from '../../onnx/encode.js';
import type { ClipModelCfg } from './config.js';
import { buildImageEncoder, buildTextEncoder } from './graphs.js';
import type { EncoderGraph } from './graphs.js';

export type TowerName = 'clip-text' | 'clip-vision';

export function towerGraph(cfg: ClipModelCfg, tower: TowerName, normalize = false): EncoderGraph {
  return tower === 'clip-vision' ? buildImageEncoder(cfg, normalize) : buildTextEncoder(cfg, normalize);
}

/** ONNX bytes of one tower with `weights` (OpenAI names) baked in. */
export function towerOnnx(cfg: ClipModelCfg, tower: TowerName, weights: (name: string) => Float32Array, normalize = false): Uint8Array {
  const enc = towerGraph(cfg, tower, normalize);
  const bake = new Map(enc.graph.params.map((p) => [p.name, weights(p.name)]));
  return encodeModel(enc.graph, { bakeParams: bake, docString: `clipfit ${tower} tower` });
}

/** Write `<dir>/<tower>/model.onnx` atomically (temporary name, then rename). */
export async function writeTowerOnnx(dir: string, cfg: ClipModelCfg, tower: TowerName, weights: (name: string) => Float32Array): Promise<string> {
  const out = path.join(dir, tower, 'model.onnx');
  await fsp.mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, towerOnnx(cfg, tower, weights));
  await fsp.rename(tmp, out);
  return out;
}
