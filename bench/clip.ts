// bench:clip — clipfit against PyTorch 1.13 running OpenAI's CLIP code, side by side in one run on
// this machine (../shared/tools/torch-baseline; machines of one kind differ by 25% or more, so a
// ratio is only meaningful when both columns come from the same run). Random weights, the same
// token ids on both sides (the baseline's tokens.json), 2 threads each. Every case runs in a fresh
// process, clipfit's and PyTorch's alternately, so each peak RSS is that case's own.
//
//   npm run bench:clip                       ViT-B/32: encode image/text, train step at batch 16, 32, 64
//   npm run bench:clip -- --config tiny      the fixture's tiny CLIP (also: vitt864, the shipped base model)
//   npm run bench:clip -- --cases train:32   a subset (kind:batch, comma-separated)
//   npm run bench:clip -- --cases image_int8:32,text_int8:32   the int8 towers (model_int8.onnx's graph)
//   npm run bench:clip -- --iters 3,1        timed and warm-up iterations per case (a loaded machine)
//   npm run bench:clip -- --no-torch         clipfit's column only (e.g. to compare clipfit's own variants)
//   npm run bench:clip -- --cases matmul:32,train:32   the step's GFLOP/s against MatMul's on its shapes
//   npm run bench:clip -- --ort '{"memArena":false}'   onnxruntime session options for clipfit's train cases
//
// The train step is what fit() runs: both towers, CLIPLoss and backward in onnxruntime (memory
// patterns off), the gradients written into the wasm optimizer's memory and AdamW applied there;
// "train_ort" fuses AdamW into the onnxruntime run instead (the previous design, for comparison). PyTorch's train step runs the text tower on all 77
// positions; clipfit's "train" does the same work, "train_trim" cuts the texts to the batch's
// longest caption as fit() does (less work, so its ratio is reported apart). image_int8 / text_int8
// run the int8 towers (int8 weights baked in, activations quantized at run time) against PyTorch's
// fp32 encode, and print the cosine between their embeddings and clipfit's fp32 ones on the same
// inputs (random weights and pixels: a check that the int8 graph computes the same function, not a
// measure of accuracy on real images). Last line: one JSON object.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { towerOnnx } from '../src/models/clip/export.js';
import { buildImageEncoder, buildTextEncoder } from '../src/models/clip/graphs.js';
import { makeTrainStep } from '../src/train/train_step.js';
import { Session } from '../src/runtime/session.js';
import type { SessionOptions, Tensor } from '../src/runtime/session.js';
import { AdamW } from '../src/train/optim.js';
import { CONFIG_FILES, config, randomParams, tokenIds, trainStepFlops } from './clip_setup.js';
import { Graph } from '../src/onnx/graph.js';
import { matmul } from '../src/ops/index.js';
import { peakRssMB, randomArray, table, timeCpu, timeIt, option, parseIters } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASELINE = path.resolve(here, '../../shared/tools/torch-baseline');
/** Extra onnxruntime session options for the train cases (--ort JSON). */
let ORT_OPTIONS: Partial<SessionOptions> = {};
let TIMED: Record<string, [number, number]> = { image: [7, 2], text: [7, 2], image_int8: [7, 2], text_int8: [7, 2], train: [5, 2], train_ort: [5, 2], train_trim: [5, 2], matmul: [7, 2] };

type Kind = 'image' | 'text' | 'image_int8' | 'text_int8' | 'train' | 'train_ort' | 'train_trim' | 'matmul';
interface Case {
  kind: Kind;
  batch: number;
}
interface Result {
  items_per_s: number;
  peak_rss_mb: number;
  tokens?: number;
  /** clipfit's train cases: CPU seconds per step (all threads; unlike wall time, not inflated by other load on the machine). */
  cpu_s?: number;
  /** int8 cases: cosine between the int8 and fp32 embeddings of the batch. */
  cos_mean?: number;
  cos_min?: number;
}

function cosines(a: Float32Array, b: Float32Array, dim: number): { cos_mean: number; cos_min: number } {
  const c: number[] = [];
  for (let i = 0; i < a.length / dim; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let j = i * dim; j < (i + 1) * dim; j++) {
      ab += a[j]! * b[j]!;
      aa += a[j]! * a[j]!;
      bb += b[j]! * b[j]!;
    }
    c.push(ab / Math.sqrt(aa * bb));
  }
  return { cos_mean: +(c.reduce((x, y) => x + y, 0) / c.length).toFixed(5), cos_min: +Math.min(...c).toFixed(5) };
}

/** One case of clipfit's, in this process. */
async function runOurs(cfgName: string, c: Case): Promise<Result> {
  const cfg = config(cfgName);
  const params = randomParams(cfg);
  const feedsOf = (s: Session) => Object.fromEntries(s.inputNames.filter((n) => params.has(n)).map((n) => [n, params.tensor(n)]));
  const res = cfg.vision_cfg.image_size;
  const pixels: Tensor = { dtype: 'float32', shape: [c.batch, 3, res, res], data: randomArray(c.batch * 3 * res * res, 1, 7) };
  const [timed, warm] = TIMED[c.kind]!;
  if (c.kind === 'image_int8' || c.kind === 'text_int8') {
    const tower = c.kind === 'image_int8' ? 'clip-vision' : 'clip-text';
    const s = await Session.fromBytes(towerOnnx(cfg, tower, (n) => params.view(n), false, { int8: true }), tower, { threads: 2 });
    const feeds: Record<string, Tensor> = tower === 'clip-vision' ? { pixel_values: pixels } : { input_ids: tokenIds(cfg, c.batch, false) };
    const t = await timeIt(() => s.run(feeds), warm, timed);
    const rss = peakRssMB();
    const q = (await s.run(feeds))[s.outputNames[0]!]!.data as Float32Array;
    await s.release();
    const f32 = await Session.fromGraph((tower === 'clip-vision' ? buildImageEncoder(cfg) : buildTextEncoder(cfg)).graph, { threads: 2 });
    const r = (await f32.run({ ...feedsOf(f32), ...feeds }))[f32.outputNames[0]!]!.data as Float32Array;
    return { items_per_s: c.batch / t, peak_rss_mb: rss, tokens: tower === 'clip-text' ? feeds['input_ids']!.shape[1]! : undefined, ...cosines(q, r, cfg.embed_dim) };
  }
  if (c.kind === 'matmul') {
    // onnxruntime's MatMul on the train step's dense shapes at this batch (both towers' QKV, out,
    // MLP in and out): the rate the step's GFLOP/s is measured against. items_per_s = GFLOP/s.
    const v = cfg.vision_cfg;
    const t = cfg.text_cfg;
    const ni = c.batch * ((v.image_size / v.patch_size) ** 2 + 1);
    const nt = c.batch * t.context_length;
    const shapes: [number, number, number][] = [
      [ni, v.width, 3 * v.width], [ni, v.width, v.width], [ni, v.width, v.width * v.mlp_ratio], [ni, v.width * v.mlp_ratio, v.width],
      [nt, t.width, 3 * t.width], [nt, t.width, t.width], [nt, t.width, t.width * t.mlp_ratio], [nt, t.width * t.mlp_ratio, t.width],
    ];
    let time = 0;
    let flops = 0;
    for (const [m, k, n] of shapes) {
      const g = new Graph(`matmul_${m}x${k}x${n}`);
      g.output(matmul(g.input('a', 'float32', [m, k]), g.input('b', 'float32', [k, n])));
      const s = await Session.fromGraph(g, { threads: 2 });
      const f = { a: { dtype: 'float32' as const, shape: [m, k], data: randomArray(m * k, 1, 7) }, b: { dtype: 'float32' as const, shape: [k, n], data: randomArray(k * n, 1, 8) } };
      time += await timeIt(() => s.run(f), warm, timed);
      flops += 2 * m * k * n;
      await s.release();
    }
    return { items_per_s: flops / time / 1e9, peak_rss_mb: peakRssMB() };
  }
  if (c.kind === 'image') {
    const s = await Session.fromGraph(buildImageEncoder(cfg).graph, { threads: 2 });
    const t = await timeIt(() => s.run({ ...feedsOf(s), pixel_values: pixels }), warm, timed);
    return { items_per_s: c.batch / t, peak_rss_mb: peakRssMB() };
  }
  if (c.kind === 'text') {
    const s = await Session.fromGraph(buildTextEncoder(cfg).graph, { threads: 2 });
    const ids = tokenIds(cfg, c.batch, false);
    const t = await timeIt(() => s.run({ ...feedsOf(s), input_ids: ids }), warm, timed);
    return { items_per_s: c.batch / t, peak_rss_mb: peakRssMB(), tokens: ids.shape[1]! };
  }
  const opt = new AdamW(params, { lr: 1e-3, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2, inPlace: true, checkFinite: true });
  const step = await makeTrainStep(cfg, opt, params, {}, { threads: 2, ...ORT_OPTIONS }, c.kind === 'train_ort' ? 'onnxruntime' : 'wasm');
  if (step.fallback) throw new Error(`the wasm optimizer could not run: ${step.fallback}`);
  const data = { images: pixels, texts: tokenIds(cfg, c.batch, c.kind === 'train_trim') };
  const t = await timeCpu(() => step.run(data), warm, timed);
  return { items_per_s: c.batch / t.wallS, peak_rss_mb: peakRssMB(), tokens: data.texts.shape[1]!, cpu_s: +t.cpuS.toFixed(3) };
}

function torchPresent(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
    return existsSync(path.join(BASELINE, 'run.sh'));
  } catch {
    return false;
  }
}

function runTorch(cfgName: string, c: Case): Result {
  // The int8 cases are measured against PyTorch's fp32 encode.
  const kind = c.kind === 'train_trim' || c.kind === 'train_ort' ? 'train' : c.kind === 'image_int8' ? 'image' : c.kind === 'text_int8' ? 'text' : c.kind;
  const [timed, warm] = TIMED[c.kind]!;
  // The baseline (BASELINE.md) was measured with OPENBLAS_CORETYPE=Haswell: OpenBLAS 0.3.21 does not
  // know this Zen 5 CPU and otherwise falls back to generic kernels, about 3× slower (measured here).
  const env = { ...process.env, OPENBLAS_CORETYPE: process.env['OPENBLAS_CORETYPE'] ?? 'Haswell' };
  const out = execFileSync(path.join(BASELINE, 'run.sh'), [`${cfgName} ${kind} ${c.batch} ${timed} ${warm}`], { encoding: 'utf8', env });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Result;
}

function runOursInChild(cfgName: string, c: Case): Result {
  const [t, w] = TIMED[c.kind]!;
  const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', cfgName, `${c.kind}:${c.batch}`, '--iters', `${t},${w}`, '--ort', JSON.stringify(ORT_OPTIONS)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Result;
}

function parseCases(s: string): Case[] {
  return s.split(',').map((x) => {
    const [kind, batch] = x.split(':');
    if (!kind || !(kind in TIMED) || !Number(batch)) throw new Error(`bad case '${x}': give kind:batch with kind one of ${Object.keys(TIMED).join(', ')}`);
    return { kind: kind as Kind, batch: Number(batch) };
  });
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name: string) => option(args, name);
  const iters = opt('--iters');
  if (iters) {
    const [t, w] = parseIters(iters);
    TIMED = Object.fromEntries(Object.keys(TIMED).map((k) => [k, [t, w]]));
  }
  const ort = opt('--ort');
  if (ort) ORT_OPTIONS = JSON.parse(ort) as Partial<SessionOptions>;
  if (args[0] === '--child') {
    console.log(JSON.stringify(await runOurs(args[1]!, parseCases(args[2]!)[0]!)));
    return;
  }
  const cfgName = opt('--config') ?? 'vitb32';
  if (!(cfgName in CONFIG_FILES)) throw new Error(`--config must be one of ${Object.keys(CONFIG_FILES).join(', ')}`);
  const defaults = cfgName === 'vitb32' ? 'image:32,text:32,matmul:32,train:16,train:32,train:64,train_trim:32' : cfgName === 'tiny' ? 'image:64,text:64,train:64' : 'image:256,text:256,train:128';
  const cases = parseCases(opt('--cases') ?? defaults);
  const torch = !args.includes('--no-torch') && torchPresent();
  if (!torch && !args.includes('--no-torch')) console.log(`PyTorch baseline absent (run ${path.join(BASELINE, 'install.sh')} once): clipfit's figures only, no ratios.`);

  const rows: (string | number)[][] = [['case', 'batch', 'PyTorch /s', 'clipfit /s', 'ratio', 'PyTorch RSS MB', 'clipfit RSS MB', 'RSS ratio']];
  const json: Record<string, unknown> = { bench: 'clip', config: cfgName, pytorch: torch };
  let mmRate: number | null = null;
  const gflops: (string | number)[][] = [['train case', 'batch', 'tokens', 'GFLOP/step', 'GFLOP/s', 'MatMul GFLOP/s', 'of MatMul']];
  for (const c of cases) {
    const ours = runOursInChild(cfgName, c);
    if (c.kind === 'matmul') {
      mmRate = ours.items_per_s;
      json[`matmul_b${c.batch}`] = { gflops: +mmRate.toFixed(1) };
      console.error(`matmul_b${c.batch}: onnxruntime MatMul ${mmRate.toFixed(1)} GFLOP/s on the step's shapes`);
      continue;
    }
    const ref = torch ? runTorch(cfgName, c) : null;
    if (ours.tokens !== undefined && c.kind.startsWith('train')) {
      const f = trainStepFlops(config(cfgName), c.batch, ours.tokens) / 1e9;
      const rate = (f * ours.items_per_s) / c.batch;
      gflops.push([c.kind, c.batch, ours.tokens, f, rate, mmRate ?? '—', mmRate ? rate / mmRate : '—']);
    }
    const cos = ours.cos_mean !== undefined ? `, int8 vs fp32 cos mean ${ours.cos_mean} min ${ours.cos_min}` : '';
    const label =
      c.kind === 'text' || c.kind === 'text_int8'
        ? `encode_text${c.kind === 'text_int8' ? ' int8' : ''} (${ours.tokens} tokens)`
        : c.kind === 'image' || c.kind === 'image_int8'
          ? `encode_image${c.kind === 'image_int8' ? ' int8' : ''}`
          : c.kind === 'train' || c.kind === 'train_ort'
            ? `train step (${ours.tokens} tokens${c.kind === 'train_ort' ? ', update fused in onnxruntime' : ''})`
            : `train step, texts cut (${ours.tokens} tokens) vs 77`;
    const ratio = ref ? ours.items_per_s / ref.items_per_s : NaN;
    const rssRatio = ref ? ours.peak_rss_mb / ref.peak_rss_mb : NaN;
    rows.push([label, c.batch, ref ? ref.items_per_s : '—', ours.items_per_s, ref ? ratio : '—', ref ? Math.round(ref.peak_rss_mb) : '—', Math.round(ours.peak_rss_mb), ref ? rssRatio : '—']);
    const key = `${c.kind}_b${c.batch}`;
    json[key] = {
      clipfit_per_s: +ours.items_per_s.toFixed(2),
      clipfit_rss_mb: Math.round(ours.peak_rss_mb),
      ...(ours.cpu_s !== undefined ? { clipfit_cpu_s_per_step: ours.cpu_s } : {}),
      ...(ours.cos_mean !== undefined ? { int8_vs_fp32_cos_mean: ours.cos_mean, int8_vs_fp32_cos_min: ours.cos_min } : {}),
      ...(ref ? { pytorch_per_s: ref.items_per_s, pytorch_rss_mb: Math.round(ref.peak_rss_mb), ratio: +ratio.toFixed(2), rss_ratio: +rssRatio.toFixed(2) } : {}),
    };
    console.error(`${key}: clipfit ${ours.items_per_s.toFixed(2)}/s${ours.cpu_s !== undefined ? ` (${ours.cpu_s} CPU s/step)` : ''}${ref ? `, PyTorch ${ref.items_per_s}/s` : ''}${cos}`);
  }
  console.log(`${cfgName}, random weights, 2 threads each, fp32 (int8 cases: clipfit int8 against PyTorch fp32)`);
  console.log(table(rows));
  if (gflops.length > 1) {
    console.log('train steps against onnxruntime MatMul on the same shapes (a matmul:B case before them measures it)');
    console.log(table(gflops));
  }
  console.log(JSON.stringify(json));
}

await main();
