// The tiny fixture's batches as a user would hand them to fit(): a CSV of image files and captions,
// and the comparison of saved weights with the reference's AdamW steps.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StFile } from '../src/runtime/safetensors.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { denseParam } from './clip_fixture.js';
import { FIXTURES } from './fixtures.js';

export interface FixtureBatch {
  image_files: string[];
  captions: string[];
}

/** RFC 4180 quoting: every field quoted, inner quotes doubled (what spreadsheets write). */
const csvField = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** A CSV with a header, image paths relative to the CSV's folder, captions as written. */
export function writePairsCsv(dir: string, batches: FixtureBatch[]): string {
  const imgDir = path.join(FIXTURES, 'images');
  const rows = ['image,text'];
  for (const b of batches)
    b.image_files.forEach((f, i) => rows.push(`${csvField(path.relative(dir, path.join(imgDir, f)))},${csvField(b.captions[i]!)}`));
  const file = path.join(dir, 'pairs.csv');
  writeFileSync(file, rows.join('\r\n') + '\r\n');
  return file;
}

/** Worst |ours − reference| over every parameter, naming where it is. */
export function compareWeights(ours: StFile, initial: StFile, ref: StFile, prefix: string, fill: (x: number) => number): { max: number; at: string } {
  let max = 0;
  let at = '';
  for (const [name, init] of initial.tensors) {
    const mine = ours.tensors.get(name);
    assert.ok(mine, `artifact lacks ${name}`);
    const want = denseParam(ref, prefix, name, init.data as Float32Array, fill);
    const got = mine.data as Float32Array;
    assert.equal(got.length, want.length, `${name}: ${got.length} elements, reference ${want.length}`);
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i]! - want[i]!);
      if (!(d <= max)) {
        max = d;
        at = `${name}[${i}] ours ${got[i]} reference ${want[i]}`;
      }
    }
  }
  return { max, at };
}

/**
 * fit() with the fixture's hyper-parameters: two steps of batch 6 (batch 1, then batch 2) on `model`
 * (the fixture's open_clip folder, which has no tokenizer files) reproduce `adamw2.*`.
 */
export function fixtureFitOptions(model: string, trainData: string, workDir: string, extra: Partial<FitOptions> = {}): FitOptions {
  return {
    model,
    trainData,
    epochs: 1,
    batchSize: 6,
    learningRate: 1e-3,
    optimizer: 'adamw',
    optimizerOptions: { betas: [0.9, 0.98], eps: 1e-6, weightDecay: 0.2, weightDecayExclude: 'none' },
    scheduler: 'constant',
    shuffle: false,
    workDir,
    ...extra,
  };
}
