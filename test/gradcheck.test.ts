import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradCheck, type GradCheckCase } from '../src/autodiff/gradcheck.js';
import * as F from '../src/ops/index.js';
import { allOps } from '../src/ops/index.js';
import { defineOp, getOp, type GradRule } from '../src/ops/registry.js';
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
    assert.ok(r.ok, r.failure);
  });
}

// The harness itself: a rule that is wrong must fail it, with a message that says where and how.
// The op's table entry is swapped for one with a broken rule, and restored after.
async function withRule(op: string, rule: (orig: GradRule) => GradRule, body: () => Promise<void>): Promise<void> {
  const orig = getOp(op);
  defineOp({ ...orig, grad: rule(orig.grad as GradRule) });
  try {
    await body();
  } finally {
    defineOp(orig);
  }
}

const expCase: GradCheckCase = { op: 'Exp', inputs: [{ name: 'a', shape: [2, 3] }], build: ([a]) => F.exp(a!) };

test('gradcheck fails a rule that is off by a factor of 2, naming the element and the values', async () => {
  await withRule('Exp', (orig) => (c) => orig(c).map((v) => v && F.mul(v, 2)), async () => {
    const r = await gradCheck(expCase);
    assert.equal(r.ok, false);
    assert.match(r.failure!, /^Exp \[float64\]: a\[\d\]: analytic (\S+) vs numeric (\S+) \(\|difference\| \S+ > tolerance \S+\)$/);
    const [, an, num] = /analytic (\S+) vs numeric (\S+)/.exec(r.failure!)!;
    assert.ok(Math.abs(Number(an) / Number(num) - 2) < 1e-6, r.failure);
  });
  assert.equal((await gradCheck(expCase)).ok, true, 'the real rule passes again');
});

test('gradcheck fails a rule that gives NaN (a NaN difference is never within a tolerance)', async () => {
  await withRule('Exp', (orig) => (c) => orig(c).map((v) => v && F.mul(v, Number.NaN)), async () => {
    const r = await gradCheck(expCase);
    assert.equal(r.ok, false);
    assert.match(r.failure!, /^Exp \[float64\]: analytic gradient a\[0\] is NaN \(numeric [\d.e-]+\): the gradient rule gives a non-finite value$/);
  });
});

test('gradcheck fails a rule that gives no gradient (zeros where the numeric gradient is not)', async () => {
  await withRule('Exp', () => () => [null], async () => {
    const r = await gradCheck(expCase);
    assert.equal(r.ok, false);
    assert.match(r.failure!, /^Exp \[float64\]: a\[\d\]: analytic 0 vs numeric [\d.e-]+ /);
  });
});

test("gradcheck fails where the numeric gradient is NaN (inputs outside the op's domain)", async () => {
  const r = await gradCheck({ op: 'Log', label: 'negative inputs', inputs: [{ name: 'a', shape: [2, 3], lo: -2, hi: -1 }], build: ([a]) => F.log(a!) });
  assert.equal(r.ok, false);
  assert.match(r.failure!, /^Log \(negative inputs\) \[float64\]: numeric gradient a\[0\] is NaN \(analytic -?[\d.e-]+\): the loss is not finite at a\[0\] ± 0\.000001; give the case inputs inside the op's domain$/);
});
