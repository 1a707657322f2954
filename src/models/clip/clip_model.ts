// A loaded CLIP model: config, parameters (one flat store, OpenAI names), tokenizer, and the two
// towers as onnxruntime sessions that read the parameters as inputs — so fine-tuned weights are
// used as soon as they are in the store, without rebuilding a session.

import { AdapterMismatchError, ConfigError, ParamError, TokenizerFileError } from '../../errors.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
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
import { initLora, loraHooks, loraLayers, loraShapes, mergedWeights, resolveLora, weightsFingerprint } from './lora.js';
import type { LoraSpec } from './lora.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, isAdapterFolder, readAdapter } from './lora_adapter.js';
import type { LoraState } from './lora_adapter.js';
import type { TowerHooks } from './model.js';

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
  /**
   * An adapter folder (adapter_config.json) is loaded onto its base model and, by default, merged
   * into it (W + (alpha/rank)·B·A: a plain model, encoding at no extra cost). false keeps the
   * adapters beside the frozen weights (the graph fit trains). A folder that also holds the merged
   * model loads that unless this is false.
   */
  mergeAdapter?: boolean;
  /** Load an adapter onto this base (a folder or name::tag) instead of the one its config names. */
  adapterBase?: string;
}

/** Where a model's adapters come from: the base's name as given and the seed of A's initialisation. */
export interface WithLoraOptions {
  base: string;
  seed: number;
  tokenizer?: string;
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
    private readonly runtime: { device?: Device; threads?: number; int8?: boolean; lora?: LoraState } = {},
  ) {}

  /** Load `name::tag` (downloaded and cached), a model folder of either layout, or an adapter folder onto its base. */
  static async load(spec: string, opts: LoadOptions = {}): Promise<ClipModel> {
    const dir = await resolveModel(spec, opts);
    const hasModel = existsSync(path.join(dir, 'open_clip_config.json')) || existsSync(path.join(dir, 'config.json'));
    if (isAdapterFolder(dir) && (!hasModel || opts.mergeAdapter === false)) return ClipModel.loadAdapter(dir, opts);
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

  /** An adapter folder onto its base (LoadOptions.adapterBase, else the one its config names). */
  private static async loadAdapter(dir: string, opts: LoadOptions): Promise<ClipModel> {
    const ad = await readAdapter(dir);
    const weightsFile = path.join(dir, ADAPTER_WEIGHTS);
    const trainedOn = ad.config.base_model_name_or_path;
    const baseSpec = opts.adapterBase ?? trainedOn;
    const { adapterBase: _a, mergeAdapter: _m, int8: _i, ...rest } = opts;
    const base = await ClipModel.load(baseSpec, { ...rest, ...(opts.tokenizer ?? ad.config.tokenizer ? { tokenizer: opts.tokenizer ?? ad.config.tokenizer } : {}) });
    let spec: LoraSpec;
    try {
      spec = resolveLora(ad.options, base.config.model_cfg, ADAPTER_CONFIG); // lora_dropout kept as recorded: no graph of a loaded adapter drops
    } catch (err) {
      if (err instanceof ConfigError && err.field.endsWith('.rank') && Number.isInteger(ad.options.rank)) throw new AdapterMismatchError(dir, trainedOn, baseSpec, err.message);
      throw err;
    }
    const fingerprint = weightsFingerprint(base.params, base.params.names);
    const m = base.withLora(spec, { base: trainedOn, seed: 0, ...(ad.config.tokenizer ? { tokenizer: ad.config.tokenizer } : {}) }, { int8: opts.int8 ?? false });
    for (const l of m.lora!.layers)
      for (const n of [l.a, l.b]) {
        const t = ad.tensors.get(n);
        if (!t) throw new ParamError(n, `missing from the adapter (rank ${ad.config.r}, targets ${ad.config.targets}, towers ${ad.config.towers})`, weightsFile);
        const want = m.params.entry(n).shape;
        if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]))
          throw new AdapterMismatchError(dir, trainedOn, baseSpec, `${n} is [${t.shape}], this base needs [${want}] (another architecture)`);
        m.params.setTensor(n, t, weightsFile);
      }
    if (fingerprint !== ad.config.base_model_fingerprint)
      throw new AdapterMismatchError(dir, trainedOn, baseSpec, `the base weights differ (the adapter was made for ${ad.config.base_model_fingerprint}, this base is ${fingerprint})`);
    return opts.mergeAdapter === false ? m : m.merged(dir);
  }

  /** The adapters, their spec and base, when this model carries LoRA adapters (withLora). */
  get lora(): LoraState | null {
    return this.runtime.lora ?? null;
  }

  /**
   * This model with LoRA adapters beside its linear weights: a new model whose store holds this
   * one's parameters (copied) followed by the adapters, A initialised from `o.seed` and B = 0.
   */
  withLora(spec: LoraSpec, o: WithLoraOptions, runtime: { int8?: boolean } = {}): ClipModel {
    if (this.lora) throw new ConfigError('lora', `${this.source} already carries adapters; merge them first`);
    const layers = loraLayers(this.config.model_cfg, spec);
    const params = ParamStore.fromShapes([...this.params.entries.map((e): [string, readonly number[]] => [e.name, e.shape]), ...loraShapes(layers, spec.rank)]);
    for (const e of this.params.entries) params.set(e.name, this.params.view(e.name));
    initLora(params, layers, o.seed);
    const lora: LoraState = { spec, layers, base: o.base, baseFingerprint: weightsFingerprint(this.params, this.params.names), ...(o.tokenizer ? { tokenizer: o.tokenizer } : {}) };
    return new ClipModel(this.config, params, this.tokenizer, this.tokenizerFiles, this.source, this.layout, { ...this.runtime, ...runtime, lora });
  }

  /** A plain model whose weights are this one's with the adapters merged in (this one itself when it has none). */
  merged(source = this.source): ClipModel {
    if (!this.lora) return this;
    const params = ParamStore.fromShapes(paramShapes(this.config.model_cfg));
    for (const [name, t] of this.weights()) params.set(name, t.data);
    const { lora: _l, ...runtime } = this.runtime;
    return new ClipModel(this.config, params, this.tokenizer, this.tokenizerFiles, source, this.layout, runtime);
  }

  /**
   * The tower's hooks: the adapters' linear layers when it carries LoRA. `training`: the training
   * step's, which apply the adapters' dropout (the encoders and val_loss never drop).
   */
  towerHooks(tower: 'image' | 'text', o: { training?: boolean } = {}): TowerHooks {
    const l = this.lora;
    return l ? (loraHooks(l.spec, l.layers, o)[tower] ?? {}) : {};
  }

  /** Whether the towers run int8 (LoadOptions.int8). */
  get int8(): boolean {
    return this.runtime.int8 ?? false;
  }

  get embedDim(): number {
    return this.config.model_cfg.embed_dim;
  }

  /** The parameters as OpenAI-named dense tensors (views into the store); with adapters, the merged weights (copies) and no adapter. */
  weights(): Weights {
    const w: Weights = new Map();
    const l = this.lora;
    if (!l) {
      for (const e of this.params.entries) w.set(e.name, { shape: [...e.shape], data: this.params.view(e.name) });
      return w;
    }
    const merged = mergedWeights((n) => this.params.view(n), l.layers, l.spec);
    for (const [name, shape] of paramShapes(this.config.model_cfg)) w.set(name, { shape: [...shape], data: merged.get(name) ?? this.params.view(name) });
    return w;
  }

  private session(tower: TowerName): Promise<Session> {
    let s = this.sessions.get(tower);
    if (!s) {
      const so = { device: this.runtime.device, threads: this.runtime.threads };
      if (this.runtime.int8) {
        // The int8 weights are baked into the graph: quantized from the parameters (merged) as they are now.
        const w = this.weights();
        s = Session.fromBytes(towerOnnx(this.config.model_cfg, tower, (n) => w.get(n)!.data, false, { int8: true }), `${tower} (int8)`, so);
      } else {
        const enc = tower === 'clip-vision' ? buildImageEncoder(this.config.model_cfg, false, this.towerHooks('image')) : buildTextEncoder(this.config.model_cfg, false, this.towerHooks('text'));
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
    const weights = this.weights();
    const w = (n: string) => weights.get(n)!.data;
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
