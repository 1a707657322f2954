// Canceling a real fit run from another process, the way a user does: `clipfit fit --detach` starts
// a detached worker on the tiny fixture model, `clipfit runs cancel` (a second process) stops it,
// and the run is CANCELED, naming where it stopped; `clipfit runs resume --wait` then takes it from
// its last epoch checkpoint to FINISHED, with the weights of an uninterrupted fit.
//
// The worker is held with SIGSTOP while the cancel is requested and let go with SIGCONT, so the
// cancel always lands mid-training however fast the machine runs the steps.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { ParamStore } from '../src/runtime/params.js';
import { getRun } from '../src/runs/index.js';
import { fit } from '../src/train/fit.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, REPO_ROOT, requireFixture } from './fixtures.js';

async function until(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('clipfit runs cancel on a real fit run: CANCELED at its epoch and step; runs resume finishes it', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-cancel-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const clipfit = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/app/cli/main.ts'), ...args], {
      env: { ...process.env, CLIPFIT_HOME: home },
      cwd: REPO_ROOT,
    }).then(
      (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
    );
  const { csv } = await makeShapesCsv(16);
  const tokenizer = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');
  const epochs = 3;
  const flags = ['--model', tiny, '--tokenizer', tokenizer, '--train-data', csv, '--epochs', String(epochs), '--batch-size', '8', '--learning-rate', '1e-3', '--seed', '5'];

  const started = await clipfit(['fit', ...flags, '--run-name', 'stopped', '--detach']);
  assert.equal(started.code, 0, started.err + started.out);
  const run = getRun('stopped', { home });
  await until('the metrics of epoch 1', () => run.metrics().some((m) => m.epoch === 1));
  const pid = run.info().pid!;
  let held = true;
  process.kill(pid, 'SIGSTOP');
  try {
    // --grace 600: the worker must stop on the flag, not on the SIGTERM fallback.
    const canceling = clipfit(['runs', 'cancel', 'stopped', '--grace', '600']);
    await until('the cancel request', () => run.info().cancelRequest !== undefined);
    assert.equal(run.status().status, 'STARTED');
    process.kill(pid, 'SIGCONT');
    held = false;
    const canceled = await canceling;
    assert.equal(canceled.code, 0, canceled.err);
    const m = /^run stopped CANCELED: canceled by user at epoch (\d+), step (\d+)\n$/.exec(canceled.out);
    assert.ok(m, canceled.out);
    const [epoch, step] = [Number(m[1]), Number(m[2])];
    assert.ok(epoch >= 2 && epoch <= epochs, `stopped in epoch ${epoch}`);
    assert.ok(step > (epoch - 1) * 2 && step <= epoch * 2, `step ${step} lies in epoch ${epoch}`);
    await until('the worker to exit', () => !alive(pid), 30_000);

    const rec = run.info();
    assert.equal(rec.status, 'CANCELED');
    assert.equal(rec.lastError, undefined, 'a cancel is no failure: no error recorded');
    assert.match(run.logs(), new RegExp(`WARN  run CANCELED after ${epoch - 1} epoch\\(s\\): canceled by user at epoch ${epoch}, step ${step}\n$`));
    assert.doesNotMatch(run.logs(), /FAILED/);
    const status = (await clipfit(['runs', 'status', 'stopped'])).out.split('\n');
    assert.ok(status.includes(`status:     CANCELED (canceled by user at epoch ${epoch}, step ${step})`), status.join('\n'));
    assert.ok(status.includes(`model:      ${tiny}`), status.join('\n'));

    const resumed = await clipfit(['runs', 'resume', 'stopped', '--wait']);
    assert.equal(resumed.code, 0, resumed.err + resumed.out);
    assert.match(resumed.out, /^resumed run stopped\n/);
    assert.match(resumed.out, /run stopped FINISHED; artifact: /);
    assert.equal(run.status().status, 'FINISHED');
    assert.match(run.logs(), new RegExp(`resumed from the checkpoint of epoch ${epoch - 1}\n`));
    assert.deepEqual(run.metrics().map((x) => x.epoch), [1, 2, 3]);
  } finally {
    if (held) process.kill(pid, 'SIGCONT');
    if (alive(pid) && run.info().status === 'STARTED') process.kill(pid, 'SIGKILL');
  }

  // The steps run before the cancel left nothing behind: the resumed run ends where an
  // uninterrupted fit with the same options does.
  const whole = await fit({ ...run.options, runName: undefined, experimentName: undefined, workDir: mkdtempSync(path.join(home, 'whole-')) });
  const a = await ParamStore.fromSafetensors(path.join(whole.artifactDir, 'open_clip_model.safetensors'));
  const b = await ParamStore.fromSafetensors(path.join(run.artifactDir()!, 'open_clip_model.safetensors'));
  assert.deepEqual(b.data, a.data, 'bit-identical final weights');
});
