// `clipfit datasets …` and `clipfit eval` through commander, in a temporary CLIPFIT_HOME. eval is
// checked against the metrics fit()'s EvaluationCallback reported for the same model and data.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerDataCommands } from '../src/app/cli/commands_data.js';
import { registerEvalCommands } from '../src/app/cli/commands_eval.js';
import { loadJsonl, pairImage, pairText } from '../src/data/index.js';
import { ConfigError, DataError, DatasetError } from '../src/errors.js';
import { fit } from '../src/train/fit.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';

const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-cli-data-'));
process.env['CLIPFIT_HOME'] = home;
after(() => rmSync(home, { recursive: true, force: true }));

const tiny = requireFixture('tiny');
const bpe = path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz');

/** Run `clipfit <args>`; resolves to the printed lines. */
async function cli(...args: string[]): Promise<string[]> {
  const out: string[] = [];
  const program = new Command().name('clipfit').exitOverride().configureOutput({ writeOut: (s) => out.push(...s.trimEnd().split('\n')), writeErr: () => {} });
  registerDataCommands(program, (line) => out.push(...line.split('\n')));
  registerEvalCommands(program, (line) => out.push(...line.split('\n')));
  await program.parseAsync(['node', 'clipfit', ...args]);
  return out;
}

let shapes: { dir: string; csv: string; captions: string[] };
before(async () => {
  shapes = await makeShapesCsv(6);
});

test('datasets push, list, pull, delete', async () => {
  const pushed = await cli('datasets', 'push', 'shapes', '--data', shapes.csv);
  assert.equal(pushed.length, 1);
  assert.match(pushed[0]!, /^pushed dataset shapes v1: 6 documents, 6 images \(\d+(\.\d)? (B|KiB)\)$/);
  assert.match((await cli('datasets', 'push', 'shapes', '--data', shapes.csv))[0]!, /^dataset shapes v1 already holds this content \(6 documents/);
  const again = JSON.parse((await cli('datasets', 'push', 'shapes', '--data', shapes.csv, '--json')).join('\n'));
  assert.deepEqual([again.version, again.created, again.skipped, again.meta.count], [1, false, 0, 6]);

  // A JSONL with a bad line: an error naming the line, or skipped and counted.
  const jsonl = path.join(shapes.dir, 'more.jsonl');
  writeFileSync(jsonl, [JSON.stringify({ text: 'a red square', image: 'img000.png' }), '{not json', JSON.stringify({ text: 'a green square', image: 'img001.png' })].join('\n') + '\n');
  await assert.rejects(cli('datasets', 'push', 'shapes', '--data', jsonl), (e: unknown) => e instanceof DataError && e.row === 2 && e.message.includes(jsonl));
  const v2 = await cli('datasets', 'push', 'shapes', '--data', jsonl, '--skip-bad-rows');
  assert.deepEqual(v2.map((l) => l.replace(/\([^()]*B\)$/, '(…)')), [`skipped 1 bad row(s) of ${jsonl}`, 'pushed dataset shapes v2: 2 documents, 2 images (…)']);
  await cli('datasets', 'push', 'other', '--data', shapes.csv);

  const list = await cli('datasets', 'list');
  assert.match(list[0]!, /^NAME\s+VERSIONS\s+LATEST\s+DOCS\s+IMAGES\s+SIZE\s+CREATED$/);
  assert.equal(list.length, 3);
  assert.match(list[1]!, /^other\s+v1\s+v1\s+6\s+6\s+/);
  assert.match(list[2]!, /^shapes\s+v1,v2\s+v2\s+2\s+2\s+\d+(\.\d)? (B|KiB)\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  const listed = JSON.parse((await cli('datasets', 'list', '--json')).join('\n'));
  assert.deepEqual(listed.map((d: { name: string; versions: number[] }) => [d.name, d.versions]), [['other', [1]], ['shapes', [1, 2]]]);

  // pull writes Documents whose captions and image bytes are the source's.
  const out = path.join(home, 'pulled', 'v1.jsonl');
  assert.deepEqual(await cli('datasets', 'pull', 'shapes', '--version', '1', '--out', out), [`wrote ${out}: 6 documents of dataset shapes v1`]);
  const { docs } = await loadJsonl(out);
  assert.deepEqual(docs.map((d) => pairText(d)), shapes.captions);
  docs.forEach((d, i) => assert.deepEqual(readFileSync(pairImage(d).uri!), readFileSync(path.join(shapes.dir, `img00${i}.png`))));
  const latest = path.join(home, 'latest.jsonl');
  assert.deepEqual(await cli('datasets', 'pull', 'shapes', '--out', latest), [`wrote ${latest}: 2 documents of dataset shapes v2`]);
  assert.deepEqual(await cli('datasets', 'pull', 'shapes@v1', '--out', latest), [`wrote ${latest}: 6 documents of dataset shapes v1`]);

  // Errors.
  await assert.rejects(cli('datasets', 'pull', 'shapes', '--version', '7', '--out', latest), (e: unknown) => e instanceof DatasetError && /shapes' v7: no such version \(have v1, v2\)/.test(e.message));
  await assert.rejects(cli('datasets', 'pull', 'nope', '--out', latest), (e: unknown) => e instanceof DatasetError && /'nope'.*not found/.test(e.message));
  await assert.rejects(cli('datasets', 'pull', 'shapes', '--version', 'abc', '--out', latest), (e: unknown) => e instanceof ConfigError && /--version/.test(e.message));
  await assert.rejects(cli('datasets', 'pull', 'shapes'), (e: unknown) => e instanceof CommanderError && e.code === 'commander.missingMandatoryOptionValue');
  await assert.rejects(cli('datasets', 'push', 'x', '--data', path.join(home, 'missing.csv')), (e: unknown) => e instanceof ConfigError && /--data: no such file or folder/.test(e.message));

  assert.deepEqual(await cli('datasets', 'delete', 'shapes', '--version', '1'), ['deleted dataset shapes v1']);
  assert.deepEqual(JSON.parse((await cli('datasets', 'list', '--json')).join('\n')).map((d: { versions: number[] }) => d.versions), [[1], [2]]);
  assert.deepEqual(await cli('datasets', 'delete', 'shapes'), ['deleted dataset shapes']);
  assert.deepEqual(await cli('datasets', 'delete', 'other'), ['deleted dataset other']);
  assert.deepEqual(await cli('datasets', 'list'), [`no datasets in ${path.join(home, 'datasets')}`]);
  assert.ok(!existsSync(path.join(home, 'datasets', 'shapes')));
});

test('eval reproduces the metrics fit() reported: zero-shot for the base model, last epoch for the artifact (safetensors and ONNX)', async (t) => {
  if (!tiny) return t.skip('no tiny fixture');
  const data = await makeShapesCsv(24);
  const r = await fit({
    model: tiny, tokenizer: bpe, trainData: data.csv, epochs: 1, batchSize: 8, learningRate: 1e-3, numWorkers: 1, seed: 2, toOnnx: true,
    workDir: path.join(home, 'run'), callbacks: [{ type: 'EvaluationCallback', queryData: data.csv, indexData: data.csv, limit: 5 }],
  });
  const [zeroShot, epoch1] = [r.history[0]!.metrics, r.history[1]!.metrics];
  const close = (got: Record<string, number>, want: Record<string, number>, what: string) => {
    const keys = Object.keys(got);
    assert.equal(keys.length, 12, `${what}: nine metrics and R@1/5/10`);
    for (const k of keys) {
      assert.ok(k.startsWith('clip-text-to-clip-vision_'), k);
      assert.ok(Math.abs(got[k]! - want[k]!) < 1e-6, `${what} ${k}: ${got[k]} vs fit's ${want[k]}`);
    }
    for (const K of [1, 5, 10]) assert.ok(`clip-text-to-clip-vision_recall_at_${K}` in got);
  };
  const json = async (...a: string[]) => JSON.parse((await cli('eval', '--query-data', data.csv, '--index-data', data.csv, '--limit', '5', '--json', ...a)).join('\n'));
  close(await json('--model', tiny, '--tokenizer', bpe), zeroShot, 'zero-shot');
  close(await json('--model', r.artifactDir), epoch1, 'artifact');
  close(await json('--model', r.artifactDir, '--onnx'), epoch1, 'artifact (ONNX)');
  assert.ok(epoch1['clip-text-to-clip-vision_reciprocal_rank']! !== zeroShot['clip-text-to-clip-vision_reciprocal_rank'], 'the two differ');

  // From the dataset store, as text.
  await cli('datasets', 'push', 'shapes24', '--data', data.csv);
  const lines = await cli('eval', '--model', r.artifactDir, '--query-data', 'dataset:shapes24', '--index-data', 'dataset:shapes24@v1', '--limit', '5');
  assert.equal(lines[0], `${r.artifactDir}: 24 caption queries against 24 images (limit 5, cosine)`);
  assert.equal(lines.length, 13);
  assert.equal(lines[1], `clip-text-to-clip-vision_precision_at_k: ${epoch1['clip-text-to-clip-vision_precision_at_k']!.toFixed(4)}`);
  assert.equal(lines[12], `clip-text-to-clip-vision_recall_at_10: ${epoch1['clip-text-to-clip-vision_recall_at_10']!.toFixed(4)}`);

  await assert.rejects(cli('eval', '--model', r.artifactDir, '--query-data', data.csv, '--index-data', data.csv, '--distance', 'manhattan'), (e: unknown) => e instanceof ConfigError && /--distance/.test(e.message));
  await assert.rejects(cli('eval', '--model', r.artifactDir, '--query-data', data.csv, '--index-data', data.csv, '--limit', '0'), (e: unknown) => e instanceof ConfigError && /--limit/.test(e.message));
  await assert.rejects(cli('eval', '--model', r.artifactDir, '--query-data', data.csv), (e: unknown) => e instanceof CommanderError && /index-data/.test(e.message));
});
