// bench:fit — fit() on the tiny fixture CLIP with 320 generated 256×256 image–caption pairs
// (decoding and resizing each image to the model's 32 px costs real time), with an evaluation
// every epoch. Reports the share of wall time the train step waits for data and for evaluation,
// with images decoded in worker threads (1 and 2 workers) and, side by side, in-process (0).
// Last line: one JSON object.

import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fit } from '../src/train/fit.js';
import type { FitResult } from '../src/train/fit_types.js';
import { makeShapesCsv } from '../test/fit_data.js';
import { table } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.resolve(here, '../../shared/fixtures/clip-reference');

async function main() {
  const pairs = Number(process.env.PAIRS ?? 320);
  const { csv } = await makeShapesCsv(pairs, 256);
  const evalSet = await makeShapesCsv(48, 256);
  const run = (numWorkers: number): Promise<FitResult> =>
    fit({
      model: path.join(FIX, 'tiny'),
      tokenizer: path.join(FIX, 'bpe_simple_vocab_16e6.txt.gz'),
      trainData: csv,
      epochs: 2,
      batchSize: 32,
      learningRate: 1e-4,
      numWorkers,
      callbacks: [{ type: 'EvaluationCallback', queryData: evalSet.csv, indexData: evalSet.csv, limit: 10 }],
      workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-bench-fit-')),
    });
  const rows: (string | number)[][] = [['image workers', 'wall s', 'steps', 'step s', 'data wait s', 'wait / step time', 'eval s', 'eval share of wall']];
  const out: Record<string, unknown> = { bench: 'fit', pairs, epochs: 2, batch: 32 };
  for (const w of [0, 1, 2]) {
    const r = await run(w);
    const t = r.timings;
    rows.push([w, t.totalS, r.steps, t.stepS, t.dataWaitS, `${((100 * t.dataWaitS) / t.stepS).toFixed(1)}%`, t.evalS, `${((100 * t.evalS) / t.totalS).toFixed(1)}%`]);
    out[`workers_${w}`] = {
      wall_s: +t.totalS.toFixed(2),
      step_s: +t.stepS.toFixed(2),
      data_wait_s: +t.dataWaitS.toFixed(2),
      data_wait_share_of_step: +(t.dataWaitS / t.stepS).toFixed(3),
      eval_s: +t.evalS.toFixed(2),
      eval_share_of_wall: +(t.evalS / t.totalS).toFixed(3),
    };
  }
  console.log(`fit on the tiny CLIP: ${pairs} pairs of 256×256 PNGs → 32 px, 2 epochs, batch 32, evaluation on 48 pairs each epoch`);
  console.log(table(rows));
  console.log('target: waiting for data < 10% of step time (with workers)');
  console.log(JSON.stringify(out));
}

await main();
