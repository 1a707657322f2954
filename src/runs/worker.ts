// Entry point of a run's detached worker:  node [--import tsx] worker.(ts|js) <home> <runName> [jobModule]
// Started by launch.ts in its own process group with no terminal, it outlives the caller. It exits
// explicitly when the run ends, so handles fit may leave open (sessions, thread pools) cannot keep it
// alive, and turns SIGTERM (cancel's fallback) and crashes into a recorded final status.

import { appendLog } from './logs.js';
import { executeRun, loadFit } from './execute.js';
import { RunStore } from './store.js';

const [home, name, jobModule] = process.argv.slice(2);
if (!home || !name) {
  console.error('usage: worker <home> <runName> [jobModule]');
  process.exit(2);
}
const store = RunStore.open(home);
const log = store.logFile(name);

function endWith(status: 'FAILED' | 'CANCELED', reason: string, code: number, stack?: string): never {
  appendLog(log, status === 'FAILED' ? 'error' : 'warn', `run ${status}: ${stack ?? reason}`);
  try {
    store.finish(name!, status, { reason, ...(stack ? { lastError: stack } : {}) });
    store.close();
  } finally {
    process.exit(code);
  }
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(sig, () => {
    const asked = store.cancelRequest(name);
    endWith('CANCELED', asked !== undefined ? `${asked} (worker stopped by ${sig})` : `worker stopped by ${sig}`, 128 + (sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15));
  });
}
process.on('uncaughtException', (err) => endWith('FAILED', err.message, 1, err.stack));
process.on('unhandledRejection', (err) => {
  const e = err instanceof Error ? err : new Error(String(err));
  endWith('FAILED', e.message, 1, e.stack);
});

await executeRun(store, name, () => loadFit(jobModule));
store.close();
process.exit(0);
