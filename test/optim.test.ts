import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { NonFiniteError, ParamError } from '../src/errors.js';
import { Graph } from '../src/onnx/graph.js';
import { grad } from '../src/autodiff/grad.js';
import { matmul, mul, reduceSum, sub } from '../src/ops/index.js';
import { ParamStore } from '../src/runtime/params.js';
import type { StFile } from '../src/runtime/safetensors.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { Session } from '../src/runtime/session.js';
import { Adam, AdamW, SGD } from '../src/train/optim.js';
import { requireFixture } from './fixtures.js';

const SPARSE = 'token_embedding.weight';

/** The dense tensor `prefix+name` of a fixture file; the row-sparse token embedding is expanded,
 *  unlisted rows taken from `fill(row)` (a row of the dense result) or 0. */
function dense(st: StFile, prefix: string, name: string, size: number, fill?: (row: number) => Float32Array): Float32Array {
  const t = st.tensors.get(prefix + name);
  if (t) return t.data as Float32Array;
  const rows = st.tensors.get(`${prefix}${name}@rows`)!.data as BigInt64Array;
  const values = st.tensors.get(`${prefix}${name}@values`)!.data as Float32Array;
  const width = values.length / rows.length;
  const out = new Float32Array(size);
  if (fill) for (let r = 0; r < size / width; r++) out.set(fill(r), r * width);
  rows.forEach((r, i) => out.set(values.subarray(i * width, (i + 1) * width), Number(r) * width));
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

/** Worst difference between a store (or state slot) and the fixture tensors `prefix<name>`. */
function compareStore(store: ParamStore, st: StFile, prefix: string, fill: (name: string, row: number) => Float32Array | undefined): { max: number; at: string } {
  let worst = { max: 0, at: '' };
  for (const e of store.entries) {
    const width = e.shape[e.shape.length - 1] ?? 1;
    const ref = dense(st, prefix, e.name, e.size, fill(e.name, 0) ? (r) => fill(e.name, r)!.subarray(0, width) : undefined);
    const d = maxAbsDiff(store.view(e.name), ref);
    if (!(d <= worst.max)) worst = { max: d, at: e.name };
  }
  return worst;
}

test('AdamW reproduces torch 1.13 on the tiny CLIP fixture (two steps, moments, resume)', async (t) => {
  const dir = requireFixture('tiny', t);
  if (!dir) return;
  const params = await ParamStore.fromSafetensors(path.join(dir, 'model.safetensors'));
  const p0 = params.clone();
  const gradFile = await readSafetensors(path.join(dir, 'grads.safetensors'));
  const step1 = await readSafetensors(path.join(dir, 'adamw_step1.safetensors'));
  const step2 = await readSafetensors(path.join(dir, 'step2.safetensors'));
  assert.equal(params.size, 2_861_489);

  const grads1 = ParamStore.fromShapes(params.entries);
  const grads2 = ParamStore.fromShapes(params.entries);
  for (const e of params.entries) {
    grads1.set(e.name, dense(gradFile, 'grad.', e.name, e.size));
    grads2.set(e.name, dense(step2, 'grad2.', e.name, e.size));
  }
  const opts = { lr: 1e-3, betas: [0.9, 0.98] as const, eps: 1e-6, weightDecay: 0.2 };
  const opt = new AdamW(params, opts);

  // Unlisted token-embedding rows: weight decay only, c = float32(1 − lr·wd), applied once per step.
  const c = Math.fround(1 - 1e-3 * 0.2);
  const width = params.entry(SPARSE).shape[1]!;
  const p0Row = (r: number) => p0.view(SPARSE).subarray(r * width, (r + 1) * width);
  const decayed = (times: number) => (name: string, r: number) => {
    if (name !== SPARSE) return undefined;
    const row = Float32Array.from(p0Row(r));
    for (let k = 0; k < times; k++) for (let i = 0; i < row.length; i++) row[i] = Math.fround(row[i]! * c);
    return row;
  };
  const zero = () => undefined;

  const r1 = await opt.step(params, grads1);
  assert.equal(r1.step, 1);
  const d1 = compareStore(params, step1, 'adamw1.', decayed(1));
  const dm = compareStore(opt.state['exp_avg']!, step1, 'adamw1_exp_avg.', zero);
  const dv = compareStore(opt.state['exp_avg_sq']!, step1, 'adamw1_exp_avg_sq.', zero);
  t.diagnostic(`step 1 max |diff|: params ${d1.max} (${d1.at}), exp_avg ${dm.max} (${dm.at}), exp_avg_sq ${dv.max} (${dv.at})`);
  assert.ok(d1.max <= 1e-6, `adamw1 max diff ${d1.max} at ${d1.at}`);
  assert.ok(dm.max <= 1e-6, `exp_avg max diff ${dm.max} at ${dm.at}`);
  assert.ok(dv.max <= 1e-6, `exp_avg_sq max diff ${dv.max} at ${dv.at}`);

  // Save the optimizer after step 1 and a copy of the parameters, to resume from later.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clipfit-optim-'));
  try {
    const stateFile = path.join(tmp, 'optimizer.safetensors');
    await opt.save(stateFile);
    const resumed = params.clone();

    await opt.step(params, grads2);
    const d2 = compareStore(params, step2, 'adamw2.', decayed(2));
    t.diagnostic(`step 2 max |diff|: params ${d2.max} (${d2.at})`);
    assert.ok(d2.max <= 1e-6, `adamw2 max diff ${d2.max} at ${d2.at}`);

    const opt2 = new AdamW(resumed, opts);
    await opt2.load(stateFile);
    assert.equal(opt2.stepCount, 1);
    await opt2.step(resumed, grads2);
    assert.equal(maxAbsDiff(resumed.data, params.data), 0, 'resumed run differs from the uninterrupted one');
    assert.equal(maxAbsDiff(opt2.state['exp_avg_sq']!.data, opt.state['exp_avg_sq']!.data), 0);
    await opt2.dispose();

    // A state file does not load into an optimizer over other parameters.
    const other = new AdamW(ParamStore.fromShapes([{ name: 'w', shape: [2] }]), opts);
    await assert.rejects(other.load(stateFile), ParamError);
  } finally {
    await rm(tmp, { recursive: true, force: true });
    await opt.dispose();
  }
});

// ---- hand-computed cases (torch formulas) ---------------------------------------------------------

function store(values: Record<string, number[]>, shapes: Record<string, number[]> = {}): ParamStore {
  const s = ParamStore.fromShapes(Object.entries(values).map(([name, v]) => ({ name, shape: shapes[name] ?? [v.length] })));
  for (const [name, v] of Object.entries(values)) s.set(name, v);
  return s;
}
const f32 = (xs: number[]) => Float32Array.from(xs);
function assertClose(actual: Float32Array, expected: number[], tol: number, what: string): void {
  const d = maxAbsDiff(actual, f32(expected));
  assert.ok(d <= tol, `${what}: got [${Array.from(actual)}], expected [${expected}] (max diff ${d})`);
}

test('SGD with momentum and dampening matches torch (exact, hand-computed)', async () => {
  // lr 0.25, momentum 0.5, dampening 0.5, wd 0.5. Step 1: d = g + wd·p = [1, 0]; buf = d (torch
  // clones on the first step, no dampening); p = p − lr·buf = [0.75, −2].
  // Step 2: d = [0.25, −0.5] + 0.5·[0.75, −2] = [0.625, −1.5]; buf = 0.5·[1, 0] + 0.5·d =
  // [0.8125, −0.75]; p = [0.75 − 0.203125, −2 + 0.1875] = [0.546875, −1.8125].
  const p = store({ w: [1, -2] });
  const opt = new SGD(p, { lr: 0.25, momentum: 0.5, dampening: 0.5, weightDecay: 0.5 });
  await opt.step(p, { w: f32([0.5, 1]) });
  assert.deepEqual(Array.from(p.view('w')), [0.75, -2]);
  assert.deepEqual(Array.from(opt.state['momentum_buffer']!.view('w')), [1, 0]);
  await opt.step(p, { w: f32([0.25, -0.5]) });
  assert.deepEqual(Array.from(p.view('w')), [0.546875, -1.8125]);
  assert.deepEqual(Array.from(opt.state['momentum_buffer']!.view('w')), [0.8125, -0.75]);
  await opt.dispose();
});

test('SGD Nesterov and plain SGD match torch (exact, hand-computed)', async () => {
  // Nesterov, momentum 0.5, lr 0.25: step 1 buf = 1, d = 1 + 0.5·1 = 1.5, p = 1 − 0.375 = 0.625;
  // step 2 buf = 0.5·1 + 0.5 = 1, d = 0.5 + 0.5·1 = 1, p = 0.625 − 0.25 = 0.375.
  const p = store({ w: [1] });
  const opt = new SGD(p, { lr: 0.25, momentum: 0.5, nesterov: true });
  await opt.step(p, { w: f32([1]) });
  assert.deepEqual(Array.from(p.view('w')), [0.625]);
  await opt.step(p, { w: f32([0.5]) });
  assert.deepEqual(Array.from(p.view('w')), [0.375]);
  await opt.dispose();
  // No momentum: p − lr·g, and no state.
  const q = store({ w: [1, 2] });
  const plain = new SGD(q, { lr: 0.5 });
  await plain.step(q, { w: f32([2, -4]) });
  assert.deepEqual(Array.from(q.view('w')), [0, 4]);
  assert.deepEqual(Object.keys(plain.state), []);
  await plain.dispose();
});

/** torch Adam / AdamW for one tensor, in double (the documented algorithm); lr may vary per step. */
function adamRef(p: number[], grads: number[][], o: { lr: number | number[]; b1: number; b2: number; eps: number; wd: number; decoupled: boolean }): number[] {
  const x = [...p];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g0, k) => {
    const t = k + 1;
    const lr = typeof o.lr === 'number' ? o.lr : o.lr[k]!;
    for (let i = 0; i < x.length; i++) {
      let g = g0[i]!;
      if (o.decoupled) x[i]! *= 1 - lr * o.wd;
      else g += o.wd * x[i]!;
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g * g;
      const mhat = m[i]! / (1 - o.b1 ** t);
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      x[i] = x[i]! - lr * mhat / denom;
    }
  });
  return x;
}

test('Adam (L2 decay in the gradient) matches the torch formulas over three steps', async () => {
  const p0 = [1, -2, 0.5, 0];
  const gs = [[0.1, 0.2, -0.3, 0.05], [-0.2, 0.1, 0.3, 0], [0.05, -0.4, 0.1, 1e-3]];
  const p = store({ w: p0 });
  const opt = new Adam(p, { lr: 0.1, betas: [0.8, 0.95], eps: 1e-3, weightDecay: 0.3 });
  for (const g of gs) await opt.step(p, { w: f32(g) });
  assertClose(p.view('w'), adamRef(p0, gs, { lr: 0.1, b1: 0.8, b2: 0.95, eps: 1e-3, wd: 0.3, decoupled: false }), 2e-6, 'Adam');
  // and the same settings as AdamW give a different (decoupled) result
  const q = store({ w: p0 });
  const optW = new AdamW(q, { lr: 0.1, betas: [0.8, 0.95], eps: 1e-3, weightDecay: 0.3 });
  for (const g of gs) await optW.step(q, { w: f32(g) });
  assertClose(q.view('w'), adamRef(p0, gs, { lr: 0.1, b1: 0.8, b2: 0.95, eps: 1e-3, wd: 0.3, decoupled: true }), 2e-6, 'AdamW');
  await opt.dispose();
  await optW.dispose();
});

test('parameter groups: own lr and weight decay per group, frozen parameters untouched, setLr', async () => {
  const init = { a: [1, -1], b: [0.5, 2, -3], frozen: [7, 8] };
  const p = store(init);
  const opt = new AdamW(p, {
    lr: 0.01,
    betas: [0.9, 0.99],
    eps: 1e-8,
    groups: [
      { params: ['a'], lr: 0.1, weightDecay: 0.5 },
      { params: ['b'], weightDecay: 0 },
    ],
  });
  const ga = [[0.3, -0.1], [0.2, 0.2]];
  const gb = [[1, -1, 0.5], [0.1, 0.2, -0.3]];
  await opt.step(p, { a: f32(ga[0]!), b: f32(gb[0]!) });
  opt.setLr(1, 0.05); // a scheduler changing group 1 only, before step 2
  await opt.step(p, { a: f32(ga[1]!), b: f32(gb[1]!) });
  const common = { b1: 0.9, b2: 0.99, eps: 1e-8, decoupled: true };
  assertClose(p.view('a'), adamRef(init.a, ga, { ...common, lr: 0.1, wd: 0.5 }), 1e-6, 'group 0');
  // group 1: step 1 at lr 0.01, step 2 at lr 0.05
  const b2 = adamRef(init.b, gb, { ...common, lr: [0.01, 0.05], wd: 0 });
  assertClose(p.view('b'), b2, 1e-6, 'group 1');
  assert.deepEqual(Array.from(p.view('frozen')), [7, 8]);
  assert.equal(opt.state['exp_avg']!.has('frozen'), false);
  assert.throws(() => new AdamW(p, { groups: [{ params: ['a'] }, { params: ['a'] }] }), ParamError);
  assert.throws(() => new AdamW(p, { groups: [{ params: ['nope'] }] }), /'nope'/);
  await opt.dispose();
});

test('gradient clipping by global norm (torch clip_grad_norm_) inside the update graph', async () => {
  // ‖(3, 4)‖ = 5, ‖12‖ = 12, total = 13. maxNorm 6.5: coef = 6.5/(13 + 1e-6) ≈ 0.5.
  const p = store({ a: [0, 0], b: [1] });
  const opt = new SGD(p, { lr: 1, maxGradNorm: 6.5 });
  const r = await opt.step(p, { a: f32([3, 4]), b: f32([12]) });
  assert.ok(Math.abs(r.gradNorm! - 13) < 1e-6, `grad norm ${r.gradNorm}`);
  const coef = 6.5 / (13 + 1e-6);
  assertClose(p.view('a'), [-3 * coef, -4 * coef], 1e-6, 'clipped a');
  assertClose(p.view('b'), [1 - 12 * coef], 1e-6, 'clipped b');
  // Under the limit the coefficient clamps to 1: a plain SGD step.
  const q = store({ a: [0, 0], b: [1] });
  const loose = new SGD(q, { lr: 1, maxGradNorm: 100 });
  await loose.step(q, { a: f32([3, 4]), b: f32([12]) });
  assert.deepEqual(Array.from(q.data), [-3, -4, -11]);
  await opt.dispose();
  await loose.dispose();
});

for (const maxGradNorm of [undefined, 1]) {
  test(`checkFinite${maxGradNorm ? ' with clipping' : ''}: a NaN or Inf gradient throws NonFiniteError naming the parameter; nothing changes`, async () => {
    const p = store({ a: [1, 2], b: [3, 4, 5] });
    const opt = new AdamW(p, { lr: 0.1, checkFinite: true, maxGradNorm });
    const before = p.data.slice();
    for (const bad of [NaN, Infinity, -Infinity]) {
      await assert.rejects(opt.step(p, { a: f32([0.1, 0.2]), b: f32([0, 0, bad]) }), (err: unknown) => {
        assert.ok(err instanceof NonFiniteError);
        assert.equal(err.tensor, 'b_grad');
        assert.equal(err.index, 2);
        assert.ok(Object.is(err.value, bad));
        return true;
      });
    }
    assert.deepEqual(p.data, before);
    assert.equal(opt.stepCount, 0);
    assert.deepEqual(Array.from(opt.state['exp_avg']!.data), [0, 0, 0, 0, 0]);
    const r = await opt.step(p, { a: f32([0.1, 0.2]), b: f32([0, 0, 1]) });
    assert.equal(r.step, 1);
    assert.notDeepEqual(p.data, before);
    await assert.rejects(opt.step(p, { a: f32([0.1, 0.2]) }), /'b'/);
    await opt.dispose();
  });
}

test('the update fused into a training graph equals the standalone step', async () => {
  // loss = Σ (x·W − y)², W [3, 2]; the fused graph outputs the loss and the new W and moments.
  const x = { dtype: 'float32' as const, shape: [4, 3], data: f32([1, 2, 0, -1, 0.5, 1, 0, 1, -2, 3, 1, 0]) };
  const y = { dtype: 'float32' as const, shape: [4, 2], data: f32([1, 0, 0, 1, 1, 1, -1, 2]) };
  const w0 = [0.1, -0.2, 0.3, 0.05, -0.1, 0.2];
  const build = () => {
    const g = new Graph('fit');
    const W = g.param('W', [3, 2]);
    const xi = g.input('x', 'float32', [4, 3]);
    const yi = g.input('y', 'float32', [4, 2]);
    const r = sub(matmul(xi, W), yi);
    const loss = reduceSum(mul(r, r));
    g.rename(loss, 'loss');
    return { g, W, loss };
  };
  const opts = { lr: 0.05, weightDecay: 0.1, maxGradNorm: 2 };

  const fused = build();
  const [gW] = grad(fused.loss, [fused.W]);
  fused.g.output(fused.loss);
  const pf = store({ W: w0 }, { W: [3, 2] });
  assert.throws(() => new AdamW(store({ W: w0 }), opts).build(fused.g, [fused.W], [gW!]), /'W'.*shape/);
  const optF = new AdamW(pf, opts);
  const upd = optF.build(fused.g, [fused.W], [gW!]);
  const sF = await Session.fromGraph(fused.g);

  const plain = build();
  const [gW2] = grad(plain.loss, [plain.W]);
  plain.g.output(plain.loss, gW2!);
  const sP = await Session.fromGraph(plain.g);
  const pp = store({ W: w0 }, { W: [3, 2] });
  const optP = new AdamW(pp, opts);

  for (let k = 0; k < 3; k++) {
    const rf = await optF.runStep(sF, upd, pf, { x, y });
    const out = await sP.run({ ...pp.feeds(), x, y });
    const rp = await optP.step(pp, { W: out[gW2!.name]!.data as Float32Array });
    assert.equal((rf.outputs['loss']!.data as Float32Array)[0], (out['loss']!.data as Float32Array)[0]);
    assert.equal(rf.gradNorm, rp.gradNorm);
    assert.deepEqual(pf.data, pp.data);
  }
  await Promise.all([sF.release(), sP.release(), optP.dispose()]);
});

test('in place, the update writes into the live stores and gives the same bits as double-buffered', async (t) => {
  const dir = requireFixture('tiny', t);
  if (!dir) return;
  const a = await ParamStore.fromSafetensors(path.join(dir, 'model.safetensors'));
  const b = a.clone();
  const gradFile = await readSafetensors(path.join(dir, 'grads.safetensors'));
  const grads = ParamStore.fromShapes(a.entries);
  for (const e of a.entries) grads.set(e.name, dense(gradFile, 'grad.', e.name, e.size));
  const opts = { lr: 1e-3, betas: [0.9, 0.98] as const, eps: 1e-6, weightDecay: 0.2 };
  const buffered = new AdamW(a, opts);
  const inPlace = new AdamW(b, { ...opts, inPlace: true });
  const before = b.data;
  for (let k = 0; k < 2; k++) {
    await buffered.step(a, grads);
    await inPlace.step(b, grads);
  }
  assert.equal(b.data, before, 'the same buffer, updated in place');
  assert.equal(maxAbsDiff(a.data, b.data), 0);
  assert.equal(maxAbsDiff(buffered.state['exp_avg_sq']!.data, inPlace.state['exp_avg_sq']!.data), 0);
  await buffered.dispose();
  await inPlace.dispose();
});
