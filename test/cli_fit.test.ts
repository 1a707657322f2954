// `clipfit fit` → a detached run → `clipfit runs …` → `clipfit artifact`, through the real CLI
// process, on the tiny fixture model.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, REPO_ROOT, requireFixture } from './fixtures.js';

const run = promisify(execFile);
const tiny = requireFixture('tiny');
const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-home-'));
let csv = '';
before(async () => {
  csv = (await makeShapesCsv(16)).csv;
});

function clipfit(args: string[]) {
  return run(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/app/cli/main.ts'), ...args], {
    env: { ...process.env, CLIPFIT_HOME: home },
    cwd: REPO_ROOT,
  }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );
}

test('fit --wait runs to FINISHED; runs status/metrics/logs report it; artifact copies it once', async (t) => {
  if (!tiny) return t.skip();
  const common = ['--model', tiny, '--tokenizer', path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'), '--train-data', csv, '--epochs', '2', '--batch-size', '8', '--learning-rate', '1e-3'];
  const r = await clipfit(['fit', ...common, '--run-name', 'cli-run', '--eval-query-data', csv, '--eval-index-data', csv, '--to-onnx', '--wait']);
  assert.equal(r.code, 0, r.err + r.out);
  assert.match(r.out, /started run cli-run/);
  const status = JSON.parse((await clipfit(['runs', 'status', 'cli-run', '--json'])).out);
  assert.equal(status.status, 'FINISHED');
  const metrics = JSON.parse((await clipfit(['runs', 'metrics', 'cli-run', '--json'])).out);
  assert.deepEqual(metrics.map((m: { epoch: number }) => m.epoch), [0, 1, 2]);
  assert.ok('clip-text-to-clip-vision_hit_at_k' in metrics[0].values);
  const logs = (await clipfit(['runs', 'logs', 'cli-run'])).out;
  assert.match(logs, /epoch 2: train_loss=/);

  // The same name again is refused.
  const again = await clipfit(['fit', ...common, '--run-name', 'cli-run', '--detach']);
  assert.notEqual(again.code, 0);
  assert.match(again.err, /cli-run/);

  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'clipfit-art-')), 'model');
  const a = await clipfit(['artifact', 'cli-run', '--out', out]);
  assert.equal(a.code, 0, a.err);
  for (const f of ['open_clip_model.safetensors', 'open_clip_config.json', 'metadata.json', 'clip-text/model.onnx', 'clip-vision/model.onnx']) assert.ok(existsSync(path.join(out, f)), f);
  const meta = JSON.parse(readFileSync(path.join(out, 'metadata.json'), 'utf8'));
  assert.equal(meta.epochs, 2);
  // An existing destination is refused and left alone.
  const b = await clipfit(['artifact', 'cli-run', '--out', out]);
  assert.notEqual(b.code, 0);
  assert.match(b.err, /already exists/);

  // encode with the artifact.
  const npy = path.join(path.dirname(out), 'q.npy');
  const e = await clipfit(['encode', '--model', out, '--text', 'a red square', 'a blue circle', '--out', npy]);
  assert.equal(e.code, 0, e.err);
  assert.match(e.out, /2 × 32 float32/);
});

test('a failing run exits non-zero with --wait and says why', async (t) => {
  if (!tiny) return t.skip();
  const r = await clipfit(['fit', '--model', tiny, '--tokenizer', path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'), '--train-data', csv, '--batch-size', '64', '--run-name', 'too-big', '--wait']);
  assert.notEqual(r.code, 0);
  const status = JSON.parse((await clipfit(['runs', 'status', 'too-big', '--json'])).out);
  assert.equal(status.status, 'FAILED');
  assert.match(status.reason, /batchSize: 64 is larger than the 16 training pairs/);
});
