// bench:clip — random-init ViT-B/32 (no download): encode_image images/s and encode_text texts/s
// at batch 32, and the train step (both towers, CLIPLoss, backward, AdamW fused into the same
// onnxruntime run) pairs/s at batch 16 and 32 with product captions. Each case runs in a fresh
// process, as the PyTorch baseline did, so its peak RSS is its own. Last line: one JSON object.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { paramShapes, parseModelConfig } from '../src/models/clip/config.js';
import type { ClipModelCfg } from '../src/models/clip/config.js';
import { buildImageEncoder, buildTextEncoder, buildTrainGraph } from '../src/models/clip/graphs.js';
import { ClipTokenizer } from '../src/models/clip/tokenizer.js';
import { ParamStore } from '../src/runtime/params.js';
import { Session } from '../src/runtime/session.js';
import type { Tensor } from '../src/runtime/session.js';
import { AdamW } from '../src/train/optim.js';
import { peakRssMB, randomArray, table, timeIt } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BPE = path.resolve(here, '../../shared/fixtures/clip-reference/bpe_simple_vocab_16e6.txt.gz');
const PYTORCH = { encode_image: 23, encode_text: 30, train_b16: 3.9, train_b32: 4.0, train_rss_b32_mb: 5700 };

const CAPTIONS = [
  "Women's Slim Fit High-Waist Denim Jeans - Dark Blue, Size 28/30",
  'Classic leather ankle boots with side zip, black',
  "Men's cotton crew-neck t-shirt, pack of 3, white/grey/navy",
  'Floral print midi dress with puff sleeves and smocked waist',
  'Stainless steel insulated water bottle 750 ml, matte green',
  'Wireless noise-cancelling over-ear headphones with 30h battery',
  'Kids rain jacket, waterproof, reflective strips, yellow',
  'Oversized wool blend coat with notch lapels, camel',
  'Running shoes with breathable mesh upper and cushioned sole',
  'Silk scarf with paisley pattern, 90 x 90 cm',
  'Ceramic coffee mug set of 4, speckled glaze',
  'Linen button-down shirt, relaxed fit, sky blue',
  'Faux leather crossbody bag with adjustable strap, tan',
  'High-rise yoga leggings with side pockets, charcoal',
  'Hooded puffer vest, lightweight, packable, olive',
  "Cashmere crew-neck sweater, women's, oatmeal",
];

function config(): ClipModelCfg {
  const file = path.resolve(here, '../src/models/clip/configs/ViT-B-32.json');
  return { ...parseModelConfig(JSON.parse(readFileSync(file, 'utf8')), file), quick_gelu: true };
}

function randomParams(cfg: ClipModelCfg): ParamStore {
  const store = ParamStore.fromShapes(paramShapes(cfg));
  let seed = 1;
  for (const e of store.entries) {
    const v = store.view(e.name);
    if (/ln_|ln_final|ln_pre|ln_post/.test(e.name) && e.name.endsWith('weight')) v.fill(1);
    else if (e.name === 'logit_scale') v[0] = Math.log(1 / 0.07);
    else v.set(randomArray(v.length, e.shape.length === 1 ? 0.02 : 0.02, seed++));
  }
  return store;
}

async function texts(batch: number, full: boolean): Promise<Tensor> {
  const captions = Array.from({ length: batch }, (_, i) => CAPTIONS[i % CAPTIONS.length]!);
  let ids: Int32Array;
  let eot: number[];
  if (existsSync(BPE)) {
    const tok = await ClipTokenizer.fromBpeGz(BPE);
    const r = tok.tokenize(captions);
    ids = r.ids;
    eot = r.eotIndex;
  } else {
    // No vocabulary at hand: stand-in ids with the same lengths as real product captions (12–22 tokens).
    ids = new Int32Array(batch * 77);
    eot = captions.map((c, i) => {
      const n = 10 + (c.length % 12);
      ids[i * 77] = 49406;
      for (let j = 1; j <= n; j++) ids[i * 77 + j] = 1000 + ((i * 37 + j * 11) % 40000);
      ids[i * 77 + n + 1] = 49407;
      return n + 1;
    });
  }
  const len = full ? 77 : Math.max(...eot) + 1;
  const out = new BigInt64Array(batch * len);
  for (let i = 0; i < batch; i++) for (let j = 0; j < len; j++) out[i * len + j] = BigInt(ids[i * 77 + j]!);
  return { dtype: 'int64', shape: [batch, len], data: out };
}

/**
 * The train step runs as fit() runs it: memory patterns off (measured at batch 32: 4.9 s and 7.0 GB
 * against 5.3 s and 9.0 GB with them). BENCH_ARENA=0 also turns the CPU arena off, BENCH_PATTERN=1
 * the patterns back on, for comparison.
 */
function sessionOpts() {
  const o: { memArena?: boolean; memPattern?: boolean } = { memPattern: process.env['BENCH_PATTERN'] === '1' };
  if (process.env['BENCH_ARENA'] === '0') o.memArena = false;
  return o;
}

async function runCase(name: string): Promise<Record<string, number>> {
  const cfg = config();
  const params = randomParams(cfg);
  const feedsOf = (s: Session) => Object.fromEntries(s.inputNames.filter((n) => params.has(n)).map((n) => [n, params.tensor(n)]));
  if (name === 'encode_image') {
    const s = await Session.fromGraph(buildImageEncoder(cfg).graph);
    const pixels: Tensor = { dtype: 'float32', shape: [32, 3, 224, 224], data: randomArray(32 * 3 * 224 * 224, 1, 7) };
    const t = await timeIt(() => s.run({ ...feedsOf(s), pixel_values: pixels }), 2, 7);
    return { seconds: t, per_s: 32 / t, rss_mb: peakRssMB() };
  }
  if (name === 'encode_text' || name === 'encode_text_77') {
    const s = await Session.fromGraph(buildTextEncoder(cfg).graph);
    const ids = await texts(32, name === 'encode_text_77');
    const t = await timeIt(() => s.run({ ...feedsOf(s), input_ids: ids }), 2, 7);
    return { seconds: t, per_s: 32 / t, tokens: ids.shape[1]!, rss_mb: peakRssMB() };
  }
  const batch = name.endsWith('32') ? 32 : 16;
  const tg = buildTrainGraph(cfg);
  const opt = new AdamW(params, { lr: 1e-3, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2, inPlace: true });
  const update = opt.build(tg.graph, tg.trainable, tg.grads);
  const s = await Session.fromGraph(tg.graph, sessionOpts());
  const data = {
    images: { dtype: 'float32' as const, shape: [batch, 3, 224, 224], data: randomArray(batch * 3 * 224 * 224, 1, 9) },
    texts: await texts(batch, false),
  };
  const t = await timeIt(() => opt.runStep(s, update, params, data), 2, 5);
  return { seconds: t, per_s: batch / t, tokens: data.texts.shape[1]!, rss_mb: peakRssMB() };
}

async function main() {
  const only = process.argv[2];
  if (only) {
    console.log(JSON.stringify(await runCase(only)));
    return;
  }
  const cases = ['encode_image', 'encode_text', 'encode_text_77', 'train_b16', 'train_b32'];
  const res: Record<string, Record<string, number>> = {};
  for (const c of cases) {
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), c], { encoding: 'utf8', maxBuffer: 1 << 20 });
    res[c] = JSON.parse(out.trim().split('\n').at(-1)!);
    console.error(`${c}: ${res[c]!['per_s']!.toFixed(2)}/s`);
  }
  const r = (c: string) => res[c]!;
  console.log(`ViT-B/32, random init, ${existsSync(BPE) ? 'CLIP BPE' : 'stand-in ids'} for ${CAPTIONS.length} product captions`);
  console.log(
    table([
      ['case', 'batch', 's/iter', 'per s', 'PyTorch per s', 'ratio', 'peak RSS MB'],
      ['encode_image', 32, r('encode_image')['seconds']!, r('encode_image')['per_s']!, PYTORCH.encode_image, r('encode_image')['per_s']! / PYTORCH.encode_image, Math.round(r('encode_image')['rss_mb']!)],
      [`encode_text (${r('encode_text')['tokens']} tokens)`, 32, r('encode_text')['seconds']!, r('encode_text')['per_s']!, PYTORCH.encode_text, r('encode_text')['per_s']! / PYTORCH.encode_text, Math.round(r('encode_text')['rss_mb']!)],
      ['encode_text (all 77 tokens)', 32, r('encode_text_77')['seconds']!, r('encode_text_77')['per_s']!, PYTORCH.encode_text, r('encode_text_77')['per_s']! / PYTORCH.encode_text, Math.round(r('encode_text_77')['rss_mb']!)],
      ['train step', 16, r('train_b16')['seconds']!, r('train_b16')['per_s']!, PYTORCH.train_b16, r('train_b16')['per_s']! / PYTORCH.train_b16, Math.round(r('train_b16')['rss_mb']!)],
      ['train step', 32, r('train_b32')['seconds']!, r('train_b32')['per_s']!, PYTORCH.train_b32, r('train_b32')['per_s']! / PYTORCH.train_b32, Math.round(r('train_b32')['rss_mb']!)],
    ]),
  );
  console.log('targets: train ≥ 3× PyTorch pairs/s, encoding ≥ 2.5× images/s and texts/s, peak RSS ≤ PyTorch (5.7 GB at batch 32)');
  const json = {
    bench: 'clip',
    model: 'ViT-B/32',
    encode_image_per_s: +r('encode_image')['per_s']!.toFixed(2),
    encode_text_per_s: +r('encode_text')['per_s']!.toFixed(2),
    encode_text_tokens: r('encode_text')['tokens'],
    encode_text_77_per_s: +r('encode_text_77')['per_s']!.toFixed(2),
    train_b16_pairs_per_s: +r('train_b16')['per_s']!.toFixed(2),
    train_b32_pairs_per_s: +r('train_b32')['per_s']!.toFixed(2),
    ratio_encode_image: +(r('encode_image')['per_s']! / PYTORCH.encode_image).toFixed(2),
    ratio_encode_text: +(r('encode_text')['per_s']! / PYTORCH.encode_text).toFixed(2),
    ratio_encode_text_77: +(r('encode_text_77')['per_s']! / PYTORCH.encode_text).toFixed(2),
    ratio_train_b16: +(r('train_b16')['per_s']! / PYTORCH.train_b16).toFixed(2),
    ratio_train_b32: +(r('train_b32')['per_s']! / PYTORCH.train_b32).toFixed(2),
    peak_rss_mb: Math.round(Math.max(...Object.values(res).map((x) => x['rss_mb']!))),
    peak_rss_train_b32_mb: Math.round(r('train_b32')['rss_mb']!),
  };
  console.log(JSON.stringify(json));
}

await main();
