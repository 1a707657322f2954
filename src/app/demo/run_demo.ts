// clipfit's main job (`npm run demo`): fine-tune the shipped base CLIP on the emoji dataset and
// show what fine-tuning and WiSE-FT did.
//   1. build the emoji dataset (Google + Twemoji styles to train on, OpenMoji as the shifted style),
//   2. fine-tune with an EvaluationCallback on the held-out in-domain set (checkpoints per epoch:
//      a rerun resumes),
//   3. score zero-shot, fine-tuned and WiSE-FT mixes θ = (1−α)·θ₀ + α·θ₁ on held-out in-domain and
//      shifted images, with English, cross-lingual and tag queries,
//   4. write demo-report/index.html + metrics.json with the before/after examples.

import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildEmojiDataset, loadEmojiEvalSet, scoreEmojiEvalSet } from '../datasets/emoji/index.js';
import type { EmojiEvalSet, EmojiIndexSet } from '../datasets/emoji/index.js';
import { storeHome } from '../../data/store.js';
import { knn } from '../../eval/knn.js';
import { ClipModel } from '../../models/clip/clip_model.js';
import { DEFAULT_MODEL } from '../../models/clip/weights/registry.js';
import { wiseFt } from '../../train/callbacks.js';
import { ConfigError } from '../../errors.js';
import { fit } from '../../train/fit.js';
import { checkChunk } from '../../train/grad_cache.js';
import type { FitHooks, FitOptions } from '../../train/fit_types.js';
import type { LoraOptions } from '../../models/clip/lora.js';
import { stripDirections as unprefix } from '../../eval/metric_names.js';
import { writeDemoReport } from './report.js';
import type { DemoReport, Hit } from './report.js';

export const DEMO_ALPHAS = [0.25, 0.5, 0.75] as const;
export const DEMO_METRICS = [
  'precision_at_k', 'recall_at_k', 'f1_score_at_k', 'hit_at_k', 'average_precision', 'reciprocal_rank',
  'r_precision', 'dcg_at_k', 'ndcg_at_k', 'recall_at_1', 'recall_at_5', 'recall_at_10',
];

/** The recipe (quoted in the report). */
export const DEMO_RECIPE = { epochs: 10, batchSize: 128, learningRate: 2e-4, warmupSteps: 20, weightDecay: 0.1, seed: 0, limit: 10, examples: 12, topK: 5 };

export interface DemoOptions {
  /** Work folder: dataset, checkpoints (default $CLIPFIT_HOME/demo). */
  work?: string;
  /** Report folder (default ./demo-report). */
  report?: string;
  model?: string;
  epochs?: number;
  /** Batch size (default the recipe's 128). */
  batchSize?: number;
  /** GradCache chunk (fit's gradCache): the towers run this many rows at a time. */
  gradCacheChunk?: number;
  /** Emoji items to use (all by default; tests use a few). */
  limit?: number;
  /** Train LoRA adapters instead of every weight (fit's lora option); its checkpoints get their own folder. */
  lora?: LoraOptions;
  /** Instead of the recipe's learning rate. */
  learningRate?: number;
  /** Lock the image tower (fit's freeze.image): its features are computed once. */
  freezeImage?: boolean;
  /** Also score the zero-shot and fine-tuned models with int8 towers ('… int8' variants). */
  int8?: boolean;
  log?(message: string): void;
  progress?: FitHooks['progress'];
  metrics?: FitHooks['metrics'];
}

export interface DemoResult {
  reportDir: string;
  report: DemoReport;
  wallS: number;
}

const QUERY_SETS = ['en', 'de', 'fr', 'es', 'ja', 'zh', 'tags'];
const EVAL_SETS: EmojiIndexSet[] = ['in-domain', 'shifted'];

function defaultWork(): string {
  return path.join(storeHome(), 'demo');
}


interface Variant {
  name: string;
  model: ClipModel;
}

export async function runDemo(o: DemoOptions = {}): Promise<DemoResult> {
  const t0 = Date.now();
  // Checked before the dataset is built or anything is trained.
  if (o.gradCacheChunk !== undefined) checkChunk(o.gradCacheChunk, 'gradCacheChunk');
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize > 1)) throw new ConfigError('batchSize', `must be an integer above 1 (CLIPLoss needs two pairs), got ${o.batchSize}`);
  const log = o.log ?? ((m: string) => console.log(m));
  const work = path.resolve(o.work ?? defaultWork());
  const reportDir = path.resolve(o.report ?? 'demo-report');
  const base = o.model ?? DEFAULT_MODEL;
  const r = { ...DEMO_RECIPE, ...(o.epochs ? { epochs: o.epochs } : {}), ...(o.learningRate ? { learningRate: o.learningRate } : {}), ...(o.batchSize ? { batchSize: o.batchSize } : {}) };
  // Each LoRA recipe, learning rate, batch size and GradCache chunk resumes its own checkpoints.
  const loraTag = o.lora ? `-lora-r${o.lora.rank ?? 8}-a${o.lora.alpha ?? o.lora.rank ?? 8}-${(o.lora.targets ?? ['attn', 'mlp']).join('+')}-${(o.lora.towers ?? ['text', 'image']).join('+')}${o.lora.dropout ? `-d${o.lora.dropout}` : ''}` : '';
  const runTag = `${o.limit ? `-limit${o.limit}` : ''}${loraTag}${o.learningRate ? `-lr${o.learningRate}` : ''}${r.batchSize !== DEMO_RECIPE.batchSize ? `-b${r.batchSize}` : ''}${o.gradCacheChunk ? `-gc${o.gradCacheChunk}` : ''}${o.freezeImage ? '-freeze-image' : ''}`;

  const zs = await ClipModel.load(base);
  const size = zs.config.model_cfg.vision_cfg.image_size;
  const data = path.join(work, `emoji-${size}${o.limit ? `-limit${o.limit}` : ''}`);
  log(`[1/4] emoji dataset → ${data}`);
  const manifest = await buildEmojiDataset({ out: data, size, ...(o.limit ? { limit: o.limit } : {}) });
  log(`      ${manifest.counts.items} items (${manifest.counts.train} train, ${manifest.counts.eval} held out); rows ${JSON.stringify(manifest.counts.rows)}`);
  const missing = Object.entries(manifest.missing).filter(([, v]) => (v ?? 0) > 0);
  if (missing.length) log(`      images missing per style (left out, not fatal): ${JSON.stringify(Object.fromEntries(missing))}`);

  log(`[2/4] fine-tuning ${base} on ${path.join(data, 'train.csv')}`);
  const stepLoss: { step: number; loss: number }[] = [];
  const fitDir = path.join(work, `fit${runTag}`);
  const lossLog = path.join(fitDir, 'step_loss.json');
  if (existsSync(lossLog)) stepLoss.push(...(JSON.parse(readFileSync(lossLog, 'utf8')) as typeof stepLoss));
  const fitOptions: FitOptions = {
    model: base,
    trainData: path.join(data, 'train.csv'),
    epochs: r.epochs,
    batchSize: Math.min(r.batchSize, manifest.counts.rows['train']),
    learningRate: r.learningRate,
    optimizer: 'adamw',
    optimizerOptions: { betas: [0.9, 0.98], eps: 1e-6, weightDecay: r.weightDecay },
    scheduler: 'cosine',
    schedulerOptions: { warmupSteps: r.warmupSteps },
    labelAwareLoss: true,
    seed: r.seed,
    numWorkers: 1,
    callbacks: [{ type: 'EvaluationCallback', queryData: path.join(data, 'queries-en.jsonl'), indexData: path.join(data, 'eval-in-domain.jsonl'), limit: r.limit }],
    workDir: fitDir,
    ...(o.lora ? { lora: o.lora } : {}),
    ...(o.gradCacheChunk ? { gradCache: { chunk: o.gradCacheChunk } } : {}),
    ...(o.freezeImage ? { freeze: { image: true } } : {}),
  };
  const stepsBefore = stepLoss.length;
  const fitResult = await fit(fitOptions, {
    log: (level, m) => log(level === 'info' ? `      ${m}` : `      [${level}] ${m}`),
    progress: (p) => {
      const step = (p.epoch - 1) * p.steps + p.step;
      if (!stepLoss.some((s) => s.step === step)) stepLoss.push({ step, loss: +p.stepLoss!.toFixed(5) });
      o.progress?.(p);
    },
    ...(o.metrics ? { metrics: o.metrics } : {}),
  });
  await fsp.mkdir(path.dirname(lossLog), { recursive: true });
  await fsp.writeFile(lossLog, JSON.stringify(stepLoss));

  log('[3/4] scoring zero-shot, fine-tuned and WiSE-FT');
  const ft = await ClipModel.load(fitResult.artifactDir);
  const variants: Variant[] = [{ name: 'zero-shot', model: zs }];
  for (const a of DEMO_ALPHAS) {
    const params = ft.params.clone();
    wiseFt(params, zs.params, a);
    variants.push({ name: `WiSE-FT α=${a}`, model: new ClipModel(ft.config, params, ft.tokenizer, ft.tokenizerFiles, `${fitResult.artifactDir}#wise-ft-${a}`, ft.layout) });
  }
  variants.push({ name: 'fine-tuned', model: ft });
  if (o.int8) {
    variants.push({ name: 'zero-shot int8', model: await ClipModel.load(base, { int8: true }) });
    variants.push({ name: 'fine-tuned int8', model: await ClipModel.load(fitResult.artifactDir, { int8: true }) });
  }

  const sets = new Map<string, EmojiEvalSet>();
  for (const e of EVAL_SETS) for (const q of QUERY_SETS) {
    if (!manifest.files.queries[q]) continue;
    sets.set(`${e}/${q}`, await loadEmojiEvalSet(data, e, q));
  }
  // Pixels once per eval set, texts once per query set; each variant encodes both.
  const pixels = new Map<EmojiIndexSet, { data: Float32Array; n: number }>();
  for (const e of EVAL_SETS) {
    const s = sets.get(`${e}/en`)!;
    const uris = s.indexDocs.map((d) => d.uri!);
    pixels.set(e, { data: await zs.preprocess(uris), n: uris.length });
  }
  const results: DemoReport['results'] = [];
  const embeddings = new Map<string, { images: Map<EmojiIndexSet, Float32Array>; en: Float32Array }>();
  for (const v of variants) {
    const images = new Map<EmojiIndexSet, Float32Array>();
    for (const e of EVAL_SETS) images.set(e, (await v.model.encodePixels(pixels.get(e)!.data, pixels.get(e)!.n)).data);
    const textCache = new Map<string, Float32Array>();
    for (const [key, s] of sets) {
      const [e, q] = key.split('/') as [EmojiIndexSet, string];
      let t = textCache.get(`${e}/${q}`);
      if (!t) {
        t = (await v.model.encodeTexts(s.queryDocs.map((d) => d.text!))).data;
        textCache.set(`${e}/${q}`, t);
      }
      const m = unprefix(scoreEmojiEvalSet(s, t, images.get(e)!, { limit: r.limit }));
      results.push({ variant: v.name, evalSet: e, querySet: q, metrics: Object.fromEntries(DEMO_METRICS.map((k) => [k, m[k] ?? NaN])) });
    }
    embeddings.set(v.name, { images, en: textCache.get('in-domain/en')! });
  }

  log('[4/4] report');
  const inDomain = sets.get('in-domain/en')!;
  const examples = pickExamples(inDomain, r.examples).map((qi) => {
    const q = inDomain.queryDocs[qi]!;
    const top = (variant: string): Hit[] => topHits(inDomain, embeddings.get(variant)!, qi, zs.embedDim, r.topK, (k) => manifest.items[k]?.label ?? k);
    return { query: q.text!, relevantKey: inDomain.relevant[qi]![0]!, zeroShot: top('zero-shot'), fineTuned: top('fine-tuned') };
  });
  const wallS = (Date.now() - t0) / 1000;
  const report: DemoReport = {
    title: `clipfit demo: fine-tuning ${base} on emoji`,
    createdAt: new Date().toISOString(),
    setup: {
      'base model': base,
      'train pairs': manifest.counts.rows['train'],
      'train items': manifest.counts.train,
      'held-out items': manifest.counts.eval,
      'in-domain images': pixels.get('in-domain')!.n,
      'shifted images': pixels.get('shifted')!.n,
      epochs: fitResult.epochs,
      steps: fitResult.steps,
      'batch size': r.batchSize,
      'learning rate': r.learningRate,
      ...(o.gradCacheChunk ? { 'GradCache chunk': o.gradCacheChunk } : {}),
      'fit wall s': +fitResult.timings.totalS.toFixed(1),
      ...(o.freezeImage ? { 'image tower': 'frozen' } : {}),
      'fine-tuning': o.lora ? `LoRA rank ${o.lora.rank ?? 8}, alpha ${o.lora.alpha ?? o.lora.rank ?? 8}, ${(o.lora.targets ?? ['attn', 'mlp']).join('+')} of ${(o.lora.towers ?? ['text', 'image']).join('+')}` : 'full',
      'trainable parameters': fitResult.trainableParameters ?? NaN,
      // Steps done by this process (a resumed run's earlier steps are not in it).
      'step s (mean)': +(fitResult.timings.stepS / Math.max(1, fitResult.steps - stepsBefore)).toFixed(3),
      'peak RSS MB': Math.round(process.resourceUsage().maxRSS / 1024),
      'artifact MB': +((await folderBytes(fitResult.artifactDir)) / 2 ** 20).toFixed(2),
      'demo wall s': +wallS.toFixed(1),
    },
    metricNames: DEMO_METRICS,
    results,
    history: fitResult.history,
    stepLoss,
    examples,
    notes: [
      'Queries are the held-out items’ CLDR labels (emojibase-data); an item’s relevant images are its Google and Twemoji drawings (in-domain) or its OpenMoji drawing (shifted).',
      `k = ${r.limit} for the @k metrics. WiSE-FT mixes weights: θ = (1−α)·θ_zero-shot + α·θ_fine-tuned.`,
    ],
  };
  await writeDemoReport(reportDir, report);
  for (const v of variants) await v.model.release();
  return { reportDir, report, wallS };
}

/** Bytes of every file under `dir`. */
async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? await folderBytes(p) : (await fsp.stat(p)).size;
  }
  return n;
}

/** A dozen held-out queries, the same on every run: the lowest hashes of their text. */
function pickExamples(set: EmojiEvalSet, n: number): number[] {
  const h = (s: string) => createHash('sha256').update(s).digest().readUInt32BE(0);
  return set.queryDocs
    .map((d, i) => ({ i, h: h(d.text!) }))
    .sort((a, b) => a.h - b.h)
    .slice(0, n)
    .map((x) => x.i);
}

function topHits(set: EmojiEvalSet, emb: { images: Map<EmojiIndexSet, Float32Array>; en: Float32Array }, qi: number, dim: number, k: number, labelOf: (key: string) => string): Hit[] {
  const img = emb.images.get(set.index)!;
  const q = emb.en.subarray(qi * dim, (qi + 1) * dim);
  // Embeddings are unit rows: cosine similarity = 1 − cosine distance.
  const m = knn(q, 1, img, img.length / dim, dim, { limit: k, distance: 'cosine' })[0]!;
  const rel = new Set(set.relevant[qi]);
  return [...m.indices].map((j, r) => {
    const key = set.indexKeys[j]!;
    return { key, label: labelOf(key), image: set.indexDocs[j]!.uri!, score: +(1 - m.distances[r]!).toFixed(4), relevant: rel.has(key) };
  });
}
