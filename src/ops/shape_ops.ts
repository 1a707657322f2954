// Ops that move data without arithmetic: reshape, transpose, (un)squeeze, concat/split, slice/pad,
// expand, gather/scatter, and shape queries. Their gradients move dY back the other way.

import { ClipfitError } from '../errors.js';
import type { DType } from '../onnx/dtype.js';
import { typedArrayFrom } from '../onnx/dtype.js';
import type { Dim } from '../onnx/dims.js';
import { allStatic, broadcastShapes, dimDiv, dimProduct, isStatic, normAxis, sameDim } from '../onnx/dims.js';
import type { InferContext } from './registry.js';
import { Value, attrInt, attrInts, constInts, defineOp, emit, emit1 } from './registry.js';

const INT64_MAX = 9223372036854775807;

/** Values of a 1-D int64 shape tensor when known: a constant, or Shape(v) of a value with known dims. */
export function shapeValues(v: Value | null): Dim[] | undefined {
  if (!v) return undefined;
  const c = constInts(v);
  if (c) return c;
  const p = v.producer;
  if (p && p.op === 'Shape') return [...p.inputs[0]!.shape];
  // Gather(Shape(v), const indices) and Slice(Shape(v), const …): pick the dims.
  if (p && (p.op === 'Gather' || p.op === 'Slice')) {
    const src = shapeValues(p.inputs[0] ?? null);
    if (!src) return undefined;
    if (p.op === 'Gather') {
      const idx = constInts(p.inputs[1] ?? null);
      return idx?.map((i) => src[i < 0 ? i + src.length : i]!);
    }
    const [st, en] = [constInts(p.inputs[1] ?? null), constInts(p.inputs[2] ?? null)];
    if (!st || !en || p.inputs[4]) return undefined;
    const norm = (i: number) => Math.min(Math.max(i < 0 ? i + src.length : i, 0), src.length);
    return src.slice(norm(st[0]!), norm(en[0]!));
  }
  if (p && p.op === 'Concat') {
    const parts = p.inputs.map((x) => shapeValues(x));
    if (parts.every((x) => x)) return parts.flat() as Dim[];
  }
  return undefined;
}

/** The runtime shape of v as an int64 vector (a constant when v's shape is static). */
export function shapeOf(v: Value): Value {
  if (allStatic(v.shape)) return v.graph.constant([...v.shape], 'int64', [v.rank]);
  return emit1('Shape', [v]);
}

defineOp({ op: 'Shape', infer: (c) => [{ dtype: 'int64', shape: [c.x(0).rank] }], grad: 'nondiff' });
defineOp({ op: 'Size', infer: () => [{ dtype: 'int64', shape: [] }], grad: 'nondiff' });
export const size = (x: Value): Value => emit1('Size', [x]);

defineOp({
  op: 'ConstantOfShape',
  infer: (c) => {
    const t = c.attrs['value'];
    const dtype: DType = t && 't' in t ? t.t.dtype : 'float32';
    const dims = shapeValues(c.x(0));
    const n = c.x(0).shape[0];
    if (!dims && typeof n !== 'number') return c.fail('shape input of unknown length');
    return [{ dtype, shape: dims ?? Array.from({ length: n as number }, (_, i) => `${c.node}_d${i}`) }];
  },
  grad: 'nondiff',
});

/** Zeros with the runtime shape given by an int64 vector. */
export function zerosOfShape(shape: Value, dtype: DType): Value {
  return emit1('ConstantOfShape', [shape], { value: { t: { dtype, shape: [1], data: typedArrayFrom(dtype, [0]) } } });
}

export const zerosLike = (v: Value): Value => zerosOfShape(shapeOf(v), v.dtype);

// ---- Reshape ------------------------------------------------------------------------------------

function reshapeDims(c: InferContext, inShape: readonly Dim[], target: Dim[]): Dim[] {
  const out: Dim[] = target.map((d, i) => (d === 0 ? inShape[i] ?? c.fail(`0 at ${i} beyond input rank`) : d));
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const known = dimProduct(out.filter((_, i) => i !== neg));
    const q = dimDiv(dimProduct(inShape), known);
    out[neg] = q ?? `${c.node}_d${neg}`;
  } else if (allStatic(inShape) && allStatic(out) && dimProduct(inShape) !== dimProduct(out)) {
    c.fail(`cannot reshape ${inShape.length}-d input of ${dimProduct(inShape)} elements to [${out.join(', ')}]`);
  }
  return out;
}

// dX = reshape(dY, shape(x))
defineOp({
  op: 'Reshape',
  infer: (c) => {
    const x = c.x(0);
    const target = shapeValues(c.x(1));
    if (target) return [{ dtype: x.dtype, shape: reshapeDims(c, x.shape, target) }];
    const n = c.x(1).shape[0];
    if (typeof n !== 'number') return c.fail('shape input of unknown length');
    return [{ dtype: x.dtype, shape: Array.from({ length: n }, (_, i) => `${c.node}_d${i}`) }];
  },
  grad: (c) => [reshape(c.dy(0)!, shapeOf(c.x(0))), null],
});

/** Reshape to dims (numbers, 0 = copy, -1 = infer) or to a runtime shape vector. */
export function reshape(x: Value, shape: readonly number[] | Value): Value {
  const s = Array.isArray(shape) ? x.graph.constant([...shape], 'int64', [shape.length]) : (shape as Value);
  return emit1('Reshape', [x, s]);
}

// ---- Transpose ----------------------------------------------------------------------------------

// dX = transpose(dY, perm⁻¹)
defineOp({
  op: 'Transpose',
  infer: (c) => {
    const x = c.x(0);
    const perm = attrInts(c.attrs, 'perm') ?? x.shape.map((_, i) => x.rank - 1 - i);
    if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) c.fail(`bad perm [${perm}]`);
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }];
  },
  grad: (c) => {
    const x = c.x(0);
    const perm = attrInts(c.node.attrs, 'perm') ?? x.shape.map((_, i) => x.rank - 1 - i);
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [transpose(c.dy(0)!, inv)];
  },
});
export const transpose = (x: Value, perm: number[]): Value => emit1('Transpose', [x], { perm: { ints: perm } });

// ---- Unsqueeze / Squeeze ------------------------------------------------------------------------

defineOp({
  op: 'Unsqueeze',
  infer: (c) => {
    const x = c.x(0);
    const axes = constInts(c.x(1));
    if (!axes) return c.fail('axes must be a constant');
    const r = x.rank + axes.length;
    const norm = axes.map((a) => normAxis(a, r)).sort((a, b) => a - b);
    const out: Dim[] = [];
    let k = 0;
    for (let i = 0; i < r; i++) out.push(norm.includes(i) ? 1 : x.shape[k++]!);
    return [{ dtype: x.dtype, shape: out }];
  },
  grad: (c) => [squeeze(c.dy(0)!, constInts(c.x(1))!), null],
});
export function unsqueeze(x: Value, axes: number[]): Value {
  return emit1('Unsqueeze', [x, x.graph.constant(axes, 'int64', [axes.length])]);
}

defineOp({
  op: 'Squeeze',
  infer: (c) => {
    const x = c.x(0);
    const axes = constInts(c.x(1));
    if (!axes) return c.fail('axes must be a constant');
    const norm = axes.map((a) => normAxis(a, x.rank));
    for (const a of norm) if (x.shape[a] !== 1 && isStatic(x.shape[a]!)) c.fail(`axis ${a} has size ${x.shape[a]}, not 1`);
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !norm.includes(i)) }];
  },
  grad: (c) => [unsqueeze(c.dy(0)!, constInts(c.x(1))!.map((a) => normAxis(a, c.x(0).rank))), null],
});
export function squeeze(x: Value, axes: number[]): Value {
  return emit1('Squeeze', [x, x.graph.constant(axes, 'int64', [axes.length])]);
}

// ---- Concat / Split -----------------------------------------------------------------------------

/** Size of x along `axis` as an int64 1-vector [n] (a scalar with `scalar`): a constant when the
 * dim is static, else Gather(Shape(x), axis), which shape inference reads back as x's dim. */
export function dim(x: Value, axis: number, opts: { scalar?: boolean } = {}): Value {
  const d = x.shape[axis]!;
  const s: number[] = opts.scalar ? [] : [1];
  if (isStatic(d)) return x.graph.constant(opts.scalar ? d : [d], 'int64', s);
  return emit1('Gather', [emit1('Shape', [x]), x.graph.constant(opts.scalar ? axis : [axis], 'int64', s)], { axis: { i: 0 } });
}

// dX_i = the i-th piece of dY along axis
defineOp({
  op: 'Concat',
  infer: (c) => {
    const ins = c.inputs as Value[];
    const r = ins[0]!.rank;
    const axis = normAxis(attrInt(c.attrs, 'axis', 0), r);
    const out: Dim[] = [...ins[0]!.shape];
    for (const v of ins.slice(1)) {
      if (v.rank !== r || v.dtype !== ins[0]!.dtype) c.fail('inputs differ in rank or dtype');
      v.shape.forEach((d, i) => {
        if (i === axis) return;
        if (!sameDim(d, out[i]!) && isStatic(d) && isStatic(out[i]!)) c.fail(`dim ${i} differs`);
      });
    }
    let sum: Dim = 0;
    for (const v of ins) {
      const d = v.shape[axis]!;
      sum = isStatic(sum) && isStatic(d) ? sum + d : `${c.node}_d${axis}`;
    }
    out[axis] = sum;
    return [{ dtype: ins[0]!.dtype, shape: out }];
  },
  grad: (c) => {
    const ins = c.node.inputs as Value[];
    const axis = normAxis(attrInt(c.node.attrs, 'axis', 0), ins[0]!.rank);
    const dims = ins.map((v) => v.shape[axis]!);
    const splitSizes = dims.every(isStatic)
      ? c.g.constant(dims as number[], 'int64', [dims.length])
      : emit1('Concat', ins.map((v) => dim(v, axis)), { axis: { i: 0 } });
    const parts = emit('Split', [c.dy(0)!, splitSizes], { axis: { i: axis } }, { outShapes: ins.map((v) => v.shape.map((d, i) => (i === axis ? d : c.dy(0)!.shape[i]!))) });
    return parts;
  },
});
export const concat = (xs: Value[], axis: number): Value => emit1('Concat', xs, { axis: { i: axis } });

// dX = concat(dY_i), zeros for outputs nothing used
defineOp({
  op: 'Split',
  infer: (c) => {
    const x = c.x(0);
    const axis = normAxis(attrInt(c.attrs, 'axis', 0), x.rank);
    const sizesIn = c.inputs[1] ?? null;
    const sizes = shapeValues(sizesIn);
    const given = sizesIn && typeof sizesIn.shape[0] === 'number' ? sizesIn.shape[0] : 0;
    const n = sizes?.length ?? (given || attrInt(c.attrs, 'num_outputs', 0));
    if (!n) return c.fail('give split sizes or num_outputs');
    const d = x.shape[axis]!;
    return Array.from({ length: n }, (_, i) => {
      let di: Dim;
      if (sizes) di = sizes[i]!;
      else if (sizesIn) di = `${c.node}_d${axis}_${i}`;
      else if (isStatic(d)) {
        if (d % n) c.fail(`dim ${d} not divisible into ${n}`);
        di = d / n;
      } else di = dimDiv(d, n) ?? `${c.node}_d${axis}_${i}`;
      return { dtype: x.dtype, shape: x.shape.map((s, k) => (k === axis ? di : s)) };
    });
  },
  grad: (c) => {
    const axis = normAxis(attrInt(c.node.attrs, 'axis', 0), c.x(0).rank);
    const parts = c.node.outputs.map((y, i) => c.dy(i) ?? zerosLike(y));
    return [concat(parts, axis), null];
  },
});
/** Split along axis into pieces of the given sizes, or into n equal pieces. */
export function split(x: Value, axis: number, sizes: number[] | number): Value[] {
  if (typeof sizes === 'number') return emit('Split', [x], { axis: { i: axis }, num_outputs: { i: sizes } });
  return emit('Split', [x, x.graph.constant(sizes, 'int64', [sizes.length])], { axis: { i: axis } });
}

// ---- Slice / Pad --------------------------------------------------------------------------------

function sliceParams(c: { inputs: readonly (Value | null)[] }, rank: number) {
  const starts = constInts(c.inputs[1] ?? null);
  const ends = constInts(c.inputs[2] ?? null);
  const axes = constInts(c.inputs[3] ?? null) ?? starts?.map((_, i) => i);
  const steps = constInts(c.inputs[4] ?? null) ?? starts?.map(() => 1);
  return { starts, ends, axes: axes?.map((a) => normAxis(a, rank)), steps };
}

defineOp({
  op: 'Slice',
  infer: (c) => {
    const x = c.x(0);
    const { starts, ends, axes, steps } = sliceParams(c, x.rank);
    if (!starts || !axes || !steps) return c.fail('starts, axes and steps must be constants');
    const out: Dim[] = [...x.shape];
    axes.forEach((a, k) => {
      const d = x.shape[a]!;
      const e = ends?.[k];
      if (isStatic(d) && e !== undefined) {
        const st = steps[k]!;
        const clampS = Math.min(Math.max(starts[k]! < 0 ? starts[k]! + d : starts[k]!, 0), st > 0 ? d : d - 1);
        const clampE = Math.min(Math.max(e < 0 ? e + d : e, st > 0 ? 0 : -1), st > 0 ? d : d - 1);
        out[a] = Math.max(0, Math.ceil((clampE - clampS) / st));
      } else if (starts[k] === 0 && e !== undefined && e >= INT64_MAX && steps[k] === 1) out[a] = d;
      else out[a] = `${c.node}_d${a}`;
    });
    return [{ dtype: x.dtype, shape: out }];
  },
  // Step 1 only: dX = pad(dY) with begin = start and end = dim − start − len.
  grad: (c) => {
    const x = c.x(0);
    const dy = c.dy(0)!;
    const { starts, axes, steps } = sliceParams(c.node, x.rank);
    if (steps!.some((s) => s !== 1)) throw new ClipfitError(`Slice node '${c.node.name}': the gradient supports step 1 only`);
    const begin = new Array<number>(x.rank).fill(0);
    axes!.forEach((a, k) => {
      const d = x.shape[a]!;
      const s = starts![k]!;
      if (s < 0 && !isStatic(d)) throw new ClipfitError(`Slice node '${c.node.name}': negative start on a symbolic dim`);
      begin[a] = s < 0 ? Math.max(0, s + (d as number)) : isStatic(d) ? Math.min(s, d) : s;
    });
    const beginV = x.graph.constant(begin, 'int64', [x.rank]);
    const endV = emit1('Sub', [emit1('Sub', [shapeOf(x), shapeOf(dy)]), beginV]);
    const pads = concat([beginV, endV], 0);
    return [emit1('Pad', [dy, pads], { mode: { s: 'constant' } }, { outShapes: [x.shape] }), null, null, null, null];
  },
});
/** x[starts:ends] along axes (step 1 unless given). An end may be a runtime int64 1-vector per axis. */
export function slice(x: Value, starts: number[], ends: number[] | Value, axes: number[], steps?: number[], outShape?: Dim[]): Value {
  const g = x.graph;
  const e = Array.isArray(ends) ? g.constant(ends.map((v) => Math.min(v, INT64_MAX)), 'int64', [ends.length]) : ends;
  const ins = [x, g.constant(starts, 'int64', [starts.length]), e, g.constant(axes, 'int64', [axes.length])];
  if (steps) ins.push(g.constant(steps, 'int64', [steps.length]));
  return emit1('Slice', ins, {}, outShape ? { outShapes: [outShape] } : {});
}

// Constant-mode Pad with constant, non-negative pads: dX = slice(dY, begin, begin + dim).
defineOp({
  op: 'Pad',
  infer: (c) => {
    const x = c.x(0);
    const pads = constInts(c.x(1));
    if (!pads) return [{ dtype: x.dtype, shape: x.shape.map((_, i) => `${c.node}_d${i}`) }];
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (isStatic(d) ? d + pads[i]! + pads[i + x.rank]! : pads[i] === 0 && pads[i + x.rank] === 0 ? d : `${c.node}_d${i}`)) }];
  },
  grad: (c) => {
    const x = c.x(0);
    const pads = constInts(c.x(1));
    if (!pads || pads.some((p) => p < 0) || c.node.inputs[3])
      throw new ClipfitError(`Pad node '${c.node.name}': the gradient needs constant non-negative pads over all axes`);
    const begin = pads.slice(0, x.rank);
    const ends = x.shape.map((d, i) => (isStatic(d) ? begin[i]! + d : INT64_MAX));
    if (!allStatic(x.shape) && begin.some((b, i) => b !== 0 && !isStatic(x.shape[i]!)))
      throw new ClipfitError(`Pad node '${c.node.name}': the gradient needs static dims where padding is added`);
    const axes = x.shape.map((_, i) => i);
    return [slice(c.dy(0)!, begin, ends, axes, undefined, [...x.shape]), null, null];
  },
});
export function pad(x: Value, pads: number[], value = 0): Value {
  const g = x.graph;
  return emit1('Pad', [x, g.constant(pads, 'int64', [pads.length]), g.constant(value, x.dtype, [])], { mode: { s: 'constant' } });
}

// ---- Expand -------------------------------------------------------------------------------------

// Expand is a broadcast: dX = dY, reduced back to x's shape by the autodiff walk.
defineOp({
  op: 'Expand',
  infer: (c) => {
    const x = c.x(0);
    const target = shapeValues(c.x(1));
    if (!target) return c.fail('expand target shape must be known (a constant or Shape of a value)');
    const s = broadcastShapes(x.shape, target);
    if (!s) return c.fail(`cannot expand to [${target.join(', ')}]`);
    return [{ dtype: x.dtype, shape: s }];
  },
  grad: (c) => [c.dy(0), null],
});
export function expand(x: Value, shape: Value | readonly number[]): Value {
  const s = Array.isArray(shape) ? x.graph.constant([...shape], 'int64', [shape.length]) : (shape as Value);
  return emit1('Expand', [x, s]);
}
