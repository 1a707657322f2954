// The path a user walks, compared with the reference: the tiny fixture's two batches written as a
// CSV of image files and captions (the way people write one), fine-tuned by fit() and, separately,
// by `clipfit fit` + `clipfit artifact` in real processes, with the fixture's hyper-parameters
// (AdamW lr 1e-3, betas 0.9/0.98, eps 1e-6, weight decay 0.2 on every parameter, constant
// schedule, no shuffle). The saved weights must equal torch.optim.AdamW's `adamw1.*` after one
// step and `adamw2.*` after two, within 1e-4 (the fixture README's tolerance for a step taken
// through one's own backward pass).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { REPO_ROOT, requireFixture } from './fixtures.js';
import { compareWeights, fixtureFitOptions, writePairsCsv } from './fixture_pairs.js';
import type { FixtureBatch } from './fixture_pairs.js';

const run = promisify(execFile);
const ATOL = 1e-4;

const c = Math.fround(1 - 1e-3 * 0.2);
const decayOnce = (x: number) => Math.fround(x * c);
const decayTwice = (x: number) => Math.fround(Math.fround(x * c) * c);

const tiny = requireFixture('tiny');

async function fixtureFiles() {
  const cfg = JSON.parse(readFileSync(path.join(tiny!, 'config.json'), 'utf8')) as { batch1: FixtureBatch; batch2: FixtureBatch };
  const [initial, step1, step2] = await Promise.all(
    ['open_clip_model', 'adamw_step1', 'step2'].map((f) => readSafetensors(path.join(tiny!, `${f}.safetensors`))),
  );
  return { cfg, initial: initial!, step1: step1!, step2: step2! };
}

/** One step on batch 1 → adamw1; two steps, batch 1 then batch 2 → adamw2. */
const stepsOf = (fx: Awaited<ReturnType<typeof fixtureFiles>>) => [
  { batches: [fx.cfg.batch1], ref: fx.step1, prefix: 'adamw1.', fill: decayOnce },
  { batches: [fx.cfg.batch1, fx.cfg.batch2], ref: fx.step2, prefix: 'adamw2.', fill: decayTwice },
];

const hyper = (csv: string, workDir: string): FitOptions => fixtureFitOptions(tiny!, csv, workDir);

test('fit() on the fixture batches as a CSV reproduces AdamW step 1 and step 2 within 1e-4', async (t) => {
  if (!tiny) return t.skip();
  const fx = await fixtureFiles();
  const steps = stepsOf(fx);
  for (const [k, s] of steps.entries()) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-parity-'));
    const csv = writePairsCsv(dir, s.batches);
    const result = await fit(hyper(csv, path.join(dir, 'work')));
    assert.equal(result.steps, k + 1);
    const ours = await readSafetensors(path.join(result.artifactDir, 'open_clip_model.safetensors'));
    const { max, at } = compareWeights(ours, fx.initial, s.ref, s.prefix, s.fill);
    t.diagnostic(`fit() after step ${k + 1}: max |diff| ${max.toExponential(2)} (${at})`);
    assert.ok(max <= ATOL, `step ${k + 1}: max |diff| ${max} > ${ATOL} at ${at}`);
  }
});

test('clipfit fit + clipfit artifact reproduce AdamW step 1 and step 2 within 1e-4', async (t) => {
  if (!tiny) return t.skip();
  const fx = await fixtureFiles();
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-home-'));
  const clipfit = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/app/cli/main.ts'), ...args], { env: { ...process.env, CLIPFIT_HOME: home }, cwd: REPO_ROOT }).catch(
      (e: { code: number; stdout: string; stderr: string }) => assert.fail(`clipfit ${args.join(' ')} exited ${e.code}: ${e.stderr}${e.stdout}`),
    );
  const steps = stepsOf(fx);
  for (const [k, s] of steps.entries()) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-parity-cli-'));
    const csv = writePairsCsv(dir, s.batches);
    const name = `parity-${k + 1}`;
    // The flags a user types for the fixture's hyper-parameters (constant schedule and AdamW are defaults).
    await clipfit([
      'fit', '--model', tiny, '--train-data', csv, '--epochs', '1', '--batch-size', '6',
      '--learning-rate', '1e-3', '--betas', '0.9,0.98', '--eps', '1e-6', '--weight-decay', '0.2',
      '--weight-decay-exclude', 'none', '--no-shuffle', '--run-name', name, '--wait',
    ]);
    const out = path.join(dir, 'model');
    await clipfit(['artifact', name, '--out', out]);
    const ours = await readSafetensors(path.join(out, 'open_clip_model.safetensors'));
    const { max, at } = compareWeights(ours, fx.initial, s.ref, s.prefix, s.fill);
    t.diagnostic(`clipfit fit after step ${k + 1}: max |diff| ${max.toExponential(2)} (${at})`);
    assert.ok(max <= ATOL, `step ${k + 1}: max |diff| ${max} > ${ATOL} at ${at}`);
  }
});
