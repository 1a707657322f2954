// safetensors: an 8-byte little-endian header length, a JSON header (padded with spaces to a
// multiple of 8), then the tensors packed back to back. Reads F32, F16 and BF16 (widened to
// float32), F64, I64, I32, U8, BOOL; writes F32, F64, I64, I32, U8. Every malformed file gets a
// SafetensorsError naming the file and the tensor.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { SafetensorsError } from '../errors.js';

export type StDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'U8' | 'BOOL';

export interface StTensor {
  dtype: StDType;
  shape: number[];
  /** F32/F16/BF16 → Float32Array, F64 → Float64Array, I64 → BigInt64Array, I32 → Int32Array, U8/BOOL → Uint8Array. */
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

export interface StFile {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<StDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** IEEE binary16 bits of x, rounded to nearest even (overflow → ±Inf, underflow → subnormal or ±0). */
export function floatToHalf(x: number): number {
  F32[0] = x;
  const b = U32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = m·2⁻²⁴ with m = (1.mant)·2^(exp−127+24−23) = full mantissa ≫ (14 − e).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

function decode(dtype: StDType, bytes: Uint8Array): StTensor['data'] {
  // Copy into an aligned buffer; the data section need not be aligned for typed-array views.
  // (Buffer#slice is a view, so copy explicitly.)
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const buf = copy.buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return new Float64Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
    case 'F16': {
      const u = new Uint16Array(buf);
      const out = new Float32Array(u.length);
      for (let i = 0; i < u.length; i++) out[i] = halfToFloat(u[i]!);
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const u = new Uint16Array(buf);
      const out = new Uint32Array(u.length);
      for (let i = 0; i < u.length; i++) out[i] = u[i]! << 16;
      return new Float32Array(out.buffer);
    }
  }
}

/** Parse safetensors bytes. `file` names the source in errors. */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): StFile {
  if (bytes.length < 8) throw new SafetensorsError(file, `truncated: ${bytes.length} bytes, no header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > MAX_HEADER) throw new SafetensorsError(file, `bad header: length ${n} is implausible`);
  if (8 + n > bytes.length) throw new SafetensorsError(file, `truncated: header needs ${n} bytes, file has ${bytes.length - 8}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    throw new SafetensorsError(file, `bad header: not valid UTF-8 JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError(file, 'bad header: not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, StTensor>();
  const metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      for (const [k, v] of Object.entries((raw ?? {}) as Record<string, unknown>)) metadata[k] = String(v);
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object') throw new SafetensorsError(file, `tensor '${name}': entry is not an object`);
    const dtype = e.dtype as StDType;
    if (!(typeof dtype === 'string' && dtype in BYTES)) throw new SafetensorsError(file, `tensor '${name}': unsupported dtype ${String(e.dtype)}`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new SafetensorsError(file, `tensor '${name}': bad shape ${JSON.stringify(shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1])
      throw new SafetensorsError(file, `tensor '${name}': bad data_offsets ${JSON.stringify(off)}`);
    const [b, end] = off as [number, number];
    const expected = (shape as number[]).reduce((a, d) => a * d, 1) * BYTES[dtype];
    if (end - b !== expected)
      throw new SafetensorsError(file, `tensor '${name}': data_offsets span ${end - b} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`);
    if (end > dataLen) throw new SafetensorsError(file, `truncated: tensor '${name}' ends at ${end}, data section has ${dataLen} bytes`);
    ranges.push([b, end, name]);
    tensors.set(name, { dtype, shape: shape as number[], data: decode(dtype, bytes.subarray(dataStart + b, dataStart + end)) });
  }
  ranges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  for (let i = 1; i < ranges.length; i++) {
    const [pb, pe, pn] = ranges[i - 1]!;
    const [b, e, nm] = ranges[i]!;
    if (b < pe && e > b && pe > pb) throw new SafetensorsError(file, `tensors '${pn}' and '${nm}' overlap (bytes ${b}..${pe})`);
  }
  return { tensors, metadata };
}

export async function readSafetensors(file: string): Promise<StFile> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(file);
  } catch (err) {
    throw new SafetensorsError(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseSafetensors(bytes, file);
}

function stDtypeOf(data: StTensor['data'], dtype?: StDType): StDType {
  if (dtype) return dtype;
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

export interface StInput {
  shape: number[];
  data: StTensor['data'];
  dtype?: StDType;
}

/** Serialise tensors (in the given order) with optional string metadata. */
export function serializeSafetensors(tensors: Iterable<[string, StInput]>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header['__metadata__'] = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const dtype = stDtypeOf(t.data, t.dtype);
    if (dtype === 'BF16') throw new SafetensorsError(name, 'writing BF16 is not supported');
    if (dtype === 'F16' && !(t.data instanceof Float32Array)) throw new SafetensorsError(name, 'F16 is written from Float32Array data');
    const n = t.shape.reduce((a, d) => a * d, 1);
    if (n !== t.data.length) throw new SafetensorsError(name, `shape ${JSON.stringify(t.shape)} does not match ${t.data.length} elements`);
    let bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (dtype === 'F16') {
      const half = new Uint16Array(n);
      for (let i = 0; i < n; i++) half[i] = floatToHalf((t.data as Float32Array)[i]!);
      bytes = new Uint8Array(half.buffer);
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  if (hb.length % 8) {
    json += ' '.repeat(8 - (hb.length % 8));
    hb = enc.encode(json);
  }
  const out = new Uint8Array(8 + hb.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let pos = 8 + hb.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Write atomically: to a temporary name beside the target, then rename. */
export async function writeSafetensors(file: string, tensors: Iterable<[string, StInput]>, metadata?: Record<string, string>): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await fsp.writeFile(tmp, bytes);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw new SafetensorsError(file, `cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
