// Recomputation in the backward pass (ops/recompute.ts): the activations' intermediates are not
// kept from the forward pass, the recomputation waits for the backward pass, and the gradients are
// bit for bit those of the same function written without recomputation.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../src/autodiff/grad.js';
import { rng } from '../src/autodiff/gradcheck.js';
import type { ClipModelCfg } from '../src/models/clip/config.js';
import { Graph } from '../src/onnx/graph.js';
import type { Node, Value } from '../src/onnx/graph.js';
import * as F from '../src/ops/index.js';
import { Session } from '../src/runtime/session.js';
import { buildTrainGraph } from '../src/train/train_graph.js';

const cfg = (quickGelu: boolean) =>
  ({
    embed_dim: 8,
    quick_gelu: quickGelu,
    vision_cfg: { image_size: 16, layers: 2, width: 32, patch_size: 8, head_width: 16, mlp_ratio: 4 },
    text_cfg: { context_length: 8, vocab_size: 12, width: 16, heads: 2, layers: 2, mlp_ratio: 4 },
  }) as ClipModelCfg;

const isBackward = (n: Node) => n.name.includes('_Grad');

function consumers(g: Graph, v: Value): Node[] {
  return g.nodes.filter((n) => n.inputs.includes(v));
}

function ancestorsOf(v: Value): Set<Node> {
  const seen = new Set<Node>();
  const todo = v.producer ? [v.producer] : [];
  while (todo.length) {
    const n = todo.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const x of n.inputs) if (x?.producer) todo.push(x.producer);
  }
  return seen;
}

for (const quick of [true, false]) {
  test(`train graph (${quick ? 'QuickGELU' : 'GELU'}): the backward pass reads only each activation's input, and recomputes the rest after the gradient reaches it`, () => {
    const tg = buildTrainGraph(cfg(quick));
    const g = tg.graph;
    // Forward activation nodes: Sigmoid (QuickGELU) or Erf (GELU), outside the backward pass.
    const actOp = quick ? 'Sigmoid' : 'Erf';
    const fwd = g.nodes.filter((n) => n.op === actOp && !isBackward(n));
    assert.equal(fwd.length, 4, 'one activation per block, 2 blocks per tower');
    for (const n of fwd) {
      // Everything the activation computes from its input x, up to its output (the Mul that feeds c_proj).
      const inner = new Set<Value>(n.outputs);
      let frontier = [...n.outputs];
      while (frontier.length) {
        const next: Value[] = [];
        for (const v of frontier)
          for (const c of consumers(g, v))
            if (!isBackward(c) && (c.op === 'Mul' || c.op === 'Add'))
              for (const y of c.outputs) if (!inner.has(y) && y.shape.length === 3) (inner.add(y), next.push(y));
        frontier = next;
      }
      for (const v of inner) {
        const readers = consumers(g, v).filter(isBackward);
        assert.deepEqual(readers.map((r) => r.name), [], `${v.name} is kept for the backward pass`);
      }
    }
    const again = g.nodes.filter((n) => n.op === actOp && isBackward(n) && n.name.includes('_recompute'));
    assert.equal(again.length, 4, 'each activation is recomputed once');
    for (const n of again) {
      const up = ancestorsOf(n.outputs[0]!);
      assert.ok([...up].some((a) => a.name.includes('_Grad/gate')), `${n.name} does not wait for the backward pass`);
    }
  });
}

test('gradients through the recomputed QuickGELU and GELU equal, bit for bit, those of the same function with every value kept', async () => {
  const shape = [3, 5, 16];
  const n = shape.reduce((a, b) => a * b, 1);
  const r = rng(3);
  const x = Float32Array.from({ length: n }, () => r() * 6 - 3);
  const w = Float32Array.from({ length: n }, () => r() * 2 - 1);
  const kept = {
    quick: (v: Value) => F.mul(v, F.sigmoid(F.mul(v, 1.702))),
    gelu: (v: Value) => F.mul(F.mul(v, 0.5), F.add(F.erf(F.mul(v, Math.SQRT1_2)), 1)),
  };
  for (const [name, act] of [
    ['quick', F.quickGelu],
    ['gelu', F.gelu],
  ] as const) {
    const run = async (f: (v: Value) => Value) => {
      const g = new Graph('act');
      const xi = g.param('x', shape);
      const wi = g.input('w', 'float32', shape);
      // A product after the activation, so the backward pass reads its output (as c_proj's weight gradient does).
      const loss = F.reduceSum(F.mul(f(xi), wi));
      const [dx] = grad(loss, [xi]);
      g.output(loss, dx!);
      const s = await Session.fromGraph(g, { threads: 1 });
      const out = await s.run({ x: { dtype: 'float32', shape, data: x }, w: { dtype: 'float32', shape, data: w } });
      await s.release();
      return out[dx!.name]!.data as Float32Array;
    };
    const a = await run(act);
    const b = await run(kept[name]);
    const recomputed = (() => {
      const g = new Graph('probe');
      const xi = g.param('x', shape);
      const y = act(xi);
      return F.recomputeOf(y) !== undefined;
    })();
    assert.ok(recomputed, `${name}: the output is registered for recomputation`);
    assert.deepEqual(Array.from(a), Array.from(b), `${name}: gradients differ`);
  }
});

test("train graph: no LayerNorm's output is kept for the backward pass (x̂·γ + β is recomputed, and LayerNorm's own gradient reuses that x̂)", () => {
  const g = buildTrainGraph(cfg(true)).graph;
  const lns = g.nodes.filter((n) => n.op === 'LayerNormalization' && !isBackward(n));
  assert.equal(lns.length, 2 * 2 * 2 + 3, 'ln_1 and ln_2 per block, ln_pre, ln_post, ln_final');
  // ln_pre's output is the residual stream itself, the input of block 0's ln_1: kept as that input.
  const lnInputs = new Set(lns.map((n) => n.inputs[0]!));
  for (const n of lns.filter((n) => !lnInputs.has(n.outputs[0]!)))
    assert.deepEqual(consumers(g, n.outputs[0]!).filter(isBackward).map((c) => c.name), [], `${n.name}'s output is kept`);
  const recomputedXhat = g.nodes.filter((n) => n.op === 'Mul' && n.name.includes('_recompute') && consumers(g, n.outputs[0]!).some((c) => c.name.includes('LayerNormalization') && c.name.includes('_Grad')));
  assert.ok(recomputedXhat.length >= lns.length - 1, `LayerNorm gradients reuse the recomputed x̂ (${recomputedXhat.length})`);
});
