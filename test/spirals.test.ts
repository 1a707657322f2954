// Proof that the engine trains: an MLP built with the graph builder, differentiated by grad(),
// updated by AdamW inside the same onnxruntime session, fits the two-spirals set.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spirals, trainSpirals } from '../src/app/examples/spirals.js';

test('the spirals set is deterministic and balanced', () => {
  const a = spirals(100, 7);
  const b = spirals(100, 7);
  assert.deepEqual(a.x, b.x);
  assert.equal(a.y.filter((v) => v === 1n).length, 100);
});

test('an MLP trained with grad() and AdamW in onnxruntime separates two spirals (≥ 97 %)', async (t) => {
  const r = await trainSpirals({ points: 400 });
  t.diagnostic(`${r.steps} steps in ${r.seconds.toFixed(1)} s, loss ${r.losses[0]!.toFixed(4)} → ${r.losses.at(-1)!.toFixed(4)}, accuracy ${(r.accuracy * 100).toFixed(1)} %`);
  assert.ok(Math.abs(r.losses[0]! - Math.log(2)) < 0.2, `initial loss ${r.losses[0]} should be near ln 2`);
  assert.ok(r.losses.at(-1)! < 0.1, `final loss ${r.losses.at(-1)}`);
  assert.ok(r.accuracy >= 0.97, `training accuracy ${r.accuracy}`);
});
