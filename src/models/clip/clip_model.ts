// A loaded CLIP model: config, parameters (one flat store, OpenAI names), tokenizer, and the two
// towers as onnxruntime sessions that read the parameters as inputs — so fine-tuned weights are
// used as soon as they are in the store, without rebuilding a session.

import { TokenizerFileError } from '../../errors.js';
import { ParamStore } from '../../runtime/params.js';
import { Session } from '../../runtime/session.js';
import type { Device, Tensor } from '../../runtime/session.js';
import type { ClipConfig } from './config.js';
import { paramShapes } from './config.js';
import { loadModelFolder, saveModelFolder, tokenizerFilesIn } from './weights/checkpoint.js';
import type { Layout, TokenizerFiles, Weights } from './weights/checkpoint.js';
import { towerOnnx, writeTowerOnnx } from './export.js';
import type { TowerName } from './export.js';
import { buildImageEncoder, buildTextEncoder } from './graphs.js';
import { resolveModel } from './weights/hub.js';
import type { ResolveOptions } from './weights/hub.js';
import { preprocessBatch } from './image/preprocess.js';
import { ClipTokenizer } from './text/tokenizer.js';
import { l2NormalizeRows, tokenizeTrimmed } from './embedding_utils.js';

export interface LoadOptions extends ResolveOptions {
  /** Tokenizer folder or file when the model folder carries none (an open_clip folder). */
  tokenizer?: string | ClipTokenizer;
  device?: Device;
  threads?: number;
  /**
   * Encode with int8 towers (quantize.ts): int8 weights, quantized from the parameters when a tower
   * is first used, and dynamically quantized activations. Faster on CPUs with integer dot products
   * (VNNI); embeddings within a cosine of about 0.99 of float32's.
   */
  int8?: boolean;
}

export interface ExportOptions {
  /** Also write the int8 towers, `<tower>/model_int8.onnx` (default true). */
  int8?: boolean;
}

export interface EncodeOptions {
  batchSize?: number;
  /** L2-normalise each embedding (default true). */
  normalize?: boolean;
  /** Images decoded in parallel (default 4). */
  concurrency?: number;
}

/** An (n, dim) row-major float32 matrix. */
export interface Embeddings {
  data: Float32Array;
  shape: [number, number];
}

/** The tokenizer of a model folder's files (see checkpoint.ts resolveTokenizer); `missing` is the error when there are none. */
export async function tokenizerFromFiles(files: TokenizerFiles, dir: string, missing?: string): Promise<ClipTokenizer> {
  if (files?.kind === 'bpe-gz') return ClipTokenizer.fromBpeGz(files.file);
  if (files?.kind === 'vocab-merges') return ClipTokenizer.fromVocabMerges(files.vocab, files.merges);
  if (files?.kind === 'tokenizer-json') return ClipTokenizer.fromTokenizerJson(files.file);
  throw new TokenizerFileError(dir, missing ?? 'the model folder has no tokenizer files (vocab.json + merges.txt, tokenizer.json or bpe_simple_vocab_16e6.txt.gz); add them or pass the tokenizer option');
}

/** A tokenizer given as an option: a ClipTokenizer, OpenAI's BPE file (.gz/.txt), or a folder of tokenizer files. */
export async function tokenizerFromOption(given: string | ClipTokenizer): Promise<ClipTokenizer> {
  if (given instanceof ClipTokenizer) return given;
  return /\.(gz|txt)$/.test(given) ? ClipTokenizer.fromBpeGz(given) : ClipTokenizer.fromFolder(given);
}

export class ClipModel {
  private sessions = new Map<TowerName, Promise<Session>>();

  constructor(
    readonly config: ClipConfig,
    readonly params: ParamStore,
    readonly tokenizer: ClipTokenizer,
    readonly tokenizerFiles: TokenizerFiles,
    readonly source: string,
    readonly layout: Layout,
    private readonly runtime: { device?: Device; threads?: number; int8?: boolean } = {},
  ) {}

  /** Load `name::tag` (downloaded and cached) or a model folder of either layout. */
  static async load(spec: string, opts: LoadOptions = {}): Promise<ClipModel> {
    const dir = await resolveModel(spec, opts);
    const folder = await loadModelFolder(dir);
    const tokenizer = opts.tokenizer ? await tokenizerFromOption(opts.tokenizer) : await tokenizerFromFiles(folder.tokenizer, dir, folder.tokenizerMissing);
    const params = ParamStore.fromShapes(paramShapes(folder.config.model_cfg));
    for (const [name, t] of folder.weights) params.set(name, t.data, t.shape);
    // The files saved with the model: the tokenizer option's when it names files, else the folder's.
    const given: TokenizerFiles =
      typeof opts.tokenizer === 'string' ? (/\.(gz|txt)$/.test(opts.tokenizer) ? { kind: 'bpe-gz', file: opts.tokenizer } : tokenizerFilesIn(opts.tokenizer, 'hf')) : null;
    const files: TokenizerFiles = given ?? folder.tokenizer;
    return new ClipModel(folder.config, params, tokenizer, files, dir, folder.layout, { device: opts.device, threads: opts.threads, int8: opts.int8 });
  }

  /** Whether the towers run int8 (LoadOptions.int8). */
  get int8(): boolean {
    return this.runtime.int8 ?? false;
  }

  get embedDim(): number {
    return this.config.model_cfg.embed_dim;
  }

  /** The parameters as OpenAI-named dense tensors (views into the store). */
  weights(): Weights {
    const w: Weights = new Map();
    for (const e of this.params.entries) w.set(e.name, { shape: [...e.shape], data: this.params.view(e.name) });
    return w;
  }

  private session(tower: TowerName): Promise<Session> {
    let s = this.sessions.get(tower);
    if (!s) {
      const so = { device: this.runtime.device, threads: this.runtime.threads };
      if (this.runtime.int8) {
        // The int8 weights are baked into the graph: quantized from the parameters as they are now.
        s = Session.fromBytes(towerOnnx(this.config.model_cfg, tower, (n) => this.params.view(n), false, { int8: true }), `${tower} (int8)`, so);
      } else {
        const enc = tower === 'clip-vision' ? buildImageEncoder(this.config.model_cfg) : buildTextEncoder(this.config.model_cfg);
        s = Session.fromGraph(enc.graph, so);
      }
      this.sessions.set(tower, s);
    }
    return s;
  }

  private paramFeeds(s: Session): Record<string, Tensor> {
    const feeds: Record<string, Tensor> = {};
    for (const n of s.inputNames) if (this.params.has(n)) feeds[n] = this.params.tensor(n);
    return feeds;
  }

  /** Token ids of one batch, cut to its longest caption (the causal mask makes that exact). */
  tokenize(texts: readonly string[]): Tensor {
    return tokenizeTrimmed(this.tokenizer, texts, this.config.model_cfg.text_cfg.context_length);
  }

  async encodeTexts(texts: readonly string[], opts: EncodeOptions = {}): Promise<Embeddings> {
    const bs = opts.batchSize ?? 32;
    const dim = this.embedDim;
    const out = new Float32Array(texts.length * dim);
    const s = await this.session('clip-text');
    for (let i = 0; i < texts.length; i += bs) {
      const batch = texts.slice(i, i + bs);
      const res = await s.run({ ...this.paramFeeds(s), input_ids: this.tokenize(batch) });
      out.set(res['text_embeds']!.data as Float32Array, i * dim);
    }
    if (opts.normalize ?? true) l2NormalizeRows(out, dim);
    return { data: out, shape: [texts.length, dim] };
  }

  /** Pixel tensors [n, 3, s, s] for images given as paths or bytes. */
  preprocess(images: readonly (string | Uint8Array)[], concurrency = 4): Promise<Float32Array> {
    const p = this.config.preprocess_cfg;
    return preprocessBatch([...images], { size: p.image_size, mean: p.mean, std: p.std }, concurrency);
  }

  /** Embeddings of already preprocessed pixels [n, 3, s, s] (e.g. cached for repeated evaluation). */
  async encodePixels(pixels: Float32Array, n: number, opts: EncodeOptions = {}): Promise<Embeddings> {
    const bs = opts.batchSize ?? 32;
    const dim = this.embedDim;
    const size = this.config.preprocess_cfg.image_size;
    const per = 3 * size * size;
    const out = new Float32Array(n * dim);
    const s = await this.session('clip-vision');
    for (let i = 0; i < n; i += bs) {
      const m = Math.min(bs, n - i);
      const res = await s.run({ ...this.paramFeeds(s), pixel_values: { dtype: 'float32', shape: [m, 3, size, size], data: pixels.subarray(i * per, (i + m) * per) } });
      out.set(res['image_embeds']!.data as Float32Array, i * dim);
    }
    if (opts.normalize ?? true) l2NormalizeRows(out, dim);
    return { data: out, shape: [n, dim] };
  }

  async encodeImages(images: readonly (string | Uint8Array)[], opts: EncodeOptions = {}): Promise<Embeddings> {
    const bs = opts.batchSize ?? 32;
    const dim = this.embedDim;
    const size = this.config.preprocess_cfg.image_size;
    const out = new Float32Array(images.length * dim);
    const s = await this.session('clip-vision');
    for (let i = 0; i < images.length; i += bs) {
      const batch = images.slice(i, i + bs);
      const pixels = await this.preprocess(batch, opts.concurrency ?? 4);
      const res = await s.run({ ...this.paramFeeds(s), pixel_values: { dtype: 'float32', shape: [batch.length, 3, size, size], data: pixels } });
      out.set(res['image_embeds']!.data as Float32Array, i * dim);
    }
    if (opts.normalize ?? true) l2NormalizeRows(out, dim);
    return { data: out, shape: [images.length, dim] };
  }

  /** Save as a model folder (either layout), with this model's tokenizer files. */
  async save(dir: string, layout: Layout = 'open_clip'): Promise<void> {
    await saveModelFolder(dir, this.config, this.weights(), layout, this.tokenizerFiles);
  }

  /**
   * Write `<dir>/clip-text/model.onnx` and `<dir>/clip-vision/model.onnx` with the current weights,
   * and (unless int8: false) their int8 versions `model_int8.onnx` beside them.
   */
  async exportOnnx(dir: string, o: ExportOptions = {}): Promise<string[]> {
    const w = (n: string) => this.params.view(n);
    const cfg = this.config.model_cfg;
    const files: string[] = [];
    for (const int8 of o.int8 === false ? [false] : [false, true])
      for (const tower of ['clip-text', 'clip-vision'] as const) files.push(await writeTowerOnnx(dir, cfg, tower, w, { int8 }));
    return files;
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
