// The server side of bench:serve, run as a child process in one of two modes:
//   build <work> <n> <json>   make the 512-d model folder (once) and a folder index of n synthetic
//                             clustered vectors written through the index API (build time, peak RSS),
//                             then, per ef: recall@10 of the index's search against exact search and
//                             its in-process latency (p50/p99, one query at a time); writes the query
//                             vectors to <work>/queries-<n>.json; prints one JSON line.
//   serve <work> <n> <json>   open that index, createServer on 127.0.0.1:0 (--ef-search as given)
//                             and report its URL over IPC; answers {type:'rss'}; exits on {type:'stop'}.
// <json>: {kind, hnsw: {connectivity, expansionAdd, precision, rerank}, efs: [..], queries, efSearch?}.

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import type { HnswParams } from '../src/search/hnsw_graph.js';
import { modelIdOf } from '../src/search/model_id.js';
import { createServer } from '../src/server/server.js';
import { seededRandom } from '../src/util/random.js';

export const DIM = 512;
const BATCH = 10_000;

export interface WorkerArgs {
  kind: FolderIndexKind;
  hnsw: Partial<HnswParams>;
  efs: number[];
  queries: number;
  efSearch?: number;
  bpe?: string;
}

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
 * Clustered vectors: n/1000 (at least 50) centres c ~ N(0, I/dim) (unit length on average), members
 * c + N(0, σ²I) with σ = 0.045 (noise norm ≈ 1, cosine to the centre ≈ 0.7): about 1000 near-ties
 * per cluster at every size, so the true top 10 are close but not trivial to find.
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

export const paths = (work: string, n: number) => ({
  model: path.join(work, 'model-512'),
  index: path.join(work, `index-${n}`),
  done: path.join(work, `index-${n}`, 'bench-done.json'),
  queries: path.join(work, `queries-${n}.json`),
});

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function build(work: string, n: number, a: WorkerArgs): Promise<void> {
  const p = paths(work, n);
  await ensureModel(p.model, a.bpe!);
  const model = await modelIdOf(p.model);
  const clusters = new Clusters(Math.max(50, Math.round(n / 1000)), 1);
  const wanted = JSON.stringify({ n, kind: a.kind, hnsw: a.hnsw });
  const prev = existsSync(p.done) ? (JSON.parse(readFileSync(p.done, 'utf8')) as { key: string; buildS: number; buildPeakRssMB: number }) : null;
  const reuse = prev?.key === wanted;
  // Another size or other parameters: start from nothing (reopening with other build parameters
  // would first rebuild the old graph).
  if (!reuse) rmSync(p.index, { recursive: true, force: true });
  const t0 = performance.now();
  const idx = await openFolderIndex(path.join(p.index, 'primary'), { dim: DIM, model, kind: a.kind, hnsw: a.hnsw });
  let buildS = prev?.buildS ?? 0;
  let buildPeakRssMB = prev?.buildPeakRssMB ?? 0;
  if (!reuse) {
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
    buildPeakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);
    writeFileSync(p.done, JSON.stringify({ key: wanted, buildS, buildPeakRssMB }) + '\n');
  } else process.stderr.write(`  [build ${n}] reusing ${p.index}\n`);

  // Queries near the clusters; the truth is the exact scan. One query at a time, as one client would.
  const q = clusters.sample(a.queries, seededRandom(3));
  const queries = Array.from({ length: a.queries }, (_, i) => q.slice(i * DIM, (i + 1) * DIM));
  writeFileSync(p.queries, JSON.stringify(queries.map((v) => Array.from(v, (x) => round(x, 6)))));
  const exactMs: number[] = [];
  const truth: Set<string>[] = [];
  for (const v of queries) {
    const t = performance.now();
    truth.push(new Set((await idx.search(v, 10, { exact: true })).map((h) => h.id)));
    exactMs.push(performance.now() - t);
  }
  const perEf: Record<string, unknown>[] = [];
  // One pass at the widest ef first: it faults in the graph's pages (a freshly built or opened
  // index), which would otherwise land in the first ef's tail (+1.5 to +4 ms on its p99 at 1M).
  for (const v of queries) await idx.search(v, 10, { ef: Math.max(...a.efs) });
  for (const ef of a.efs) {
    for (const v of queries.slice(0, 20)) await idx.search(v, 10, { ef }); // warm-up
    const ms: number[] = [];
    let hits = 0;
    for (const [i, v] of queries.entries()) {
      const t = performance.now();
      const got = await idx.search(v, 10, { ef });
      ms.push(performance.now() - t);
      hits += got.filter((h) => truth[i]!.has(h.id)).length;
    }
    perEf.push({ ef, recallAt10: round(hits / (10 * queries.length), 4), p50Ms: round(pct(ms, 0.5)), p99Ms: round(pct(ms, 0.99)) });
    process.stderr.write(`  [${n}] ef ${ef}: recall@10 ${hits / (10 * queries.length)}, p50 ${pct(ms, 0.5).toFixed(2)} ms, p99 ${pct(ms, 0.99).toFixed(2)} ms\n`);
  }
  const info = idx.info();
  await idx.close();
  process.stdout.write(
    JSON.stringify({ n, kind: a.kind, approximate: info.approximate, hnsw: info.hnsw, buildS: round(buildS, 1), buildPeakRssMB, reused: reuse, queries: a.queries, exactP50Ms: round(pct(exactMs, 0.5)), perEf, model }) + '\n',
  );
}

async function serveIt(work: string, n: number, a: WorkerArgs): Promise<void> {
  const p = paths(work, n);
  const index = await openFolderIndex(path.join(p.index, 'primary'), { kind: a.kind });
  const server = await createServer({ model: p.model, index, indexDir: p.index, home: path.join(work, 'home'), ...(a.efSearch ? { efSearch: a.efSearch } : {}) });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', async (msg: { type: string }) => {
    if (msg.type === 'rss') process.send!({ type: 'rss', rss: process.memoryUsage().rss });
    if (msg.type === 'stop') {
      await server.close();
      await index.close();
      process.send!({ type: 'stopped' }, () => process.exit(0));
    }
  });
  process.send!({ type: 'ready', url, approximate: index.info().approximate, search: server.catalog.searchSettings('primary') });
}

const [mode, work, nArg, json] = process.argv.slice(2);
const n = Number(nArg);
const args = JSON.parse(json!) as WorkerArgs;
if (mode === 'build') await build(work!, n, args);
else if (mode === 'serve') await serveIt(work!, n, args);
else throw new Error(`serve_worker: unknown mode ${mode}`);
