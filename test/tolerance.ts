// llm.c-style tensor comparison against the reference, with the per-tensor tolerances of
// tiny/tolerances.json.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

export interface Tolerance {
  shape: number[];
  max_abs: number;
  suggested_atol: number;
}

export function loadTolerances(file: string): Record<string, Tolerance> {
  return JSON.parse(readFileSync(file, 'utf8'));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Assert |a − b| ≤ atol everywhere; returns the max difference. */
export function checkTensor(name: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number): number {
  const d = maxAbsDiff(got, want);
  assert.ok(d <= atol, `${name}: max |diff| ${d.toExponential(3)} > atol ${atol.toExponential(3)}`);
  return d;
}
