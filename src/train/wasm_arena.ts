// One WebAssembly memory holding float32 buffers that the optimizer kernels of wasm/adam.wat update
// in place: SIMD, one float32 rounding per operation, single-threaded. A wasm32 memory is at most
// 4 GiB, so the buffers are laid out once (initial = maximum size, never grown: a grown memory
// would detach every view handed out).

import { ClipfitError } from '../errors.js';
import { WASM_BASE64 } from './wasm/adam_wasm.js';

const PAGE = 65536;
/** wasm32's limit: 65,536 pages of 64 KiB. */
export const WASM_MAX_BYTES = 65536 * PAGE;

interface Kernels {
  adamw(p: number, g: number, m: number, v: number, n: number, b1: number, c1: number, b2: number, c2: number, bc: number, eps: number, ns: number, decay: number): void;
  adam_l2(p: number, g: number, m: number, v: number, n: number, b1: number, c1: number, b2: number, c2: number, bc: number, eps: number, ns: number, wd: number): void;
  sumsq(x: number, n: number): number;
  scale(x: number, n: number, s: number): void;
  accumulate(y: number, x: number, n: number): void;
}

// The few WebAssembly JS API members used here (TypeScript declares them only in lib.dom).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
  Instance: new (m: object, imports: object) => { exports: object };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | null = null;

/** The scalars of one Adam step for one parameter group (float32 on the wasm side). */
export interface AdamScalars {
  beta1: number;
  beta2: number;
  eps: number;
  /** −lr / (1 − β1ᵗ) */
  negStep: number;
  /** √(1 − β2ᵗ) */
  bc2Sqrt: number;
  /** AdamW: 1 − lr·wd, applied to p first. */
  decay: number;
  /** Adam: the L2 weight decay added to the gradient (0 for AdamW). */
  l2: number;
}

export class WasmArena {
  private readonly memory: WasmMemory;
  private readonly k: Kernels;
  private top = 0;

  private constructor(readonly bytes: number) {
    compiled ??= new Wasm.Module(Buffer.from(WASM_BASE64, 'base64'));
    const pages = Math.max(1, Math.ceil(bytes / PAGE));
    this.memory = new Wasm.Memory({ initial: pages, maximum: pages });
    this.k = new Wasm.Instance(compiled, { env: { memory: this.memory } }).exports as unknown as Kernels;
  }

  /** Bytes needed for buffers of these element counts (each aligned to 16 bytes). */
  static bytesFor(sizes: readonly number[]): number {
    return sizes.reduce((a, n) => a + Math.ceil((n * 4) / 16) * 16, 0);
  }

  /** An arena for buffers of these sizes, or null when they do not fit in one wasm memory. */
  static tryCreate(sizes: readonly number[]): WasmArena | null {
    const bytes = WasmArena.bytesFor(sizes);
    if (bytes > WASM_MAX_BYTES) return null;
    try {
      return new WasmArena(bytes);
    } catch {
      return null; // the engine refused the reservation
    }
  }

  /** A zero-filled float32 buffer of n elements inside the memory. */
  alloc(n: number): Float32Array {
    const size = Math.ceil((n * 4) / 16) * 16;
    if (this.top + size > this.memory.buffer.byteLength) throw new ClipfitError(`wasm arena: ${n} floats do not fit (${this.top} of ${this.memory.buffer.byteLength} bytes used)`);
    const view = new Float32Array(this.memory.buffer, this.top, n);
    this.top += size;
    return view;
  }

  /** Whether `a` is a view of this arena's memory. */
  owns(a: Float32Array): boolean {
    return a.buffer === this.memory.buffer;
  }

  private at(a: Float32Array): number {
    if (!this.owns(a)) throw new ClipfitError('wasm arena: a buffer outside the arena was passed to a kernel');
    return a.byteOffset;
  }

  /** One Adam/AdamW step on p, m, v with gradient g (all the same length), in place. */
  adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, s: AdamScalars): void {
    const n = p.length;
    if (g.length !== n || m.length !== n || v.length !== n) throw new ClipfitError('wasm arena: adam buffers differ in length');
    const args = [this.at(p), this.at(g), this.at(m), this.at(v), n, s.beta1, 1 - s.beta1, s.beta2, 1 - s.beta2, s.bc2Sqrt, s.eps, s.negStep] as const;
    if (s.l2 !== 0) this.k.adam_l2(...args, s.l2);
    else this.k.adamw(...args, s.decay);
  }

  /** Σ x² in float64. */
  sumsq(x: Float32Array): number {
    return this.k.sumsq(this.at(x), x.length);
  }

  /** x ← x·s in float32. */
  scale(x: Float32Array, s: number): void {
    this.k.scale(this.at(x), x.length, s);
  }

  /** y ← y + x in float32. */
  accumulate(y: Float32Array, x: Float32Array): void {
    if (y.length !== x.length) throw new ClipfitError('wasm arena: accumulate buffers differ in length');
    this.k.accumulate(this.at(y), this.at(x), y.length);
  }
}
