#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 node
// Launcher for the compiled CLI (dist/, built by `npm ci` through `prepare`). Supported Node.js:
// 22 and 24 (LTS); 20.10+ still runs (end of life since April 2026).
//
// onnxruntime-node allocates every graph output afresh on each run and copies it into a new JS
// array; with glibc's defaults, blocks that large are mmap'ed and unmapped each time, so every
// training step pays page faults on hundreds of MB (measured: an AdamW step over 150M parameters
// 7.4–9.2 s → 0.7–0.9 s). glibc reads GLIBC_TUNABLES only at start-up, so the shebang sets it and
// `env -S` execs node in place: one process, no child to orphan, signals reach the CLI itself.
// (Run as `node bin/clipfit.js`, the shebang is skipped: everything works, without the tunables.)

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 10) || major === 21) {
  console.error(`clipfit: Node.js ${process.versions.node} is not supported; use Node.js 22 or 24 (LTS).`);
  process.exit(1);
}

import('../dist/app/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/app/cli/main.js')) {
    console.error('clipfit: dist/ is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw err;
});
