// The only module that imports onnxruntime-node. Sessions over clipfit graphs (or ONNX bytes),
// CPU by default with every core, CUDA on request, and outputs written into caller-owned buffers
// where given (onnxruntime-node fills pre-allocated output tensors in place).

import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { ClipfitError, RuntimeError } from '../errors.js';
import type { DType, TypedArray } from '../onnx/dtype.js';
import type { EncodeOptions } from '../onnx/encode.js';
import { encodeModel } from '../onnx/encode.js';
import type { Graph } from '../onnx/graph.js';

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
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
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
    for (const n of names) out[n] = into[n] ?? fromOrt(res[n]!);
    return out;
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
}
