// The op table. Each op is one definition holding its shape rule and its gradient rule, in the
// spirit of tinygrad's rule table and onnxruntime's gradient-builder registry. Emitting a node
// runs the shape rule at once, so a mismatch fails where the model is written, naming the node.

import { ShapeError, UnknownOpError } from '../errors.js';
import type { DType } from '../onnx/dtype.js';
import type { Shape } from '../onnx/dims.js';
import { shapeToString } from '../onnx/dims.js';
import type { Attrs, Graph, Node } from '../onnx/graph.js';
import { Value } from '../onnx/graph.js';

export interface OutInfo {
  dtype: DType;
  shape: Shape;
}

export interface InferContext {
  op: string;
  node: string;
  inputs: readonly (Value | null)[];
  attrs: Attrs;
  /** Input i, which must be present. */
  x(i: number): Value;
  /** Throw a ShapeError naming this node. */
  fail(detail: string): never;
}

export interface GradContext {
  g: Graph;
  node: Node;
  /** Input i of the forward node. */
  x(i: number): Value;
  /** Output i of the forward node. */
  y(i: number): Value;
  /** Gradient flowing into output i; null when nothing downstream needs it (it is zero). */
  dy(i: number): Value | null;
  /** Whether input i needs a gradient (rules may skip work for the others). */
  needs(i: number): boolean;
}

/**
 * A gradient rule returns one entry per forward input: the gradient of the loss with respect to
 * that input, or null. A gradient may have the broadcast (output) shape: the autodiff walk reduces
 * it back to the input's shape in one place (unbroadcast), so no rule deals with broadcasting.
 */
export type GradRule = (c: GradContext) => (Value | null)[];

export interface OpDef {
  op: string;
  domain?: string;
  infer(c: InferContext): OutInfo[];
  /** 'nondiff': the outputs carry no gradient (shapes, comparisons, indices). Absent: no rule. */
  grad?: GradRule | 'nondiff';
}

const table = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  table.set(def.op, def);
  return def;
}

export function getOp(op: string, node?: string): OpDef {
  const def = table.get(op);
  if (!def) throw new UnknownOpError(op, node);
  return def;
}

export function allOps(): OpDef[] {
  return [...table.values()];
}

export interface EmitOptions {
  name?: string;
  /** Output shapes to use instead of the inferred ones (only where the rule cannot know, e.g. a runtime slice). */
  outShapes?: Shape[];
}

export function graphOf(inputs: readonly (Value | null)[]): Graph {
  const v = inputs.find((x): x is Value => x !== null);
  if (!v) throw new ShapeError('?', '?', 'an op needs at least one input to know its graph');
  return v.graph;
}

/** Emit a node, running the op's shape rule. Returns every output. */
export function emit(op: string, inputs: readonly (Value | null)[], attrs: Attrs = {}, opts: EmitOptions = {}): Value[] {
  const def = getOp(op, opts.name);
  const g = graphOf(inputs);
  const name = g.uniqueName(opts.name ?? op);
  const fail = (detail: string): never => {
    const shapes = inputs.map((v) => (v ? `${v.name}${shapeToString(v.shape)}:${v.dtype}` : 'none')).join(', ');
    throw new ShapeError(op, name, `${detail} (inputs: ${shapes})`);
  };
  const ctx: InferContext = {
    op,
    node: name,
    inputs,
    attrs,
    x(i) {
      const v = inputs[i];
      if (!v) return fail(`input ${i} is required`);
      return v;
    },
    fail,
  };
  let outs = def.infer(ctx);
  if (opts.outShapes) outs = outs.map((o, i) => ({ dtype: o.dtype, shape: opts.outShapes![i] ?? o.shape }));
  return g.addNode(op, inputs, attrs, outs, def.domain ?? '', name);
}

/** Emit a node with one output. */
export function emit1(op: string, inputs: readonly (Value | null)[], attrs: Attrs = {}, opts: EmitOptions = {}): Value {
  return emit(op, inputs, attrs, opts)[0]!;
}

/** Integer attribute or a default. */
export function attrInt(attrs: Attrs, key: string, dflt: number): number {
  const a = attrs[key];
  return a && 'i' in a ? a.i : dflt;
}

export function attrFloat(attrs: Attrs, key: string, dflt: number): number {
  const a = attrs[key];
  return a && 'f' in a ? a.f : dflt;
}

export function attrInts(attrs: Attrs, key: string): number[] | undefined {
  const a = attrs[key];
  return a && 'ints' in a ? a.ints : undefined;
}

/** Values of a constant int64/int32 input (for shape rules that read Reshape's shape, Slice's starts…). */
export function constInts(v: Value | null): number[] | undefined {
  if (!v || !v.data) return undefined;
  return Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
}

export { Value };
