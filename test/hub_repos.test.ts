// Every built-in `name::tag` whose repository listing was found (test/hub_repos.json) is fetched from a
// loopback mirror of that listing, loaded, used to encode a caption and an image, and fine-tuned one
// step with fit() — with no tokenizer option, as a user types it. The mirrors hold the published
// file names; configs keep what was published but describe the small tiny-test CLIP, whose weights
// (real OpenAI / transformers key names) come from the reference fixtures. The registry is the
// built-in one with each architecture swapped for that small config through CLIPFIT_REGISTRY.
// Then the bad repositories: no weights, no config, a truncated file, a tokenizer that does not
// parse, a config naming a Hugging Face tokenizer the repository lacks.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DownloadError, HubFileError } from '../src/errors.js';
import { loadModelFolder } from '../src/models/clip/weights/checkpoint.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { cacheDirFor, resolveModel } from '../src/models/clip/weights/hub.js';
import type { ResolveOptions } from '../src/models/clip/weights/hub.js';
import { readSafetensors } from '../src/runtime/safetensors.js';
import { fit } from '../src/train/fit.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES } from './fixtures.js';
import { checkTensor, loadTolerances } from './tolerance.js';

const HAVE = existsSync(path.join(FIXTURES, 'tiny/open_clip_model.safetensors')) && existsSync(path.join(FIXTURES, 'tiny-hf/model.safetensors'));
if (!HAVE && process.env.CI === 'true') throw new Error(`fixtures missing under CI: ${FIXTURES}`);
const skip = HAVE ? false : `fixtures missing: ${FIXTURES}`;

interface Listed {
  revision: string;
  files: Record<string, { lfs?: boolean; never?: boolean; from?: string; published?: { model_cfg: Record<string, unknown>; preprocess_cfg?: unknown } }>;
}
const LISTINGS = JSON.parse(readFileSync(path.join(import.meta.dirname, 'hub_repos.json'), 'utf8')).repos as Record<string, Listed>;
const TINY = JSON.parse(readFileSync(path.resolve('src/models/clip/configs/tiny-test.json'), 'utf8'));

interface Served {
  body: Buffer;
  lfs: boolean;
  /** Sent in place of body, with body's LFS digest and size (a truncated copy behind the CDN). */
  truncated?: boolean;
}
/** repo → revision → file → bytes. */
const repos = new Map<string, Map<string, Map<string, Served>>>();
const log: string[] = [];
let hub: http.Server, cdn: http.Server;
let hubUrl = '', cdnUrl = '';
let home = '', regFile = '';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fixture = (rel: string) => readFileSync(path.join(FIXTURES, rel));

/** tokenizer.json (transformers' format) from vocab.json + merges.txt. */
function tokenizerJson(): Buffer {
  const vocab = JSON.parse(fixture('tiny-hf/vocab.json').toString('utf8'));
  const merges = fixture('tiny-hf/merges.txt').toString('utf8').split('\n').filter((l) => l && !l.startsWith('#version'));
  const added = ['<|startoftext|>', '<|endoftext|>'].map((content) => ({ id: vocab[content], content, special: true }));
  return Buffer.from(JSON.stringify({ version: '1.0', added_tokens: added, model: { type: 'BPE', vocab, merges } }));
}

/** A published open_clip config with the small architecture in place of the real one. */
function smallConfig(published: { model_cfg: Record<string, unknown>; preprocess_cfg?: unknown }): Record<string, unknown> {
  return { ...published, model_cfg: { ...published.model_cfg, embed_dim: TINY.embed_dim, vision_cfg: TINY.vision_cfg, text_cfg: TINY.text_cfg } };
}

function mirror(listing: Listed): Map<string, Served> {
  const files = new Map<string, Served>();
  for (const [name, f] of Object.entries(listing.files)) {
    if (name.endsWith('/')) continue; // a folder
    let body: Buffer;
    if (f.published) body = Buffer.from(JSON.stringify(smallConfig(f.published), null, 2));
    else if (f.from?.startsWith('tokenizer.json')) body = tokenizerJson();
    else if (f.from) body = fixture(f.from);
    else body = Buffer.from(`placeholder for ${name}\n`);
    files.set(name, { body, lfs: !!f.lfs });
  }
  return files;
}

function addRevision(repo: string, revision: string, files: Map<string, Served>): void {
  if (!repos.has(repo)) repos.set(repo, new Map());
  repos.get(repo)!.set(revision, files);
}

function serve(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  if (start >= body.length && body.length > 0) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
  if (m) res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
  else res.writeHead(200, { 'content-length': body.length });
  res.end(body.subarray(start));
}

function lookup(repo: string, revision: string, file: string): Served | undefined {
  return repos.get(repo)?.get(revision)?.get(file);
}

before(async () => {
  if (!HAVE) return;
  for (const [repo, listing] of Object.entries(LISTINGS)) addRevision(repo, listing.revision, mirror(listing));
  cdn = http.createServer((req, res) => {
    const [, repo, revision, file] = new URL(req.url!, 'http://x').pathname.split('/').map(decodeURIComponent);
    log.push(`cdn ${repo}@${revision}/${file}`);
    const f = lookup(repo!, revision!, file!);
    if (!f) return void res.writeHead(404).end();
    serve(req, res, f.truncated ? f.body.subarray(0, f.body.length >> 1) : f.body);
  });
  hub = http.createServer((req, res) => {
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(new URL(req.url!, 'http://x').pathname);
    if (!m) return void res.writeHead(400).end();
    const [repo, revision, file] = [m[1]!, decodeURIComponent(m[2]!), decodeURIComponent(m[3]!)];
    log.push(`hub ${repo}@${revision}/${file}`);
    if (!repos.get(repo)?.has(revision)) return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
    const f = lookup(repo, revision, file);
    if (!f) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
    if (f.lfs) {
      // As huggingface.co: a redirect to the CDN carrying the LFS object's sha256 and size.
      const to = `${cdnUrl}/${[repo, revision, file].map(encodeURIComponent).join('/')}`;
      return void res.writeHead(302, { location: to, 'x-linked-etag': `"${sha256(f.body)}"`, 'x-linked-size': String(f.body.length) }).end();
    }
    serve(req, res, f.truncated ? f.body.subarray(0, f.body.length >> 1) : f.body);
  });
  const listen = (s: http.Server) => new Promise<string>((ok) => s.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
  hubUrl = await listen(hub);
  cdnUrl = await listen(cdn);
  home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-hub-repos-'));
  // The built-in tags, on the small architecture; plus the HF-layout repository and the bad variants.
  const small = (quick_gelu: boolean) => ({ ...TINY, quick_gelu });
  const timmB32 = 'timm/vit_base_patch32_clip_224.openai';
  const variant = (revision: string) => ({ repo: timmB32, revision, layout: 'open_clip', files: ['open_clip_model.safetensors'], quick_gelu: true });
  const hfRepo = { repo: 'openai/clip-vit-base-patch32', layout: 'hf', files: ['model.safetensors'], quick_gelu: true };
  writeFileSync(
    (regFile = path.join(home, 'registry.json')),
    JSON.stringify({
      models: Object.fromEntries(['ViT-B-32', 'ViT-B-16', 'ViT-L-14', 'ViT-L-14-336'].flatMap((n) => [[n, small(false)], [`${n}-quickgelu`, small(true)]])),
      pretrained: {
        'ViT-B-32': {
          'openai-hf': { ...hfRepo, revision: 'refs/pr/32' },
          'hf-no-config': { ...hfRepo, revision: 'no-config' },
          'oc-no-config': variant('no-config'),
          truncated: variant('truncated'),
          'truncated-plain': variant('truncated-plain'),
          'bad-tokenizer': variant('bad-tokenizer'),
          'hf-tokenizer': variant('hf-tokenizer'),
        },
      },
    }),
  );
  const b32 = repos.get(timmB32)!.get('main')!;
  const hf = repos.get('openai/clip-vit-base-patch32')!.get('refs/pr/32')!;
  const edit = (base: Map<string, Served>, f: (m: Map<string, Served>) => void) => {
    const m = new Map([...base].map(([k, v]) => [k, { ...v }]));
    f(m);
    return m;
  };
  addRevision('openai/clip-vit-base-patch32', 'no-config', edit(hf, (m) => m.delete('config.json')));
  addRevision(timmB32, 'no-config', edit(b32, (m) => m.delete('open_clip_config.json')));
  addRevision(timmB32, 'truncated', edit(b32, (m) => (m.get('open_clip_model.safetensors')!.truncated = true)));
  // No LFS metadata at all (a plain file server): only the safetensors header can tell.
  addRevision(timmB32, 'truncated-plain', edit(b32, (m) => m.set('open_clip_model.safetensors', { ...m.get('open_clip_model.safetensors')!, lfs: false, truncated: true })));
  addRevision(timmB32, 'bad-tokenizer', edit(b32, (m) => m.set('vocab.json', { body: Buffer.from('{"a</w>": 1, "b'), lfs: false })));
  addRevision(
    timmB32,
    'hf-tokenizer',
    edit(b32, (m) => {
      for (const f of ['vocab.json', 'merges.txt', 'tokenizer.json']) m.delete(f);
      const cfg = JSON.parse(m.get('open_clip_config.json')!.body.toString('utf8'));
      cfg.model_cfg.text_cfg.hf_tokenizer_name = 'timm/some-tokenizer';
      m.set('open_clip_config.json', { body: Buffer.from(JSON.stringify(cfg)), lfs: false });
    }),
  );
});

after(() => {
  for (const s of [hub, cdn]) {
    if (!s) continue;
    s.closeAllConnections();
    s.close();
  }
  if (home) rmSync(home, { recursive: true, force: true });
});

const opts = (h = home): ResolveOptions => ({ home: h, hubUrl, env: { CLIPFIT_REGISTRY: regFile } });
const filesUnder = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : [];

/** Tags with a mirrored listing that holds weights clipfit reads. */
const GOOD = ['ViT-B-32::openai', 'ViT-B-32-quickgelu::openai', 'ViT-L-14::laion2b_s32b_b82k', 'ViT-B-32::openai-hf'];

test('every mirrored built-in tag downloads what its repository holds, loads, and encodes like the reference', { skip }, async () => {
  const cfg = JSON.parse(fixture('tiny/config.json').toString('utf8'));
  const fwd = await readSafetensors(path.join(FIXTURES, 'tiny/forward.safetensors'));
  const tol = loadTolerances(path.join(FIXTURES, 'tiny/tolerances.json'));
  const caption = cfg.batch1.captions[0] as string;
  const image = path.join(FIXTURES, 'images', cfg.batch1.image_files[0]);
  const refText = (fwd.tensors.get('text_features_normalized')!.data as Float32Array).slice(0, 32);
  const refImage = (fwd.tensors.get('image_features_normalized')!.data as Float32Array).slice(0, 32);
  for (const id of GOOD) {
    log.length = 0;
    const dir = await resolveModel(id, opts());
    const m = await ClipModel.load(id, { ...opts(), threads: 1 });
    assert.equal(m.source, dir);
    const te = await m.encodeTexts([caption]);
    const ie = await m.encodeImages([image]);
    assert.deepEqual([te.shape, ie.shape], [[1, 32], [1, 32]], id);
    // Nothing but what clipfit reads was asked for: no pickles, no TensorFlow or Flax weights.
    const repo = Object.keys(LISTINGS).find((r) => dir.startsWith(cacheDirFor(r, LISTINGS[r]!.revision, home)))!;
    const never = Object.entries(LISTINGS[repo]!.files).filter(([, f]) => f.never).map(([n]) => n);
    assert.ok(never.length > 0); // (a tag sharing a repository with an earlier one finds it cached: no requests)
    assert.ok(log.every((l) => l.includes(repo) && !never.some((n) => l.endsWith(`/${n}`))), `${id}: ${log.join(', ')}`);
    if (id === 'ViT-L-14::laion2b_s32b_b82k') {
      // LAION's weights file name; the tag's Inception statistics win over the repository's config.
      assert.deepEqual(filesUnder(dir).sort(), ['merges.txt', 'open_clip_config.json', 'open_clip_pytorch_model.safetensors', 'vocab.json']);
      assert.deepEqual([m.config.preprocess_cfg.mean, m.config.preprocess_cfg.std], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]);
      assert.equal(m.config.model_cfg.quick_gelu, false);
    } else {
      // OpenAI's weights: QuickGELU whatever the config says, OpenAI's statistics: the reference's features.
      assert.equal(m.config.model_cfg.quick_gelu, true);
      checkTensor(`${id} caption`, te.data, refText, tol['text_features_normalized']!.suggested_atol);
      checkTensor(`${id} image`, ie.data, refImage, tol['image_features_normalized']!.suggested_atol);
    }
    if (id === 'ViT-B-32::openai') {
      // The repository's own tokenizer files (vocab.json + merges.txt); tokenizer.json is then not needed.
      assert.deepEqual(filesUnder(dir).sort(), ['merges.txt', 'open_clip_config.json', 'open_clip_model.safetensors', 'vocab.json']);
      assert.equal(m.tokenizerFiles?.kind, 'vocab-merges');
      assert.ok(!log.some((l) => l.endsWith('/tokenizer.json')));
    }
    if (id === 'ViT-B-32::openai-hf') assert.equal(m.layout, 'hf');
    await m.release();
  }
});

test('fit() fine-tunes one step from each mirrored tag, named as a user names it', { skip }, async () => {
  const data = await makeShapesCsv(2);
  const saved = { ...process.env };
  Object.assign(process.env, { CLIPFIT_HOME: home, CLIPFIT_HUB_URL: hubUrl, CLIPFIT_REGISTRY: regFile });
  try {
    for (const id of GOOD) {
      const r = await fit({ model: id, trainData: data.csv, epochs: 1, batchSize: 2, learningRate: 1e-3, numWorkers: 1, workDir: mkdtempSync(path.join(os.tmpdir(), 'clipfit-run-')) });
      assert.equal(r.steps, 1, id);
      const before = await loadModelFolder(await resolveModel(id, opts()));
      const afterFit = await loadModelFolder(r.artifactDir);
      const w = 'visual.proj';
      assert.notDeepEqual(afterFit.weights.get(w)!.data, before.weights.get(w)!.data, `${id}: one AdamW step moved ${w}`);
      assert.ok(afterFit.tokenizer, `${id}: the artifact loads with a tokenizer`);
    }
  } finally {
    for (const k of ['CLIPFIT_HOME', 'CLIPFIT_HUB_URL', 'CLIPFIT_REGISTRY']) if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
    rmSync(data.dir, { recursive: true, force: true });
  }
});

/** Resolve in a fresh cache; expect the error; the cache must hold nothing afterwards. */
async function rejectsClean(id: string, check: (e: Error) => boolean): Promise<string[]> {
  const h = mkdtempSync(path.join(os.tmpdir(), 'clipfit-hub-bad-'));
  log.length = 0;
  try {
    await assert.rejects(resolveModel(id, opts(h)), (e: Error) => {
      assert.ok(check(e), `${id}: ${e.name}: ${e.message}`);
      return true;
    });
    assert.deepEqual(filesUnder(path.join(h, 'models')), [], `${id} left files in the cache`);
    return [...log];
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
}

test('a repository without the weights file: HubFileError naming repo, file, and what to do', { skip }, async () => {
  for (const [id, repo] of [
    ['ViT-B-16::openai', 'timm/vit_base_patch16_clip_224.openai'],
    ['ViT-L-14-quickgelu::openai', 'timm/vit_large_patch14_clip_224.openai'],
  ] as const)
    await rejectsClean(
      id,
      (e) =>
        e instanceof HubFileError &&
        e.repo === repo &&
        e.file === 'open_clip_model.safetensors' &&
        /HTTP 404/.test(e.message) &&
        e.message.includes(`https://huggingface.co/${repo}/tree/main`) &&
        /never \.bin pickles/.test(e.message),
    );
});

test('a 404 on the config: the HF layout cannot do without it; open_clip falls back to the registry', { skip }, async () => {
  await rejectsClean('ViT-B-32::hf-no-config', (e) => e instanceof HubFileError && e.repo === 'openai/clip-vit-base-patch32' && e.revision === 'no-config' && e.file === 'config.json');
  const h = mkdtempSync(path.join(os.tmpdir(), 'clipfit-hub-nocfg-'));
  try {
    const dir = await resolveModel('ViT-B-32::oc-no-config', opts(h));
    const cfg = JSON.parse(readFileSync(path.join(dir, 'open_clip_config.json'), 'utf8'));
    assert.deepEqual([cfg.name, cfg.model_cfg.quick_gelu, cfg.model_cfg.vision_cfg.width], ['ViT-B-32::oc-no-config', true, TINY.vision_cfg.width]);
    assert.equal(dir, cacheDirFor('timm/vit_base_patch32_clip_224.openai', 'no-config', h));
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});

test('a truncated weights file is refused, by the LFS size or by its own header', { skip }, async () => {
  await rejectsClean('ViT-B-32::truncated', (e) => e instanceof DownloadError && !e.resumable && /truncated: got \d+ bytes, the hub's LFS metadata says \d+/.test(e.message));
  await rejectsClean(
    'ViT-B-32::truncated-plain',
    (e) => e instanceof HubFileError && e.file === 'open_clip_model.safetensors' && /its header describes/.test(e.message) && /run again/.test(e.message),
  );
});

test('a tokenizer file that does not parse is refused before the weights are fetched', { skip }, async () => {
  const requests = await rejectsClean(
    'ViT-B-32::bad-tokenizer',
    (e) => e instanceof HubFileError && e.repo === 'timm/vit_base_patch32_clip_224.openai' && e.file === 'vocab.json' && /does not parse as a CLIP tokenizer/.test(e.message),
  );
  assert.ok(!requests.some((l) => l.endsWith('/open_clip_model.safetensors')), requests.join(', '));
});

test('an open_clip config naming a Hugging Face tokenizer the repository lacks', { skip }, async () => {
  await rejectsClean(
    'ViT-B-32::hf-tokenizer',
    (e) => e instanceof HubFileError && e.file === 'open_clip_config.json' && /'timm\/some-tokenizer'/.test(e.message) && e.message.includes('https://huggingface.co/timm/some-tokenizer'),
  );
});
