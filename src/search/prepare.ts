// Items and queries as every index backend takes them: ids checked, vectors checked against the
// index dimension and L2-normalised (v/‖v‖, so the dot product of two of them is their cosine),
// metadata deep-copied through JSON (what the log stores) so later changes by the caller do not
// reach the index.

import { ConfigError, VectorDimensionError } from '../errors.js';
import type { IndexItem, Metadata } from './index_types.js';

export type Prepared = { id: string; metadata: Metadata | undefined; vector: Float32Array };

/** Deepest nesting of objects and arrays a metadata value may have (the item's object is depth 1). */
export const MAX_METADATA_DEPTH = 32;
/** Largest metadata, as JSON text in UTF-8. */
export const MAX_METADATA_BYTES = 64 * 1024;

/**
 * Why `m` is not acceptable metadata (too deep, too large, not JSON data), or null. Walked with an
 * explicit stack, never recursively, so a hostile depth cannot overflow the call stack here — and,
 * bounded, cannot later in JSON.stringify, structuredClone or a response serializer.
 */
export function metadataProblem(m: unknown): string | null {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'must be a plain object';
  const stack: [unknown, number][] = [[m, 1]];
  let nodes = 0;
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (++nodes > MAX_METADATA_BYTES) return `more than ${MAX_METADATA_BYTES} values`;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_METADATA_DEPTH) return `nested deeper than ${MAX_METADATA_DEPTH} levels`;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === 'object') stack.push([x, depth + 1]);
    else nodes++;
  }
  const bytes = Buffer.byteLength(JSON.stringify(m), 'utf8');
  if (bytes > MAX_METADATA_BYTES) return `${bytes} bytes as JSON, the limit is ${MAX_METADATA_BYTES}`;
  return null;
}

/** Validate and L2-normalise, v/‖v‖; last occurrence of an id wins. */
export function prepareItems(items: readonly IndexItem[], dim: number): Prepared[] {
  const byId = new Map<string, Prepared>();
  items.forEach((it, i) => {
    if (typeof it?.id !== 'string' || it.id === '') throw new ConfigError(`items[${i}].id`, `must be a non-empty string, got ${JSON.stringify(it?.id)}`);
    const v = it.vector;
    if (!(v instanceof Float32Array)) throw new ConfigError(`items[${i}].vector`, `item '${it.id}': must be a Float32Array`);
    if (v.length !== dim) throw new VectorDimensionError(it.id, dim, v.length);
    const m = it.metadata;
    const bad = m === undefined ? null : metadataProblem(m);
    if (bad) throw new ConfigError(`items[${i}].metadata`, `item '${it.id}': ${bad}`);
    byId.delete(it.id);
    let metadata: Metadata | undefined;
    try {
      metadata = m === undefined ? undefined : (JSON.parse(JSON.stringify(m)) as Metadata);
    } catch (err) {
      throw new ConfigError(`items[${i}].metadata`, `item '${it.id}': must be JSON-serialisable (${(err as Error).message})`);
    }
    byId.set(it.id, { id: it.id, metadata, vector: unit(v, `item '${it.id}'`, `items[${i}].vector`) });
  });
  return [...byId.values()];
}

export function unit(v: Float32Array, what: string, field: string): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  if (!Number.isFinite(s) || s === 0) throw new ConfigError(field, `${what}: ${s === 0 ? 'a zero vector has no direction' : 'holds NaN or Infinity'}; cannot L2-normalise it`);
  const inv = 1 / Math.sqrt(s);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! * inv;
  return out;
}


/** A checked, unit-length copy of a query vector, and k checked. */
export function prepareQuery(query: Float32Array, k: number, dim: number): Float32Array {
  if (!(query instanceof Float32Array)) throw new ConfigError('query', 'must be a Float32Array');
  if (query.length !== dim) throw new VectorDimensionError('(query)', dim, query.length);
  if (!Number.isInteger(k) || k < 0) throw new ConfigError('k', `must be a non-negative integer, got ${k}`);
  return unit(query, 'the query', 'query');
}
