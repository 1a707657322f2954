// bench:gradcache — GradCache's peak memory and speed against the plain step. The plain step is
// fit()'s (both towers, CLIPLoss and backward in one onnxruntime run, its activations growing with
// the batch, then AdamW in wasm); GradCache (src/train/grad_cache.ts) runs each tower a chunk
// at a time, forward only, then the loss on the whole batch, then forward and backward again per
// chunk, then AdamW: the same gradient with activations that grow with the chunk, for one extra
// forward pass of each tower. Random weights, texts cut to the batch's longest caption as fit()
// does, AdamW as fit() makes it (in place, NaN check), 2 threads. Every case runs in a fresh
// process, so each peak RSS is that case's own.
//
//   npm run bench:gradcache                                  ViT-B/32: plain batch 32; GradCache batch 64 and 256 in chunks of 16, 256 in chunks of 32
//   npm run bench:gradcache -- --config vitt864              the shipped base model's architecture (also: tiny)
//   npm run bench:gradcache -- --cases plain:32,gc:256:16    a subset: plain:BATCH, gc:BATCH:CHUNK
//   npm run bench:gradcache -- --iters 2,1                   timed and warm-up steps per case
//   npm run bench:gradcache -- --ort '{"memArena":false}'    onnxruntime session options for every case
//
// Columns: pairs/s (batch / median step wall time), CPU seconds per step (all threads), peak RSS
// of the process, and the RSS once the weights, AdamW's state and the sessions exist but before
// the first step (what no step can go below). Last line: one JSON object.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SessionOptions, Tensor } from '../src/runtime/session.js';
import { makeGradCacheStep, makeTrainStep } from '../src/train/train_step.js';
import { AdamW } from '../src/train/optim.js';
import { CONFIG_FILES, config, randomParams, tokenIds } from './clip_setup.js';
import { peakRssMB, randomArray, table, timeCpu, option, parseIters } from './util.js';

interface Case {
  kind: 'plain' | 'gc';
  batch: number;
  chunk?: number;
}
interface Result {
  pairs_per_s: number;
  step_s: number;
  cpu_s: number;
  peak_rss_mb: number;
  setup_rss_mb: number;
  tokens: number;
}

let ORT: Partial<SessionOptions> = {};
let ITERS: [number, number] = [2, 1];

const label = (c: Case) => (c.kind === 'plain' ? `plain:${c.batch}` : `gc:${c.batch}:${c.chunk}`);

function parseCases(s: string): Case[] {
  return s.split(',').map((x) => {
    const [kind, b, ch] = x.split(':');
    const batch = Number(b);
    const chunk = Number(ch);
    if (kind === 'plain' && Number.isInteger(batch) && batch > 1 && ch === undefined) return { kind, batch };
    if (kind === 'gc' && Number.isInteger(batch) && batch > 1 && Number.isInteger(chunk) && chunk > 0) return { kind, batch, chunk };
    throw new Error(`bad case '${x}': give plain:BATCH or gc:BATCH:CHUNK`);
  });
}

/** One case, in this process. */
async function runCase(cfgName: string, c: Case): Promise<Result> {
  const cfg = config(cfgName);
  const params = randomParams(cfg);
  const res = cfg.vision_cfg.image_size;
  const data: Record<string, Tensor> = {
    images: { dtype: 'float32', shape: [c.batch, 3, res, res], data: randomArray(c.batch * 3 * res * res, 1, 7) },
    texts: tokenIds(cfg, c.batch, true),
  };
  const opt = new AdamW(params, { lr: 1e-5, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2, inPlace: true, checkFinite: true });
  const so: SessionOptions = { threads: 2, ...ORT };
  // What fit() runs: the training run then the wasm AdamW, or GradCache's chunks then the same update.
  const ts = c.kind === 'plain' ? await makeTrainStep(cfg, opt, params, {}, so) : await makeGradCacheStep(cfg, opt, params, { chunk: c.chunk! }, so);
  if (ts.fallback) throw new Error(`the wasm optimizer could not run: ${ts.fallback}`);
  const step = () => ts.run(data);
  const release = () => ts.release();
  const setup = process.memoryUsage().rss / 2 ** 20;
  const t = await timeCpu(step, ITERS[1], ITERS[0]);
  const peak = peakRssMB();
  await release();
  await opt.dispose();
  return { pairs_per_s: c.batch / t.wallS, step_s: t.wallS, cpu_s: t.cpuS, peak_rss_mb: peak, setup_rss_mb: setup, tokens: data['texts']!.shape[1]! };
}

function runInChild(cfgName: string, c: Case): Result {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', cfgName, label(c), '--iters', ITERS.join(','), '--ort', JSON.stringify(ORT)];
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Result;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name: string) => option(args, name);
  const iters = opt('--iters');
  if (iters) {
    const [t, w] = parseIters(iters);
    ITERS = [t, w];
  }
  const ort = opt('--ort');
  if (ort) ORT = JSON.parse(ort) as Partial<SessionOptions>;
  if (args[0] === '--child') {
    console.log(JSON.stringify(await runCase(args[1]!, parseCases(args[2]!)[0]!)));
    return;
  }
  const cfgName = opt('--config') ?? 'vitb32';
  if (!(cfgName in CONFIG_FILES)) throw new Error(`--config must be one of ${Object.keys(CONFIG_FILES).join(', ')}`);
  const cases = parseCases(opt('--cases') ?? 'plain:32,gc:64:16,gc:256:16,gc:256:32');

  const rows: (string | number)[][] = [['case', 'batch', 'chunk', 'pairs/s', 's/step', 'CPU s/step', 'peak RSS MB', 'RSS before step MB']];
  const json: Record<string, unknown> = { bench: 'gradcache', config: cfgName, threads: 2, iters: { timed: ITERS[0], warmup: ITERS[1] }, ort: ORT };
  for (const c of cases) {
    const r = runInChild(cfgName, c);
    rows.push([c.kind === 'plain' ? 'plain step' : 'GradCache', c.batch, c.chunk ?? '—', r.pairs_per_s, r.step_s, r.cpu_s, Math.round(r.peak_rss_mb), Math.round(r.setup_rss_mb)]);
    json[label(c)] = {
      pairs_per_s: +r.pairs_per_s.toFixed(2),
      step_s: +r.step_s.toFixed(2),
      cpu_s_per_step: +r.cpu_s.toFixed(2),
      peak_rss_mb: Math.round(r.peak_rss_mb),
      setup_rss_mb: Math.round(r.setup_rss_mb),
      tokens: r.tokens,
    };
    console.error(`${label(c)}: ${r.pairs_per_s.toFixed(2)} pairs/s, peak RSS ${Math.round(r.peak_rss_mb)} MB`);
  }
  console.log(`${cfgName}, random weights, 2 threads, texts cut to the longest caption, AdamW in place`);
  console.log(table(rows));
  console.log(JSON.stringify(json));
}

await main();
