// usearch's native index class, under its JS wrapper. The wrapper converts every vector to a
// Float32Array before the native call, so an i8 graph would only ever see usearch's own f32 → i8
// cast; the native class takes Int8Array rows as they are. Loaded from usearch's own package with
// the loader usearch itself uses (node-gyp-build), so it is the very binary the wrapper runs.
// package.json pins usearch's exact version: the native signatures below are that version's.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ConfigError } from '../errors.js';

/** usearch 2.25's CompiledIndex (javascript/lib.cpp). */
export interface NativeIndex {
  add(keys: BigUint64Array, vectors: Float32Array | Int8Array, threads: number): void;
  /** [keys, distances, counts] for each query row. */
  search(queries: Float32Array | Int8Array, k: number, threads: number): [BigUint64Array, Float32Array, BigUint64Array];
  remove(keys: BigUint64Array): number[];
  size(): number;
  dimensions(): number;
  connectivity(): number;
  save(file: string): void;
  load(file: string): void;
}

interface Binding {
  CompiledIndex: new (dim: number, metric: string, scalar: string, connectivity: number, expansionAdd: number, expansionSearch: number, multi: boolean) => NativeIndex;
}

let binding: Binding | undefined;

export function nativeUsearch(): Binding {
  if (binding) return binding;
  // usearch exports no package.json: its folder is found from its entry point upwards.
  let dir = path.dirname(createRequire(import.meta.url).resolve('usearch'));
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'binding.gyp'))) {
    if (path.dirname(dir) === dir) throw new ConfigError('usearch', 'cannot find the usearch package folder');
    dir = path.dirname(dir);
  }
  let b: Partial<Binding>;
  try {
    const load = createRequire(path.join(dir, 'package.json'))('node-gyp-build') as (dir: string) => Partial<Binding>;
    b = load(dir);
  } catch (err) {
    throw new ConfigError('usearch', `cannot load usearch's native module from ${dir} (${(err as Error).message}); reinstall it with its install script allowed`);
  }
  if (typeof b.CompiledIndex !== 'function') throw new ConfigError('usearch', `the usearch package at ${dir} has no native CompiledIndex: install the version package.json names`);
  return (binding = b as Binding);
}
