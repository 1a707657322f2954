// The parts of clipfit serve that need no model: the Prometheus text format, the micro-batcher,
// image sniffing by magic bytes (on real images made by sharp), the rank softmax, static-file path
// safety, index names, loopback detection and the CLI's options.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import sharp from 'sharp';
import { registerServeCommand } from '../src/app/cli/commands_serve.js';
import { UnknownModelError } from '../src/errors.js';
import { RunStore } from '../src/runs/store.js';
import { resolveServeModel } from '../src/server/models.js';
import { MicroBatcher } from '../src/server/batcher.js';
import { isSafeId, sniffImage } from '../src/server/images.js';
import { Counter, Histogram } from '../src/server/metrics.js';
import { rankScores } from '../src/server/routes_api.js';
import { indexDirOf, isLoopbackHost } from '../src/server/server.js';
import { resolveStatic } from '../src/server/static.js';

test('Prometheus exposition: counters with escaped labels, cumulative histogram buckets, _sum and _count', () => {
  const c = new Counter('x_total', 'Things.');
  c.inc({ route: '/a', status: '200' });
  c.inc({ status: '200', route: '/a' }, 2);
  c.inc({ route: 'q"\\\n' });
  assert.deepEqual(c.render(), ['# HELP x_total Things.', '# TYPE x_total counter', 'x_total{route="/a",status="200"} 3', 'x_total{route="q\\"\\\\\\n"} 1']);
  const h = new Histogram('lat_seconds', 'Latency.', [0.1, 1]);
  for (const v of [0.05, 0.1, 0.5, 3]) h.observe(v, { route: '/s' });
  assert.deepEqual(h.render(), [
    '# HELP lat_seconds Latency.',
    '# TYPE lat_seconds histogram',
    'lat_seconds_bucket{route="/s",le="0.1"} 2',
    'lat_seconds_bucket{route="/s",le="1"} 3',
    'lat_seconds_bucket{route="/s",le="+Inf"} 4',
    'lat_seconds_sum{route="/s"} 3.65',
    'lat_seconds_count{route="/s"} 4',
  ]);
});

test('micro-batcher: concurrent items share runs of at most maxBatch; results keep their order; one bad item fails alone', async () => {
  const runs: number[][] = [];
  const b = new MicroBatcher<number, number>(async (xs) => {
    runs.push(xs);
    await new Promise((r) => setTimeout(r, 5));
    if (xs.includes(13)) throw new Error('13 is bad');
    return xs.map((x) => x * 10);
  }, { maxBatch: 4, maxWaitMs: 10 });
  const out = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(i)));
  assert.deepEqual(out, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  assert.deepEqual(runs.map((r) => r.length), [4, 4, 2]);
  assert.equal(b.calls, 3);
  runs.length = 0;
  const mixed = await Promise.allSettled([11, 12, 13, 14].map((x) => b.submit(x)));
  assert.deepEqual(mixed.map((m) => m.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.equal((mixed[1] as PromiseFulfilledResult<number>).value, 120);
  assert.deepEqual(runs, [[11, 12, 13, 14], [11], [12], [13], [14]]);
  // A lone item runs after maxWaitMs without waiting for company.
  const t0 = Date.now();
  assert.equal(await b.submit(1), 10);
  assert.ok(Date.now() - t0 < 500);
});

test('images are told by their bytes: real PNG, JPEG, WebP and GIF from sharp; text and truncated headers are not images', async () => {
  const raw = sharp(Buffer.alloc(8 * 8 * 3, 128), { raw: { width: 8, height: 8, channels: 3 } });
  assert.equal(sniffImage(await raw.clone().png().toBuffer()), 'png');
  assert.equal(sniffImage(await raw.clone().jpeg().toBuffer()), 'jpeg');
  assert.equal(sniffImage(await raw.clone().webp().toBuffer()), 'webp');
  assert.equal(sniffImage(await raw.clone().gif().toBuffer()), 'gif');
  assert.equal(sniffImage(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>')), null);
  assert.equal(sniffImage(new Uint8Array([0x89, 0x50, 0x4e])), null);
  assert.equal(sniffImage(new TextEncoder().encode('RIFF....WAVEfmt ')), null);
  for (const id of ['a', 'img_001.png', 'A-b.c', '0123456789abcdef']) assert.ok(isSafeId(id), id);
  for (const id of ['', '.hidden', '..', '../x', 'a/b', 'a\\b', 'a b', 'x'.repeat(129), 'é']) assert.ok(!isSafeId(id), id);
});

test('rank scores: softmax of 100·cosine, stable for large logits', () => {
  const s = rankScores([0.3, 0.29, 0.1]);
  // e^0 : e^-1 : e^-20, normalised.
  const z = 1 + Math.exp(-1) + Math.exp(-20);
  assert.ok(Math.abs(s[0]! - 1 / z) < 1e-12);
  assert.ok(Math.abs(s[1]! - Math.exp(-1) / z) < 1e-12);
  assert.ok(Math.abs(s.reduce((a, b) => a + b) - 1) < 1e-12);
  assert.deepEqual(rankScores([0.9]), [1]);
  assert.ok(rankScores([1, -1]).every(Number.isFinite));
});

test('static files: only regular files inside the web folder; no .., dot-files, encoded escapes or symlinks out', async () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-static-'));
  try {
    const web = path.join(tmp, 'web');
    mkdirSync(path.join(web, 'css'), { recursive: true });
    writeFileSync(path.join(web, 'index.html'), '<html>');
    writeFileSync(path.join(web, 'css', 'a.css'), 'a{}');
    writeFileSync(path.join(web, '.env'), 'SECRET=1');
    writeFileSync(path.join(tmp, 'secret.txt'), 'no');
    symlinkSync(path.join(tmp, 'secret.txt'), path.join(web, 'link.txt'));
    assert.equal((await resolveStatic(web, '/'))?.file, path.join(realpathSync(web), 'index.html'));
    assert.match((await resolveStatic(web, '/css/a.css'))!.contentType, /text\/css/);
    assert.match((await resolveStatic(web, '/css/a.css?v=2'))!.contentType, /text\/css/);
    for (const bad of ['/../secret.txt', '/%2e%2e/secret.txt', '/css/%2e%2e/%2e%2e/secret.txt', '/.env', '/link.txt', '/css', '/%00', '/%E0%A4%A', '/..\\secret.txt', '/missing'])
      assert.equal(await resolveStatic(web, bad), null, bad);
    assert.equal(await resolveStatic(path.join(tmp, 'none'), '/'), null);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('index names resolve under $CLIPFIT_HOME/indexes; paths stay paths; loopback hosts', () => {
  assert.equal(indexDirOf('shoes', '/h'), path.join('/h', 'indexes', 'shoes'));
  assert.equal(indexDirOf('./x/y', '/h'), path.resolve('x/y'));
  assert.equal(indexDirOf('/abs/dir', '/h'), '/abs/dir');
  assert.throws(() => indexDirOf('bad name!', '/h'), /index/);
  for (const h of ['127.0.0.1', 'localhost', '::1', '127.3.2.1']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.0.2', 'example.com']) assert.ok(!isLoopbackHost(h), h);
});

test('clipfit serve: options and defaults', () => {
  const program = new Command().exitOverride();
  registerServeCommand(program, () => {});
  const serveCmd = program.commands.find((c) => c.name() === 'serve')!;
  const flags = serveCmd.options.map((o) => o.long);
  for (const f of ['--model', '--compare', '--index', '--port', '--host', '--token', '--reindex', '--cors', '--allow-root', '--allow-remote-uris', '--allowed-host', '--max-upload-mb']) assert.ok(flags.includes(f), f);
  const defaults = serveCmd.opts();
  assert.equal(defaults['port'], 8080);
  assert.equal(defaults['host'], '127.0.0.1');
  assert.equal(defaults['index'], 'default');
  assert.equal(defaults['allowRemoteUris'], undefined);
  assert.deepEqual(defaults['allowedHost'], []);
  assert.throws(() => program.parse(['serve', '--model', 'm', '--port', '70000'], { from: 'user' }), /--port/);
});

test('model specs: a model folder, a run folder (its artifact/), a finished run by name; unknown names fail offline', async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-serve-home-'));
  try {
    const folder = path.join(home, 'm');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'open_clip_config.json'), '{}');
    // A config without weights is no model folder, and says what one holds.
    await assert.rejects(resolveServeModel(folder, { home }), /not a model folder: expected open_clip_config\.json \+ open_clip_model\.safetensors/);
    writeFileSync(path.join(folder, 'open_clip_model.safetensors'), '');
    assert.equal(await resolveServeModel(folder, { home }), folder);
    const runDir = path.join(home, 'r');
    mkdirSync(path.join(runDir, 'artifact'), { recursive: true });
    assert.equal(await resolveServeModel(runDir, { home }), path.join(runDir, 'artifact'));
    const store = RunStore.open(home);
    const rec = store.createRun({ options: { model: 'x', trainData: 'y' } as never });
    await assert.rejects(resolveServeModel(rec.name, { home }), (e: unknown) => e instanceof UnknownModelError && /no artifact/.test(e.message));
    store.markStarted(rec.name, process.pid);
    store.finish(rec.name, 'FINISHED', { artifactDir: folder });
    assert.equal(await resolveServeModel(rec.name, { home }), folder);
    store.close();
    await assert.rejects(resolveServeModel('no-such-model-or-run', { home }), UnknownModelError);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
