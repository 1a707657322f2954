// LoRA (Hu et al. 2021, as PEFT implements it): a low-rank update beside a frozen linear weight,
//   y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ,   s = alpha / rank,
// with A [rank, in] drawn Kaiming-uniform (PEFT's kaiming_uniform_(a=√5): U(−1/√in, 1/√in)) and
// B [out, rank] = 0, so the model at step 0 is the base model. Merged, the adapter is one weight,
//   W' = W + s·B·A,
// and serving it costs nothing extra. Targets: 'attn' = attn.in_proj_weight and
// attn.out_proj.weight, 'mlp' = mlp.c_fc.weight and mlp.c_proj.weight, in the towers listed.
// Adapter parameters are named after the layer they sit beside, as PEFT names them:
// `<module>.lora_A.weight` and `<module>.lora_B.weight`, the module being the weight's name
// without its `.weight` / `_weight` suffix (attn.in_proj_weight → attn.in_proj).
// Training graphs may drop the adapter's input (lora.dropout, PEFT's lora_dropout; lora_dropout.ts).

import { createHash } from 'node:crypto';
import { ConfigError } from '../../errors.js';
import type { Graph, Value } from '../../onnx/graph.js';
import { add, concat, gemm, linear, matmulT, reshape, shapeOf, slice, where } from '../../ops/index.js';
import type { ParamStore } from '../../runtime/params.js';
import { seededRandom } from '../../util/random.js';
import type { ClipModelCfg } from './config.js';
import type { TowerHooks } from './model.js';
import type { LinearFn } from './transformer.js';
import { LORA_DROPOUT_SEED, LORA_ROW_OFFSET, keepMask } from './lora_dropout.js';
import type { DropoutKeys } from './lora_dropout.js';

export const LORA_TARGETS = ['attn', 'mlp'] as const;
export const LORA_TOWERS = ['text', 'image'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];
export type LoraTower = (typeof LORA_TOWERS)[number];

/** fit()'s `lora` option, as given (plain JSON). */
export interface LoraOptions {
  /** Rank r of A·B (default 8); 1 ≤ r ≤ the narrowest side of every targeted weight. */
  rank?: number;
  /** Scale numerator: the update is (alpha/rank)·B·A (default: alpha = rank, a scale of 1). */
  alpha?: number;
  /** Dropout probability on the adapter's input in training steps (PEFT's lora_dropout; default 0), in [0, 1). */
  dropout?: number;
  /** Which linear layers get adapters (default both). */
  targets?: LoraTarget[];
  /** Which towers get adapters (default both). */
  towers?: LoraTower[];
  /** Also write the merged model (open_clip layout) into the artifact; toOnnx implies it (default false). */
  merge?: boolean;
}

export interface LoraSpec {
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
  towers: LoraTower[];
}

export const LORA_DEFAULTS = { rank: 8, dropout: 0, targets: [...LORA_TARGETS], towers: [...LORA_TOWERS] } as const;

/** One adapted layer: the base weight, the adapter's two parameters and their sides. */
export interface LoraLayer {
  tower: LoraTower;
  weight: string;
  a: string;
  b: string;
  in: number;
  out: number;
}

const TARGET_WEIGHTS: Record<LoraTarget, string[]> = {
  attn: ['attn.in_proj_weight', 'attn.out_proj.weight'],
  mlp: ['mlp.c_fc.weight', 'mlp.c_proj.weight'],
};

export const isLoraParam = (name: string): boolean => /\.lora_[AB]\.weight$/.test(name);
const moduleOf = (weight: string): string => weight.replace(/(\.|_)weight$/, '');

function listOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T[] {
  if (!Array.isArray(v) || v.length === 0) throw new ConfigError(field, `must be a non-empty list of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  for (const x of v) if (!allowed.includes(x as T)) throw new ConfigError(field, `unknown ${JSON.stringify(x)}: must be one of ${allowed.join(', ')}`);
  return [...new Set(v as T[])];
}

/** The adapted layers of `cfg` under `spec` (towers and blocks in model order). */
export function loraLayers(cfg: ClipModelCfg, spec: Pick<LoraSpec, 'targets' | 'towers'>): LoraLayer[] {
  const out: LoraLayer[] = [];
  for (const tower of LORA_TOWERS) {
    if (!spec.towers.includes(tower)) continue;
    const t = tower === 'image' ? cfg.vision_cfg : cfg.text_cfg;
    const prefix = tower === 'image' ? 'visual.transformer.resblocks' : 'transformer.resblocks';
    const w = t.width;
    const hidden = Math.round(w * (t.mlp_ratio ?? 4));
    const sides: Record<string, [number, number]> = {
      'attn.in_proj_weight': [w, 3 * w],
      'attn.out_proj.weight': [w, w],
      'mlp.c_fc.weight': [w, hidden],
      'mlp.c_proj.weight': [hidden, w],
    };
    for (let i = 0; i < t.layers; i++)
      for (const target of LORA_TARGETS) {
        if (!spec.targets.includes(target)) continue;
        for (const name of TARGET_WEIGHTS[target]) {
          const weight = `${prefix}.${i}.${name}`;
          const [inF, outF] = sides[name]!;
          out.push({ tower, weight, a: `${moduleOf(weight)}.lora_A.weight`, b: `${moduleOf(weight)}.lora_B.weight`, in: inF, out: outF });
        }
      }
  }
  return out;
}

/** Defaults filled in and every field checked against the model: a ConfigError names the field. */
export function resolveLora(o: LoraOptions, cfg: ClipModelCfg, field = 'lora'): LoraSpec {
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new ConfigError(field, `must be an object like { rank: 8 }, got ${JSON.stringify(o)}`);
  const rank = o.rank ?? LORA_DEFAULTS.rank;
  if (!(typeof rank === 'number' && Number.isInteger(rank) && rank > 0)) throw new ConfigError(`${field}.rank`, `must be a positive integer, got ${JSON.stringify(rank)}`);
  const alpha = o.alpha ?? rank;
  if (!(typeof alpha === 'number' && Number.isFinite(alpha) && alpha > 0)) throw new ConfigError(`${field}.alpha`, `must be a positive number, got ${JSON.stringify(alpha)}`);
  const dropout = o.dropout ?? LORA_DEFAULTS.dropout;
  if (!(typeof dropout === 'number' && dropout >= 0 && dropout < 1)) throw new ConfigError(`${field}.dropout`, `must be a probability in [0, 1), got ${typeof dropout === 'number' ? dropout : JSON.stringify(dropout)}`);
  const targets = listOf(`${field}.targets`, o.targets ?? [...LORA_DEFAULTS.targets], LORA_TARGETS);
  const towers = listOf(`${field}.towers`, o.towers ?? [...LORA_DEFAULTS.towers], LORA_TOWERS);
  if (o.merge !== undefined && typeof o.merge !== 'boolean') throw new ConfigError(`${field}.merge`, `must be true or false, got ${JSON.stringify(o.merge)}`);
  const spec: LoraSpec = { rank, alpha, dropout, targets, towers };
  for (const l of loraLayers(cfg, spec)) {
    const width = Math.min(l.in, l.out);
    if (rank > width) throw new ConfigError(`${field}.rank`, `${rank} is above the width of ${l.weight} (${l.out}×${l.in}): at most ${width} in the ${l.tower} tower`);
  }
  return spec;
}

/** (name, shape) of every adapter parameter: A [rank, in] then B [out, rank], layer by layer. */
export function loraShapes(layers: readonly LoraLayer[], rank: number): [string, number[]][] {
  return layers.flatMap((l): [string, number[]][] => [
    [l.a, [rank, l.in]],
    [l.b, [l.out, rank]],
  ]);
}

/** A ~ U(−1/√in, 1/√in) from `seed` (layer by layer, row-major), B = 0: the model equals its base. */
export function initLora(store: ParamStore, layers: readonly LoraLayer[], seed: number): void {
  const rand = seededRandom(seed);
  for (const l of layers) {
    const bound = 1 / Math.sqrt(l.in);
    const a = store.view(l.a);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rand() - 1) * bound;
    store.view(l.b).fill(0);
  }
}

/** The plain layer, exactly as the towers compute it without hooks (the patch embedding's weight is 4-D). */
const plainLinear: LinearFn = (x, w, b) => {
  if (w.rank === 2) return linear(x, w, b);
  const out = w.shape[0] as number;
  const k = (w.shape as number[]).slice(1).reduce((p, d) => p * d, 1);
  return matmulT(x, reshape(w, [out, k]), { transB: true });
};

/**
 * x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ for x [batch, ..., in], W [out, in], A [rank, in], B [out, rank]: the base
 * layer and the adapter are Gemms on the same flattened rows, added before the rows are reshaped
 * back, so with B = 0 the result is the base layer's output (the same Gemm) plus an exact zero.
 * With `drop`, the adapter reads dropout(x) = x·m/(1−p): the kept elements of x (a Where on the
 * mask) and the 1/(1−p) folded into the second Gemm's alpha, s/(1−p).
 */
export function loraLinear(x: Value, w: Value, b: Value | null, A: Value, B: Value, scale: number, drop?: DropoutKeys): Value {
  const inF = w.shape[1] as number;
  const outF = w.shape[0] as number;
  const rows = x.rank === 2 ? x : reshape(x, [-1, inF]);
  const base = gemm(rows, w, b, { transB: true });
  const kept = drop ? where(reshape(keepMask(x, drop), [-1, inF]), rows, 0) : rows;
  const low = gemm(gemm(kept, A, null, { transB: true }), B, null, { transB: true, alpha: drop ? scale / (1 - drop.p) : scale });
  const y = add(base, low);
  if (x.rank === 2) return y;
  const lead = slice(shapeOf(x), [0], [x.rank - 1], [0]);
  return reshape(y, concat([lead, x.graph.constant([outF], 'int64', [1])], 0));
}

/**
 * Tower hooks whose adapted linear layers are loraLinear, the adapters declared as graph parameters.
 * With `training` and spec.dropout > 0 the adapters' inputs are dropped, the graph then reading the
 * int64 scalar inputs `lora_dropout_seed` and `lora_row_offset` (lora_dropout.ts); evaluation,
 * encoding and export graphs never drop.
 */
export function loraHooks(spec: LoraSpec, layers: readonly LoraLayer[], o: { training?: boolean } = {}): { image?: TowerHooks; text?: TowerHooks } {
  const scale = spec.alpha / spec.rank;
  const dropping = (o.training ?? false) && spec.dropout > 0;
  const byWeight = new Map(layers.map((l) => [l.weight, l]));
  const declared = new WeakMap<Graph, Map<string, Value>>();
  const once = (g: Graph, name: string, make: () => Value): Value => {
    let m = declared.get(g);
    if (!m) declared.set(g, (m = new Map()));
    let v = m.get(name);
    if (!v) m.set(name, (v = make()));
    return v;
  };
  const param = (g: Graph, name: string, shape: number[]): Value => once(g, name, () => g.param(name, shape));
  // Both towers' hooks (separate loraHooks calls) read the one input of a graph.
  const scalarInput = (g: Graph, name: string): Value => once(g, name, () => g.inputs.find((v) => v.name === name) ?? g.input(name, 'int64', []));
  const lin: LinearFn = (x, w, b) => {
    const l = byWeight.get(w.name);
    if (!l) return plainLinear(x, w, b);
    const g = x.graph;
    const drop = dropping ? { p: spec.dropout, seed: scalarInput(g, LORA_DROPOUT_SEED), rowOffset: scalarInput(g, LORA_ROW_OFFSET), module: moduleOf(l.weight) } : undefined;
    return loraLinear(x, w, b, param(g, l.a, [spec.rank, l.in]), param(g, l.b, [l.out, spec.rank]), scale, drop);
  };
  const hooks: { image?: TowerHooks; text?: TowerHooks } = {};
  for (const t of spec.towers) hooks[t] = { linear: lin };
  return hooks;
}

/** W' = W + s·B·A for every adapted weight (float64 sums, one row of W' at a time), keyed by the base weight's name. */
export function mergedWeights(get: (name: string) => Float32Array, layers: readonly LoraLayer[], spec: Pick<LoraSpec, 'rank' | 'alpha'>): Map<string, Float32Array> {
  const s = spec.alpha / spec.rank;
  const r = spec.rank;
  const out = new Map<string, Float32Array>();
  const acc = new Float64Array(Math.max(0, ...layers.map((l) => l.in)));
  for (const l of layers) {
    const w = get(l.weight);
    const A = get(l.a);
    const B = get(l.b);
    const merged = new Float32Array(w.length);
    for (let o = 0; o < l.out; o++) {
      acc.fill(0, 0, l.in);
      for (let k = 0; k < r; k++) {
        const bk = B[o * r + k]!;
        if (bk === 0) continue;
        const row = k * l.in;
        for (let i = 0; i < l.in; i++) acc[i]! += bk * A[row + i]!;
      }
      const base = o * l.in;
      for (let i = 0; i < l.in; i++) merged[base + i] = w[base + i]! + s * acc[i]!;
    }
    out.set(l.weight, merged);
  }
  return out;
}

/**
 * WiSE-FT on the merged weights: (1−α)·W + α·(W + s·B·A) = W + s·(αB)·A, so scaling every B by α
 * (the base weights being frozen) mixes the merged model with its base exactly.
 */
export function scaleAdapters(store: ParamStore, layers: readonly LoraLayer[], alpha: number): void {
  for (const l of layers) {
    const b = store.view(l.b);
    for (let i = 0; i < b.length; i++) b[i] = alpha * b[i]!;
  }
}

/** sha256 over the names, shapes and float32 values of `names` (in order): which base weights an adapter belongs to. */
export function weightsFingerprint(store: ParamStore, names: readonly string[]): string {
  const h = createHash('sha256');
  for (const n of names) {
    const e = store.entry(n);
    const v = store.view(n);
    h.update(`${n}:${e.shape.join('x')};`);
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return `sha256:${h.digest('hex')}`;
}

/** Trainable (adapter) parameters of `layers` at `rank`: Σ rank·(in + out). */
export function loraParamCount(layers: readonly LoraLayer[], rank: number): number {
  return layers.reduce((n, l) => n + rank * (l.in + l.out), 0);
}
