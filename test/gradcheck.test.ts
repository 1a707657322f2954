import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradCheck } from '../src/autodiff/gradcheck.js';
import { allOps } from '../src/ops/index.js';
import { cases } from './gradcheck_cases.js';

test('every op with a gradient rule has a finite-difference case', () => {
  const covered = new Set(cases.map((c) => c.op));
  const missing = allOps()
    .filter((d) => typeof d.grad === 'function')
    .map((d) => d.op)
    .filter((op) => !covered.has(op));
  assert.deepEqual(missing, [], `ops with a gradient rule but no gradcheck case: ${missing.join(', ')}`);
});

for (const c of cases) {
  test(`gradcheck ${c.op}${c.label ? ` (${c.label})` : ''}`, async () => {
    const r = await gradCheck(c);
    assert.ok(r.ok, `${c.op} [${r.dtype}]: max abs err ${r.maxAbsErr} at ${r.worst}`);
  });
}
