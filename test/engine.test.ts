// The builder, shape inference, autodiff walk and runtime, on small graphs with hand-computed values.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../src/autodiff/grad.js';
import { NoGradientError, RuntimeError, ShapeError, UnknownOpError } from '../src/errors.js';
import { toModelProto } from '../src/onnx/encode.js';
import { Graph } from '../src/onnx/graph.js';
import * as F from '../src/ops/index.js';
import { emit1 } from '../src/ops/index.js';
import { defineOp } from '../src/ops/registry.js';
import { Session } from '../src/runtime/session.js';

const f32 = (shape: number[], data: number[]) => ({ dtype: 'float32' as const, shape, data: Float32Array.from(data) });

test('shape inference follows symbolic dims through reshape, matmul and broadcasting', () => {
  const g = new Graph();
  const x = g.input('x', 'float32', ['batch', 50, 768]);
  const flat = F.reshape(x, [-1, 768]);
  assert.deepEqual(flat.shape, ['50*batch', 768]);
  const back = F.reshape(flat, [-1, 50, 768]);
  assert.deepEqual(back.shape, ['batch', 50, 768]);
  const w = g.param('w', [768, 10]);
  assert.deepEqual(F.matmul(back, w).shape, ['batch', 50, 10]);
  const t = g.input('t', 'int64', ['batch', 'seq']);
  assert.deepEqual(F.unsqueeze(t, [2]).shape, ['batch', 'seq', 1]);
  assert.deepEqual(F.add(g.param('b', [10]), F.matmul(back, w)).shape, ['batch', 50, 10]);
  assert.deepEqual(F.reduceSum(F.matmul(back, w), [1]).shape, ['batch', 10]);
});

test('a shape mismatch names the op, the node and the shapes', () => {
  const g = new Graph();
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4, 5]);
  assert.throws(() => F.matmul(a, b), (e: unknown) => {
    assert.ok(e instanceof ShapeError);
    assert.match(e.message, /MatMul node 'MatMul': inner dims differ: 3 vs 4/);
    assert.match(e.message, /a\[2, 3\]:float32, b\[4, 5\]:float32/);
    return true;
  });
  assert.throws(() => F.add(a, b), /Add node 'Add.*': shapes do not broadcast/);
  assert.throws(() => F.reshape(a, [4, 2]), /cannot reshape .* 6 elements to \[4, 2\]/);
});

test('an unknown op is a typed error naming it', () => {
  const g = new Graph();
  const a = g.input('a', 'float32', [2]);
  assert.throws(() => emit1('NoSuchOp', [a]), (e: unknown) => e instanceof UnknownOpError && /NoSuchOp/.test(e.message));
});

test('differentiating through an op without a rule names the op and node', () => {
  defineOp({ op: 'Floor', infer: (c) => [{ dtype: c.x(0).dtype, shape: c.x(0).shape }] });
  const g = new Graph();
  const p = g.param('p', [3]);
  const y = F.reduceSum(emit1('Floor', [F.mul(p, 2)], {}, { name: 'my_floor' }));
  assert.throws(() => grad(y, [p]), (e: unknown) => {
    assert.ok(e instanceof NoGradientError);
    assert.equal(e.op, 'Floor');
    assert.equal(e.node, 'my_floor');
    return true;
  });
  // The same graph is fine when p is frozen (the branch is pruned) or the gradient is stopped.
  const q = g.param('q', [3]);
  const z = F.add(y, F.reduceSum(F.mul(q, q)));
  assert.doesNotThrow(() => grad(z, [q]));
  const g2 = new Graph();
  const p2 = g2.param('p', [3]);
  const z2 = F.add(F.reduceSum(F.stopGradient(emit1('Floor', [p2]))), F.reduceSum(F.mul(p2, p2)));
  assert.doesNotThrow(() => grad(z2, [p2]));
});

test('fan-out accumulates, frozen parameters get nothing, stop-gradient blocks, dead branches are pruned', async () => {
  // L = Σ (p·p + p·s + stop(p)·3)  with s frozen: dL/dp = 2p + s (stop(p)·3 contributes nothing).
  const g = new Graph();
  const p = g.param('p', [3]);
  const s = g.param('s', [3]);
  const unused = g.param('unused', [3]);
  const dead = F.exp(F.mul(p, 100)); // on no path to the loss
  void dead;
  const loss = F.reduceSum(F.add(F.add(F.mul(p, p), F.mul(p, s)), F.mul(F.stopGradient(p), 3)));
  const [gp, gu] = grad(loss, [p, unused]);
  assert.equal(gp!.name, 'p_grad');
  g.output(loss, gp!, gu!);
  const opTypes = toModelProto(g).graph!.node!.map((n) => n.opType);
  assert.ok(!opTypes.includes('Exp'), 'the dead Exp branch is not encoded');
  assert.ok(opTypes.includes('Mul'));
  const sess = await Session.fromGraph(g, { threads: 1 });
  const out = await sess.run({ p: f32([3], [1, 2, 3]), s: f32([3], [10, 20, 30]), unused: f32([3], [0, 0, 0]) });
  assert.deepEqual(Array.from(out['p_grad']!.data as Float32Array), [12, 24, 36]);
  assert.deepEqual(Array.from(out['unused_grad']!.data as Float32Array), [0, 0, 0]);
  assert.equal((out[loss.name]!.data as Float32Array)[0], 1 + 4 + 9 + 10 + 40 + 90 + 18);
});

test('broadcast gradients are unbroadcast to the parameter shape', async () => {
  // y = x + b with x [2,3] and b [3]: dΣy/db = [2, 2, 2]; y = x·c with c [2,1]: dΣ/dc = row sums of x.
  const g = new Graph();
  const x = g.input('x', 'float32', [2, 3]);
  const b = g.param('b', [3]);
  const c = g.param('c', [2, 1]);
  const loss = F.reduceSum(F.mul(F.add(x, b), c));
  g.output(loss, ...grad(loss, [b, c]));
  const sess = await Session.fromGraph(g, { threads: 1 });
  const out = await sess.run({ x: f32([2, 3], [1, 2, 3, 4, 5, 6]), b: f32([3], [0, 0, 0]), c: f32([2, 1], [1, 2]) });
  assert.deepEqual(Array.from(out['b_grad']!.data as Float32Array), [3, 3, 3]);
  assert.deepEqual(Array.from(out['c_grad']!.data as Float32Array), [6, 15]);
  assert.deepEqual(out['c_grad']!.shape, [2, 1]);
});

test('one session serves a symbolic batch of any size; outputs can be written into caller buffers', async () => {
  const g = new Graph();
  const x = g.input('x', 'float32', ['batch', 2]);
  const w = g.param('w', [2, 2]);
  const y = F.matmul(x, w);
  g.output(y);
  const sess = await Session.fromGraph(g, { threads: 1 });
  const wv = f32([2, 2], [1, 2, 3, 4]);
  const one = await sess.run({ x: f32([1, 2], [1, 1]), w: wv });
  assert.deepEqual(Array.from(one[y.name]!.data as Float32Array), [4, 6]);
  const buf = new Float32Array(6);
  await sess.run({ x: f32([3, 2], [1, 0, 0, 1, 1, 1]), w: wv }, { [y.name]: { dtype: 'float32', shape: [3, 2], data: buf } });
  assert.deepEqual(Array.from(buf), [1, 2, 3, 4, 4, 6]);
});

test('a runtime failure is a RuntimeError naming the graph', async () => {
  const g = new Graph('bad_feed');
  const x = g.input('x', 'float32', [2]);
  g.output(F.exp(x));
  const sess = await Session.fromGraph(g, { threads: 1 });
  await assert.rejects(sess.run({ x: f32([3], [1, 2, 3]) }), (e: unknown) => e instanceof RuntimeError && /bad_feed/.test(e.message));
});

test('gradients flow through the attention-style reshape/transpose/split chain with symbolic batch', async () => {
  // y = Σ split(transpose(reshape(x)))[0]²: the gradient is 2x on the first third, 0 elsewhere.
  const g = new Graph();
  const x = g.param('x', [2, 6]);
  const h = F.transpose(F.reshape(x, [0, 3, 2]), [1, 0, 2]); // [3, 2, 2]
  const [first] = F.split(h, 0, 3);
  const loss = F.reduceSum(F.mul(first!, first!));
  g.output(loss, ...grad(loss, [x]));
  const sess = await Session.fromGraph(g, { threads: 1 });
  const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const out = await sess.run({ x: f32([2, 6], xs) });
  assert.deepEqual(Array.from(out['x_grad']!.data as Float32Array), [2, 4, 0, 0, 0, 0, 14, 16, 0, 0, 0, 0]);
});
