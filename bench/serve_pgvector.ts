// bench:serve:pgvector — the index that `clipfit serve --index postgres://…` replicas share, on a
// real PostgreSQL 15 server with pgvector: recall@10 and latency of HNSW search through the
// adapter (one pooled connection per search: the label/ef statement, then the ORDER BY … LIMIT),
// against the exact scan, for several ef_search; build time of the HNSW index.
// Vectors: 512-d, synthetic and clustered as in bench:serve (centres ~ N(0, I/dim), members
// centre + N(0, 0.045²I)). The rows are loaded without the HNSW index, which is then built once
// (CREATE INDEX, as pgvector advises for a bulk load, with maintenance_work_mem large enough for the
// whole graph — 1 GB, or 4 KiB a row above that — so it is built in memory; parallel workers as the
// server allows). The throwaway server gets shared_buffers of a quarter of RAM (at most 8 GB), as a
// database host would, instead of the tests' 32 MB.
// Flags: --sizes 100000  --efs 40,100,200  --queries 200  --m 16  --ef-construction 64
//        --url postgresql://… (an existing server with pgvector; default: a throwaway cluster,
//        as the tests start one, needing scripts/setup-postgres.sh).
// Last line: one JSON object with every figure.

import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openPgDatabase } from '../src/search/open_index.js';
import { openPgVectorIndex } from '../src/search/pgvector_index.js';
import { TopK } from '../src/search/vector_store.js';
import { seededRandom } from '../src/util/random.js';
import { startPgServer } from '../test/pg_server.js';
import { table } from './util.js';

const DIM = 512;
const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000' },
    efs: { type: 'string', default: '40,100,200' },
    queries: { type: 'string', default: '200' },
    m: { type: 'string', default: '16' },
    'ef-construction': { type: 'string', default: '64' },
    url: { type: 'string' },
  },
});
const sizes = flags.sizes!.split(',').map(Number);
const efs = flags.efs!.split(',').map(Number);
const QUERIES = Number(flags.queries);
const M = Number(flags.m), EFC = Number(flags['ef-construction']);

function clusters(count: number, seed: number) {
  const rand = seededRandom(seed);
  const normal = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const centres = Float32Array.from({ length: count * DIM }, () => normal(rand) / Math.sqrt(DIM));
  return (n: number, r: () => number): Float32Array[] =>
    Array.from({ length: n }, () => {
      const c = Math.floor(r() * count) * DIM;
      return Float32Array.from({ length: DIM }, (_, j) => centres[c + j]! + 0.045 * normal(r));
    });
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

const server = flags.url ? null : await startPgServer();
if (!flags.url && !server) throw new Error('no PostgreSQL with pgvector here: run scripts/setup-postgres.sh as root, or give --url');
if (server) {
  const mb = Math.min(8192, Math.floor(os.totalmem() / 4 / 2 ** 20));
  await server.admin(`ALTER SYSTEM SET shared_buffers = '${mb}MB'`);
  await server.halt();
  await server.resume();
}
const results: Record<string, unknown>[] = [];
try {
  for (const n of sizes) {
    const url = flags.url ?? (await server!.createDatabase(`bench_${n}`));
    const sql = await openPgDatabase(url, { maxConnections: 2 });
    const name = `bench_${n}`;
    await sql.query(`DELETE FROM clipfit_indexes WHERE name = $1`, [name]).catch(() => undefined);
    await sql.query(`DROP TABLE IF EXISTS clipfit_idx_${name}`);
    const ix = await openPgVectorIndex(sql, { name, dim: DIM, model: 'bench@000000000000', m: M, efConstruction: EFC });
    await sql.query(`DROP INDEX clipfit_idx_${name}_hnsw`);
    const gen = clusters(Math.max(50, Math.round(n / 1000)), 1);
    const rand = seededRandom(2);
    // Every vector kept, unit length, for the ground truth (a brute-force scan here, not in SQL).
    const all = new Float32Array(n * DIM);
    let t0 = performance.now();
    for (let at = 0; at < n; at += 5000) {
      const vs = gen(Math.min(5000, n - at), rand);
      vs.forEach((v, i) => {
        const norm = Math.hypot(...v);
        for (let j = 0; j < DIM; j++) all[(at + i) * DIM + j] = v[j]! / norm;
      });
      await ix.add(vs.map((vector, i) => ({ id: `v${at + i}`, vector })));
      process.stderr.write(`\r  [${n}] loaded ${at + vs.length}`);
    }
    const loadS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    await sql.session(async () => {
      await sql.query(`SET maintenance_work_mem = '${Math.max(1024, Math.ceil((n * 4096) / 2 ** 20))}MB'`);
      await sql.query(`CREATE INDEX clipfit_idx_${name}_hnsw ON clipfit_idx_${name} USING hnsw (embedding vector_cosine_ops) WITH (m = ${M}, ef_construction = ${EFC})`);
    });
    const buildS = (performance.now() - t0) / 1000;
    const sizeMB = Number(((await sql.query(`SELECT pg_relation_size('clipfit_idx_${name}_hnsw') AS b`)).rows[0] as { b: string }).b) / 2 ** 20;
    process.stderr.write(`\r  [${n}] loaded in ${loadS.toFixed(1)} s, HNSW built in ${buildS.toFixed(1)} s (${sizeMB.toFixed(0)} MiB)\n`);

    const q = gen(QUERIES, seededRandom(3));
    const truth = q.map((v) => {
      const scores = new Float32Array(n);
      for (let r = 0; r < n; r++) {
        let d = 0;
        for (let j = 0; j < DIM; j++) d += all[r * DIM + j]! * v[j]!;
        scores[r] = d;
      }
      // One pass through a heap of ten: sorting a million scores per query is slow.
      const top = new TopK(10);
      scores.forEach((score, r) => top.accepts(score) && top.push(r, score));
      return new Set(top.sorted().map((h) => `v${h.slot}`));
    });
    // The database's own exact scan (ORDER BY distance + 0), timed on a few queries: it is slow.
    const exactMs: number[] = [];
    for (const v of q.slice(0, 10)) {
      const t = performance.now();
      await ix.search(v, 10, { exact: true });
      exactMs.push(performance.now() - t);
    }
    for (const ef of efs) {
      const ms: number[] = [];
      let hits = 0;
      for (let i = 0; i < q.length; i++) {
        const t = performance.now();
        const got = await ix.search(q[i]!, 10, { ef });
        ms.push(performance.now() - t);
        hits += got.filter((h) => truth[i]!.has(h.id)).length;
      }
      results.push({ n, m: M, efConstruction: EFC, ef, recallAt10: hits / (10 * q.length), p50Ms: pct(ms, 0.5), p99Ms: pct(ms, 0.99), exactP50Ms: pct(exactMs, 0.5), loadS, buildS, hnswMiB: sizeMB });
    }
    await ix.close();
    await sql.close();
  }
} finally {
  await server?.stop();
}
const f = (x: unknown, d = 2) => (typeof x === 'number' ? x.toFixed(d) : String(x));
console.log(
  table([
    ['vectors', 'm', 'ef_construction', 'ef_search', 'recall@10', 'p50 ms', 'p99 ms', 'exact p50 ms', 'build s', 'HNSW MiB'],
    ...results.map((r) => [r['n'] as number, r['m'] as number, r['efConstruction'] as number, r['ef'] as number, f(r['recallAt10'], 4), f(r['p50Ms']), f(r['p99Ms']), f(r['exactP50Ms'], 1), f(r['buildS'], 1), f(r['hnswMiB'], 0)]),
  ]),
);
console.log(JSON.stringify({ bench: 'serve:pgvector', dim: DIM, queries: QUERIES, results }));
