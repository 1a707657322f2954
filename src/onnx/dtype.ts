// Element types the IR knows, with their ONNX TensorProto.DataType codes and typed-array views.

import { ConfigError } from '../errors.js';

// uint64 serves integer hashing inside graphs (wrapping multiplies and logical shifts: LoRA dropout's masks).
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'uint64' | 'int32' | 'bool' | 'uint8' | 'int8';

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  uint64: 13,
  bool: 9,
  float16: 10,
  float64: 11,
};

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int64: 8,
  uint64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
  int8: 1,
};

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16';
}

export type TypedArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint8Array
  | Int8Array;

/** Build a typed array of the given dtype from plain numbers. */
export function typedArrayFrom(dtype: DType, data: ArrayLike<number> | ArrayLike<bigint>): TypedArray {
  const n = data.length;
  switch (dtype) {
    case 'float32':
      return Float32Array.from(data as ArrayLike<number>);
    case 'float64':
      return Float64Array.from(data as ArrayLike<number>);
    case 'int32':
      return Int32Array.from(data as ArrayLike<number>);
    case 'int64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt(data[i] as number | bigint);
      return out;
    }
    case 'uint64': {
      const out = new BigUint64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt.asUintN(64, BigInt(data[i] as number | bigint));
      return out;
    }
    case 'bool':
    case 'uint8':
      return Uint8Array.from(data as ArrayLike<number>);
    case 'int8':
      return Int8Array.from(data as ArrayLike<number>);
    case 'float16':
      throw new ConfigError('data', 'float16 constants must be given as a Uint16Array of raw bits');
  }
}

/** Read element i of a typed array as a JS number. */
export function elementAsNumber(a: TypedArray, i: number): number {
  const v = a[i];
  return typeof v === 'bigint' ? Number(v) : (v as number);
}
