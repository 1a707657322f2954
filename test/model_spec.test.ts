// One grammar for a model wherever one is asked for: a model folder, a run folder, a finished run's
// name, or name::tag. Tried as a user would: a run fine-tuned by `clipfit fit`, then named by its run
// name to encode, eval, getModel, serve and a second fit.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';
import { UnknownModelError } from '../src/errors.js';
import { RunStore } from '../src/runs/store.js';
import { resolveModelSpec, runArtifactFor } from '../src/runs/model_spec.js';
import { resolveServeModel } from '../src/server/models.js';
import { makeShapesCsv } from './fit_data.js';
import { REPO_ROOT, requireFixture } from './fixtures.js';

const run = promisify(execFile);
const tiny = requireFixture('tiny');
const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-spec-'));
let csv = '';
before(async () => {
  csv = (await makeShapesCsv(8)).csv;
});

const clipfit = (args: string[]) =>
  run(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/app/cli/main.ts'), ...args], { env: { ...process.env, CLIPFIT_HOME: home }, cwd: REPO_ROOT }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );

test('a finished run is a model by its name or folder: encode, eval, serve and a second fit take it', async (t) => {
  if (!tiny) return t.skip();
  const common = ['--train-data', csv, '--epochs', '1', '--batch-size', '4', '--learning-rate', '1e-3', '--no-shuffle'];
  const a = await clipfit(['fit', '--model', tiny, ...common, '--run-name', 'first', '--wait']);
  assert.equal(a.code, 0, a.err + a.out);
  const rec = RunStore.open(home).find('first')!;
  assert.ok(rec.artifactDir);
  assert.equal(runArtifactFor('first', home), rec.artifactDir);
  assert.equal(runArtifactFor(rec.dir, home), path.resolve(rec.artifactDir!), 'the run folder stands for its artifact');
  assert.equal(runArtifactFor(tiny, home), null, 'a model folder is itself');
  assert.equal(runArtifactFor('ViT-B-32::openai', home), null);
  assert.equal(await resolveModelSpec('first', { home }), rec.artifactDir);
  assert.equal(await resolveServeModel('first', { home }), rec.artifactDir);

  // encode by run name equals encode by the artifact folder.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-spec-out-'));
  for (const [name, model] of [['by-name', 'first'], ['by-folder', rec.artifactDir!]] as const) {
    const e = await clipfit(['encode', '--model', model, '--text', 'a red square', '--out', path.join(dir, `${name}.npy`)]);
    assert.equal(e.code, 0, e.err);
  }
  assert.deepEqual(readFileSync(path.join(dir, 'by-name.npy')), readFileSync(path.join(dir, 'by-folder.npy')));

  const evals = [];
  for (const model of ['first', rec.artifactDir!]) {
    const ev = await clipfit(['eval', '--model', model, '--query-data', csv, '--index-data', csv, '--json']);
    assert.equal(ev.code, 0, ev.err);
    evals.push(JSON.parse(ev.out));
  }
  assert.ok('clip-text-to-clip-vision_hit_at_k' in evals[0], JSON.stringify(evals[0]));
  assert.deepEqual(evals[0], evals[1], 'eval by run name equals eval by the artifact folder');

  // A second fit continues from the first run's artifact.
  const b = await clipfit(['fit', '--model', 'first', ...common, '--run-name', 'second', '--wait']);
  assert.equal(b.code, 0, b.err + b.out);
  const status = JSON.parse((await clipfit(['runs', 'status', 'second', '--json'])).out);
  assert.equal(status.model ?? status.options?.model, rec.artifactDir, JSON.stringify(status));
});

test('a run without an artifact is not a model: a typed error naming the run', async (t) => {
  if (!tiny) return t.skip();
  const r = await clipfit(['fit', '--model', tiny, '--train-data', csv, '--batch-size', '64', '--run-name', 'broken', '--wait']);
  assert.notEqual(r.code, 0);
  assert.throws(() => runArtifactFor('broken', home), (e: unknown) => e instanceof UnknownModelError && /run broken is FAILED and has no artifact/.test(e.message));
  const e = await clipfit(['encode', '--model', 'broken', '--text', 'x', '--out', path.join(os.tmpdir(), 'never.npy')]);
  assert.notEqual(e.code, 0);
  assert.match(e.err, /run broken is FAILED and has no artifact/);
});
