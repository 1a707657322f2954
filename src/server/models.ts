// The models a server encodes with: a spec (a fit() artifact, a model folder, `name::tag` from the
// cache, or the name of a finished run) resolved to a folder, its two towers loaded, and an id that
// names the weights — `<config name>@<first 12 hex of sha256 over the weights files>` — so an index
// can tell whether its vectors came from this very model. Artifacts with exported ONNX towers run
// those (getModel isOnnx: true); other folders run the safetensors weights through one ClipModel
// shared by both towers.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { modelIdOf } from '../search/model_id.js';
import { getModel, inferenceFromClip, l2NormalizeRows } from '../inference/index.js';
import type { InferenceModel } from '../inference/index.js';
import { ClipModel } from '../models/clip/clip_model.js';
import { isAdapterFolder } from '../models/clip/lora_adapter.js';
import { ConfigError } from '../errors.js';
import { resolveModelSpec } from '../runs/model_spec.js';
import { MicroBatcher } from './batcher.js';
import type { ServerMetrics } from './metrics.js';

export interface LoadedModel {
  /** `<name>@<12 hex>`: identifies the weights (stored with the index's vectors). */
  id: string;
  /** The spec it was loaded from. */
  source: string;
  dir: string;
  dim: number;
  isOnnx: boolean;
  text: InferenceModel;
  vision: InferenceModel;
  release(): Promise<void>;
}

export interface LoadModelOptions {
  /** $CLIPFIT_HOME (model cache, run store). */
  home?: string;
  threads?: number;
  /** int8 towers (per-channel int8 weights, dynamic activations): the artifact's model_int8.onnx, else the weights quantized on load. */
  int8?: boolean;
}


/** A folder for `spec` (model folder, run folder, run name, or name::tag from the cache: the server never downloads). */
export async function resolveServeModel(spec: string, opts: LoadModelOptions = {}): Promise<string> {
  return resolveModelSpec(spec, { offline: true, ...(opts.home ? { home: opts.home } : {}) });
}

export async function loadServeModel(spec: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const dir = await resolveServeModel(spec, opts);
  // The server reads the folder's own config (image size, model id): a LoRA adapter alone has none.
  if (isAdapterFolder(dir) && !existsSync(path.join(dir, 'open_clip_config.json')) && !existsSync(path.join(dir, 'config.json')))
    throw new ConfigError('model', `${spec} is a LoRA adapter without its merged model; serve a merged one (fit with --merge or --to-onnx, or save ClipModel.load('${dir}') as a model folder)`);
  // int8 towers embed a little differently from fp32 ones (cosine ≈ 0.9998), so an index records
  // them as another model: switching precision asks for --reindex instead of mixing vectors.
  const id = (await modelIdOf(dir)) + (opts.int8 ? '+int8' : '');
  const onnxFile = opts.int8 ? 'model_int8.onnx' : 'model.onnx';
  const isOnnx = existsSync(path.join(dir, 'clip-text', onnxFile)) && existsSync(path.join(dir, 'clip-vision', onnxFile));
  const runtime = { ...(opts.threads !== undefined ? { threads: opts.threads } : {}), ...(opts.int8 ? { int8: true } : {}) };
  if (isOnnx) {
    const text = await getModel(dir, { selectModel: 'clip-text', isOnnx: true, ...runtime });
    const vision = await getModel(dir, { selectModel: 'clip-vision', isOnnx: true, ...runtime });
    return { id, source: spec, dir, dim: text.embedDim, isOnnx, text, vision, release: async () => void (await Promise.all([text.release(), vision.release()])) };
  }
  // One ClipModel for both towers: the weights are read once.
  const clip = await ClipModel.load(dir, runtime);
  const text = inferenceFromClip(clip, 'clip-text');
  const vision = inferenceFromClip(clip, 'clip-vision');
  return { id, source: spec, dir, dim: clip.embedDim, isOnnx, text, vision, release: () => clip.release() };
}

export interface EncoderOptions {
  maxBatch?: number;
  maxWaitMs?: number;
  /** Turns request images into what the model is given (the server decodes them off the event loop). */
  prepareImages?: (images: readonly Uint8Array[], model: LoadedModel) => Promise<Uint8Array[]>;
}

/** Split an [n, dim] matrix into L2-normalised rows. */
function rows(m: Float32Array, dim: number): Float32Array[] {
  l2NormalizeRows(m, dim);
  return Array.from({ length: m.length / dim }, (_, i) => m.slice(i * dim, (i + 1) * dim));
}

/** A loaded model behind two micro-batchers (texts, images); results are L2-normalised rows. */
export class Encoder {
  private readonly textBatcher: MicroBatcher<string, Float32Array>;
  private readonly imageBatcher: MicroBatcher<Uint8Array, Float32Array>;
  private readonly prepare: EncoderOptions['prepareImages'];

  constructor(readonly model: LoadedModel, readonly role: 'primary' | 'compare', metrics: ServerMetrics, opts: EncoderOptions = {}) {
    this.prepare = opts.prepareImages;
    const count = (modality: 'text' | 'image') => (n: number) => {
      metrics.encoderCalls.inc({ model: role, modality });
      metrics.encodeItems.inc({ model: role, modality }, n);
      metrics.batchSize.observe(n, { modality });
    };
    const b = { ...(opts.maxBatch !== undefined ? { maxBatch: opts.maxBatch } : {}), ...(opts.maxWaitMs !== undefined ? { maxWaitMs: opts.maxWaitMs } : {}) };
    this.textBatcher = new MicroBatcher(async (t) => rows(await model.text.encodeTextBatch(t), model.dim), { ...b, onBatch: count('text') });
    this.imageBatcher = new MicroBatcher(async (im) => rows(await model.vision.encodeImageBatch(im), model.dim), { ...b, onBatch: count('image') });
  }

  get id(): string {
    return this.model.id;
  }

  get dim(): number {
    return this.model.dim;
  }

  texts(texts: readonly string[]): Promise<Float32Array[]> {
    return this.textBatcher.submitAll(texts);
  }

  async images(images: readonly Uint8Array[]): Promise<Float32Array[]> {
    return this.imageBatcher.submitAll(this.prepare ? await this.prepare(images, this.model) : images);
  }

  /** Encoder runs so far (texts + images). */
  get calls(): number {
    return this.textBatcher.calls + this.imageBatcher.calls;
  }
}
