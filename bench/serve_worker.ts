// The server side of bench:serve, run as a child process in one of two modes:
//   build <work> <n> <kind>   make the 512-d model folder (once) and an index of n synthetic clustered
//                             vectors written through the index API, then recall@10 of the
//                             approximate search against exact search; prints one JSON line.
//   serve <work> <n> <kind>   open that index, createServer on 127.0.0.1:0 and report its URL over
//                             IPC; answers {type:'rss'} with its RSS; exits on {type:'stop'}.

import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { initClipParams } from '../src/models/clip/weights/init.js';
import { saveModelFolder } from '../src/models/clip/weights/checkpoint.js';
import type { Weights } from '../src/models/clip/weights/checkpoint.js';
import type { ClipConfig } from '../src/models/clip/config.js';
import { defaultPreprocess } from '../src/models/clip/config.js';
import { defaultRegistry } from '../src/models/clip/weights/registry.js';
import { openFolderIndex } from '../src/search/folder_index.js';
import type { FolderIndexKind } from '../src/search/folder_index.js';
import { modelIdOf } from '../src/search/model_id.js';
import { createServer } from '../src/server/server.js';
import { seededRandom } from '../src/util/random.js';

export const DIM = 512;
const BATCH = 10_000;
const QUERIES = 200;

/** tiny-test's towers with a 512-d joint embedding: the text encoder stays cheap, vectors are CLIP-sized. */
async function ensureModel(dir: string, bpe: string): Promise<void> {
  if (existsSync(path.join(dir, 'open_clip_config.json'))) return;
  const cfg = { ...defaultRegistry().get('tiny-test').cfg, embed_dim: DIM };
  const config: ClipConfig = { name: 'tiny-test-512', model_cfg: cfg, preprocess_cfg: defaultPreprocess(cfg) };
  const params = initClipParams(cfg, 7);
  const weights: Weights = new Map(params.entries.map((e) => [e.name, { shape: [...e.shape], data: params.view(e.name) }]));
  await saveModelFolder(dir, config, weights, 'open_clip', { kind: 'bpe-gz', file: bpe });
}

/**
 * Clustered vectors: clusters centres c ~ N(0, I/dim) (unit length on average), members c + N(0, σ²I)
 * with σ = 0.045 (noise norm ≈ 1, cosine to the centre ≈ 0.7): neighbours are close but not trivial.
 */
class Clusters {
  private readonly rand: () => number;
  readonly centres: Float32Array;
  constructor(readonly count: number, seed: number) {
    this.rand = seededRandom(seed);
    this.centres = new Float32Array(count * DIM);
    for (let i = 0; i < this.centres.length; i++) this.centres[i] = this.normal() / Math.sqrt(DIM);
  }
  private normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.rand())) * Math.cos(2 * Math.PI * this.rand());
  }
  /** n vectors, row-major, each near a random centre. */
  sample(n: number, rand: () => number, noise = 0.045): Float32Array {
    const out = new Float32Array(n * DIM);
    for (let r = 0; r < n; r++) {
      const c = Math.floor(rand() * this.count) * DIM;
      for (let j = 0; j < DIM; j++) out[r * DIM + j] = this.centres[c + j]! + noise * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    }
    return out;
  }
}

export const paths = (work: string, n: number) => ({ model: path.join(work, 'model-512'), index: path.join(work, `index-${n}`), done: path.join(work, `index-${n}`, 'bench-done.json') });

async function build(work: string, n: number, kind: FolderIndexKind, bpe: string): Promise<void> {
  const p = paths(work, n);
  await ensureModel(p.model, bpe);
  const model = await modelIdOf(p.model);
  const clusters = new Clusters(Math.max(50, Math.round(n / 1000)), 1);
  const t0 = performance.now();
  const idx = await openFolderIndex(path.join(p.index, 'primary'), { dim: DIM, model, kind });
  let buildS = 0;
  if (!existsSync(p.done)) {
    await idx.clear(model);
    const rand = seededRandom(2);
    for (let at = 0; at < n; at += BATCH) {
      const m = Math.min(BATCH, n - at);
      const v = clusters.sample(m, rand);
      await idx.add(Array.from({ length: m }, (_, i) => ({ id: `v${at + i}`, vector: v.subarray(i * DIM, (i + 1) * DIM), metadata: { cluster: 'synthetic' } })));
      const s = (performance.now() - t0) / 1000;
      const done = at + m;
      process.stderr.write(`  [build ${n}] ${done}/${n} vectors, ${s.toFixed(0)} s, ETA ${(((n - done) * s) / done).toFixed(0)} s\n`);
    }
    await idx.compact();
    buildS = (performance.now() - t0) / 1000;
    writeFileSync(p.done, JSON.stringify({ n, model, kind, buildS }) + '\n');
  } else process.stderr.write(`  [build ${n}] reusing ${p.index}\n`);

  // recall@10 of the index's own search against the exact scan, over queries near the clusters.
  const rand = seededRandom(3);
  const q = clusters.sample(QUERIES, rand);
  let hits = 0;
  const approxMs: number[] = [];
  const exactMs: number[] = [];
  for (let i = 0; i < QUERIES; i++) {
    const v = q.slice(i * DIM, (i + 1) * DIM);
    let t = performance.now();
    const a = await idx.search(v, 10);
    approxMs.push(performance.now() - t);
    t = performance.now();
    const e = await idx.search(v, 10, { exact: true });
    exactMs.push(performance.now() - t);
    const truth = new Set(e.map((h) => h.id));
    hits += a.filter((h) => truth.has(h.id)).length;
  }
  const info = idx.info();
  await idx.close();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    JSON.stringify({ n, kind, approximate: info.approximate, buildS, recallAt10: hits / (QUERIES * 10), queries: QUERIES, indexSearchP50Ms: med(approxMs), exactSearchP50Ms: med(exactMs), model }) + '\n',
  );
}

async function serveIt(work: string, n: number, kind: FolderIndexKind): Promise<void> {
  const p = paths(work, n);
  const index = await openFolderIndex(path.join(p.index, 'primary'), { kind });
  const server = await createServer({ model: p.model, index, indexDir: p.index, home: path.join(work, 'home') });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', async (msg: { type: string }) => {
    if (msg.type === 'rss') process.send!({ type: 'rss', rss: process.memoryUsage().rss, info: index.info() });
    if (msg.type === 'stop') {
      await server.close();
      await index.close();
      process.send!({ type: 'stopped' }, () => process.exit(0));
    }
  });
  process.send!({ type: 'ready', url, approximate: index.info().approximate });
}

const [mode, work, nArg, kindArg, bpe] = process.argv.slice(2);
const n = Number(nArg);
const kind = (kindArg ?? 'hnsw') as FolderIndexKind;
if (mode === 'build') await build(work!, n, kind, bpe!);
else if (mode === 'serve') await serveIt(work!, n, kind);
else throw new Error(`serve_worker: unknown mode ${mode}`);
