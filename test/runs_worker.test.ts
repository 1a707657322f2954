// Runs executed by real detached worker processes (node --import tsx src/runs/worker.ts) running the
// fake job in test/fake_fit_job.ts. The tests run concurrently against one store, as runs would.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { getRun, inProcessRun, startRun, type Run } from '../src/runs/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const JOB = path.join(REPO, 'test', 'fake_fit_job.ts');
const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-runs-worker-'));
after(() => rmSync(home, { recursive: true, force: true }));

const start = (runName: string, trainData: string, extra: { epochs?: number; batchSize?: number } = {}): Run =>
  startRun({ model: 'fake', trainData, runName, ...extra }, { home, jobModule: JOB });

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('detached run worker', { concurrency: true }, () => {
  test('CREATED → STARTED → FINISHED, with log, metrics, progress and artifact', async () => {
    const run = start('goes-well', 'ok?stepMs=80', { epochs: 3, batchSize: 4 });
    assert.equal(run.status().status, 'CREATED');
    assert.equal(run.experiment, 'default');
    assert.equal(run.options.workDir, path.join(home, 'runs', 'goes-well'));
    const pid = await waitFor('a worker pid', () => run.info().pid);
    assert.notEqual(pid, process.pid);
    // Every status seen while polling, in order (the run lasts ~0.5 s once started).
    const seen = ['CREATED'];
    const s = await waitFor('a final status', () => {
      const st = run.status();
      if (seen.at(-1) !== st.status) seen.push(st.status);
      return st.status === 'CREATED' || st.status === 'STARTED' ? undefined : st;
    });
    assert.deepEqual(seen, ['CREATED', 'STARTED', 'FINISHED']);
    assert.equal(s.reason, undefined);
    assert.ok(s.startedAt! <= s.finishedAt!, 's.startedAt! <= s.finishedAt!');
    assert.deepEqual(s.progress && { epoch: s.progress.epoch, step: s.progress.step }, { epoch: 3, step: 4 });
    const art = run.artifactDir();
    assert.equal(art, path.join(home, 'runs', 'goes-well', 'artifact'));
    assert.deepEqual(JSON.parse(readFileSync(path.join(art!, 'model.json'), 'utf8')), { epochs: 3 });
    // The fake job reports train_loss = 1/(e+1), recall_at_1 = e/epochs for e = 0..3.
    assert.deepEqual(run.metrics(), [
      { epoch: 0, values: { recall_at_1: 0, train_loss: 1 } },
      { epoch: 1, values: { recall_at_1: 1 / 3, train_loss: 1 / 2 } },
      { epoch: 2, values: { recall_at_1: 2 / 3, train_loss: 1 / 3 } },
      { epoch: 3, values: { recall_at_1: 1, train_loss: 1 / 4 } },
    ]);
    const entries = run.logEntries();
    assert.ok(entries.every((e) => !Number.isNaN(Date.parse(e.time)) && e.level === 'info'), 'every entry has a time and level info');
    const msgs = entries.map((e) => e.message);
    assert.equal(msgs[0], 'run goes-well created');
    assert.equal(msgs[1], `run goes-well started (experiment default, worker pid ${pid})`);
    assert.ok(msgs.includes('fake job: epoch 3 done'), 'the job logged its last epoch');
    assert.ok(msgs.includes('recall_at_1: 0.333'), 'epoch metrics are logged, one per line');
    assert.ok(msgs.some((m) => /^Training \[3\/3\] (.* )?4\/4 \d+:\d\d:\d\d loss: /.test(m)), 'Finetuner-style progress lines');
    assert.match(msgs.at(-1)!, /^run FINISHED: 3 epoch\(s\), 12 step\(s\); artifact .*goes-well\/artifact$/);
    assert.match(run.logs(), /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  run goes-well created\n/);
    await waitFor('the worker to exit', () => !pidAlive(pid));
    assert.equal(run.status().status, 'FINISHED');
  });

  test('a failing job goes FAILED with its error message as reason and the stack in the log', async () => {
    const run = start('goes-wrong', 'fail', { epochs: 3, batchSize: 2 });
    const s = await run.wait({ timeoutMs: 30_000 });
    assert.equal(s.status, 'FAILED');
    assert.equal(s.reason, 'fake job: planned failure in epoch 2');
    const last = run.logEntries().at(-1)!;
    assert.equal(last.level, 'error');
    assert.match(last.message, /^run FAILED: Error: fake job: planned failure in epoch 2\n\s+at fit .*fake_fit_job\.ts/);
    assert.match(run.info().lastError!, /fake_fit_job\.ts/);
    assert.deepEqual(run.metrics().map((m) => m.epoch), [0, 1]);
  });

  test('a job module without fit fails the run, naming the module', async () => {
    const bad = path.join(home, 'no_fit.mjs');
    writeFileSync(bad, 'export const notFit = 1;\n');
    const run = startRun({ model: 'fake', trainData: 'ok', runName: 'no-fit' }, { home, jobModule: bad });
    const s = await run.wait({ timeoutMs: 30_000 });
    assert.equal(s.status, 'FAILED');
    assert.equal(s.reason, `job module ${bad} does not export a function 'fit'`);
  });

  test('cancel sets the flag the job sees through shouldStop(): CANCELED with the reason', async () => {
    const run = start('stopped', 'ok?stepMs=50', { epochs: 50, batchSize: 4 });
    await waitFor('epoch 1 metrics', () => run.metrics().length >= 2);
    const s = await run.cancel({ reason: 'enough', graceMs: 10_000 });
    assert.equal(s.status, 'CANCELED');
    // The reason says where it stopped: the epoch the job was in and the steps it had run.
    const [, epoch, step] = /^enough at epoch (\d+), step (\d+)$/.exec(s.reason!) ?? assert.fail(s.reason);
    assert.ok(Number(epoch) >= 2 && Number(step) >= 4, s.reason);
    assert.ok(run.metrics().length < 51, 'run.metrics().length < 51');
    assert.match(run.logs(), new RegExp(`WARN  fake job: stop requested in epoch ${epoch}, step \\d`));
    assert.match(run.logs(), new RegExp(`WARN  run CANCELED after ${Number(epoch) - 1} epoch\\(s\\): ${s.reason}\n$`));
    // Cancelling again is a no-op that reports the final status.
    assert.equal((await run.cancel()).reason, s.reason);
  });

  test('cancel before the worker started: it ends the run at once without calling fit', async () => {
    const run = start('stopped-early', 'ok');
    const s = await run.cancel({ graceMs: 10_000 });
    assert.equal(s.status, 'CANCELED');
    assert.equal(s.reason, 'canceled by user');
    await sleep(1500); // the worker, if it was still starting, has come and gone
    assert.equal(run.status().status, 'CANCELED');
    assert.doesNotMatch(run.logs(), /fake job/);
  });

  test('a job that ignores the flag gets SIGTERM after the grace time and is CANCELED', async () => {
    const run = start('stubborn', 'ok?stepMs=50&ignoreStop=1', { epochs: 100 });
    await waitFor('STARTED', () => run.status().status === 'STARTED');
    const pid = run.info().pid!;
    const s = await run.cancel({ graceMs: 300 });
    assert.equal(s.status, 'CANCELED');
    assert.equal(s.reason, 'canceled by user (worker stopped by SIGTERM)');
    await waitFor('the worker to exit', () => !pidAlive(pid));
  });

  test('a worker killed with SIGKILL mid-way is reported FAILED, naming its pid', async () => {
    const run = start('killed', 'ok?stepMs=50', { epochs: 100 });
    await waitFor('epoch 1 metrics', () => run.metrics().length >= 2);
    const pid = run.info().pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('the worker to be gone', () => !pidAlive(pid));
    const s = await run.wait({ timeoutMs: 10_000 });
    assert.equal(s.status, 'FAILED');
    assert.equal(s.reason, `worker process ${pid} exited without finishing`);
  });

  test('streamLogs from a second process follows a live run to its end', async () => {
    const run = start('followed', 'ok?stepMs=30', { epochs: 500, batchSize: 4 });
    await waitFor('STARTED', () => run.status().status === 'STARTED');
    const spawnedAt = new Date().toISOString();
    const reader = spawn(
      process.execPath,
      [
        '--import', 'tsx', '--input-type=module', '-e',
        `import { getRun } from './src/runs/index.ts';
         for await (const line of getRun('followed', { home: ${JSON.stringify(home)} }).streamLogs({ pollMs: 50 })) console.log(line);`,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    let canceled: Promise<unknown> | undefined;
    reader.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // Once the reader has shown live progress, end the run: the reader must then end by itself.
      if (!canceled && out.includes('fake job: epoch 2 done')) canceled = run.cancel({ reason: 'seen enough', graceMs: 10_000 });
    });
    const code = await new Promise((r) => reader.on('exit', r));
    assert.equal(code, 0);
    assert.ok(canceled, 'the reader printed live lines');
    assert.equal((await canceled) && run.status().status, 'CANCELED');
    const lines = out.trimEnd().split('\n');
    assert.deepEqual(lines, run.logs().trimEnd().split('\n'));
    assert.match(lines.at(-1)!, /WARN  run CANCELED after \d+ epoch\(s\): seen enough at epoch \d+, step \d+$/);
    assert.ok(lines.some((l) => l.slice(0, 24) > spawnedAt), 'it saw lines written after it started');
    // A second reader in this process, started after the end, gets the whole log and ends.
    const again: string[] = [];
    for await (const l of run.streamLogs()) again.push(l);
    assert.deepEqual(again, lines);
  });

  test('the worker keeps running after the launching process has exited', async () => {
    const launcher = await promisify(execFile)(
      process.execPath,
      [
        '--import', 'tsx', '--input-type=module', '-e',
        `import { startRun } from './src/runs/index.ts';
         const run = startRun({ model: 'fake', trainData: 'ok?stepMs=100', runName: 'orphaned', epochs: 3 },
           { home: ${JSON.stringify(home)}, jobModule: ${JSON.stringify(JOB)} });
         console.log(JSON.stringify({ pid: process.pid, status: run.status().status }));`,
      ],
      { cwd: REPO, timeout: 30_000 },
    );
    const exitedAt = new Date().toISOString();
    const told = JSON.parse(launcher.stdout) as { pid: number; status: string };
    assert.equal(told.status, 'CREATED');
    assert.ok(!pidAlive(told.pid), 'the launcher has exited');
    const run = getRun('orphaned', { home });
    assert.notEqual(run.status().status, 'FINISHED');
    const s = await run.wait({ timeoutMs: 30_000 });
    assert.equal(s.status, 'FINISHED');
    assert.ok(s.finishedAt! > exitedAt, 'the run finished after its launcher exited');
    assert.notEqual(run.info().pid, told.pid);
    assert.ok(existsSync(path.join(run.artifactDir()!, 'model.json')), 'the artifact is there');
  });

  test("without jobModule the worker runs clipfit's fit (src/train/fit.ts): a missing model folder fails the run", async (t) => {
    if (!existsSync(path.join(REPO, 'src', 'train', 'fit.ts'))) return t.skip('src/train/fit.ts is not there yet');
    const model = path.join(home, 'no-such-model');
    const run = startRun({ model, trainData: path.join(home, 'no-such.csv'), runName: 'real-fit', epochs: 1 }, { home });
    const s = await run.wait({ timeoutMs: 30_000 });
    assert.equal(s.status, 'FAILED');
    assert.ok(s.reason!.includes(model), s.reason);
    assert.match(run.info().lastError!, /src\/train\/fit\.ts/);
  });

  test('detach: false runs the job in this process, recorded the same way', async () => {
    const run = startRun({ model: 'fake', trainData: 'ok?stepMs=5', runName: 'in-process', epochs: 2 }, { home, jobModule: JOB, detach: false });
    await inProcessRun('in-process');
    assert.equal(inProcessRun('in-process'), undefined);
    const s = run.status();
    assert.equal(s.status, 'FINISHED');
    assert.equal(run.info().pid, process.pid);
    assert.deepEqual(run.metrics().map((m) => m.values['train_loss']), [1, 1 / 2, 1 / 3]);
  });
});
