// One index, one owner: `clipfit serve` (a real child process) and `clipfit index …` open the same
// folder layout and take the same lock, which names its holder by pid and process start time. The
// CLI refuses a served index with the server's URL; a rebuild never deletes what the server holds.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { indexCli } from './index_cli.js';
import { IndexLockedError } from '../src/errors.js';
import { createModelFolder } from '../src/models/clip/weights/init.js';
import { openFolderIndex } from '../src/search/folder_index.js';
import { acquireIndexLock, processStart } from '../src/search/index_lock.js';
import { makeShapesCsv } from './fit_data.js';
import { REPO_ROOT, requireFixture } from './fixtures.js';
import { startServeProcess } from './serve_process.js';

const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-owner-'));
process.env['CLIPFIT_HOME'] = home;
after(() => rmSync(home, { recursive: true, force: true }));

const cli = indexCli;

const bpe = requireFixture('bpe_simple_vocab_16e6.txt.gz');
let model = '';
let shapes: { dir: string; captions: string[] };
before(async () => {
  if (!bpe) return;
  model = path.join(home, 'model');
  await createModelFolder(model, 'tiny-test', { kind: 'bpe-gz', file: bpe }, 1);
  shapes = await makeShapesCsv(4);
});
after(() => shapes && rmSync(shapes.dir, { recursive: true, force: true }));

const img = (i: number) => path.join(shapes.dir, `img00${i}.png`);
const upload = async (url: string, i: number, id: string) => {
  const f = new FormData();
  f.append('file', new Blob([readFileSync(img(i))], { type: 'image/png' }), `img${i}.png`);
  f.append('ids', JSON.stringify([id]));
  return fetch(`${url}/index`, { method: 'POST', body: f });
};

test('a served index refuses clipfit index add and rebuild, naming the server; both share one layout', { timeout: 180_000 }, async (t) => {
  if (!bpe) return t.skip('tokenizer fixture missing');
  const root = path.join(home, 'indexes', 'shoes');
  let srv = await startServeProcess(['--model', model, '--index', 'shoes'], { CLIPFIT_HOME: home });
  try {
    assert.equal((await upload(srv.url, 0, 'first')).status, 201);
    const locked = (e: unknown) => e instanceof IndexLockedError && e.message.includes('clipfit serve') && e.message.includes(srv.url) && e.pid === srv.child.pid;
    await assert.rejects(cli('index', 'add', '--index', 'shoes', '--model', model, img(1)), locked);
    await assert.rejects(cli('index', 'rebuild', '--index', 'shoes', '--model', model), locked);
    await assert.rejects(cli('index', 'info', '--index', 'shoes'), locked);
    // A second server on the same index is refused as well.
    await assert.rejects(startServeProcess(['--model', model, '--index', 'shoes'], { CLIPFIT_HOME: home }), /held by clipfit serve/);
    // Nothing of the server's was touched: its images and log are there, and it still takes writes.
    assert.ok(existsSync(path.join(root, 'images', 'first.png')));
    assert.ok(existsSync(path.join(root, 'primary', 'log.bin')));
    assert.equal((await upload(srv.url, 1, 'second')).status, 201);
  } finally {
    await srv.kill();
  }
  // The server died without releasing its lock: the lock is stale, the CLI opens the same index.
  const info = JSON.parse((await cli('index', 'info', '--index', 'shoes', '--json')).join('\n'));
  assert.equal(info.size, 2);
  assert.equal(info.vectors, path.join(root, 'primary'));
  // rebuild re-encodes the server's stored images (they have no metadata.uri), beside the old generation.
  assert.match((await cli('index', 'rebuild', '--index', 'shoes', '--model', model))[0]!, /^rebuilt index shoes: 2 image\(s\) re-encoded/);
  assert.deepEqual(readdirSync(path.join(root, 'images')).sort(), ['first.png', 'second.png']);
  assert.ok(!existsSync(path.join(root, 'primary.old')) && !existsSync(path.join(root, 'primary.rebuild')));
  await cli('index', 'add', '--index', 'shoes', '--model', model, img(2));
  // The server sees what the CLI wrote.
  srv = await startServeProcess(['--model', model, '--index', 'shoes'], { CLIPFIT_HOME: home });
  try {
    const st = (await (await fetch(`${srv.url}/index`)).json()) as { size: number; ready: boolean };
    assert.deepEqual([st.size, st.ready], [3, true]);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
  assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('LOCK')), [], 'a clean shutdown releases the lock');
});

test('an index written by older clipfit index commands (vectors in the root) moves into primary/', async (t) => {
  if (!bpe) return t.skip('tokenizer fixture missing');
  const root = path.join(home, 'indexes', 'legacy');
  const ix = await openFolderIndex(root, { dim: 4, model: 'm' });
  await ix.add([{ id: 'a', vector: Float32Array.of(1, 0, 0, 0), metadata: { uri: img(0) } }]);
  await ix.close();
  const info = JSON.parse((await cli('index', 'info', '--index', 'legacy', '--json')).join('\n'));
  assert.deepEqual([info.size, info.vectors], [1, path.join(root, 'primary')]);
  assert.ok(!existsSync(path.join(root, 'log.bin')) && existsSync(path.join(root, 'primary', 'meta.json')));
});

test('lock identity: pid and start time; a restarted process with the same pid takes its own index', async () => {
  const dir = mkdtempSync(path.join(home, 'lock-'));
  // An older clipfit's LOCK holding this very pid (as after a restart as pid 1 in a container).
  writeFileSync(path.join(dir, 'LOCK'), String(process.pid));
  const a = await acquireIndexLock(dir, 'test');
  await assert.rejects(acquireIndexLock(dir, 'test'), (e: unknown) => e instanceof IndexLockedError && e.pid === process.pid);
  await a.release();
  // A lock of the current format, same pid, another start time: a predecessor's, stale.
  const start = processStart(process.pid);
  assert.match(String(start), /^\d+$/, 'Linux tells a process start time');
  writeFileSync(path.join(dir, 'LOCK.7'), JSON.stringify({ pid: process.pid, start: String(Number(start) - 1), boot: null, host: os.hostname(), purpose: 'clipfit serve', since: 'x', nonce: 'n' }));
  const b = await acquireIndexLock(dir, 'test');
  assert.equal(path.basename(b.file), 'LOCK.8');
  assert.ok(!existsSync(path.join(dir, 'LOCK.7')), 'the superseded lock is swept');
  await b.release();
  // The folder index takes the same lock.
  const ixDir = path.join(dir, 'ix');
  mkdirSync(ixDir);
  writeFileSync(path.join(ixDir, 'LOCK'), String(process.pid));
  const ix = await openFolderIndex(ixDir, { dim: 2, model: 'm' });
  await assert.rejects(openFolderIndex(ixDir, {}), (e: unknown) => e instanceof IndexLockedError && e.pid === process.pid);
  await ix.close();
});

const racer = `
import { acquireIndexLock } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'src/search/index_lock.ts')).href)};
const [dir, at] = [process.argv[2], Number(process.argv[3])];
while (Date.now() < at) await new Promise((r) => setTimeout(r, 1));
try {
  await acquireIndexLock(dir, 'racer');
  console.log('got');
} catch (e) {
  console.log(e.constructor.name);
}
await new Promise((r) => setTimeout(r, 1500));
`;

test('several processes breaking one stale lock at once: exactly one gets it', { timeout: 120_000 }, async () => {
  const script = path.join(home, 'racer.mts');
  writeFileSync(script, racer);
  for (let round = 0; round < 2; round++) {
    const dir = mkdtempSync(path.join(home, 'race-'));
    // A dead holder: a child that took the lock and was killed.
    const dead = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    writeFileSync(path.join(dir, 'LOCK.1'), JSON.stringify({ pid: dead.pid, start: processStart(dead.pid!), boot: null, host: os.hostname(), purpose: 'dead', since: 'x', nonce: 'd' }));
    dead.kill('SIGKILL');
    await new Promise((r) => dead.once('exit', r));
    const at = Date.now() + 4000;
    const outs = await Promise.all(
      Array.from({ length: 5 }, () =>
        new Promise<string>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', script, dir, String(at)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.on('error', reject);
          p.on('exit', () => resolve(out.trim()));
        }),
      ),
    );
    assert.equal(outs.filter((o) => o === 'got').length, 1, outs.join(', '));
    assert.equal(outs.filter((o) => o === 'IndexLockedError').length, 4, outs.join(', '));
  }
});
