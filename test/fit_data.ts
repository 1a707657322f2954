// A small real training set made on the fly: coloured shapes drawn as PNGs with sharp, captions
// naming colour and shape, written as a Finetuner-style CSV.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { FitOptions } from '../src/train/fit_types.js';
import { FIXTURES } from './fixtures.js';

const COLOURS: [string, [number, number, number]][] = [
  ['red', [220, 30, 30]],
  ['green', [30, 180, 40]],
  ['blue', [30, 60, 220]],
  ['yellow', [230, 220, 40]],
  ['purple', [140, 40, 170]],
  ['orange', [240, 140, 20]],
];
const SHAPES = ['square', 'circle', 'stripe', 'cross'];

function draw(shape: string, rgb: [number, number, number], size: number): Buffer {
  const px = Buffer.alloc(size * size * 3, 245);
  const c = size / 2;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inside =
        shape === 'square' ? Math.abs(x - c) < size * 0.3 && Math.abs(y - c) < size * 0.3
        : shape === 'circle' ? (x - c) ** 2 + (y - c) ** 2 < (size * 0.32) ** 2
        : shape === 'stripe' ? Math.abs(y - c) < size * 0.12
        : Math.abs(x - c) < size * 0.1 || Math.abs(y - c) < size * 0.1;
      if (inside) px.set(rgb, (y * size + x) * 3);
    }
  return px;
}

/** `n` pairs (cycling through colour × shape) in a fresh folder; returns the folder and CSV path. */
export async function makeShapesCsv(n: number, size = 32): Promise<{ dir: string; csv: string; captions: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-shapes-'));
  const rows: string[] = ['image,text'];
  const captions: string[] = [];
  for (let i = 0; i < n; i++) {
    const [cname, rgb] = COLOURS[i % COLOURS.length]!;
    const shape = SHAPES[Math.floor(i / COLOURS.length) % SHAPES.length]!;
    const file = `img${String(i).padStart(3, '0')}.png`;
    await sharp(draw(shape, rgb, size), { raw: { width: size, height: size, channels: 3 } }).png().toFile(path.join(dir, file));
    const caption = `a ${cname} ${shape}`;
    captions.push(caption);
    rows.push(`${file},${caption}`);
  }
  const csv = path.join(dir, 'pairs.csv');
  writeFileSync(csv, rows.join('\n') + '\n');
  return { dir, csv, captions };
}

/**
 * fit() on `model` (the tiny fixture) and a CSV of pairs, as the fit tests run it: the fixture's
 * BPE, two epochs of batch 8 at lr 1e-3, one image worker, seed 3, a fresh work folder.
 */
export function tinyFitOptions(model: string, trainData: string, extra: Partial<FitOptions> = {}): FitOptions {
  return {
    model,
    tokenizer: path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'),
    trainData,
    epochs: 2,
    batchSize: 8,
    learningRate: 1e-3,
    numWorkers: 1,
    seed: 3,
    workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-run-')),
    ...extra,
  };
}
