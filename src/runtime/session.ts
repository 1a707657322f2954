// The only module that imports onnxruntime-node. Sessions over clipfit graphs (or ONNX bytes),
// CPU by default with every core, CUDA on request, and outputs written into caller-owned buffers
// where given (onnxruntime-node fills pre-allocated output tensors in place, during the run).
//
// onnxruntime-node then still returns a fresh JS copy of every output, the pre-allocated ones too.
// Those copies are garbage at once; when they are large (a training step's gradients: 600 MB at
// ViT-B/32) a full collection right after the run frees them before the next step allocates more,
// instead of whenever V8 gets to them (measured: 0.5 GB off the train step's peak RSS).

import { readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ClipfitError, RuntimeError } from '../errors.js';
import type { DType, TypedArray } from '../onnx/dtype.js';
import type { EncodeOptions } from '../onnx/encode.js';
import { encodeModel } from '../onnx/encode.js';
import type { Graph } from '../onnx/graph.js';
import { collectIfLarge } from '../util/gc.js';

export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TypedArray;
}

export type Device = 'cpu' | 'cuda';

export interface SessionOptions {
  /** Intra-op threads on CPU; default: every core. */
  threads?: number;
  device?: Device;
  deviceId?: number;
  /** onnxruntime graph optimization level; default 'all'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the optimized model here (for inspection). */
  optimizedModelPath?: string;
  /** onnxruntime's CPU memory arena (default on) and memory-pattern planning (default on). */
  memArena?: boolean;
  memPattern?: boolean;
  /** Log severity 0 (verbose) … 4 (fatal); default 3. */
  logLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Profile every node of every run: onnxruntime writes a Chrome-trace JSON named
   * `<profilePrefix>_<timestamp>.json` when `endProfiling()` is called (or the session is released).
   */
  profilePrefix?: string;
  /** Session config entries by key (onnxruntime's `session.*` keys, e.g. 'session.use_env_allocators'). */
  configEntries?: Record<string, string>;
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  uint64: 'uint64',
  int32: 'int32',
  bool: 'bool',
  uint8: 'uint8',
  int8: 'int8',
};

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}


function toOrt(name: string, t: Tensor): ort.Tensor {
  try {
    return new ort.Tensor(ORT_TYPE[t.dtype], t.data as never, t.shape);
  } catch (err) {
    throw new ClipfitError(`tensor '${name}': ${(err as Error).message}`);
  }
}

function fromOrt(v: ort.OnnxValue): Tensor {
  const t = v as ort.Tensor;
  const dtype = (Object.keys(ORT_TYPE) as DType[]).find((k) => ORT_TYPE[k] === t.type);
  if (!dtype) throw new ClipfitError(`unsupported output type ${t.type}`);
  return { dtype, shape: [...t.dims], data: t.data as TypedArray };
}

export class Session {
  private constructor(
    private readonly inner: ort.InferenceSession,
    readonly name: string,
  ) {}

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  static async fromBytes(bytes: Uint8Array, name: string, opts: SessionOptions = {}): Promise<Session> {
    const device = opts.device ?? 'cpu';
    const so: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      graphOptimizationLevel: opts.optimization ?? 'all',
      executionMode: 'sequential',
      logSeverityLevel: opts.logLevel ?? 3,
      executionProviders: device === 'cuda' ? [{ name: 'cuda', deviceId: opts.deviceId ?? 0 } as never, 'cpu'] : ['cpu'],
    };
    if (opts.optimizedModelPath) so.optimizedModelFilePath = opts.optimizedModelPath;
    if (opts.memArena !== undefined) so.enableCpuMemArena = opts.memArena;
    if (opts.memPattern !== undefined) so.enableMemPattern = opts.memPattern;
    if (opts.profilePrefix) {
      so.enableProfiling = true;
      so.profileFilePrefix = opts.profilePrefix;
    }
    if (opts.configEntries) so.extra = { ...opts.configEntries };
    try {
      return new Session(await ort.InferenceSession.create(bytes, so), name);
    } catch (err) {
      const msg = (err as Error).message;
      if (device === 'cuda')
        throw new RuntimeError(
          name,
          `could not start the CUDA provider (${msg}). onnxruntime-node's CUDA libraries are fetched by its install script, ` +
            'which clipfit denies by default; see the README section "GPU (CUDA)".',
          { cause: err },
        );
      throw new RuntimeError(name, msg, { cause: err });
    }
  }

  static async fromGraph(graph: Graph, opts: SessionOptions = {}, enc: EncodeOptions = {}): Promise<Session> {
    return Session.fromBytes(encodeModel(graph, enc), graph.name, opts);
  }

  /**
   * Run with named feeds. `into` maps output names to caller-owned tensors that onnxruntime fills in
   * place (no allocation or copy per step); other outputs are returned as fresh tensors.
   */
  async run(feeds: Record<string, Tensor>, into: Record<string, Tensor> = {}, only?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrt(k, t);
    const names = only ?? this.inner.outputNames;
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const n of names) fetches[n] = into[n] ? toOrt(n, into[n]!) : null;
    let res: ort.InferenceSession.ReturnType;
    try {
      res = await this.inner.run(ortFeeds, fetches);
    } catch (err) {
      throw new RuntimeError(this.name, (err as Error).message, { cause: err });
    }
    const out: Record<string, Tensor> = {};
    let copied = 0;
    for (const n of names) {
      if (into[n]) copied += into[n]!.data.byteLength;
      out[n] = into[n] ?? fromOrt(res[n]!);
    }
    if (copied) {
      res = {};
      collectIfLarge(copied);
    }
    return out;
  }

  /**
   * Stop profiling (a session made with `profilePrefix`) and return the trace file onnxruntime wrote:
   * the newest `<prefix>_*.json` beside the prefix (onnxruntime-node does not return its name).
   */
  endProfiling(prefix: string): string {
    try {
      this.inner.endProfiling();
    } catch (err) {
      throw new RuntimeError(this.name, (err as Error).message, { cause: err });
    }
    const dir = path.dirname(path.resolve(prefix));
    const base = `${path.basename(prefix)}_`;
    const found = readdirSync(dir)
      .filter((f) => f.startsWith(base) && f.endsWith('.json'))
      .map((f) => path.join(dir, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    if (!found[0]) throw new RuntimeError(this.name, `no profile '${base}*.json' was written in ${dir}`);
    return found[0];
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
}
