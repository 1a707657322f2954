#!/usr/bin/env node
// Launcher for the compiled CLI (dist/, built by `npm ci` through `prepare`).
//
// onnxruntime-node allocates every graph output afresh on each run and copies it into a new JS
// array; with glibc's defaults, blocks that large are mmap'ed and unmapped each time, so every
// training step pays page faults on hundreds of MB (measured: an AdamW step over 150M parameters
// 7.4–9.2 s → 0.7–0.9 s). Keeping them on the heap fixes it, and glibc reads this only at start-up,
// so the launcher re-executes Node once with it set.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736';
if (process.platform === 'linux' && !process.env.GLIBC_TUNABLES && !process.env.CLIPFIT_NO_REEXEC) {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, GLIBC_TUNABLES: TUNABLES },
  });
  process.exit(r.status ?? (r.signal ? 128 + 9 : 1));
}

import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('clipfit: dist/ is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw err;
});
