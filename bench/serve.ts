// bench:serve — `clipfit serve` under load. For each size (default 10 000 and 1 000 000 vectors of
// 512 dimensions, synthetic and clustered, written straight into the folder index through its API):
//   1. a child process builds the index (HNSW by default) and measures recall@10 of the approximate
//      search against the exact scan over 200 queries;
//   2. a child process runs the real server (createServer, 127.0.0.1, random port) on that index,
//      with a random tiny CLIP whose joint embedding is 512-d, so every query still goes through
//      the text encoder;
//   3. this process drives POST /search with autocannon (fixed connections for --duration seconds,
//      varied captions, k = 10) and reads the server's RSS before and after the load.
// Flags: --sizes 10000,1000000  --duration 10  --connections 8  --kind hnsw|auto|exact  --work DIR
// (keep the built indexes in DIR and reuse them next time; default: a temp folder, removed).
// Last line: one JSON object with every figure.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
// @ts-expect-error autocannon ships no type declarations
import autocannon from 'autocannon';
import { table } from './util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BPE = path.resolve(here, '../../shared/fixtures/clip-reference/bpe_simple_vocab_16e6.txt.gz');
const WORKER = path.join(here, 'serve_worker.ts');

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,1000000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '8' },
    kind: { type: 'string', default: 'hnsw' },
    work: { type: 'string' },
  },
});
const sizes = flags.sizes!.split(',').map((s) => Number(s.trim()));
const duration = Number(flags.duration);
const connections = Number(flags.connections);
const kind = flags.kind!;
if (sizes.some((n) => !Number.isInteger(n) || n < 100)) throw new Error(`--sizes: integers ≥ 100, got ${flags.sizes}`);
if (!(duration > 0) || !Number.isInteger(connections) || connections < 1) throw new Error('--duration must be > 0 and --connections a positive integer');
if (!['hnsw', 'auto', 'exact'].includes(kind)) throw new Error(`--kind: hnsw, auto or exact, got ${kind}`);
if (!existsSync(BPE)) throw new Error(`bench:serve needs the CLIP BPE vocabulary at ${BPE} (the clip-reference fixtures)`);
const work = flags.work ? path.resolve(flags.work) : mkdtempSync(path.join(os.tmpdir(), 'clipfit-bench-serve-'));
mkdirSync(work, { recursive: true });

const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'black', 'white', 'pink', 'brown'];
const THINGS = ['dress', 'shoe', 'handbag', 'chair', 'lamp', 'mug', 'jacket', 'watch', 'sofa', 'bicycle'];
const STYLES = ['a photo of a', 'a close-up of a', 'a vintage', 'a minimalist'];
/** 400 distinct product-style captions, cycled through by the load. */
const QUERIES = STYLES.flatMap((s) => COLOURS.flatMap((c) => THINGS.map((t) => `${s} ${c} ${t}`)));

function spawnWorker(args: string[]): ChildProcess {
  return fork(WORKER, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
}

async function build(n: number): Promise<Record<string, unknown>> {
  const child = spawnWorker(['build', work, String(n), kind, BPE]);
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
  duration: number;
}

function load(url: string, seconds: number): Promise<CannonResult> {
  let i = 0;
  return autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/search',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req: Record<string, unknown>) => ({ ...req, body: JSON.stringify({ query: QUERIES[i++ % QUERIES.length], k: 10 }) }),
      },
    ],
  }) as Promise<CannonResult>;
}

async function measure(n: number): Promise<Record<string, unknown>> {
  process.stderr.write(`[${n}] building the index (${kind}) and measuring recall@10…\n`);
  const built = await build(n);
  process.stderr.write(`[${n}] recall@10 ${built['recallAt10']}, starting the server…\n`);
  const server = spawnWorker(['serve', work, String(n), kind]);
  try {
    const ready = await ask<{ url: string; approximate: boolean }>(server, 'ready', {});
    // Warm-up: first runs of each batch size allocate onnxruntime's arenas.
    await load(ready.url, Math.min(3, duration));
    const before = await ask<{ rss: number }>(server, 'rss', { type: 'rss' });
    process.stderr.write(`[${n}] load: ${connections} connections for ${duration} s…\n`);
    const r = await load(ready.url, duration);
    const afterLoad = await ask<{ rss: number }>(server, 'rss', { type: 'rss' });
    return {
      vectors: n,
      dim: 512,
      kind,
      approximate: ready.approximate,
      buildS: built['buildS'],
      recallAt10: built['recallAt10'],
      indexSearchP50Ms: built['indexSearchP50Ms'],
      exactSearchP50Ms: built['exactSearchP50Ms'],
      p50Ms: r.latency.p50,
      p99Ms: r.latency.p99,
      requestsPerS: r.requests.average,
      requests: r.requests.total,
      errors: r.errors + r.timeouts + r.non2xx,
      rssBeforeMB: Math.round(before.rss / 2 ** 20),
      rssAfterMB: Math.round(afterLoad.rss / 2 ** 20),
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
  const rows: (string | number)[][] = [['vectors', 'recall@10', 'p50 ms', 'p99 ms', 'req/s', 'errors', 'RSS before MB', 'RSS after MB', 'build s']];
  for (const r of results) rows.push([r['vectors'], r['recallAt10'], r['p50Ms'], r['p99Ms'], r['requestsPerS'], r['errors'], r['rssBeforeMB'], r['rssAfterMB'], r['buildS']] as (string | number)[]);
  console.log(table(rows));
  console.log(
    JSON.stringify({
      bench: 'serve',
      route: 'POST /search (query text encoded by a random tiny CLIP with 512-d embeddings, k = 10)',
      connections,
      durationS: duration,
      cpus: os.cpus().length,
      results,
    }),
  );
}

await main();
