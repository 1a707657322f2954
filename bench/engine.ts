// bench:engine — one pre-LN transformer block at ViT-B/32 size (32 images × 50 tokens, width 768,
// 12 heads, MLP 3072, QuickGELU): forward and forward+backward through our autodiff in
// onnxruntime, against onnxruntime's plain MatMul at the block's GEMM sizes, measured in the
// same run. Last line: one JSON object.

import { grad } from '../src/autodiff/grad.js';
import { Graph } from '../src/onnx/graph.js';
import { matmul, mul, reduceSum } from '../src/ops/index.js';
import { Session, defaultThreads } from '../src/runtime/session.js';
import type { Tensor } from '../src/runtime/session.js';
import { blockParams, residualBlock } from '../src/models/clip/transformer.js';
import { peakRssMB, randomArray, table, timeIt } from './util.js';

const B = 32, S = 50, W = 768, H = 12, MLP = 3072;
const N = B * S;
const threads = Number(process.env.THREADS ?? defaultThreads());
const iters = Number(process.env.ITERS ?? 7);

// GEMM FLOPs of the block: in_proj, out_proj, c_fc, c_proj, plus the two attention products.
const denseFlops = 2 * N * (W * 3 * W + W * W + W * MLP + MLP * W);
const attnFlops = 2 * 2 * B * H * S * S * (W / H);
const fwdFlops = denseFlops + attnFlops;
const fwdBwdFlops = 3 * fwdFlops;

function buildBlock() {
  const g = new Graph('vit_b32_block');
  const x = g.input('x', 'float32', ['batch', S, W]);
  const p = blockParams(g, 'block', W, MLP / W);
  const y = residualBlock(x, p, { heads: H, quickGelu: true });
  return { g, x, y };
}

async function main() {
  // Forward-only session.
  const fwd = buildBlock();
  const fwdSession = await Session.fromGraph(fwd.g, { threads }, { outputs: [fwd.y] });
  // Forward+backward: loss = Σ y ⊙ dY, gradients for every parameter and for x.
  const tr = buildBlock();
  const dy = tr.g.input('dy', 'float32', ['batch', S, W]);
  const loss = reduceSum(mul(tr.y, dy));
  const wrt = [...tr.g.params, tr.x];
  const grads = grad(loss, wrt);
  tr.g.output(loss, ...grads);
  const trainSession = await Session.fromGraph(tr.g, { threads });

  const feeds: Record<string, Tensor> = {};
  let seed = 1;
  for (const p of fwd.g.params) {
    const shape = p.shape as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    const isGain = p.name.endsWith('ln_1.weight') || p.name.endsWith('ln_2.weight');
    const data = isGain ? new Float32Array(n).fill(1) : randomArray(n, shape.length === 1 ? 0.02 : 0.036, seed++);
    feeds[p.name] = { dtype: 'float32', shape, data };
  }
  feeds['x'] = { dtype: 'float32', shape: [B, S, W], data: randomArray(N * W, 1, 100) };
  const trainFeeds = { ...feeds, dy: { dtype: 'float32' as const, shape: [B, S, W], data: randomArray(N * W, 1e-3, 101) } };

  const tFwd = await timeIt(() => fwdSession.run(feeds), 2, iters);
  const tTrain = await timeIt(() => trainSession.run(trainFeeds), 2, iters);

  // Plain MatMul at the block's dense sizes, same thread count, one session per shape.
  const shapes: [number, number, number][] = [
    [N, W, 3 * W],
    [N, W, W],
    [N, W, MLP],
    [N, MLP, W],
  ];
  const mmRows: (string | number)[][] = [];
  let mmTime = 0;
  let mmFlops = 0;
  for (const [m, k, n] of shapes) {
    const g = new Graph(`matmul_${m}x${k}x${n}`);
    const a = g.input('a', 'float32', [m, k]);
    const b = g.input('b', 'float32', [k, n]);
    g.output(matmul(a, b));
    const s = await Session.fromGraph(g, { threads });
    const f = {
      a: { dtype: 'float32' as const, shape: [m, k], data: randomArray(m * k, 1, 7) },
      b: { dtype: 'float32' as const, shape: [k, n], data: randomArray(k * n, 1, 8) },
    };
    const t = await timeIt(() => s.run(f), 3, iters + 4);
    const fl = 2 * m * k * n;
    mmRows.push([`MatMul ${m}×${k}×${n}`, t * 1e3, fl / t / 1e9]);
    mmTime += t;
    mmFlops += fl;
    await s.release();
  }
  const mmRate = mmFlops / mmTime / 1e9;
  const fwdRate = fwdFlops / tFwd / 1e9;
  const trainRate = fwdBwdFlops / tTrain / 1e9;
  const rows: (string | number)[][] = [
    ['case', 'ms', 'GFLOP/s'],
    ['block forward', tFwd * 1e3, fwdRate],
    ['block forward+backward', tTrain * 1e3, trainRate],
    ...mmRows,
    ['MatMul, the four sizes together', mmTime * 1e3, mmRate],
  ];
  console.log(`threads ${threads}, batch ${B}×${S} tokens, width ${W}, heads ${H}, MLP ${MLP}, QuickGELU`);
  console.log(table(rows));
  const result = {
    bench: 'engine',
    threads,
    forward_ms: +(tFwd * 1e3).toFixed(2),
    forward_backward_ms: +(tTrain * 1e3).toFixed(2),
    forward_gflops: +fwdRate.toFixed(1),
    forward_backward_gflops: +trainRate.toFixed(1),
    matmul_gflops: +mmRate.toFixed(1),
    forward_ratio: +(fwdRate / mmRate).toFixed(3),
    forward_backward_ratio: +(trainRate / mmRate).toFixed(3),
    peak_rss_mb: Math.round(peakRssMB()),
  };
  console.log(`forward+backward runs at ${(result.forward_backward_ratio * 100).toFixed(1)}% of MatMul's rate (target ≥ 75%)`);
  console.log(JSON.stringify(result));
}

await main();
