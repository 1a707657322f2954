// bench:serve — the folder index and `clipfit serve` at sizes given by --sizes (default 100 000;
// 512-d synthetic clustered unit vectors written through the index API). For each size:
//   1. a child process builds the index (build time, peak RSS), then per ef (--efs) measures recall@10
//      of the index's search against the exact scan and its in-process latency, p50/p99 over
//      --queries queries sent one at a time: the index alone;
//   2. a child process runs the real server (createServer, 127.0.0.1, random port; --ef-search) on
//      that index with a random tiny CLIP whose joint embedding is 512-d;
//   3. this process drives it with autocannon for --duration seconds each: POST /search by vector
//      (the index through HTTP, without the text encoder) from 1 and from --connections clients,
//      then POST /search by text (varied captions, through the text encoder) from --connections
//      clients; k = 10 throughout. The server's RSS before and after.
// Flags: --sizes 100000,1000000  --efs 64,128,256,512  --queries 500  --duration 10  --connections 8
//        --kind hnsw|auto|exact  --m 32 --ef-construction 128 --precision i8|f16|f32 --rerank 100
//        (graph parameters; unset: the index's defaults, DEFAULT_HNSW)  --ef-search N (the server's)
//        --work DIR (keep the built indexes in DIR and reuse them when size and parameters match).
// Last line: one JSON object with every figure.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
// @ts-expect-error autocannon ships no type declarations
import autocannon from 'autocannon';
import type { HnswParams } from '../src/search/hnsw_graph.js';
import { table } from './util.js';
import type { WorkerArgs } from './serve_worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BPE = path.resolve(here, '../../shared/fixtures/clip-reference/bpe_simple_vocab_16e6.txt.gz');
const WORKER = path.join(here, 'serve_worker.ts');

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000' },
    efs: { type: 'string', default: '64,128,256,512' },
    queries: { type: 'string', default: '500' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '8' },
    kind: { type: 'string', default: 'hnsw' },
    m: { type: 'string' },
    'ef-construction': { type: 'string' },
    precision: { type: 'string' },
    rerank: { type: 'string' },
    'ef-search': { type: 'string' },
    work: { type: 'string' },
  },
});
const ints = (s: string, flag: string) => {
  const xs = s.split(',').map((x) => Number(x.trim()));
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${flag}: positive integers, got ${s}`);
  return xs;
};
const sizes = ints(flags.sizes!, 'sizes');
const efs = ints(flags.efs!, 'efs');
const duration = Number(flags.duration);
const connections = Number(flags.connections);
const kind = flags.kind as WorkerArgs['kind'];
if (sizes.some((n) => n < 100)) throw new Error(`--sizes: at least 100, got ${flags.sizes}`);
if (!(duration > 0) || !Number.isInteger(connections) || connections < 1) throw new Error('--duration must be > 0 and --connections a positive integer');
if (!['hnsw', 'auto', 'exact'].includes(kind)) throw new Error(`--kind: hnsw, auto or exact, got ${kind}`);
if (!existsSync(BPE)) throw new Error(`bench:serve needs the CLIP BPE vocabulary at ${BPE} (the clip-reference fixtures)`);
const hnsw: Partial<HnswParams> = {
  ...(flags.m ? { connectivity: Number(flags.m) } : {}),
  ...(flags['ef-construction'] ? { expansionAdd: Number(flags['ef-construction']) } : {}),
  ...(flags.precision ? { precision: flags.precision as HnswParams['precision'] } : {}),
  ...(flags.rerank ? { rerank: Number(flags.rerank) } : {}),
};
const efSearch = flags['ef-search'] ? Number(flags['ef-search']) : undefined;
const args: WorkerArgs = { kind, hnsw, efs, queries: Number(flags.queries), ...(efSearch ? { efSearch } : {}), bpe: BPE };
const work = flags.work ? path.resolve(flags.work) : mkdtempSync(path.join(os.tmpdir(), 'clipfit-bench-serve-'));
mkdirSync(work, { recursive: true });

const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'black', 'white', 'pink', 'brown'];
const THINGS = ['dress', 'shoe', 'handbag', 'chair', 'lamp', 'mug', 'jacket', 'watch', 'sofa', 'bicycle'];
const STYLES = ['a photo of a', 'a close-up of a', 'a vintage', 'a minimalist'];
/** 400 distinct product-style captions, cycled through by the load. */
const CAPTIONS = STYLES.flatMap((s) => COLOURS.flatMap((c) => THINGS.map((t) => `${s} ${c} ${t}`)));

function spawnWorker(mode: string, n: number): ChildProcess {
  return fork(WORKER, [mode, work, String(n), JSON.stringify(args)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
}

async function build(n: number): Promise<Record<string, unknown>> {
  const child = spawnWorker('build', n);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const code: number = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  if (code !== 0) throw new Error(`index build for ${n} vectors failed (exit ${code})`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

function ask<T>(child: ChildProcess, type: string, msg: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (c: number | null) => reject(new Error(`server process exited (${c}) while waiting for '${type}'`));
    child.on('message', onMsg);
    child.on('exit', onExit);
    if (Object.keys(msg).length) child.send(msg);
  });
}

interface CannonResult {
  latency: { p50: number; p99: number; p90: number; average: number; max: number };
  requests: { average: number; total: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

/** autocannon on POST /search with bodies from `body(i)`. */
function load(url: string, seconds: number, clients: number, body: (i: number) => unknown): Promise<CannonResult> {
  let i = 0;
  return autocannon({
    url,
    connections: clients,
    duration: seconds,
    requests: [{ method: 'POST', path: '/search', headers: { 'content-type': 'application/json' }, setupRequest: (req: Record<string, unknown>) => ({ ...req, body: JSON.stringify(body(i++)) }) }],
  }) as Promise<CannonResult>;
}

const summary = (r: CannonResult) => ({ p50Ms: r.latency.p50, p99Ms: r.latency.p99, requestsPerS: r.requests.average, requests: r.requests.total, errors: r.errors + r.timeouts + r.non2xx });

async function measure(n: number): Promise<Record<string, unknown>> {
  process.stderr.write(`[${n}] building the index (${kind}) and measuring recall@10 and latency per ef…\n`);
  const built = await build(n);
  // The worker's query vectors (serve_worker.ts paths().queries).
  const vectors = JSON.parse(readFileSync(path.join(work, `queries-${n}.json`), 'utf8')) as number[][];
  process.stderr.write(`[${n}] built in ${built['buildS']} s (peak RSS ${built['buildPeakRssMB']} MB); starting the server…\n`);
  const server = spawnWorker('serve', n);
  try {
    const ready = await ask<{ url: string; approximate: boolean; search: unknown }>(server, 'ready', {});
    const byVector = (i: number) => ({ vector: vectors[i % vectors.length], k: 10 });
    const byText = (i: number) => ({ query: CAPTIONS[i % CAPTIONS.length], k: 10 });
    // Warm-up: first runs of each batch size allocate onnxruntime's arenas.
    await load(ready.url, Math.min(3, duration), connections, byText);
    const before = await ask<{ rss: number }>(server, 'rss', { type: 'rss' });
    process.stderr.write(`[${n}] POST /search by vector, 1 client, ${duration} s…\n`);
    const v1 = summary(await load(ready.url, duration, 1, byVector));
    process.stderr.write(`[${n}] POST /search by vector, ${connections} clients, ${duration} s…\n`);
    const vN = summary(await load(ready.url, duration, connections, byVector));
    process.stderr.write(`[${n}] POST /search by text, ${connections} clients, ${duration} s…\n`);
    const tN = summary(await load(ready.url, duration, connections, byText));
    const after = await ask<{ rss: number }>(server, 'rss', { type: 'rss' });
    return {
      vectors: n,
      dim: 512,
      ...built,
      server: { search: ready.search, vector1: v1, vectorN: vN, textN: tN, rssBeforeMB: Math.round(before.rss / 2 ** 20), rssAfterMB: Math.round(after.rss / 2 ** 20) },
    };
  } finally {
    await ask(server, 'stopped', { type: 'stop' }).catch(() => server.kill('SIGKILL'));
  }
}

async function main(): Promise<void> {
  const results: Record<string, unknown>[] = [];
  try {
    for (const n of sizes) results.push(await measure(n));
  } finally {
    if (!flags.work) rmSync(work, { recursive: true, force: true });
  }
  type PerEf = { ef: number; recallAt10: number; p50Ms: number; p99Ms: number };
  type Load = ReturnType<typeof summary>;
  const f = (x: number, d = 2) => x.toFixed(d);
  console.log('The index alone, in-process, one query at a time (top 10):');
  console.log(table([['vectors', 'ef', 'recall@10', 'p50 ms', 'p99 ms', 'exact p50 ms', 'build s', 'build peak RSS MB'], ...results.flatMap((r) => (r['perEf'] as PerEf[]).map((e) => [r['vectors'] as number, e.ef, f(e.recallAt10, 4), f(e.p50Ms), f(e.p99Ms), f(r['exactP50Ms'] as number), r['buildS'] as number, r['buildPeakRssMB'] as number]))]));
  console.log(`HTTP POST /search, ${duration} s each (server ef: ${efSearch ?? "the index's"}):`);
  const rows: (string | number)[][] = [['vectors', 'route', 'clients', 'p50 ms', 'p99 ms', 'req/s', 'errors', 'server RSS MB']];
  for (const r of results) {
    const s = r['server'] as { vector1: Load; vectorN: Load; textN: Load; rssAfterMB: number };
    for (const [route, clients, l] of [['vector', 1, s.vector1], ['vector', connections, s.vectorN], ['text', connections, s.textN]] as const)
      rows.push([r['vectors'] as number, route, clients, l.p50Ms, l.p99Ms, Math.round(l.requestsPerS), l.errors, s.rssAfterMB]);
  }
  console.log(table(rows));
  console.log(JSON.stringify({ bench: 'serve', k: 10, connections, durationS: duration, cpus: os.cpus().length, hnsw, efSearch: efSearch ?? null, results }));
}

await main();
