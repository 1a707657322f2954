// The package as a user imports it: `clipfit`, `clipfit/engine`, `clipfit/search` and
// `clipfit/server`, resolved through package.json "exports" from a build of src/ (tsc with
// tsconfig.build.json), in a copy of the package laid out as npm installs it. Each subpath is
// imported by a real Node process and used; a TypeScript consumer is type-checked against the
// declarations the same exports point to.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSC = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
const run = promisify(execFile);

test('clipfit, clipfit/engine, clipfit/search and clipfit/server resolve from the built package and work', async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-exports-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  // node_modules/clipfit as npm lays it out: package.json, dist/ (built here) and src/ (shipped for
  // the web page and model configs); its dependencies from the repository's install.
  const pkg = path.join(tmp, 'node_modules', 'clipfit');
  mkdirSync(pkg, { recursive: true });
  cpSync(path.join(REPO, 'package.json'), path.join(pkg, 'package.json'));
  symlinkSync(path.join(REPO, 'src'), path.join(pkg, 'src'));
  for (const dep of readdirSync(path.join(REPO, 'node_modules'))) {
    if (dep !== 'clipfit' && !dep.startsWith('.')) symlinkSync(path.join(REPO, 'node_modules', dep), path.join(tmp, 'node_modules', dep));
  }
  await run(process.execPath, [TSC, '-p', path.join(REPO, 'tsconfig.build.json'), '--outDir', path.join(pkg, 'dist')], { cwd: REPO, maxBuffer: 1 << 24 });

  const script = `
    const root = await import('clipfit');
    const engine = await import('clipfit/engine');
    const search = await import('clipfit/search');
    const server = await import('clipfit/server');
    const names = (m) => Object.keys(m).sort();
    // The engine at work: y = 2x in onnxruntime.
    const g = new engine.Graph('double');
    const x = g.input('x', 'float32', [3]);
    g.output(engine.ops.mul(x, 2));
    const session = await engine.Session.fromGraph(g);
    const out = Object.values(await session.run({ x: { dtype: 'float32', shape: [3], data: Float32Array.of(1, 2, 3) } }))[0];
    // The library at work: Documents and a typed error.
    const docs = new root.DocumentArray([new root.Document({ text: 'a red dress' })]);
    let caught;
    try { await root.loadCsv('/no/such/pairs.csv'); } catch (e) { caught = e; }
    console.log(JSON.stringify({
      root: names(root), engine: names(engine), search: names(search), server: names(server),
      doubled: [...out.data], docs: docs.length, typed: caught instanceof root.ClipfitError,
      fromDist: import.meta.resolve('clipfit/engine'),
    }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: tmp, maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown> & { root: string[]; engine: string[]; search: string[]; server: string[] };
  assert.equal(r['fromDist'], `file://${path.join(pkg, 'dist', 'engine.js')}`);
  assert.deepEqual(r['doubled'], [2, 4, 6]);
  assert.equal(r['docs'], 1);
  assert.equal(r['typed'], true);
  for (const n of ['fit', 'getModel', 'encode', 'evaluateModel', 'ClipModel', 'startRun', 'getRun', 'listRuns', 'Document', 'DocumentArray', 'loadCsv', 'ClipfitError', 'DataError', 'FitError', 'EvaluationCallback', 'evaluateRetrieval']) {
    assert.ok(r.root.includes(n), `clipfit exports ${n}`);
  }
  // The app (demo, pretraining, dataset builders) and the engine's internals are not on the root.
  for (const n of ['runDemo', 'pretrainBase', 'buildEmojiDataset', 'buildIconCorpus', 'writeDemoReport', 'Graph', 'grad', 'Session', 'serve', 'openIndex']) {
    assert.ok(!r.root.includes(n), `clipfit does not export ${n}`);
  }
  for (const n of ['Graph', 'ops', 'grad', 'gradCheck', 'Session', 'ParamStore', 'AdamW', 'clipLoss', 'buildTrainGraph', 'ClipTokenizer', 'preprocessImage', 'loadModelFolder', 'resolveModel', 'towerOnnx']) {
    assert.ok(r.engine.includes(n), `clipfit/engine exports ${n}`);
  }
  for (const n of ['openIndex', 'FolderIndex', 'PgVectorIndex', 'resolveIndexSpec']) assert.ok(r.search.includes(n), `clipfit/search exports ${n}`);
  for (const n of ['serve', 'createServer', 'openApiDocument', 'HttpError']) assert.ok(r.server.includes(n), `clipfit/server exports ${n}`);
  assert.ok(r.root.length < 200, `clipfit exports ${r.root.length} names; the root is meant to stay small`);

  // A TypeScript consumer resolves each subpath's declarations through "exports" (types conditions).
  writeFileSync(
    path.join(tmp, 'consumer.ts'),
    [
      "import { fit, getModel, ClipModel, DocumentArray, ClipfitError, type FitOptions } from 'clipfit';",
      "import { Graph, ops, Session } from 'clipfit/engine';",
      "import { openIndex, type VectorIndex } from 'clipfit/search';",
      "import { serve, type ServeOptions } from 'clipfit/server';",
      "const o: FitOptions = { model: 'ViT-B-32::openai', trainData: 'pairs.csv' };",
      'const g: Graph = new Graph("g");',
      'export const all = [fit, getModel, ClipModel, DocumentArray, ClipfitError, ops.mul, Session, openIndex, serve, o, g];',
      'export type T = [VectorIndex, ServeOptions];',
    ].join('\n'),
  );
  writeFileSync(
    path.join(tmp, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, files: ['consumer.ts'] }),
  );
  writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const tsc = await run(process.execPath, [TSC, '-p', path.join(tmp, 'tsconfig.json')], { cwd: tmp }).catch((e: { stdout: string }) => e);
  assert.equal(tsc.stdout, '', 'the consumer type-checks');
  assert.ok(readFileSync(path.join(pkg, 'dist', 'index.d.ts'), 'utf8').includes('fit'));
});
