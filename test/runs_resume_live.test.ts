// resumeRun refuses a run whose worker is still alive (a cancel asked it to stop, but it has not
// exited yet): a second worker would train into the same run folder.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RunError } from '../src/errors.js';
import { resumeRun } from '../src/runs/index.js';
import { RunStore } from '../src/runs/store.js';

test('resume refuses while the old worker process is still running', async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-resume-live-'));
  const worker = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  try {
    const store = RunStore.open(home);
    const rec = store.createRun({ options: { model: 'x', trainData: 'y', runName: 'busy' } as never });
    assert.ok(store.markStarted(rec.name, worker.pid!));
    store.requestCancel(rec.name, 'user');
    store.finish(rec.name, 'CANCELED', { reason: 'user' });
    assert.throws(() => resumeRun(rec.name, { home }), (e: unknown) => e instanceof RunError && new RegExp(`worker \\(pid ${worker.pid}\\) is still running`).test(e.message));
    assert.equal(store.get(rec.name).status, 'CANCELED', 'the run was not reopened');
    store.close();
  } finally {
    worker.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  }
});
