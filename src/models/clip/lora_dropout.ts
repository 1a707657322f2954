// LoRA dropout (PEFT's lora_dropout) on the adapter's input, in training graphs only:
//   y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ,   dropout(x) = x·m/(1−p),   m ~ Bernoulli(1−p) per element,
// drawn afresh for every module, batch row and step. The mask is a pure function of
//   (fit seed, step) → k_step  (fed as the int64 input `lora_dropout_seed`, dropoutStepSeed below),
//   module name              → c_mod  (a constant in the graph),
//   global element index     → i = (row_offset + b)·rowSize + j   (row_offset fed as `lora_row_offset`),
// so a resumed run draws the same masks as an uninterrupted one, and GradCache's chunks (rows
// [s, e) of the batch, row_offset = s) draw the rows' masks of the full batch.
//
// The hash is SplitMix64 (Steele et al. 2014) in uint64 arithmetic with standard ONNX ops (Mul and
// Add wrap mod 2^64, BitShift is logical):
//   k_mod = mix(k_step ⊕ c_mod),   z_i = mix(k_mod + i·γ),   γ = 0x9E3779B97F4A7C15,
//   mix(z) = ((z ⊕ z≫30)·0xBF58476D1CE4E5B9 ⊕ …≫27)·0x94D049BB133111EB
// (SplitMix64's finaliser without its last z ⊕ z≫31, which leaves the top 31 bits alone). An element
// is kept when z_i ≥ T = round(p·2^24)·2^40, i.e. when its top 24 bits are ≥ round(p·2^24): the
// keep probability is 1 − round(p·2^24)/2^24 (p to within 3·10⁻⁸). The mask is built from inputs
// and shapes only, so the autodiff walk never enters it (no float value on it depends on a parameter).

import type { Value } from '../../onnx/graph.js';
import { dimProduct, isStatic } from '../../onnx/dims.js';
import { add, bitwiseXor, cast, dim, emit1, greaterOrEqual, mul, shiftRight } from '../../ops/index.js';

/** int64 scalar input of the training graphs: the step's key (dropoutStepSeed). */
export const LORA_DROPOUT_SEED = 'lora_dropout_seed';
/** int64 scalar input: the batch row that row 0 of this run is (0, or a GradCache chunk's start). */
export const LORA_ROW_OFFSET = 'lora_row_offset';

const U64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const M1 = 0xbf58476d1ce4e5b9n;
const M2 = 0x94d049bb133111ebn;

/** SplitMix64's finaliser, as the graph computes it (no final xor-shift). */
export function mix64(z: bigint): bigint {
  z &= U64;
  z = ((z ^ (z >> 30n)) * M1) & U64;
  return ((z ^ (z >> 27n)) * M2) & U64;
}

/** The 64 bits of a JS number (any number: fit's seed is not checked to be an integer). */
function bitsOf(x: number): bigint {
  const f = new Float64Array([x]);
  return new BigUint64Array(f.buffer)[0]!;
}

/** k_step of (seed, step), as a signed int64 for the `lora_dropout_seed` feed (the graph reads its bits). */
export function dropoutStepSeed(seed: number, step: number): bigint {
  return BigInt.asIntN(64, mix64(mix64(bitsOf(seed)) ^ BigInt(step)));
}

/** c_mod: FNV-1a (64-bit) of the module's name, so a module's masks do not depend on which others are adapted. */
export function moduleKey(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(name)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & U64;
  return h;
}

/** T: an element is kept when z ≥ T. */
export function keepThreshold(p: number): bigint {
  return BigInt(Math.round(p * 2 ** 24)) << 40n;
}

const u64 = (like: Value, v: bigint): Value => like.graph.constant(new BigUint64Array([v]), 'uint64', []);

function mixGraph(z: Value): Value {
  const z1 = mul(bitwiseXor(z, shiftRight(z, u64(z, 30n))), u64(z, M1));
  return mul(bitwiseXor(z1, shiftRight(z1, u64(z, 27n))), u64(z, M2));
}

export interface DropoutKeys {
  p: number;
  /** The graph's `lora_dropout_seed` and `lora_row_offset` inputs (int64 scalars). */
  seed: Value;
  rowOffset: Value;
  /** The adapted module's name (its mask stream). */
  module: string;
}

/**
 * The keep mask of x [batch, …] flattened row-major: bool [numel(x)], true where m = 1.
 * Row b of x is batch row rowOffset + b.
 */
export function keepMask(x: Value, k: DropoutKeys): Value {
  const g = x.graph;
  const rest = x.shape.slice(1);
  const rowSize = isStatic(dimProduct(rest))
    ? g.constant(dimProduct(rest) as number, 'int64', [])
    : rest.map((_, i) => dim(x, i + 1, { scalar: true })).reduce((a, b) => mul(a, b));
  const start = mul(k.rowOffset, rowSize);
  const count = mul(dim(x, 0, { scalar: true }), rowSize);
  const idx = emit1('Range', [start, add(start, count), g.constant(1, 'int64', [])], {}, { outShapes: [[dimProduct(x.shape)]] });
  const key = mixGraph(bitwiseXor(cast(k.seed, 'uint64'), u64(x, moduleKey(k.module))));
  const z = mixGraph(add(mul(cast(idx, 'uint64'), u64(x, GAMMA)), key));
  return greaterOrEqual(z, u64(x, keepThreshold(k.p)));
}
