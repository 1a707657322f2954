// The `clipfit` launcher as a user starts it: bin/clipfit.js executed directly (its shebang), which
// must be the serving process itself, with GLIBC_TUNABLES set, so that a SIGTERM to the PID that was
// started stops `clipfit serve`: the port closes and the index LOCK goes. Needs dist/ (npm ci builds
// it through `prepare`; `npx tsc -p tsconfig.build.json` by hand).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createModelFolder } from '../src/models/clip/weights/init.js';
import { lockHolder } from '../src/search/index_lock.js';
import { requireFixture } from './fixtures.js';

const BIN = path.resolve('bin/clipfit.js');
const HAVE_DIST = existsSync(path.resolve('dist/app/cli/main.js'));
if (!HAVE_DIST && process.env.CI === 'true') throw new Error('dist/ missing under CI: npm ci builds it');
const skip = !HAVE_DIST ? 'dist/ missing: run npx tsc -p tsconfig.build.json' : process.platform !== 'linux' ? 'reads /proc' : false;

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

test('SIGTERM to the started clipfit serve closes its port and releases the index lock', { skip }, async (t) => {
  const bpe = requireFixture('bpe_simple_vocab_16e6.txt.gz', t);
  if (!bpe) return;
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-launcher-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const model = path.join(home, 'model');
  await createModelFolder(model, 'tiny-test', { kind: 'bpe-gz', file: bpe }, 1);
  const env: NodeJS.ProcessEnv = { ...process.env, CLIPFIT_HOME: home };
  delete env['GLIBC_TUNABLES'];
  const child = spawn(BIN, ['serve', '--model', model, '--index', 'shoes', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((ok) => child.once('exit', (code, sig) => ok([code, sig])));
  let out = '';
  child.stderr.on('data', (d) => (out += d));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(([code]) => reject(new Error(`serve exited (${code}) before listening:\n${out}`)));
  });
  const root = path.join(home, 'indexes', 'shoes');
  // The PID we started is node serving, not a wrapper around it; the shebang gave it the tunables.
  assert.match(path.basename(readlinkSync(`/proc/${child.pid}/exe`)), /^node/);
  // (glibc cuts the variable after the first tunable in the process's own environment block as it parses it.)
  assert.ok(readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0').some((v) => v.startsWith('GLIBC_TUNABLES=glibc.malloc.mmap_max=0')));
  assert.equal((await lockHolder(root))?.pid, child.pid, 'the server holds the index lock');
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);

  child.kill('SIGTERM');
  const [code, signal] = await exited;
  assert.deepEqual([code, signal], [0, null], out);
  assert.equal(await portOpen(port), false, 'the port is closed');
  assert.equal(await lockHolder(root), null, 'the index lock is released');
  assert.deepEqual(readdirSync(root).filter((f) => f.startsWith('LOCK')), [], 'no lock file is left behind');
});

test('the launcher runs a command to completion with its exit status', { skip }, async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((ok) => {
      const c = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (out += d));
      c.once('exit', (code) => ok({ code, out }));
    });
  const ok = await run(['models']);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /ViT-B-32::openai/);
  const bad = await run(['encode', '--model', '/no/such/folder', '--text', 'x', '--out', path.join(os.tmpdir(), 'never.npy')]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /no\/such\/folder/);
});
