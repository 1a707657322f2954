// bench/profile_train.ts — where the train step's time goes, per op, from onnxruntime's own profiler. Builds
// the step fit() runs (both towers, CLIPLoss, backward in onnxruntime; AdamW in wasm, or with
// --fused in the same onnxruntime run), runs it `--warm` times unprofiled-in-effect, then once more,
// and sums the node events of that last run by op type and by phase (forward, backward, optimizer;
// the phase is read from the node's name: autodiff names backward nodes `…_Grad/…`, the update
// `optim/…`; onnxruntime's fusions keep the first fused node's name). Outside the run: the wasm
// update and the gradients' copy out of onnxruntime (wall time less the run's). Random weights,
// 77 tokens as bench:clip's "train" case.
//
//   node --import tsx bench/profile_train.ts [--config vitb32|tiny|vitt864] [--batch 32] [--top 10] [--threads 2] [--fused]
//
// Last line: one JSON object.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { paramShapes, parseModelConfig } from '../src/models/clip/config.js';
import { makeTrainStep } from '../src/train/train_step.js';
import { AdamW } from '../src/train/optim.js';
import { ParamStore } from '../src/runtime/params.js';
import { randomArray, table } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CONFIG_FILES: Record<string, string> = { vitb32: 'ViT-B-32.json', tiny: 'tiny-test.json', vitt864: 'ViT-T-8-64.json' };

interface TraceEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

function phaseOf(node: string): 'optimizer' | 'backward' | 'forward' {
  if (node.startsWith('optim/') || node.includes('write_barrier') || node.startsWith('clip_grad_norm')) return 'optimizer';
  if (node.includes('_Grad') || node.includes('_accum') || node.includes('_grad')) return 'backward';
  return 'forward';
}

async function main() {
  const args = process.argv.slice(2);
  const cfgName = arg(args, '--config', 'vitb32');
  const batch = Number(arg(args, '--batch', '32'));
  const top = Number(arg(args, '--top', '10'));
  const threads = Number(arg(args, '--threads', '2'));
  const warm = Number(arg(args, '--warm', '1'));
  const file = path.resolve(here, '../src/models/clip/configs', CONFIG_FILES[cfgName]!);
  const cfg = { ...parseModelConfig(JSON.parse(readFileSync(file, 'utf8')), file), quick_gelu: true };

  const params = ParamStore.fromShapes(paramShapes(cfg));
  let seed = 1;
  for (const e of params.entries) params.view(e.name).set(randomArray(e.size, 0.02, seed++));
  params.view('logit_scale')[0] = Math.log(1 / 0.07);
  const res = cfg.vision_cfg.image_size;
  const ctx = cfg.text_cfg.context_length;
  const ids = new BigInt64Array(batch * ctx);
  for (let i = 0; i < batch; i++) for (let j = 0; j < 20; j++) ids[i * ctx + j] = BigInt(j === 19 ? cfg.text_cfg.vocab_size - 1 : 1 + ((i * 37 + j * 11) % (cfg.text_cfg.vocab_size - 3)));
  const data = {
    images: { dtype: 'float32' as const, shape: [batch, 3, res, res], data: randomArray(batch * 3 * res * res, 1, 7) },
    texts: { dtype: 'int64' as const, shape: [batch, ctx], data: ids },
  };

  const opt = new AdamW(params, { lr: 1e-5, betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2, inPlace: true, checkFinite: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-profile-'));
  const prefix = path.join(dir, 'train');
  const step = await makeTrainStep(cfg, opt, params, {}, { threads, profilePrefix: prefix }, process.argv.includes('--fused') ? 'onnxruntime' : 'wasm');
  const s = step.session!;
  for (let i = 0; i < warm; i++) await step.run(data);
  const t0 = performance.now();
  await step.run(data);
  const wallMs = performance.now() - t0;
  const trace = JSON.parse(readFileSync(s.endProfiling(prefix), 'utf8')) as TraceEvent[];
  await step.release();
  rmSync(dir, { recursive: true, force: true });

  // The last run only: node events from the start of the last model_run on.
  const runs = trace.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const last = runs.at(-1)!;
  const nodes = trace.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= last.ts);
  const total = nodes.reduce((a, e) => a + e.dur, 0);
  const byOp = new Map<string, { us: number; n: number; phases: Record<string, number> }>();
  const byPhase: Record<string, number> = { forward: 0, backward: 0, optimizer: 0 };
  for (const e of nodes) {
    const op = e.args?.op_name ?? '?';
    const ph = phaseOf(e.name.replace(/_kernel_time$/, ''));
    const r = byOp.get(op) ?? { us: 0, n: 0, phases: {} };
    r.us += e.dur;
    r.n++;
    r.phases[ph] = (r.phases[ph] ?? 0) + e.dur;
    byOp.set(op, r);
    byPhase[ph]! += e.dur;
  }
  const ranked = [...byOp.entries()].sort((a, b) => b[1].us - a[1].us);
  const rows: (string | number)[][] = [['op', 'ms', 'share', 'nodes', 'forward ms', 'backward ms', 'optimizer ms']];
  for (const [op, r] of ranked.slice(0, top))
    rows.push([op, r.us / 1000, `${((100 * r.us) / total).toFixed(1)}%`, r.n, (r.phases['forward'] ?? 0) / 1000, (r.phases['backward'] ?? 0) / 1000, (r.phases['optimizer'] ?? 0) / 1000]);
  const rest = ranked.slice(top).reduce((a, [, r]) => a + r.us, 0);
  rows.push(['(the rest)', rest / 1000, `${((100 * rest) / total).toFixed(1)}%`, ranked.slice(top).reduce((a, [, r]) => a + r.n, 0), '', '', '']);
  const outsideMs = wallMs - last.dur / 1000;
  console.log(`${cfgName} train step, batch ${batch}, ${ctx} tokens, ${threads} threads, update ${step.backend}: ${(wallMs / 1000).toFixed(2)} s wall, ${(total / 1e6).toFixed(2)} s in kernels (${last.dur / 1000} ms model_run; ${outsideMs.toFixed(0)} ms outside the run: ${step.backend === 'wasm' ? 'the wasm update and the gradients\' copy' : 'the outputs\' copy'})`);
  console.log(table(rows));
  console.log(`by phase: ${Object.entries(byPhase).map(([k, v]) => `${k} ${(v / 1e6).toFixed(2)} s (${((100 * v) / total).toFixed(1)}%)`).join(', ')}`);
  console.log(
    JSON.stringify({
      bench: 'profile_train',
      config: cfgName,
      batch,
      update: step.backend,
      wall_s: +(wallMs / 1000).toFixed(3),
      outside_run_s: +(outsideMs / 1000).toFixed(3),
      kernel_s: +(total / 1e6).toFixed(3),
      phases_s: Object.fromEntries(Object.entries(byPhase).map(([k, v]) => [k, +(v / 1e6).toFixed(3)])),
      ops: Object.fromEntries(ranked.map(([op, r]) => [op, { ms: +(r.us / 1000).toFixed(1), nodes: r.n }])),
    }),
  );
}

await main();
