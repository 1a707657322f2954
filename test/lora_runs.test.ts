// LoRA through the paths a user walks: `clipfit fit --lora-rank …` as a detached run, then
// `clipfit encode` on the run's adapter artifact; and a LoRA run with adapter dropout killed with
// SIGKILL that resumes to the adapters of an uninterrupted run, bit for bit (the masks are drawn
// from the seed and the step, not from any state the kill loses).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { parseNpy } from '../src/formats/npy.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { getRun, resumeRun, startRun } from '../src/runs/index.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, REPO_ROOT, requireFixture } from './fixtures.js';

const exec = promisify(execFile);
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');

async function until(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('clipfit fit --lora-rank … writes an adapter artifact that clipfit encode and ClipModel.load use by run name', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-lora-home-'));
  const { csv } = await makeShapesCsv(16);
  const clipfit = (args: string[]) =>
    exec(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/app/cli/main.ts'), ...args], { env: { ...process.env, CLIPFIT_HOME: home }, cwd: REPO_ROOT }).then(
      (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
    );
  const common = ['--model', tiny, '--tokenizer', bpe, '--train-data', csv, '--epochs', '2', '--batch-size', '8', '--learning-rate', '1e-2'];
  const r = await clipfit(['fit', ...common, '--lora-rank', '4', '--lora-alpha', '8', '--lora-dropout', '0.1', '--lora-targets', 'attn,mlp', '--lora-towers', 'text,image', '--run-name', 'lora-cli', '--wait']);
  assert.equal(r.code, 0, r.err + r.out);
  const logs = (await clipfit(['runs', 'logs', 'lora-cli'])).out;
  assert.match(logs, /LoRA rank 4 on attn\+mlp of the text and image tower\(s\): [\d,]+ trainable parameters/);
  const artifact = getRun('lora-cli', { home }).artifactDir()!;
  const cfg = JSON.parse(readFileSync(path.join(artifact, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 8);
  assert.equal(cfg.lora_dropout, 0.1);
  assert.equal(cfg.tokenizer, bpe, 'the tokenizer the base was loaded with travels with the adapter');
  assert.ok(!existsSync(path.join(artifact, 'open_clip_model.safetensors')));

  // encode by run name: the adapter is put onto its base and merged.
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'clipfit-lora-npy-')), 'q.npy');
  const e = await clipfit(['encode', '--model', 'lora-cli', '--text', 'a red square', 'a blue circle', '--out', out]);
  assert.equal(e.code, 0, e.err);
  const got = parseNpy(new Uint8Array(readFileSync(out)));
  const adapter = await ClipModel.load(artifact, { mergeAdapter: false });
  const want = await adapter.encodeTexts(['a red square', 'a blue circle']);
  const base = await ClipModel.load(tiny, { tokenizer: bpe });
  const zero = await base.encodeTexts(['a red square', 'a blue circle']);
  let d = 0;
  let moved = 0;
  for (let i = 0; i < want.data.length; i++) {
    d = Math.max(d, Math.abs(got.data[i]! - want.data[i]!));
    moved = Math.max(moved, Math.abs(got.data[i]! - zero.data[i]!));
  }
  assert.ok(d < 1e-5, `clipfit encode (merged) vs the adapter graph: ${d}`);
  assert.ok(moved > 1e-3, 'not the base model');
  await adapter.release();
  await base.release();

  // Bad flags: refused with the field named, before (--merge alone) or when the run starts.
  const merge = await clipfit(['fit', ...common, '--merge', '--detach']);
  assert.notEqual(merge.code, 0);
  assert.match(merge.err, /--merge: merges LoRA adapters: give --lora-rank/);
  const foo = await clipfit(['fit', ...common, '--lora-rank', '4', '--lora-targets', 'attn,foo', '--run-name', 'lora-bad', '--wait']);
  assert.notEqual(foo.code, 0);
  assert.match(foo.out + foo.err, /lora\.targets: unknown "foo": must be one of attn, mlp/);
  const wide = await clipfit(['fit', ...common, '--lora-rank', '64', '--run-name', 'lora-wide', '--wait']);
  assert.notEqual(wide.code, 0);
  assert.match(wide.out + wide.err, /lora\.rank: 64 is above the width/);
  const half = await clipfit(['fit', ...common, '--lora-rank', '4', '--lora-dropout', 'half', '--run-name', 'lora-half', '--wait']);
  assert.notEqual(half.code, 0);
  assert.match(half.err, /--lora-dropout: lora\.dropout must be a number, got "half"/);
  const one = await clipfit(['fit', ...common, '--lora-rank', '4', '--lora-dropout', '1', '--run-name', 'lora-one', '--wait']);
  assert.notEqual(one.code, 0);
  assert.match(one.out + one.err, /lora\.dropout: must be a probability in \[0, 1\), got 1/);
});

test('a LoRA run with adapter dropout killed with SIGKILL resumes to the adapters of an uninterrupted run, bit for bit', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-lora-resume-'));
  const { csv } = await makeShapesCsv(48);
  const options: FitOptions = { model: tiny, tokenizer: bpe, trainData: csv, epochs: 4, batchSize: 8, learningRate: 1e-2, seed: 5, lora: { rank: 4, alpha: 8, dropout: 0.2 }, runName: 'lora-killed' };
  const run = startRun(options, { home });
  await until('the epoch-2 checkpoint', () => existsSync(path.join(run.dir, 'checkpoints', 'epoch-0002')));
  const pid = run.info().pid!;
  process.kill(pid, 'SIGKILL');
  await until('the run to be marked FAILED', () => getRun('lora-killed', { home }).status().status === 'FAILED');

  const resumed = resumeRun('lora-killed', { home });
  const final = await resumed.wait({ timeoutMs: 300_000 });
  assert.equal(final.status, 'FINISHED', final.reason);
  assert.match(resumed.logs(), /resumed from the checkpoint of epoch [23]/);

  const whole = await fit({ ...options, runName: undefined, workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-lora-whole-')) });
  const a = await readSafetensors(path.join(whole.artifactDir, 'adapter_model.safetensors'));
  const b = await readSafetensors(path.join(resumed.artifactDir()!, 'adapter_model.safetensors'));
  assert.deepEqual([...b.tensors.keys()], [...a.tensors.keys()]);
  for (const [n, ta] of a.tensors) assert.deepEqual(b.tensors.get(n)!.data, ta.data, `${n} bit-identical`);
  assert.ok([...a.tensors].some(([n, x]) => n.includes('lora_B') && (x.data as Float32Array).some((v) => v !== 0)), 'the adapters trained');
});
