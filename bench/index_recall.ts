// bench:index — the folder vector index on N clustered 512-dim vectors (CLIP-like: a few hundred
// directions with per-item noise, cosine ≈ 0.6 within a cluster), exact (brute force) against
// HNSW (usearch): build time, reopen time, p50/p99 latency of top-10 search, recall@10 against
// the exact results, RSS. Run: `node --import tsx bench/index_recall.ts [--n 100000] [--queries 200]`.
// Last line: one JSON object.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openFolderIndex } from '../src/search/folder_index.js';
import type { FolderIndexKind } from '../src/search/folder_index.js';
import type { IndexItem } from '../src/search/index_types.js';
import { table } from './util.js';
import { seededRandom } from '../src/util/random.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('n', 100_000), Q = arg('queries', 200), DIM = 512, K = 10;

const rng = seededRandom;

/** Gaussian-ish (sum of 4 uniforms, centred) unit vectors around `clusters` random centres. */
export function clusteredVectors(n: number, dim: number, seed: number, clusters = Math.max(50, Math.round(N / 200))): Float32Array[] {
  const r = rng(seed);
  const centreRng = rng(12345);
  const g = (rr: () => number) => rr() + rr() + rr() + rr() - 2;
  const unit = (v: Float32Array) => {
    const s = Math.hypot(...v);
    return v.map((x) => x / s);
  };
  const centres = Array.from({ length: clusters }, () => unit(Float32Array.from({ length: dim }, () => g(centreRng))));
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(r() * clusters)]!;
    const noise = unit(Float32Array.from({ length: dim }, () => g(r)));
    return unit(c.map((x, j) => x + 0.8 * noise[j]!));
  });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const rssMB = () => process.memoryUsage().rss / 2 ** 20;

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'clipfit-bench-index-'));
  const vectors = clusteredVectors(N, DIM, 1);
  const queries = clusteredVectors(Q, DIM, 2);
  const items: IndexItem[] = vectors.map((v, i) => ({ id: `img${i}`, vector: v, metadata: { uri: `/data/img${i}.jpg` } }));
  console.log(`${N} × ${DIM} clustered vectors, ${Q} queries, top-${K}; rss ${rssMB().toFixed(0)} MB`);

  const rows: (string | number)[][] = [['index', 'build s', 'reopen s', 'p50 ms', 'p99 ms', 'recall@10', 'rss MB']];
  const result: Record<string, unknown> = { n: N, dim: DIM, queries: Q, k: K };
  let truth: string[][] = [];

  const run = async (kind: FolderIndexKind, efs: (number | undefined)[]) => {
    const dir = path.join(root, kind);
    let t0 = performance.now();
    let ix = await openFolderIndex(dir, { dim: DIM, model: 'bench', kind });
    for (let i = 0; i < N; i += 10_000) await ix.add(items.slice(i, i + 10_000));
    const build = (performance.now() - t0) / 1000;
    await ix.close(); // compacts: snapshot (+ graph)
    t0 = performance.now();
    ix = await openFolderIndex(dir, { kind });
    const reopen = (performance.now() - t0) / 1000;
    for (const ef of efs) {
      const lat: number[] = [];
      const got: string[][] = [];
      for (const q of queries) {
        const t = performance.now();
        const hits = await ix.search(q, K, { ef });
        lat.push(performance.now() - t);
        got.push(hits.map((h) => h.id));
      }
      if (kind === 'exact') truth = got;
      const recall = got.reduce((s, ids, i) => s + ids.filter((id) => truth[i]!.includes(id)).length, 0) / (K * Q);
      const name = kind === 'exact' ? 'exact' : `hnsw ef=${ef ?? 64}`;
      rows.push([name, build, reopen, pct(lat, 0.5), pct(lat, 0.99), recall, rssMB()]);
      result[name] = { build_s: +build.toFixed(2), reopen_s: +reopen.toFixed(2), p50_ms: +pct(lat, 0.5).toFixed(3), p99_ms: +pct(lat, 0.99).toFixed(3), recall_at_10: recall, rss_mb: Math.round(rssMB()) };
    }
    await ix.close();
    rmSync(dir, { recursive: true, force: true });
  };

  await run('exact', [undefined]);
  await run('hnsw', [undefined, 128, 256]);
  console.log(table(rows));
  result['peak_rss_mb'] = Math.round(process.resourceUsage().maxRSS / 1024);
  rmSync(root, { recursive: true, force: true });
  console.log(JSON.stringify(result));
}

await main();
