// Reverse-mode autodiff over the graph IR. The walk visits, in reverse emission order, only the
// nodes that lie on a path from a differentiated parameter to the loss (pruning everything else),
// asks each op's gradient rule for its input gradients, undoes broadcasting in one place and
// accumulates gradients of values used more than once. Backward nodes are named `<node>_Grad/…`,
// gradients `<param>_grad`. A forward value registered with recomputeInBackward() is recomputed
// where a gradient rule first reads it (ops/recompute.ts), instead of being kept from the forward pass.

import { ClipfitError, NoGradientError } from '../errors.js';
import { isFloat } from '../onnx/dtype.js';
import type { Graph, Node, Value } from '../onnx/graph.js';
import { identity, sum } from '../ops/elementwise.js';
import type { GradContext } from '../ops/registry.js';
import { getOp } from '../ops/registry.js';
import { expand, reshape, shapeOf, slice, zerosLike } from '../ops/shape_ops.js';
import { mul } from '../ops/elementwise.js';
import { recomputeOf } from '../ops/recompute.js';
import { unbroadcast } from './unbroadcast.js';

export interface GradOptions {
  /** Gradient of the loss to start from (default: ones, i.e. d loss / d loss = 1). */
  seed?: Value;
}

/** Values that depend differentiably on `wrt`. */
function dependents(graph: Graph, wrt: readonly Value[]): Set<Value> {
  const dep = new Set<Value>(wrt);
  for (const n of graph.nodes) {
    const def = getOp(n.op, n.name);
    if (def.grad === 'nondiff') continue;
    if (!n.inputs.some((x) => x && dep.has(x))) continue;
    for (const y of n.outputs) if (isFloat(y.dtype) && !y.stopGradient) dep.add(y);
  }
  return dep;
}

/** Nodes the loss depends on. */
function ancestors(loss: Value): Set<Node> {
  const seen = new Set<Node>();
  const stack = loss.producer ? [loss.producer] : [];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const x of n.inputs) if (x?.producer) stack.push(x.producer);
  }
  return seen;
}

/**
 * Gradients of `loss` with respect to each of `wrt` (parameters or inputs), as new values in the
 * same graph, named `<name>_grad`. Parameters not listed are frozen: no gradient flows to them and
 * branches that only they need are pruned.
 */
export function grad(loss: Value, wrt: readonly Value[], opts: GradOptions = {}): Value[] {
  const g = loss.graph;
  for (const w of wrt) if (w.graph !== g) throw new ClipfitError(`${w.name} is not in graph '${g.name}'`);
  const dep = dependents(g, wrt);
  const onPath = ancestors(loss);
  const grads = new Map<Value, Value[]>();
  const seed = opts.seed ?? (loss.rank === 0 ? g.constant(1, loss.dtype, []) : expand(g.constant(1, loss.dtype, []), shapeOf(loss)));
  grads.set(loss, [seed]);

  const total = (v: Value): Value | null => {
    const list = grads.get(v);
    if (!list || list.length === 0) return null;
    if (list.length > 1) {
      const s = g.scope(`${v.name}_accum`, () => sum(list));
      grads.set(v, [s]);
      return s;
    }
    return list[0]!;
  };

  // Recomputed forward values, made once each, gated on the gradient of the first node that reads them.
  const recomputed = new Map<Value, Value>();
  const forward = (v: Value, gate: () => Value): Value => {
    const r = recomputeOf(v);
    if (!r) return v;
    let out = recomputed.get(v);
    if (!out) {
      out = g.scope(`${v.name}_recompute`, () => r(gate(), (u) => forward(u, gate)));
      recomputed.set(v, out);
    }
    return out;
  };

  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const node = g.nodes[k]!;
    if (!onPath.has(node) || !node.outputs.some((y) => dep.has(y))) continue;
    const dys = node.outputs.map((y) => (dep.has(y) ? total(y) : null));
    if (dys.every((d) => d === null)) continue;
    const def = getOp(node.op, node.name);
    if (def.grad === 'nondiff') continue;
    const needs = (i: number): boolean => {
      const x = node.inputs[i];
      return !!x && dep.has(x);
    };
    if (!def.grad) {
      const i = node.inputs.findIndex((_, j) => needs(j));
      throw new NoGradientError(node.op, node.name, i);
    }
    const rule = def.grad;
    let gateValue: Value | null = null;
    const gate = (): Value => (gateValue ??= g.scope(`${node.name}_Grad/gate`, () => zeroAfter(dys.find((d): d is Value => d !== null)!)));
    const ctx: GradContext = {
      g,
      node,
      x: (i) => {
        const v = node.inputs[i];
        if (!v) throw new ClipfitError(`${node.op} node '${node.name}': gradient rule read missing input ${i}`);
        return forward(v, gate);
      },
      y: (i) => forward(node.outputs[i]!, gate),
      dy: (i) => dys[i] ?? null,
      needs,
    };
    const dxs = g.scope(`${node.name}_Grad`, () => rule(ctx));
    node.inputs.forEach((x, i) => {
      if (!x || !needs(i)) return;
      const dx = dxs[i];
      if (!dx) return;
      const fixed = g.scope(`${node.name}_Grad`, () => unbroadcast(dx, x));
      const list = grads.get(x) ?? [];
      list.push(fixed);
      grads.set(x, list);
    });
  }

  // Name each gradient `<name>_grad`; a value that already serves as another gradient (or is a
  // constant) gets an Identity of its own.
  const claimed = new Set<Value>();
  return wrt.map((w) => {
    let v = total(w) ?? g.scope(`${w.name}_zero`, () => zerosLike(w));
    if (claimed.has(v) || !g.rename(v, `${w.name}_grad`)) {
      const src = v;
      v = g.scope(`${w.name}_grad`, () => identity(src));
      g.rename(v, `${w.name}_grad`);
    }
    claimed.add(v);
    return v;
  });
}

/** 0·v[0,…,0] in v's float type: a zero that exists only once v does. */
function zeroAfter(v: Value): Value {
  const r = v.rank;
  const one = r === 0 ? v : reshape(slice(v, new Array(r).fill(0), new Array(r).fill(1), [...Array(r).keys()]), []);
  return mul(one, 0);
}

/** Add loss and gradients as the graph's outputs: [loss, ...grads]. */
export function withGradients(loss: Value, wrt: readonly Value[], opts: GradOptions = {}): Value[] {
  const grads = grad(loss, wrt, opts);
  loss.graph.output(loss, ...grads);
  return grads;
}
