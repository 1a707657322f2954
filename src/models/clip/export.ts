// Export a tower as a standalone ONNX file: the forward graph itself, with the parameters baked in
// as initializers (dynamic batch; dynamic text length). onnxruntime runs it without clipfit, and
// baked weights let it pre-pack the GEMM operands once. The int8 variant (quantize.ts) bakes int8
// weights and quantizes activations at run time: `<tower>/model_int8.onnx` beside `model.onnx`.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { encodeModel } from '../../onnx/encode.js';
import type { ClipModelCfg } from './config.js';
import { buildImageEncoder, buildTextEncoder } from './graphs.js';
import type { EncoderGraph } from './graphs.js';
import { int8Hooks } from './quantize.js';

export type TowerName = 'clip-text' | 'clip-vision';

export interface TowerExportOptions {
  /** int8 weights and dynamically quantized activations (default false: float32). */
  int8?: boolean;
}

/** The tower's file name inside `<dir>/<tower>/`. */
export const towerFile = (o: TowerExportOptions = {}): string => (o.int8 ? 'model_int8.onnx' : 'model.onnx');

/** The tower graph; with int8, `weights` must be given (the quantized weights are baked into the graph). */
export function towerGraph(cfg: ClipModelCfg, tower: TowerName, normalize = false, weights?: (name: string) => Float32Array): EncoderGraph {
  const hooks = weights ? int8Hooks(weights) : {};
  return tower === 'clip-vision' ? buildImageEncoder(cfg, normalize, hooks) : buildTextEncoder(cfg, normalize, hooks);
}

/** ONNX bytes of one tower with `weights` (OpenAI names) baked in. */
export function towerOnnx(cfg: ClipModelCfg, tower: TowerName, weights: (name: string) => Float32Array, normalize = false, o: TowerExportOptions = {}): Uint8Array {
  const enc = towerGraph(cfg, tower, normalize, o.int8 ? weights : undefined);
  const bake = new Map(enc.graph.params.map((p) => [p.name, weights(p.name)]));
  return encodeModel(enc.graph, { bakeParams: bake, docString: `clipfit ${tower} tower${o.int8 ? ' (int8 weights, dynamically quantized activations)' : ''}` });
}

/** Write `<dir>/<tower>/model.onnx` (or `model_int8.onnx`) atomically (temporary name, then rename). */
export async function writeTowerOnnx(dir: string, cfg: ClipModelCfg, tower: TowerName, weights: (name: string) => Float32Array, o: TowerExportOptions = {}): Promise<string> {
  const out = path.join(dir, tower, towerFile(o));
  await fsp.mkdir(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, towerOnnx(cfg, tower, weights, false, o));
  await fsp.rename(tmp, out);
  return out;
}
