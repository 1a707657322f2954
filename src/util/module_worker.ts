// The one way clipfit starts a worker thread: on an ES module of this package. Compiled (.js)
// modules load directly; under tsx (.ts sources, tests and benchmarks) the worker first registers
// tsx's loader, which Node 20 workers do not inherit from --import.

import { Worker } from 'node:worker_threads';

export function moduleWorker(moduleUrl: URL, workerData?: unknown): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, { workerData });
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** Module `name` beside the caller (`import.meta.url`), with the caller's extension: .ts from
 * source, .js from dist. */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl);
}
