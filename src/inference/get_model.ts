// Finetuner's `get_model`: one tower of a fine-tuned artifact, ready to encode. Either the exported
// ONNX graph `<artifact>/<tower>/model.onnx` (weights baked in) run by clipfit's runtime Session, or
// the safetensors weights through ClipModel. Both get the tokenizer and the image preprocessing
// (size, mean, std) from the artifact folder, so they give the same embeddings.

import { tokenizeTrimmed } from '../models/clip/embedding_utils.js';
import { existsSync, promises as fsp, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, MissingOnnxError, RuntimeError, UnknownModelError } from '../errors.js';
import { readFolderConfig, resolveTokenizer } from '../models/clip/weights/checkpoint.js';
import { ClipModel, tokenizerFromFiles, tokenizerFromOption } from '../models/clip/clip_model.js';
import type { ClipConfig } from '../models/clip/config.js';
import { towerFile } from '../models/clip/export.js';
import { preprocessBatch } from '../models/clip/image/preprocess.js';
import { ClipTokenizer } from '../models/clip/text/tokenizer.js';
import { runArtifactFor } from '../runs/model_spec.js';
import { Session } from '../runtime/session.js';
import type { Device, Tensor } from '../runtime/session.js';
import type { Tower } from './inputs.js';

export type { Tower } from './inputs.js';

export interface GetModelOptions {
  selectModel: Tower;
  /** Run `<artifact>/<selectModel>/model.onnx` instead of the safetensors weights (default false). */
  isOnnx?: boolean;
  /** Tokenizer folder or BPE file, when the artifact carries none. */
  tokenizer?: string | ClipTokenizer;
  device?: Device;
  threads?: number;
  /**
   * int8 towers: with isOnnx the artifact's `<selectModel>/model_int8.onnx`, else the safetensors
   * weights quantized on load (ClipModel's int8 option). Default false.
   */
  int8?: boolean;
}

/** One batch in, its raw (un-normalised) embeddings out, row-major [n, embedDim]. */
interface Backend {
  texts(batch: readonly string[]): Promise<Float32Array>;
  images(batch: readonly (string | Uint8Array)[], concurrency: number): Promise<Float32Array>;
  release(): Promise<void>;
}

/** One tower of a model, as Finetuner's get_model returns it; encode it with `encode()`. */
export class InferenceModel {
  constructor(
    /** The artifact folder (or model spec) it was loaded from. */
    readonly artifact: string,
    readonly selectModel: Tower,
    readonly isOnnx: boolean,
    readonly embedDim: number,
    private readonly backend: Backend,
  ) {}

  /** 'text' for clip-text, 'image' for clip-vision. */
  get modality(): 'text' | 'image' {
    return this.selectModel === 'clip-text' ? 'text' : 'image';
  }

  /** Raw embeddings of one batch of captions (clip-text only). */
  encodeTextBatch(texts: readonly string[]): Promise<Float32Array> {
    return this.backend.texts(texts);
  }

  /** Raw embeddings of one batch of image paths or bytes (clip-vision only). */
  encodeImageBatch(images: readonly (string | Uint8Array)[], concurrency = 4): Promise<Float32Array> {
    return this.backend.images(images, concurrency);
  }

  async release(): Promise<void> {
    await this.backend.release();
  }
}

function checkTower(selectModel: unknown): Tower {
  if (selectModel !== 'clip-text' && selectModel !== 'clip-vision')
    throw new ConfigError('selectModel', `must be 'clip-text' or 'clip-vision', got ${JSON.stringify(selectModel)}`);
  return selectModel;
}

/** A tower of a loaded ClipModel (shared: releasing the InferenceModel does not release the ClipModel). */
export function inferenceFromClip(model: ClipModel, selectModel: Tower, opts: { owned?: boolean } = {}): InferenceModel {
  const tower = checkTower(selectModel);
  const backend: Backend = {
    texts: async (b) => (await model.encodeTexts(b, { batchSize: b.length, normalize: false })).data,
    images: async (b, concurrency) => (await model.encodeImages(b, { batchSize: b.length, normalize: false, concurrency })).data,
    release: async () => {
      if (opts.owned) await model.release();
    },
  };
  return new InferenceModel(model.source, tower, false, model.embedDim, backend);
}

async function tokenizerFor(dir: string, given?: string | ClipTokenizer): Promise<ClipTokenizer> {
  if (given) return tokenizerFromOption(given);
  const { layout, config, raw } = await readFolderConfig(dir);
  const tok = resolveTokenizer(dir, layout, config, raw);
  return tokenizerFromFiles(tok.files, dir, tok.missing);
}

async function onnxBackend(dir: string, config: ClipConfig, tower: Tower, opts: GetModelOptions): Promise<Backend> {
  const file = path.join(dir, tower, towerFile({ int8: opts.int8 }));
  if (!existsSync(file))
    throw new MissingOnnxError(
      file,
      opts.int8 && existsSync(path.join(dir, tower, 'model.onnx'))
        ? 'not found: this artifact was exported without int8 towers; re-export it with ClipModel.exportOnnx (which writes model_int8.onnx), or load it with isOnnx: false to quantize its weights on load'
        : 'not found: this artifact has no exported ONNX towers; fit with toOnnx: true (or call ClipModel.exportOnnx), or load it with isOnnx: false',
    );
  const session = await Session.fromBytes(new Uint8Array(await fsp.readFile(file)), `${tower} (${file})`, { device: opts.device, threads: opts.threads });
  const inputName = tower === 'clip-text' ? 'input_ids' : 'pixel_values';
  const outputName = tower === 'clip-text' ? 'text_embeds' : 'image_embeds';
  if (!session.inputNames.includes(inputName) || !session.outputNames.includes(outputName)) {
    await session.release();
    throw new RuntimeError(file, `expected input '${inputName}' and output '${outputName}', the graph has inputs [${session.inputNames}] and outputs [${session.outputNames}]`);
  }
  const run = async (t: Tensor): Promise<Float32Array> => (await session.run({ [inputName]: t }, {}, [outputName]))[outputName]!.data as Float32Array;
  const p = config.preprocess_cfg;
  const tokenizer = tower === 'clip-text' ? await tokenizerFor(dir, opts.tokenizer) : null;
  return {
    texts: (b) => run(tokenizeTrimmed(tokenizer!, b, config.model_cfg.text_cfg.context_length)),
    images: async (b, concurrency) => {
      const pixels = await preprocessBatch(b, { size: p.image_size, mean: p.mean, std: p.std }, concurrency);
      return run({ dtype: 'float32', shape: [b.length, 3, p.image_size, p.image_size], data: pixels });
    },
    release: () => session.release(),
  };
}

/**
 * Load one tower of `spec` (a fit() artifact or any model folder, a run folder or a finished run's
 * name — runs/model_spec.ts — and name::tag too when not ONNX).
 * With isOnnx the folder must hold `<selectModel>/model.onnx` (fit with toOnnx: true), or with int8
 * `<selectModel>/model_int8.onnx`.
 */
export async function getModel(spec: string, opts: GetModelOptions): Promise<InferenceModel> {
  const tower = checkTower(opts?.selectModel);
  const artifact = runArtifactFor(spec) ?? spec;
  if (!opts.isOnnx) {
    const model = await ClipModel.load(artifact, { tokenizer: opts.tokenizer, device: opts.device, threads: opts.threads, int8: opts.int8 });
    return inferenceFromClip(model, tower, { owned: true });
  }
  if (!existsSync(artifact) || !statSync(artifact).isDirectory()) throw new UnknownModelError(artifact, 'no such artifact folder (isOnnx needs a local folder with exported ONNX towers)');
  const { config } = await readFolderConfig(artifact);
  return new InferenceModel(path.resolve(artifact), tower, true, config.model_cfg.embed_dim, await onnxBackend(artifact, config, tower, opts));
}
