// Small helpers shared by the benchmarks: timing, random data, peak RSS.

import { rng } from '../src/autodiff/gradcheck.js';

export function randomArray(n: number, scale: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** Median seconds of `iters` timed calls after `warmup` untimed ones. */
export async function timeIt(fn: () => Promise<unknown>, warmup: number, iters: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** timeIt, plus this process's mean CPU seconds (user + system, every thread) per timed call. */
export async function timeCpu(fn: () => Promise<unknown>, warmup: number, iters: number): Promise<{ wallS: number; cpuS: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const c0 = process.cpuUsage();
  const wallS = await timeIt(fn, 0, iters);
  const c = process.cpuUsage(c0);
  return { wallS, cpuS: (c.user + c.system) / 1e6 / iters };
}

export function peakRssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(3)) : c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

/** The value after `--name` in the arguments, if any. */
export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** `--iters timed,warm-up` counts. */
export function parseIters(s: string): [number, number] {
  const [t, w] = s.split(',').map(Number);
  if (!(t! >= 1 && w! >= 0)) throw new Error(`--iters takes timed,warm-up counts, e.g. 3,1 (got '${s}')`);
  return [t!, w!];
}
