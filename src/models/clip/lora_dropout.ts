// LoRA dropout (PEFT's lora_dropout) on the adapter's input, in training graphs only:
//   y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ,   dropout(x) = x·m/(1−p),   m ~ Bernoulli(1−p) per element,
// drawn afresh for every module, batch row and step. The mask is a pure function of
//   (fit seed, step) → k_step  (fed as the int64 input `lora_dropout_seed`, dropoutStepSeed below),
//   module name              → c_mod  (a constant in the graph),
//   global element index     → i = (row_offset + b)·rowSize + j   (row_offset fed as `lora_row_offset`),
// so a resumed run draws the same masks as an uninterrupted one, and GradCache's chunks (rows
// [s, e) of the batch, row_offset = s) draw the rows' masks of the full batch.
//
// The bits come from SplitMix64 (Steele et al. 2014) in uint64 arithmetic with standard ONNX ops
// (Mul and Add wrap mod 2^64, BitShift is logical):
//   k_mod = mix(k_step ⊕ c_mod),   z_g = mix(k_mod + g·γ),   γ = 0x9E3779B97F4A7C15,
//   mix(z): z ⊕= z≫30; z ·= 0xBF58476D1CE4E5B9; z ⊕= z≫27; z ·= 0x94D049BB133111EB; z ⊕= z≫31.
// One z serves four consecutive elements i = 4g + l (l = 0…3) as four 16-bit lanes u_i = bits
// [16l, 16l + 16) of z_g, and an element is kept when u_i ≥ round(p·2^16): the keep probability is
// 1 − round(p·2^16)/2^16 (p to within 8·10⁻⁶). Four lanes per hash cut the integer passes (memory
// bound, 8 bytes an element each) about threefold; they need the layer's width to be a multiple of
// 4 (every CLIP's is) so that no group of four straddles two rows; otherwise each element gets a
// z of its own (its top 16 bits). The lane test is a mask and a compare, t = round(p·2^16):
//   u_i ≥ t  ⇔  z_g mod 2^(16l+16) ≥ t·2^(16l)   (the bits below lane l add less than 2^(16l)).
// The mask is built from inputs and shapes only, so the autodiff walk never enters it (no float
// value on it depends on a parameter).

import type { Value } from '../../onnx/graph.js';
import { ShapeError } from '../../errors.js';
import { dimMul, dimProduct, isStatic } from '../../onnx/dims.js';
import { add, bitwiseAnd, bitwiseXor, cast, concat, dim, emit1, greaterOrEqual, mul, shiftRight, unsqueeze } from '../../ops/index.js';

/** int64 scalar input of the training graphs: the step's key (dropoutStepSeed). */
export const LORA_DROPOUT_SEED = 'lora_dropout_seed';
/** int64 scalar input: the batch row that row 0 of this run is (0, or a GradCache chunk's start). */
export const LORA_ROW_OFFSET = 'lora_row_offset';

const U64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const M1 = 0xbf58476d1ce4e5b9n;
const M2 = 0x94d049bb133111ebn;

/** SplitMix64's finaliser (the graph's mix). */
export function mix64(z: bigint): bigint {
  z &= U64;
  z = ((z ^ (z >> 30n)) * M1) & U64;
  z = ((z ^ (z >> 27n)) * M2) & U64;
  return z ^ (z >> 31n);
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

/** t: an element is kept when its 16-bit lane u ≥ t. */
export function keepThreshold(p: number): bigint {
  return BigInt(Math.round(p * 2 ** 16));
}

/** Elements per hash for a layer of width `inF`: 4 lanes, or 1 when 4 does not divide the width. */
export const lanesFor = (inF: number): 1 | 4 => (inF % 4 === 0 ? 4 : 1);

const u64 = (like: Value, v: bigint): Value => like.graph.constant(new BigUint64Array([v]), 'uint64', []);

function mixGraph(z: Value): Value {
  const z1 = mul(bitwiseXor(z, shiftRight(z, u64(z, 30n))), u64(z, M1));
  const z2 = mul(bitwiseXor(z1, shiftRight(z1, u64(z, 27n))), u64(z, M2));
  return bitwiseXor(z2, shiftRight(z2, u64(z, 31n)));
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
 * The keep mask of x [batch, …, in] (in static): a bool tensor whose elements, row-major, are x's
 * (true where m = 1): [numel/4, 4] with four lanes a hash, else [numel]. Row b of x is batch row
 * rowOffset + b.
 */
export function keepMask(x: Value, k: DropoutKeys): Value {
  const g = x.graph;
  const inF = x.shape[x.rank - 1]!;
  if (!isStatic(inF)) throw new ShapeError('keepMask', x.name, `the last dimension (the layer's width) must be static, got ${inF}`);
  const lanes = lanesFor(inF);
  // Hashes per batch row: (∏ of the middle dims)·in/lanes; the middle dims may be symbolic (text length).
  const middle = x.shape.slice(1, -1);
  const perRow = isStatic(dimProduct(middle))
    ? g.constant(((dimProduct(middle) as number) * inF) / lanes, 'int64', [])
    : middle.map((_, i) => dim(x, i + 1, { scalar: true })).reduce((a, b) => mul(a, b), g.constant(inF / lanes, 'int64', []));
  const start = mul(k.rowOffset, perRow);
  const count = mul(dim(x, 0, { scalar: true }), perRow);
  const hashes = dimMul(dimProduct(x.shape.slice(0, -1)), inF / lanes);
  const gIdx = emit1('Range', [start, add(start, count), g.constant(1, 'int64', [])], {}, { outShapes: [[hashes]] });
  const key = mixGraph(bitwiseXor(cast(k.seed, 'uint64'), u64(x, moduleKey(k.module))));
  const z = mixGraph(add(mul(cast(gIdx, 'uint64'), u64(x, GAMMA)), key));
  const t = keepThreshold(k.p);
  if (lanes === 1) return greaterOrEqual(z, u64(x, t << 48n));
  // Lane l: z mod 2^(16l+16) ≥ t·2^(16l) (the bits below lane l are < 2^(16l)); four [G] compares
  // and a Concat write less than one [G, 4] uint64 shift would.
  const lane = (l: number): Value => {
    const low = l === 3 ? z : bitwiseAnd(z, u64(x, (1n << BigInt(16 * l + 16)) - 1n));
    return unsqueeze(greaterOrEqual(low, u64(x, t << BigInt(16 * l))), [1]);
  };
  return concat([0, 1, 2, 3].map(lane), 1);
}
