import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ParamError } from '../src/errors.js';
import { Graph } from '../src/onnx/graph.js';
import { add, matmul } from '../src/ops/index.js';
import { ParamStore } from '../src/runtime/params.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { Session } from '../src/runtime/session.js';
import { requireFixture } from './fixtures.js';

test('fromShapes packs parameters back to back; views alias the flat buffer', () => {
  const s = ParamStore.fromShapes([
    { name: 'w', shape: [2, 3] },
    ['b', [3]],
    { name: 'scale', shape: [] },
  ]);
  assert.deepEqual(
    s.entries.map((e) => [e.name, e.offset, e.size]),
    [['w', 0, 6], ['b', 6, 3], ['scale', 9, 1]],
  );
  assert.equal(s.size, 10);
  assert.ok(s.has('b') && !s.has('nope'));
  s.set('b', [1, 2, 3]);
  s.view('scale')[0] = 5;
  assert.deepEqual(Array.from(s.data), [0, 0, 0, 0, 0, 0, 1, 2, 3, 5]);
  s.view('w').fill(7);
  assert.equal(s.data[5], 7);
  assert.deepEqual(s.tensor('w').shape, [2, 3]);
  assert.throws(() => ParamStore.fromShapes([['a', [1]], ['a', [2]]]), /'a'.*twice/);
});

test('set checks the shape and names the key; unknown names are errors', () => {
  const s = ParamStore.fromShapes([['visual.proj', [4, 2]]]);
  assert.throws(() => s.set('visual.proj', new Float32Array(8), [2, 4]), (e: unknown) => {
    assert.ok(e instanceof ParamError);
    assert.match(e.message, /'visual\.proj'.*\[2,4\].*\[4,2\]/);
    return true;
  });
  assert.throws(() => s.set('visual.proj', [1, 2, 3]), /'visual\.proj'.*3 elements/);
  assert.throws(() => s.view('missing'), /'missing'/);
});

test('clone is deep, copyFrom and swap need the same layout, swap exchanges buffers', () => {
  const a = ParamStore.fromShapes([['x', [2]], ['y', [1]]]);
  a.set('x', [1, 2]);
  const b = a.clone();
  b.set('y', [9]);
  assert.equal(a.view('y')[0], 0);
  const c = ParamStore.fromShapes([['x', [2]], ['y', [1]]]);
  c.copyFrom(b);
  assert.deepEqual(Array.from(c.data), [1, 2, 9]);
  const bufA = a.data;
  a.swap(c);
  assert.equal(c.data, bufA);
  assert.deepEqual(Array.from(a.view('y')), [9]);
  const other = ParamStore.fromShapes([['x', [2]], ['z', [1]]]);
  assert.throws(() => a.copyFrom(other), /'y'/);
  assert.throws(() => a.swap(ParamStore.fromShapes([['x', [3]], ['y', [1]]])), /'x'/);
});

test('fromGraph follows graph.params; feeds() run a session straight from the store', async () => {
  const g = new Graph('affine');
  const x = g.input('x', 'float32', [1, 2]);
  const w = g.param('w', [2, 2]);
  const b = g.param('b', [2]);
  const y = add(matmul(x, w), b);
  g.rename(y, 'y');
  g.output(y);
  const s = ParamStore.fromGraph(g);
  assert.deepEqual(s.names, ['w', 'b']);
  s.set('w', [1, 2, 3, 4]);
  s.set('b', [10, 20]);
  const sess = await Session.fromGraph(g);
  const out = await sess.run({ ...s.feeds(), x: { dtype: 'float32', shape: [1, 2], data: Float32Array.from([1, 1]) } });
  assert.deepEqual(Array.from(out['y']!.data as Float32Array), [14, 26]);
  await sess.release();
});

test('the tiny CLIP checkpoint loads in file order and round-trips through safetensors', async (t) => {
  const file = requireFixture('tiny/model.safetensors', t);
  if (!file) return;
  const s = await ParamStore.fromSafetensors(file);
  // README: 62 tensors, 2,861,489 parameters, 2,371,584 of them in token_embedding.weight.
  assert.equal(s.entries.length, 62);
  assert.equal(s.size, 2_861_489);
  assert.equal(s.entry('token_embedding.weight').size, 2_371_584);
  assert.deepEqual(s.entries.slice(0, 3).map((e) => e.name), ['positional_embedding', 'text_projection', 'logit_scale']);
  assert.deepEqual(s.entry('logit_scale').shape, []);
  // logit_scale as stored beside the forward pass in forward.safetensors.
  const fwd = await readSafetensors(requireFixture('tiny/forward.safetensors')!);
  assert.equal(s.view('logit_scale')[0], (fwd.tensors.get('logit_scale')!.data as Float32Array)[0]);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'clipfit-params-'));
  try {
    const out = path.join(dir, 'p.safetensors');
    await s.toSafetensors(out, { note: 'test' });
    const back = await ParamStore.fromSafetensors(out);
    assert.ok(back.sameLayout(s));
    assert.deepEqual(back.data, s.data);
    assert.equal((await readSafetensors(out)).metadata['note'], 'test');
    // load() into a store with another layout names the offending key
    const small = ParamStore.fromShapes([['logit_scale', [1]]]);
    const written = await readSafetensors(out);
    assert.throws(() => small.load(written.tensors, { file: out }), /'positional_embedding'.*not a parameter/);
    small.load(new Map([['logit_scale', { dtype: 'F32', shape: [1], data: Float32Array.from([3]) }]]));
    assert.equal(small.view('logit_scale')[0], 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
