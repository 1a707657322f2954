// GradCache on the path a user walks: fit({ gradCache }) and `clipfit fit --grad-cache-chunk N` on
// the tiny fixture's two batches written as a CSV of image files, with the fixture's AdamW
// hyper-parameters, against the plain (fused, full-batch) fit and PyTorch's reference steps; with
// a frozen tower and the label-aware loss; and the bad chunks, refused before anything is done.
//
// Tolerance 1e-4 between runs: the gradients agree within 1e-5 (test/grad_cache.test.ts), but
// AdamW's step −lr·m̂/(√v̂ + eps) has slope up to lr/eps = 1000 in g where the exact gradient is zero
// (attention key biases), so rounding noise there moves those weights by up to ~3e-5 after two
// steps; 1e-4 is also the fixture's own tolerance for steps through one's own backward pass.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';
import { ConfigError } from '../src/errors.js';
import type { StFile } from '../src/runtime/safetensors.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { fit } from '../src/train/fit.js';
import type { FitOptions } from '../src/train/fit_types.js';
import { compareWeights, fixtureFitOptions, writePairsCsv } from './fixture_pairs.js';
import type { FixtureBatch } from './fixture_pairs.js';
import { REPO_ROOT, requireFixture } from './fixtures.js';
import { maxAbsDiff } from './tolerance.js';

const execp = promisify(execFile);
const ATOL = 1e-4;
const tiny = requireFixture('tiny');
const decayTwice = (x: number) => {
  const c = Math.fround(1 - 1e-3 * 0.2);
  return Math.fround(Math.fround(x * c) * c);
};

let csv = '';
let initial: StFile;
let step2: StFile;
let plain: StFile;
let cfgBatches: { batch1: FixtureBatch; batch2: FixtureBatch };

/** The fixture's hyper-parameters: two steps of batch 6 (batch 1, then batch 2) reproduce `adamw2.*`. */
const hyper = (workDir: string, extra: Partial<FitOptions> = {}): FitOptions => fixtureFitOptions(tiny!, csv, workDir, extra);

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));
const weightsOf = (dir: string) => readSafetensors(path.join(dir, 'open_clip_model.safetensors'));

function maxDiffAll(a: StFile, b: StFile): { max: number; at: string } {
  let max = 0;
  let at = '';
  for (const [name, t] of a.tensors) {
    const d = maxAbsDiff(t.data as Float32Array, b.tensors.get(name)!.data as Float32Array);
    if (!(d <= max)) [max, at] = [d, name];
  }
  return { max, at };
}

before(async () => {
  if (!tiny) return;
  cfgBatches = JSON.parse(readFileSync(path.join(tiny, 'config.json'), 'utf8'));
  csv = writePairsCsv(tmp('clipfit-gc-data-'), [cfgBatches.batch1, cfgBatches.batch2]);
  [initial, step2] = await Promise.all(['open_clip_model', 'step2'].map((f) => readSafetensors(path.join(tiny, `${f}.safetensors`)))) as [StFile, StFile];
  plain = await weightsOf((await fit(hyper(path.join(tmp('clipfit-gc-plain-'), 'work')))).artifactDir);
});

test('fit({ gradCache }) with chunks of 4 (last chunk 2) and 1 reproduces AdamW step 2 within 1e-4 and the plain fit within 1e-4', async (t) => {
  if (!tiny) return t.skip();
  const plainVsRef = compareWeights(plain, initial, step2, 'adamw2.', decayTwice);
  const report = [`plain fit vs PyTorch ${plainVsRef.max.toExponential(2)}`];
  for (const chunk of [4, 1]) {
    const logs: string[] = [];
    const r = await fit(hyper(path.join(tmp('clipfit-gc-fit-'), 'work'), { gradCache: { chunk } }), { log: (_l, m) => logs.push(m) });
    assert.equal(r.steps, 2);
    assert.ok(logs.some((m) => m.includes(`GradCache: the towers run ${chunk} rows at a time`)), logs.join('\n'));
    const meta = JSON.parse(readFileSync(path.join(r.artifactDir, 'metadata.json'), 'utf8'));
    assert.deepEqual(meta.options.gradCache, { chunk });
    const ours = await weightsOf(r.artifactDir);
    const vsRef = compareWeights(ours, initial, step2, 'adamw2.', decayTwice);
    const vsPlain = maxDiffAll(ours, plain);
    report.push(`chunk ${chunk}: vs PyTorch ${vsRef.max.toExponential(2)}, vs plain fit ${vsPlain.max.toExponential(2)} (${vsPlain.at})`);
    assert.ok(vsRef.max <= ATOL, `chunk ${chunk}: ${vsRef.max} from the reference at ${vsRef.at}`);
    assert.ok(vsPlain.max <= ATOL, `chunk ${chunk}: ${vsPlain.max} from the plain fit at ${vsPlain.at}`);
    assert.ok(maxDiffAll(ours, initial).max > 1e-3, 'the weights moved');
  }
  t.diagnostic(report.join('; '));
});

test('fit with GradCache, a frozen text tower (features computed once) and the label-aware loss equals the plain fit within 1e-4; the text tower does not move', async (t) => {
  if (!tiny) return t.skip();
  // Batch 2's images under batch 1's captions: rows k and k+6 share a caption, hence a label.
  const data = writePairsCsv(tmp('clipfit-gc-labels-'), [cfgBatches.batch1, { ...cfgBatches.batch2, captions: cfgBatches.batch1.captions }]);
  const opts = (extra: Partial<FitOptions>) => hyper(path.join(tmp('clipfit-gc-frozen-'), 'work'), { trainData: data, batchSize: 12, epochs: 2, shuffle: true, labelAwareLoss: true, freeze: { text: true }, ...extra });
  const logs: string[] = [];
  const a = await weightsOf((await fit(opts({}))).artifactDir);
  const b = await weightsOf((await fit(opts({ gradCache: { chunk: 5 } }), { log: (_l, m) => logs.push(m) })).artifactDir);
  assert.ok(logs.some((m) => /text tower frozen: its features computed once/.test(m)), logs.join('\n'));
  const { max, at } = maxDiffAll(a, b);
  t.diagnostic(`GradCache chunk 5 vs plain, label-aware, text frozen, 2 steps of 12: max |diff| ${max.toExponential(2)} (${at})`);
  assert.ok(max <= ATOL, `${max} at ${at}`);
  for (const [name, t0] of initial.tensors) {
    const moved = maxAbsDiff(b.tensors.get(name)!.data as Float32Array, t0.data as Float32Array);
    if (name.startsWith('visual.') || name === 'logit_scale') continue;
    assert.equal(moved, 0, `frozen ${name} moved by ${moved}`);
  }
  assert.ok(maxAbsDiff(b.tensors.get('visual.proj')!.data as Float32Array, initial.tensors.get('visual.proj')!.data as Float32Array) > 1e-4, 'the image tower trained');
});

test('fit() refuses a chunk ≤ 0, a fraction, a string or a non-object gradCache with a ConfigError before any work', async (t) => {
  if (!tiny) return t.skip();
  const bad: [unknown, string][] = [
    [{ chunk: 0 }, 'gradCache.chunk'],
    [{ chunk: -3 }, 'gradCache.chunk'],
    [{ chunk: 2.5 }, 'gradCache.chunk'],
    [{ chunk: '4' }, 'gradCache.chunk'],
    [{}, 'gradCache.chunk'],
    [8, 'gradCache'],
  ];
  for (const [gradCache, field] of bad) {
    const workDir = path.join(tmp('clipfit-gc-bad-'), 'work');
    await assert.rejects(fit(hyper(workDir, { gradCache: gradCache as FitOptions['gradCache'] })), (e: unknown) => e instanceof ConfigError && e.field === field, JSON.stringify(gradCache));
    assert.ok(!existsSync(workDir), 'nothing was written');
  }
});

function clipfit(args: string[], home: string) {
  return execp(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/app/cli/main.ts'), ...args], { env: { ...process.env, CLIPFIT_HOME: home }, cwd: REPO_ROOT }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );
}

test('clipfit fit --grad-cache-chunk 4 trains as a run whose artifact is AdamW step 2 within 1e-4 and the plain fit within 1e-4', async (t) => {
  if (!tiny) return t.skip();
  const home = tmp('clipfit-gc-home-');
  const r = await clipfit([
    'fit', '--model', tiny, '--train-data', csv, '--epochs', '1', '--batch-size', '6', '--grad-cache-chunk', '4',
    '--learning-rate', '1e-3', '--betas', '0.9,0.98', '--eps', '1e-6', '--weight-decay', '0.2',
    '--weight-decay-exclude', 'none', '--no-shuffle', '--run-name', 'gc', '--wait',
  ], home);
  assert.equal(r.code, 0, r.err + r.out);
  const logs = (await clipfit(['runs', 'logs', 'gc'], home)).out;
  assert.match(logs, /GradCache: the towers run 4 rows at a time/);
  const out = path.join(tmp('clipfit-gc-art-'), 'model');
  assert.equal((await clipfit(['artifact', 'gc', '--out', out], home)).code, 0);
  const ours = await weightsOf(out);
  const vsRef = compareWeights(ours, initial, step2, 'adamw2.', decayTwice);
  const vsPlain = maxDiffAll(ours, plain);
  t.diagnostic(`clipfit fit --grad-cache-chunk 4: vs PyTorch ${vsRef.max.toExponential(2)}, vs plain fit ${vsPlain.max.toExponential(2)}`);
  assert.ok(vsRef.max <= ATOL, `${vsRef.max} at ${vsRef.at}`);
  assert.ok(vsPlain.max <= ATOL, `${vsPlain.max} at ${vsPlain.at}`);
});

test('clipfit fit and clipfit demo refuse --grad-cache-chunk 0, -1, 2.5 and abc, naming the flag, and start nothing', async (t) => {
  if (!tiny) return t.skip();
  const home = tmp('clipfit-gc-home-bad-');
  for (const v of ['0', '-1', '2.5', 'abc']) {
    const r = await clipfit(['fit', '--model', tiny, '--train-data', csv, '--grad-cache-chunk', v, '--wait'], home);
    assert.equal(r.code, 1, r.err + r.out);
    assert.match(r.err, /--grad-cache-chunk: must be a positive integer/);
  }
  assert.deepEqual(JSON.parse((await clipfit(['runs', 'list', '--json'], home)).out), [], 'no run was created');
  const work = path.join(tmp('clipfit-gc-demo-'), 'work');
  const d = await clipfit(['demo', '--model', tiny, '--work', work, '--grad-cache-chunk', '0'], home);
  assert.equal(d.code, 1, d.err + d.out);
  assert.match(d.err, /gradCacheChunk: must be a positive integer/);
  assert.ok(!existsSync(work), 'the demo built nothing');
});
