// Rematerialization: a forward value the backward pass recomputes instead of keeping alive from the
// forward pass to its gradient. The autodiff walk asks for a value's recomputation where a
// gradient rule reads it, so onnxruntime frees the forward copy right after its last forward use.
//
// The recomputation takes a float32 scalar `gate` that is 0 but exists only once the gradient
// flowing into the reading node does (0·dY[0,…,0]). A recipe folds the gate into one of its scalar
// constants (c + gate = c exactly), which (1) keeps onnxruntime from running the recomputation
// early in the forward pass, where it would be as long-lived as the value it replaces, and (2) keeps
// common-subexpression elimination from merging it back into the forward value. A NaN or ±Inf in
// that one element of dY makes the recomputation NaN, where the gradient is non-finite anyway.

import type { Value } from './registry.js';

/** Emit the recomputation of a value. `get` gives the recomputation of another registered value (shared, made once). */
export type Recompute = (gate: Value, get: (v: Value) => Value) => Value;

const recipes = new WeakMap<Value, Recompute>();

/** Have the backward pass recompute `v` with `r` rather than keep it. */
export function recomputeInBackward(v: Value, r: Recompute): Value {
  recipes.set(v, r);
  return v;
}

export function recomputeOf(v: Value): Recompute | undefined {
  return recipes.get(v);
}
