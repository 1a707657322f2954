// `npm run pretrain:base`: clipfit trains its shipped base CLIP from scratch on icon sets.
//   1. the icon corpus (rasterised once, kept), 2. a BPE vocabulary trained on its captions,
//   3. a freshly initialised ViT-T-8-64, 4. fit() with epoch checkpoints in the work folder, so a
//   rerun after an interruption resumes from the last finished epoch, 5. the model folder to ship.
// Every step skips what an earlier run already finished.

import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildIconCorpus } from '../datasets/icons/corpus.js';
import type { IconCorpus } from '../datasets/icons/corpus.js';
import { loadCsv } from '../../data/csv.js';
import { storeHome } from '../../data/store.js';
import { trainBpe, writeVocabMerges } from '../../models/clip/text/bpe_train.js';
import { createModelFolder } from '../../models/clip/weights/init.js';
import { defaultRegistry } from '../../models/clip/weights/registry.js';
import { fit } from '../../train/fit.js';
import type { FitOptions, FitResult } from '../../train/fit_types.js';

export const BASE_ARCHITECTURE = 'ViT-T-8-64';
export const BASE_TAG = 'icons';

/** The recipe; the model card quotes it. */
export const BASE_RECIPE = {
  architecture: BASE_ARCHITECTURE,
  imageSize: 64,
  bpeMerges: 3582, // 512 byte symbols + 3,582 merges + 2 specials = the config's 4,096 ids
  epochs: 5,
  batchSize: 256,
  // 1e-3 (200 warmup steps) left the chance-level plateau after ~200 steps, then collapsed back to
  // chance right after the peak; 5e-4 with gradient clipping is the stable setting.
  learningRate: 5e-4,
  warmupSteps: 100,
  maxGradNorm: 1.0,
  weightDecay: 0.1,
  betas: [0.9, 0.98] as [number, number],
  eps: 1e-6,
  seed: 0,
  heldOutPercent: 3,
} as const;

export interface PretrainOptions {
  /** Work folder (default $CLIPFIT_HOME/pretrain/ViT-T-8-64-icons). */
  work?: string;
  /** Overrides for a short trial run. */
  epochs?: number;
  sets?: readonly string[];
  /** Another registered architecture, for a trial run (its image size sets the corpus's). */
  architecture?: string;
  log?(message: string): void;
}

export interface PretrainResult {
  work: string;
  corpus: IconCorpus;
  fit: FitResult;
  /** Wall seconds summed over every session of this pretraining, resumed ones included. */
  wallS: number;
}

export function defaultPretrainWork(): string {
  return path.join(storeHome(), 'pretrain', `${BASE_ARCHITECTURE}-${BASE_TAG}`);
}

interface Sessions {
  sessions: { start: string; end?: string; wallS?: number }[];
}

export async function pretrainBase(opts: PretrainOptions = {}): Promise<PretrainResult> {
  const log = opts.log ?? ((m: string) => console.log(m));
  const work = path.resolve(opts.work ?? defaultPretrainWork());
  await fsp.mkdir(work, { recursive: true });
  const r = BASE_RECIPE;
  const sessionsFile = path.join(work, 'sessions.json');
  const sessions: Sessions = existsSync(sessionsFile) ? (JSON.parse(readFileSync(sessionsFile, 'utf8')) as Sessions) : { sessions: [] };
  const started = Date.now();
  const me = { start: new Date(started).toISOString() } as Sessions['sessions'][number];
  sessions.sessions.push(me);
  const saveSessions = async (): Promise<void> => {
    me.end = new Date().toISOString();
    me.wallS = (Date.now() - started) / 1000;
    await fsp.writeFile(sessionsFile, JSON.stringify(sessions, null, 1));
  };
  await saveSessions();

  const architecture = opts.architecture ?? r.architecture;
  const imageSize = defaultRegistry().get(architecture).cfg.vision_cfg.image_size;
  log(`corpus → ${path.join(work, 'corpus')}`);
  const corpus = await buildIconCorpus({
    out: path.join(work, 'corpus'),
    size: imageSize,
    heldOutPercent: r.heldOutPercent,
    ...(opts.sets ? { sets: opts.sets } : {}),
    onProgress: (d, t) => d % 5000 === 0 && log(`  rasterised ${d}/${t}`),
  });
  log(`  ${corpus.pairs.train} train pairs (${corpus.captions.train} captions), ${corpus.pairs.heldOut} held-out pairs (${corpus.captions.heldOut} captions)`);

  const tokDir = path.join(work, 'tokenizer');
  if (!existsSync(path.join(tokDir, 'merges.txt'))) {
    const { docs } = await loadCsv(corpus.train);
    const captions = [...docs].map((d) => [...d.chunks].find((c) => c.modality === 'text')?.text ?? '');
    const bpe = trainBpe(captions, { merges: r.bpeMerges });
    await writeVocabMerges(tokDir, bpe);
    log(`BPE: ${bpe.merges.length} merges, ${Object.keys(bpe.vocab).length} ids`);
  }

  const initDir = path.join(work, 'init');
  if (!existsSync(path.join(initDir, 'open_clip_model.safetensors'))) {
    await createModelFolder(initDir, architecture, { kind: 'vocab-merges', vocab: path.join(tokDir, 'vocab.json'), merges: path.join(tokDir, 'merges.txt') }, r.seed);
  }

  const lossLog = path.join(work, 'loss.csv');
  if (!existsSync(lossLog)) await fsp.writeFile(lossLog, 'epoch,step,steps,loss,elapsed_s\n');
  const fitOptions: FitOptions = {
    model: initDir,
    trainData: corpus.train,
    epochs: opts.epochs ?? r.epochs,
    batchSize: r.batchSize,
    learningRate: r.learningRate,
    optimizer: 'adamw',
    optimizerOptions: { betas: r.betas, eps: r.eps, weightDecay: r.weightDecay },
    scheduler: 'cosine',
    schedulerOptions: { warmupSteps: r.warmupSteps },
    labelAwareLoss: true,
    maxGradNorm: r.maxGradNorm,
    seed: r.seed,
    numWorkers: 1,
    pixelCacheMB: 4096,
    callbacks: [{ type: 'EvaluationCallback', queryData: corpus.heldOut, indexData: corpus.heldOut, limit: 10 }],
    workDir: path.join(work, 'fit'),
  };
  let lastLogged = 0;
  const result = await fit(fitOptions, {
    log: (level, m) => log(`[${level}] ${m}`),
    progress: (p) => {
      if (p.step % 10 === 0 || p.step === p.steps) {
        void fsp.appendFile(lossLog, `${p.epoch},${p.step},${p.steps},${p.loss.toFixed(5)},${p.elapsedS.toFixed(1)}\n`);
        if (Date.now() - lastLogged > 30_000 || p.step === p.steps) {
          lastLogged = Date.now();
          log(`epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} (${((p.step * r.batchSize) / p.elapsedS).toFixed(1)} pairs/s)`);
        }
      }
    },
    metrics: (epoch, values) => log(`epoch ${epoch} metrics ${JSON.stringify(values)}`),
  });
  await saveSessions();
  const wallS = sessions.sessions.reduce((s, x) => s + (x.wallS ?? 0), 0);
  log(`done: artifact ${result.artifactDir}, ${wallS.toFixed(0)} s of wall time in ${sessions.sessions.length} session(s)`);
  return { work, corpus, fit: result, wallS };
}
