// The graph IR: values with a dtype and a (partly symbolic) shape, nodes, and a Graph that
// owns them. Parameters are graph inputs, not initializers, so one onnxruntime session serves
// every training step; constants are initializers.

import { ClipfitError } from '../errors.js';
import type { DType, TypedArray } from './dtype.js';
import { typedArrayFrom } from './dtype.js';
import type { Dim, Shape } from './dims.js';
import { allStatic, numel, shapeToString } from './dims.js';

export type ValueKind = 'input' | 'param' | 'const' | 'node';

export class Value {
  /** Set on values made by stopGradient(): the autodiff walk does not pass through. */
  stopGradient = false;
  constructor(
    readonly graph: Graph,
    public name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly kind: ValueKind,
    readonly producer: Node | null = null,
    readonly data: TypedArray | null = null,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  toString(): string {
    return `${this.name}:${this.dtype}${shapeToString(this.shape)}`;
  }
}

export type Attr =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { floats: number[] }
  | { s: string }
  | { t: { dtype: DType; shape: number[]; data: TypedArray } };

export type Attrs = Record<string, Attr>;

export interface Node {
  readonly name: string;
  readonly op: string;
  readonly domain: string;
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly attrs: Attrs;
}

export class Graph {
  readonly inputs: Value[] = [];
  readonly params: Value[] = [];
  readonly consts: Value[] = [];
  readonly nodes: Node[] = [];
  readonly outputs: Value[] = [];
  private readonly names = new Set<string>();
  private readonly scopes: string[] = [];
  private constCache = new Map<string, Value>();

  constructor(readonly name = 'graph') {}

  /** A unique name: `base`, else `base_1`, `base_2`, … (inside the current name scope). */
  uniqueName(base: string): string {
    const scoped = this.scopes.length ? `${this.scopes.join('/')}/${base}` : base;
    let name = scoped;
    for (let k = 1; this.names.has(name); k++) name = `${scoped}_${k}`;
    this.names.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new ClipfitError(`graph '${this.name}': the name '${name}' is already taken`);
    this.names.add(name);
    return name;
  }

  /** Run fn with every new name prefixed by `scope/`. */
  scope<T>(scope: string, fn: () => T): T {
    this.scopes.push(scope);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /** A data input fed at run time (images, token ids, labels). */
  input(name: string, dtype: DType, shape: Shape): Value {
    const v = new Value(this, this.claim(name), dtype, shape, 'input');
    this.inputs.push(v);
    return v;
  }

  /** A trainable (or frozen) parameter, fed as a graph input so one session serves every step. */
  param(name: string, shape: readonly number[], dtype: DType = 'float32'): Value {
    const v = new Value(this, this.claim(name), dtype, shape, 'param');
    this.params.push(v);
    return v;
  }

  /** A constant, stored as an initializer. Small scalar constants are shared. */
  constant(data: TypedArray | number[] | number, dtype: DType = 'float32', shape?: readonly number[]): Value {
    const arr = typeof data === 'number' ? [data] : data;
    const typed = Array.isArray(arr) ? typedArrayFrom(dtype, arr) : (arr as TypedArray);
    const s = shape ?? (typeof data === 'number' ? [] : [typed.length]);
    if (numel(s) !== typed.length)
      throw new ClipfitError(`constant of shape ${shapeToString(s)} given ${typed.length} elements`);
    const small = typed.length <= 16;
    const key = small ? `${dtype}|${s.join(',')}|${Array.from(typed as ArrayLike<unknown>, String).join(',')}` : '';
    if (small) {
      const hit = this.constCache.get(key);
      if (hit) return hit;
    }
    const v = new Value(this, this.uniqueName('const'), dtype, s, 'const', null, typed);
    this.consts.push(v);
    if (small) this.constCache.set(key, v);
    return v;
  }

  /** Append a node whose output types are already known (the op registry calls this).
   *  `name`, when given, must come from uniqueName(). */
  addNode(
    op: string,
    inputs: readonly (Value | null)[],
    attrs: Attrs,
    outs: readonly { dtype: DType; shape: Shape }[],
    domain = '',
    name?: string,
  ): Value[] {
    for (const x of inputs)
      if (x && x.graph !== this)
        throw new ClipfitError(`graph '${this.name}': input ${x.name} of ${op} belongs to graph '${x.graph.name}'`);
    const nodeName = name ?? this.uniqueName(op);
    const outputs: Value[] = [];
    const node: Node = { name: nodeName, op, domain, inputs, outputs, attrs };
    outs.forEach((o, i) => {
      outputs.push(new Value(this, this.uniqueName(`${nodeName}_out${i}`), o.dtype, o.shape, 'node', node));
    });
    this.nodes.push(node);
    return outputs;
  }

  /** Mark values as graph outputs (in this order). */
  output(...values: Value[]): void {
    for (const v of values) {
      if (v.graph !== this) throw new ClipfitError(`graph '${this.name}': output ${v.name} belongs to another graph`);
      if (!this.outputs.includes(v)) this.outputs.push(v);
    }
  }

  /** Give a node output a new (unique) name, e.g. `<param>_grad`. Returns false if the name is taken. */
  rename(v: Value, name: string): boolean {
    if (v.kind !== 'node' || this.names.has(name)) return false;
    this.names.delete(v.name);
    this.names.add(name);
    v.name = name;
    return true;
  }

  /** Parameter by name. */
  getParam(name: string): Value {
    const p = this.params.find((v) => v.name === name);
    if (!p) throw new ClipfitError(`graph '${this.name}' has no parameter '${name}'`);
    return p;
  }
}

export function staticShape(v: Value): number[] {
  if (!allStatic(v.shape)) throw new ClipfitError(`${v.name} has a symbolic shape ${shapeToString(v.shape)}`);
  return [...v.shape];
}

export type { Dim, Shape };
