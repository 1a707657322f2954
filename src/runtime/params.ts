// ParamStore: every parameter of a model in one flat Float32Array, packed back to back in a fixed
// order, with a typed-array view per parameter. One buffer makes cloning, double-buffering (the
// optimizer writes the next step into a second store and the two swap) and saving cheap; the views
// are what onnxruntime reads and fills in place.
//
// Views are cheap subarrays of the current buffer. After swap() (which every optimizer step does),
// fetch views again: an old view still points at the buffer that now holds the previous values.

import { ParamError } from '../errors.js';
import type { Graph } from '../onnx/graph.js';
import type { StFile, StTensor } from './safetensors.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';
import type { Tensor } from './session.js';

export interface ParamEntry {
  readonly name: string;
  readonly shape: readonly number[];
  /** First element in the flat buffer. */
  readonly offset: number;
  /** Number of elements (1 for a scalar of shape []). */
  readonly size: number;
}

export interface ParamShape {
  name: string;
  shape: readonly number[];
}

const numelOf = (shape: readonly number[]): number => shape.reduce((a, d) => a * d, 1);
const shapeStr = (shape: readonly number[]): string => `[${shape.join(',')}]`;

export class ParamStore {
  readonly entries: readonly ParamEntry[];
  private readonly index: Map<string, ParamEntry>;
  private buf: Float32Array;

  private constructor(entries: ParamEntry[], index: Map<string, ParamEntry>, buf: Float32Array) {
    this.entries = entries;
    this.index = index;
    this.buf = buf;
  }

  /** A zero-filled store with one entry per (name, shape), in the given order. */
  static fromShapes(list: Iterable<ParamShape | readonly [string, readonly number[]]>): ParamStore {
    const entries: ParamEntry[] = [];
    const index = new Map<string, ParamEntry>();
    let offset = 0;
    for (const item of list) {
      const [name, shape] = Array.isArray(item) ? (item as [string, readonly number[]]) : [(item as ParamShape).name, (item as ParamShape).shape];
      if (index.has(name)) throw new ParamError(name, 'listed twice');
      if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new ParamError(name, `bad shape ${JSON.stringify(shape)}`);
      const e: ParamEntry = { name, shape: [...shape], offset, size: numelOf(shape) };
      entries.push(e);
      index.set(name, e);
      offset += e.size;
    }
    return new ParamStore(entries, index, new Float32Array(offset));
  }

  /** A zero-filled store for a graph's parameters (graph.params, in order). */
  static fromGraph(graph: Graph): ParamStore {
    return ParamStore.fromShapes(
      graph.params.map((p) => {
        if (p.dtype !== 'float32') throw new ParamError(p.name, `graph '${graph.name}': only float32 parameters are stored, got ${p.dtype}`);
        if (!p.shape.every((d): d is number => typeof d === 'number'))
          throw new ParamError(p.name, `graph '${graph.name}': parameter shape must be static, got ${JSON.stringify(p.shape)}`);
        return { name: p.name, shape: p.shape as number[] };
      }),
    );
  }

  /** A store holding every tensor of a parsed safetensors file, in file order (widened to float32). */
  static fromStFile(st: StFile, file = '<buffer>'): ParamStore {
    const store = ParamStore.fromShapes([...st.tensors].map(([name, t]) => ({ name, shape: t.shape })));
    for (const [name, t] of st.tensors) store.setTensor(name, t, file);
    return store;
  }

  static async fromSafetensors(file: string): Promise<ParamStore> {
    return ParamStore.fromStFile(await readSafetensors(file), file);
  }

  /** The flat buffer (all parameters, in entry order). Replaced by swap(). */
  get data(): Float32Array {
    return this.buf;
  }

  /** Total number of elements. */
  get size(): number {
    return this.buf.length;
  }

  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  has(name: string): boolean {
    return this.index.has(name);
  }

  entry(name: string): ParamEntry {
    const e = this.index.get(name);
    if (!e) throw new ParamError(name, 'not in this parameter store');
    return e;
  }

  /** The parameter's elements, as a view into the flat buffer (writes go to the store). */
  view(name: string): Float32Array {
    const e = this.entry(name);
    return this.buf.subarray(e.offset, e.offset + e.size);
  }

  /** The parameter as a Tensor viewing the store (for Session.run feeds or `into`). */
  tensor(name: string): Tensor {
    const e = this.entry(name);
    return { dtype: 'float32', shape: [...e.shape], data: this.buf.subarray(e.offset, e.offset + e.size) };
  }

  /** Every parameter as a Tensor viewing the store, keyed by name. */
  feeds(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const e of this.entries) out[e.name] = this.tensor(e.name);
    return out;
  }

  /** Copy data into a parameter. `shape`, when given, must equal the parameter's shape. */
  set(name: string, data: ArrayLike<number>, shape?: readonly number[]): void {
    this.write(name, data, shape);
  }

  /** Copy a safetensors tensor into a parameter (float tensors only), checking the shape. */
  setTensor(name: string, t: StTensor, file?: string): void {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array))
      throw new ParamError(name, `dtype ${t.dtype} is not a float type`, file);
    this.write(name, t.data, t.shape, file);
  }

  private write(name: string, data: ArrayLike<number>, shape: readonly number[] | undefined, file?: string): void {
    const e = this.index.get(name);
    if (!e) throw new ParamError(name, 'not in this parameter store', file);
    if (shape && (shape.length !== e.shape.length || shape.some((d, i) => d !== e.shape[i])))
      throw new ParamError(name, `shape ${shapeStr(shape)} does not match the parameter's ${shapeStr(e.shape)}`, file);
    if (data.length !== e.size)
      throw new ParamError(name, `${data.length} elements given, shape ${shapeStr(e.shape)} needs ${e.size}`, file);
    this.buf.set(data, e.offset);
  }

  /**
   * Fill the store from tensors by name (e.g. a checkpoint read with readSafetensors). With
   * `strict` (default) every parameter must be present and no extra tensor may be; otherwise
   * missing ones keep their values and extras are ignored. Returns the names that were set.
   */
  load(tensors: Map<string, StTensor>, opts: { strict?: boolean; file?: string } = {}): string[] {
    const strict = opts.strict ?? true;
    const done: string[] = [];
    for (const [name, t] of tensors) {
      if (!this.has(name)) {
        if (strict) throw new ParamError(name, 'present in the file but not a parameter', opts.file);
        continue;
      }
      this.setTensor(name, t, opts.file);
      done.push(name);
    }
    if (strict) for (const e of this.entries) if (!tensors.has(e.name)) throw new ParamError(e.name, 'missing from the file', opts.file);
    return done;
  }

  /** Same names, shapes and order. */
  sameLayout(other: ParamStore): boolean {
    if (other.entries.length !== this.entries.length) return false;
    return this.entries.every((e, i) => {
      const o = other.entries[i]!;
      return o.name === e.name && o.size === e.size && o.shape.length === e.shape.length && o.shape.every((d, k) => d === e.shape[k]);
    });
  }

  private checkLayout(other: ParamStore, what: string): void {
    if (this.sameLayout(other)) return;
    const bad =
      this.entries.find((e, i) => {
        const o = other.entries[i];
        return !o || o.name !== e.name || shapeStr(o.shape) !== shapeStr(e.shape);
      }) ?? other.entries[this.entries.length];
    const name = bad?.name ?? '?';
    const o = other.has(name) ? shapeStr(other.entry(name).shape) : 'absent';
    const t = this.has(name) ? shapeStr(this.entry(name).shape) : 'absent';
    throw new ParamError(name, `${what}: layouts differ here (this store ${t}, the other ${o}, or the order differs)`);
  }

  /** A deep copy (same layout, its own buffer). */
  clone(): ParamStore {
    return new ParamStore(this.entries as ParamEntry[], this.index, this.buf.slice());
  }

  /** Copy every value from a store of the same layout. */
  copyFrom(other: ParamStore): void {
    this.checkLayout(other, 'copyFrom');
    this.buf.set(other.buf);
  }

  /** Exchange buffers with a store of the same layout (O(1); the double-buffer flip). */
  swap(other: ParamStore): void {
    this.checkLayout(other, 'swap');
    const b = this.buf;
    this.buf = other.buf;
    other.buf = b;
  }

  /**
   * Move the values into `buf` (same number of elements), which becomes this store's buffer: e.g.
   * memory a WebAssembly optimizer updates in place. Views taken before are of the old buffer.
   */
  moveTo(buf: Float32Array): void {
    if (buf.length !== this.buf.length) throw new ParamError('<store>', `moveTo: buffer holds ${buf.length} elements, the store ${this.buf.length}`);
    buf.set(this.buf);
    this.buf = buf;
  }

  fill(value: number): void {
    this.buf.fill(value);
  }

  /** Tensors in entry order, as safetensors input (views, no copy). */
  *tensors(prefix = ''): Generator<[string, { shape: number[]; data: Float32Array }]> {
    for (const e of this.entries) yield [prefix + e.name, { shape: [...e.shape], data: this.view(e.name) }];
  }

  /** Write every parameter (F32, entry order) atomically. */
  async toSafetensors(file: string, metadata?: Record<string, string>): Promise<void> {
    await writeSafetensors(file, this.tensors(), metadata);
  }
}
