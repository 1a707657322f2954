// Hub downloads against a local Hugging Face–style server on 127.0.0.1 that serves the fixture
// folders: tiny/ as an open_clip-layout repo, tiny-hf/ as a transformers-layout repo. Like the real
// hub, /resolve/ answers LFS files with a 302 carrying X-Linked-Etag (the sha256) to a CDN
// server on another port, which honours Range. The server can cut a response mid-way or flip a byte.
// Test repos are registered through the resolveModel option / CLIPFIT_REGISTRY, never in the real table.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ChecksumError, ConfigError, DownloadError, HubFileError, OfflineError, UnknownModelError } from '../src/errors.js';
import { loadModelFolder } from '../src/models/clip/weights/checkpoint.js';
import { cacheDirFor, resolveModel } from '../src/models/clip/weights/hub.js';
import type { DownloadProgress, ResolveOptions } from '../src/models/clip/weights/hub.js';
import type { RegistryExtension } from '../src/models/clip/weights/registry.js';
import { FIXTURES } from './fixtures.js';

const HAVE = existsSync(path.join(FIXTURES, 'tiny/open_clip_model.safetensors')) && existsSync(path.join(FIXTURES, 'tiny-hf/model.safetensors'));
if (!HAVE && process.env.CI === 'true') throw new Error(`fixtures missing under CI: ${FIXTURES}`);
const skip = HAVE ? false : `fixtures missing: ${FIXTURES}`;

const REPOS: Record<string, string> = { 'test/tiny-openclip': 'tiny', 'test/tiny-hf': 'tiny-hf' };
const HF_FILES = ['config.json', 'preprocessor_config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];
const REGISTRY: RegistryExtension = {
  pretrained: {
    'tiny-test': {
      fixture: { repo: 'test/tiny-openclip', layout: 'open_clip', files: ['open_clip_model.safetensors'] },
      'fixture-hf': { repo: 'test/tiny-hf', layout: 'hf', files: HF_FILES },
      missing: { repo: 'test/tiny-openclip', layout: 'open_clip', files: ['no_such_file.safetensors'] },
    },
  },
};

interface Logged {
  server: 'hub' | 'cdn';
  path: string;
  range?: string;
  auth?: string;
}

const state = {
  log: [] as Logged[],
  /** file → bytes to send before the connection is dropped (applies once). */
  cut: new Map<string, number>(),
  /** files served with one byte flipped. */
  corrupt: new Set<string>(),
};
let hub: http.Server;
let cdn: http.Server;
let hubUrl = '';
let cdnUrl = '';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

function fixtureFile(repo: string, file: string): Buffer | null {
  const folder = REPOS[repo];
  const p = folder && path.join(FIXTURES, folder, file);
  return p && existsSync(p) ? readFileSync(p) : null;
}

/** Serve bytes honouring `Range: bytes=N-`, applying the cut/corrupt switches. */
function serveBytes(req: http.IncomingMessage, res: http.ServerResponse, file: string, body: Buffer): void {
  let data = body;
  if (state.corrupt.has(file)) {
    data = Buffer.from(body);
    data[Math.floor(data.length / 2)]! ^= 0x01;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (m) {
    start = Number(m[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
  } else {
    res.writeHead(200, { 'content-length': data.length });
  }
  const cut = state.cut.get(file);
  if (cut !== undefined && !m) {
    state.cut.delete(file);
    res.write(data.subarray(0, cut), () => res.destroy());
    return;
  }
  res.end(data.subarray(start));
}

before(async () => {
  if (!HAVE) return;
  cdn = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    state.log.push({ server: 'cdn', path: u.pathname, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    const m = /^\/lfs\/(.+)\/([^/]+)$/.exec(u.pathname);
    const body = m && fixtureFile(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!));
    if (!body) return void res.writeHead(404).end();
    serveBytes(req, res, decodeURIComponent(m![2]!), body);
  });
  hub = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    state.log.push({ server: 'hub', path: u.pathname, ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(u.pathname);
    const repo = m && decodeURIComponent(m[1]!);
    const file = m && decodeURIComponent(m[3]!);
    const body = repo && file && fixtureFile(repo, file);
    if (!body) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
    if (file!.endsWith('.safetensors')) {
      // LFS file: redirect to the CDN with the sha256 and size, as huggingface.co does.
      res.writeHead(302, { location: `${cdnUrl}/lfs/${encodeURIComponent(repo!)}/${encodeURIComponent(file!)}`, 'x-linked-etag': `"${sha256(body)}"`, 'x-linked-size': String(body.length), etag: `"${gitSha(body)}"` });
      return void res.end();
    }
    res.setHeader('etag', `"${gitSha(body)}"`); // a git blob id, not a sha256: no digest check
    serveBytes(req, res, file!, body);
  });
  const listen = (s: http.Server) => new Promise<string>((ok) => s.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
  hubUrl = await listen(hub);
  cdnUrl = await listen(cdn);
});

after(() => {
  for (const s of [hub, cdn]) {
    if (!s) continue;
    s.closeAllConnections();
    s.close();
  }
});

function setup(t: { after: (fn: () => void) => void }): { home: string; opts: ResolveOptions } {
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-hub-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  state.log = [];
  state.cut.clear();
  state.corrupt.clear();
  return { home, opts: { home, hubUrl, registry: REGISTRY, env: {} } };
}

const fixtureBytes = (rel: string) => readFileSync(path.join(FIXTURES, rel));
const filesUnder = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : [];

test('name::tag downloads an open_clip repo into the cache, through the redirect, and loads', { skip }, async (t) => {
  const { home, opts } = setup(t);
  const progress: DownloadProgress[] = [];
  const dir = await resolveModel('tiny-test::fixture', { ...opts, onProgress: (p) => progress.push(p) });
  assert.equal(dir, path.join(home, 'models', 'test', 'tiny-openclip', 'main'));
  assert.equal(dir, cacheDirFor('test/tiny-openclip', 'main', home));
  assert.ok(readFileSync(path.join(dir, 'open_clip_model.safetensors')).equals(fixtureBytes('tiny/open_clip_model.safetensors')));
  assert.deepEqual(filesUnder(dir).sort(), ['open_clip_config.json', 'open_clip_model.safetensors']);
  const loaded = await loadModelFolder(dir);
  const ref = await loadModelFolder(path.join(FIXTURES, 'tiny'));
  assert.deepEqual(loaded.config.model_cfg, ref.config.model_cfg);
  assert.equal(loaded.config.name, 'tiny-test::fixture');
  for (const [k, v] of ref.weights) assert.deepEqual(loaded.weights.get(k)!.data, v.data, k);
  // The repo's config first, probes for tokenizer files (absent here), then the weights through the CDN.
  assert.deepEqual(
    state.log.map((l) => `${l.server} ${l.path.split('/').pop()}`),
    ['hub open_clip_config.json', 'hub vocab.json', 'hub merges.txt', 'hub tokenizer.json', 'hub open_clip_model.safetensors', 'cdn open_clip_model.safetensors'],
  );
  // Progress: non-decreasing, ending with done at the full size.
  const size = statSync(path.join(dir, 'open_clip_model.safetensors')).size;
  assert.ok(progress.length >= 2);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.received >= progress[i - 1]!.received);
  assert.deepEqual(progress.at(-1), { model: 'tiny-test::fixture', repo: 'test/tiny-openclip', file: 'open_clip_model.safetensors', received: size, total: size, done: true });

  // Cached: no more requests, online or offline.
  state.log = [];
  assert.equal(await resolveModel('tiny-test::fixture', opts), dir);
  assert.equal(await resolveModel('tiny-test::fixture', { ...opts, offline: true }), dir);
  assert.equal(state.log.length, 0);
});

test('an HF-layout repo downloads all its files and loads to the same weights', { skip }, async (t) => {
  const { opts } = setup(t);
  const dir = await resolveModel('tiny-test::fixture-hf', opts);
  for (const f of HF_FILES) assert.ok(readFileSync(path.join(dir, f)).equals(fixtureBytes(`tiny-hf/${f}`)), f);
  const a = await loadModelFolder(dir);
  const b = await loadModelFolder(path.join(FIXTURES, 'tiny'));
  assert.equal(a.layout, 'hf');
  assert.deepEqual(a.config.model_cfg, b.config.model_cfg);
  for (const [k, v] of b.weights) assert.ok(Buffer.from(a.weights.get(k)!.data.buffer).equals(Buffer.from(v.data.buffer)), k);
  assert.equal(a.tokenizer?.kind, 'vocab-merges');
});

test('a response cut mid-way resumes with a Range request on the .part file', { skip }, async (t) => {
  const { opts } = setup(t);
  const size = fixtureBytes('tiny/open_clip_model.safetensors').length;
  const cutAt = 3_000_000;
  state.cut.set('open_clip_model.safetensors', cutAt);
  const dir = await resolveModel('tiny-test::fixture', opts);
  assert.ok(readFileSync(path.join(dir, 'open_clip_model.safetensors')).equals(fixtureBytes('tiny/open_clip_model.safetensors')));
  const cdnReqs = state.log.filter((l) => l.server === 'cdn');
  assert.equal(cdnReqs.length, 2);
  assert.equal(cdnReqs[0]!.range, undefined);
  const start = Number(/^bytes=(\d+)-$/.exec(cdnReqs[1]!.range ?? '')?.[1]);
  assert.ok(start > 0 && start <= cutAt && start < size, `resumed from ${cdnReqs[1]!.range}`);
  assert.ok(!existsSync(path.join(dir, 'open_clip_model.safetensors.part')));
});

test('with no retries a cut leaves the .part; the next call resumes it', { skip }, async (t) => {
  const { opts } = setup(t);
  state.cut.set('open_clip_model.safetensors', 1_000_000);
  await assert.rejects(resolveModel('tiny-test::fixture', { ...opts, retries: 0 }), (e: Error) => e instanceof DownloadError && /resumes next time/.test(e.message));
  const dir = cacheDirFor('test/tiny-openclip', 'main', opts.home!);
  const part = path.join(dir, 'open_clip_model.safetensors.part');
  const partSize = statSync(part).size;
  assert.ok(partSize > 0 && partSize <= 1_000_000);
  assert.ok(!existsSync(path.join(dir, 'open_clip_model.safetensors')));
  assert.ok(!existsSync(path.join(dir, 'open_clip_config.json')));
  // Offline, a partial download is not a model.
  await assert.rejects(resolveModel('tiny-test::fixture', { ...opts, offline: true }), OfflineError);
  state.log = [];
  await resolveModel('tiny-test::fixture', opts);
  assert.equal(state.log.find((l) => l.server === 'cdn')!.range, `bytes=${partSize}-`);
  assert.ok(readFileSync(path.join(dir, 'open_clip_model.safetensors')).equals(fixtureBytes('tiny/open_clip_model.safetensors')));
});

test('a corrupted byte fails the sha256 check and leaves nothing in the cache', { skip }, async (t) => {
  const { home, opts } = setup(t);
  state.corrupt.add('open_clip_model.safetensors');
  await assert.rejects(
    resolveModel('tiny-test::fixture', opts),
    (e: Error) => e instanceof ChecksumError && e.file === 'open_clip_model.safetensors' && e.expected === sha256(fixtureBytes('tiny/open_clip_model.safetensors')) && /sha256 mismatch/.test(e.message),
  );
  assert.deepEqual(filesUnder(path.join(home, 'models')), []);
});

test('a digest from the registry is checked too', { skip }, async (t) => {
  const { home, opts } = setup(t);
  const wrong = '0'.repeat(64);
  const registry: RegistryExtension = {
    pretrained: { 'tiny-test': { pinned: { repo: 'test/tiny-hf', layout: 'hf', files: [{ name: 'config.json', sha256: wrong }, 'model.safetensors'] } } },
  };
  await assert.rejects(resolveModel('tiny-test::pinned', { ...opts, registry }), (e: Error) => e instanceof ChecksumError && e.expected === wrong && e.file === 'config.json');
  assert.deepEqual(filesUnder(path.join(home, 'models')), []);
  const right = sha256(fixtureBytes('tiny-hf/config.json'));
  registry.pretrained!['tiny-test']!['pinned']!.files[0] = { name: 'config.json', sha256: right };
  const dir = await resolveModel('tiny-test::pinned', { ...opts, registry });
  assert.ok(existsSync(path.join(dir, 'config.json')));
});

test('offline mode with an empty cache names the model and makes no request', { skip }, async (t) => {
  const { opts } = setup(t);
  await assert.rejects(resolveModel('tiny-test::fixture', { ...opts, env: { CLIPFIT_OFFLINE: '1' } }), (e: Error) => e instanceof OfflineError && /model 'tiny-test::fixture' is not available offline/.test(e.message));
  assert.equal(state.log.length, 0);
});

test('HTTP errors, bad URLs and unknown names are typed errors', { skip }, async (t) => {
  const { opts } = setup(t);
  await assert.rejects(
    resolveModel('tiny-test::missing', opts),
    (e: Error) => e instanceof HubFileError && e.repo === 'test/tiny-openclip' && e.file === 'no_such_file.safetensors' && /test\/tiny-openclip\/resolve\/main\/no_such_file\.safetensors/.test(e.message) && /HTTP 404/.test(e.message),
  );
  assert.deepEqual(filesUnder(path.join(opts.home!, 'models')), []);
  await assert.rejects(resolveModel('tiny-test::fixture', { ...opts, hubUrl: 'http://example.com' }), (e: Error) => e instanceof ConfigError && /only for 127\.0\.0\.1/.test(e.message));
  await assert.rejects(resolveModel('tiny-test::nope', opts), (e: Error) => e instanceof UnknownModelError && /fixture, fixture-hf, missing/.test(e.message));
  await assert.rejects(resolveModel('ViT-B-32', opts), (e: Error) => e instanceof UnknownModelError && /ViT-B-32::openai/.test(e.message));
  await assert.rejects(resolveModel('no-such-thing', opts), UnknownModelError);
  // Only the 'missing' entry made requests.
  assert.ok(state.log.every((l) => l.path.startsWith('/test/tiny-openclip/')));
});

test('a folder path resolves to itself after a layout check', { skip }, async () => {
  assert.equal(await resolveModel(path.join(FIXTURES, 'tiny-hf')), path.join(FIXTURES, 'tiny-hf'));
  await assert.rejects(resolveModel(FIXTURES), UnknownModelError);
});

test('CLIPFIT_HOME, CLIPFIT_HUB_URL and CLIPFIT_REGISTRY configure it; the token stays on the hub origin', { skip }, async (t) => {
  const { home } = setup(t);
  const regFile = path.join(home, 'registry.json');
  writeFileSync(regFile, JSON.stringify(REGISTRY));
  const env = { CLIPFIT_HOME: home, CLIPFIT_HUB_URL: hubUrl, CLIPFIT_REGISTRY: regFile, HF_TOKEN: 'secret' };
  const dir = await resolveModel('tiny-test::fixture', { env });
  assert.equal(dir, cacheDirFor('test/tiny-openclip', 'main', home));
  assert.equal(state.log.find((l) => l.server === 'hub')!.auth, 'Bearer secret');
  assert.equal(state.log.find((l) => l.server === 'cdn')!.auth, undefined);
  await assert.rejects(resolveModel('tiny-test::fixture', { env: { ...env, CLIPFIT_HOME: path.join(home, 'other'), CLIPFIT_HUB_URL: 'ftp://x' } }), /CLIPFIT_HUB_URL: must be https/);
});
