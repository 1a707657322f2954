// Finite-difference check of gradient rules. The op under test is wrapped as
// loss = Σ f(x)·R with a fixed random R, so every output element is weighted; the analytic
// gradient from grad() is compared with central differences (L(x+h) − L(x−h)) / 2h.
// float64 is used wherever onnxruntime's CPU kernels have it; otherwise float32 with a larger h
// and a looser, stated tolerance.

import { seededRandom } from '../util/random.js';
import type { DType } from '../onnx/dtype.js';
import { Graph } from '../onnx/graph.js';
import type { Value } from '../onnx/graph.js';
import { mul, reduceSum } from '../ops/index.js';
import { Session } from '../runtime/session.js';
import type { Tensor } from '../runtime/session.js';
import { grad } from './grad.js';

export interface CheckInput {
  name: string;
  shape: number[];
  /** 'int' inputs are int64 data (indices, labels) and are not differentiated. */
  kind?: 'float' | 'int';
  /** Fixed values; default: seeded uniform in [lo, hi). */
  values?: number[];
  lo?: number;
  hi?: number;
  /** Set false to feed a float input without checking its gradient. */
  diff?: boolean;
}

export interface GradCheckCase {
  /** The registry op (or composition) whose rule this case checks. */
  op: string;
  label?: string;
  inputs: CheckInput[];
  build(xs: Value[]): Value;
}

export interface GradCheckResult {
  dtype: DType;
  maxAbsErr: number;
  maxRelErr: number;
  worst: string;
  ok: boolean;
  /**
   * Why the check failed (absent when ok): a gradient missing from the run, a non-finite analytic or
   * numeric gradient, or the element furthest outside the tolerance. Names the case, input and index.
   */
  failure?: string;
}

/** Deterministic PRNG (mulberry32), shared with the data shuffles. */
export const rng = seededRandom;

export const TOLERANCE: Record<'float64' | 'float32', { h: number; atol: number; rtol: number }> = {
  float64: { h: 1e-6, atol: 1e-7, rtol: 1e-5 },
  // float32 central differences carry O(ε/h) rounding noise: h = 1e-2 keeps it near 1e-4 relative.
  float32: { h: 1e-2, atol: 5e-3, rtol: 2e-2 },
};

async function checkAt(c: GradCheckCase, dtype: 'float64' | 'float32', seed: number): Promise<GradCheckResult> {
  const g = new Graph(`gradcheck_${c.op}`);
  const r = rng(seed);
  const xs: Value[] = [];
  const feeds: Record<string, Tensor> = {};
  const floatData = new Map<string, Float64Array>();
  for (const inp of c.inputs) {
    const n = inp.shape.reduce((a, b) => a * b, 1);
    if (inp.kind === 'int') {
      const v = g.input(inp.name, 'int64', inp.shape);
      xs.push(v);
      feeds[inp.name] = { dtype: 'int64', shape: inp.shape, data: BigInt64Array.from(inp.values!, (x) => BigInt(x)) };
      continue;
    }
    const lo = inp.lo ?? -1;
    const hi = inp.hi ?? 1;
    const vals = Float64Array.from(inp.values ?? Array.from({ length: n }, () => lo + (hi - lo) * r()));
    floatData.set(inp.name, vals);
    xs.push(inp.diff === false ? g.input(inp.name, dtype, inp.shape) : g.param(inp.name, inp.shape, dtype));
  }
  const y = c.build(xs);
  const ny = (y.shape as number[]).reduce((a, b) => a * b, 1);
  const weights = g.constant(
    dtype === 'float64' ? Float64Array.from({ length: ny }, () => r() * 2 - 1) : Float32Array.from({ length: ny }, () => r() * 2 - 1),
    dtype,
    y.shape as number[],
  );
  const loss = reduceSum(mul(y, weights));
  const wrt = xs.filter((v) => v.kind === 'param');
  const grads = grad(loss, wrt);
  g.output(loss, ...grads);
  const session = await Session.fromGraph(g, { threads: 1 });
  const toTyped = (a: Float64Array) => (dtype === 'float64' ? Float64Array.from(a) : Float32Array.from(a));
  const feedAll = (): Record<string, Tensor> => {
    const f = { ...feeds };
    for (const inp of c.inputs)
      if (inp.kind !== 'int') f[inp.name] = { dtype, shape: inp.shape, data: toTyped(floatData.get(inp.name)!) };
    return f;
  };
  const analytic = await session.run(feedAll());
  const { h, atol, rtol } = TOLERANCE[dtype];
  const what = `${c.op}${c.label ? ` (${c.label})` : ''} [${dtype}]`;
  let maxAbsErr = 0;
  let maxRelErr = 0;
  let worst = '';
  // A comparison with NaN is false, so NaN would pass a plain `err > tol` test: non-finite values and
  // missing gradients fail on their own, before any tolerance is looked at.
  let broken: string | undefined;
  let mismatch: { excess: number; text: string } | undefined;
  for (const [k, p] of wrt.entries()) {
    const data = floatData.get(p.name)!;
    const an = analytic[grads[k]!.name]?.data as Float64Array | Float32Array | undefined;
    if (!an || an.length !== data.length) {
      broken ??= `${what}: analytic gradient of '${p.name}' is missing (${an ? `${an.length} values` : 'no output'} for ${data.length} elements)`;
      continue;
    }
    for (let i = 0; i < data.length; i++) {
      const x0 = data[i]!;
      data[i] = x0 + h;
      const lp = Number((await session.run(feedAll(), {}, [loss.name]))[loss.name]!.data[0]);
      data[i] = x0 - h;
      const lm = Number((await session.run(feedAll(), {}, [loss.name]))[loss.name]!.data[0]);
      data[i] = x0;
      const num = (lp - lm) / (2 * h);
      const a = an[i]!;
      if (!Number.isFinite(a)) {
        broken ??= `${what}: analytic gradient ${p.name}[${i}] is ${a} (numeric ${num}): the gradient rule gives a non-finite value`;
        continue;
      }
      if (!Number.isFinite(num)) {
        broken ??= `${what}: numeric gradient ${p.name}[${i}] is ${num} (analytic ${a}): the loss is not finite at ${p.name}[${i}] ± ${h}; give the case inputs inside the op's domain`;
        continue;
      }
      const err = Math.abs(a - num);
      const rel = err / Math.max(Math.abs(num), 1e-12);
      if (err > maxAbsErr) {
        maxAbsErr = err;
        worst = `${p.name}[${i}]: analytic ${a} vs numeric ${num}`;
      }
      if (err > atol) maxRelErr = Math.max(maxRelErr, rel);
      const tol = atol + rtol * Math.abs(num);
      if (err > tol && (!mismatch || err / tol > mismatch.excess)) {
        mismatch = { excess: err / tol, text: `${what}: ${p.name}[${i}]: analytic ${a} vs numeric ${num} (|difference| ${err.toPrecision(3)} > tolerance ${tol.toPrecision(3)})` };
      }
    }
  }
  await session.release();
  const failure = broken ?? mismatch?.text;
  return { dtype, maxAbsErr, maxRelErr, worst, ok: failure === undefined, ...(failure !== undefined ? { failure } : {}) };
}

/** Check in float64, falling back to float32 where onnxruntime's CPU provider lacks a double kernel. */
export async function gradCheck(c: GradCheckCase, seed = 1): Promise<GradCheckResult> {
  try {
    return await checkAt(c, 'float64', seed);
  } catch (err) {
    const msg = String((err as Error).message);
    if (!/NOT_IMPLEMENTED|Could not find an implementation|not supported|type.*double|tensor\(double\)/i.test(msg)) throw err;
    return checkAt(c, 'float32', seed);
  }
}
