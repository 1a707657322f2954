// The functional op API: every op a model is written with. Importing this module registers the
// whole op table (shape and gradient rules).

export * from './elementwise.js';
export * from './reduce.js';
export * from './shape_ops.js';
export * from './gather.js';
export * from './matmul.js';
export * from './nn.js';
export * from './bitwise.js';
export * from './quantized.js';
export { recomputeInBackward, recomputeOf } from './recompute.js';
export type { Recompute } from './recompute.js';
export { allOps, emit, emit1, getOp } from './registry.js';
export type { GradContext, GradRule, OpDef } from './registry.js';
