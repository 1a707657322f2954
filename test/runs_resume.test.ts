// A real fit run whose worker is killed (SIGKILL) mid-way is FAILED; resumed, it finishes from its
// last epoch checkpoint with the same final weights as an uninterrupted fit.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ParamStore } from '../src/runtime/params.js';
import { getRun, resumeRun, startRun } from '../src/runs/index.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';

async function until(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a killed run resumes from its checkpoint to the weights of an uninterrupted run', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-resume-'));
  const { csv } = await makeShapesCsv(48);
  const options: FitOptions = {
    model: tiny,
    tokenizer: path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'),
    trainData: csv,
    epochs: 4,
    batchSize: 8,
    learningRate: 1e-3,
    seed: 5,
    runName: 'killed',
  };
  const run = startRun(options, { home });
  const ckpt = path.join(run.dir, 'checkpoints', 'epoch-0002');
  await until('the epoch-2 checkpoint', () => existsSync(ckpt));
  const pid = run.info().pid!;
  process.kill(pid, 'SIGKILL');
  await until('the run to be marked FAILED', () => getRun('killed', { home }).status().status === 'FAILED');
  assert.match(getRun('killed', { home }).status().reason!, new RegExp(`worker process ${pid} exited without finishing`));

  const resumed = resumeRun('killed', { home });
  const final = await resumed.wait({ timeoutMs: 300_000 });
  assert.equal(final.status, 'FINISHED', final.reason);
  assert.match(resumed.logs(), /resumed from the checkpoint of epoch [23]/);

  const whole = await fit({ ...options, runName: undefined, workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-whole-')) });
  const a = await ParamStore.fromSafetensors(path.join(whole.artifactDir, 'open_clip_model.safetensors'));
  const b = await ParamStore.fromSafetensors(path.join(resumed.artifactDir()!, 'open_clip_model.safetensors'));
  assert.deepEqual(b.data, a.data, 'bit-identical final weights');
  assert.deepEqual(resumed.metrics().map((m) => m.epoch), [1, 2, 3, 4]);
});
