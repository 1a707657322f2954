// The run store on its own (no worker): schema, names, records, metrics, experiments, deletion and
// the reaping of runs whose worker is gone.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { ConfigError, ExperimentError, RunError, RunNameTakenError, RunNotFoundError } from '../src/errors.js';
import { createExperiment, deleteExperiment, deleteRun, getRun, listExperiments, listRuns } from '../src/runs/index.js';
import { RunStore, SCHEMA_VERSION } from '../src/runs/store.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-runs-store-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let homes = 0;
const freshHome = (): string => path.join(tmp, `home${homes++}`);
const base = { model: 'ViT-B-32::openai', trainData: 'train.csv' };

/** A pid that surely belongs to no process any more: a child that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

test('a new store has the schema version table, WAL journal and a busy timeout', () => {
  const home = freshHome();
  const store = RunStore.open(home);
  assert.equal(store.schemaVersion(), SCHEMA_VERSION);
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('busy_timeout', { simple: true }), 10_000);
  assert.ok(existsSync(path.join(home, 'runs.sqlite')));
  assert.ok(existsSync(path.join(home, 'runs')));
  store.close();
  // Reopening does not migrate again; a store written by a newer clipfit is refused.
  assert.equal(RunStore.open(home).schemaVersion(), SCHEMA_VERSION);
  RunStore.open(home).close();
  const db = new Database(path.join(home, 'runs.sqlite'));
  db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION + 1);
  db.close();
  assert.throws(() => RunStore.open(home), /schema version 2 is newer/);
});

test('createRun records a CREATED run with its folder, workDir and names filled in', () => {
  const home = freshHome();
  const store = RunStore.open(home);
  const rec = store.createRun({ options: { ...base, runName: 'first', experimentName: 'exp-a', epochs: 2 }, cwd: '/somewhere' });
  assert.equal(rec.name, 'first');
  assert.equal(rec.experiment, 'exp-a');
  assert.equal(rec.status, 'CREATED');
  assert.equal(rec.cwd, '/somewhere');
  assert.equal(rec.dir, path.join(home, 'runs', 'first'));
  assert.ok(existsSync(rec.dir));
  assert.deepEqual(rec.options, { ...base, epochs: 2, runName: 'first', experimentName: 'exp-a', workDir: path.join(home, 'runs', 'first') });
  assert.equal(rec.pid, undefined);
  assert.ok(!Number.isNaN(Date.parse(rec.createdAt)));
  // Without a name: adjective-noun-4hex, in the default experiment.
  const auto = store.createRun({ options: base });
  assert.match(auto.name, /^[a-z]+-[a-z]+-[0-9a-f]{4}$/);
  assert.equal(auto.experiment, 'default');
});

test('a taken run name is a RunNameTakenError naming it; so is a stale folder of that name', () => {
  const home = freshHome();
  const store = RunStore.open(home);
  store.createRun({ options: { ...base, runName: 'dup' } });
  assert.throws(
    () => store.createRun({ options: { ...base, runName: 'dup', experimentName: 'other' } }),
    (err: unknown) => err instanceof RunNameTakenError && err.run === 'dup' && /run 'dup': the name is already taken/.test(err.message),
  );
  mkdirSync(path.join(home, 'runs', 'stale'));
  assert.throws(() => store.createRun({ options: { ...base, runName: 'stale' } }), (err: unknown) => err instanceof RunNameTakenError && /folder .*stale already exists/.test(err.message));
  assert.equal(store.find('stale'), undefined);
});

test('names with path separators or dots first are refused with a ConfigError naming the field', () => {
  const store = RunStore.open(freshHome());
  for (const bad of ['a/b', '../x', '..', '.hidden', 'a\\b', '', 'x'.repeat(101), 'sp ace']) {
    assert.throws(() => store.createRun({ options: { ...base, runName: bad } }), (err: unknown) => err instanceof ConfigError && err.field === 'runName', bad);
  }
  assert.throws(() => store.createRun({ options: { ...base, experimentName: 'a/b' } }), (err: unknown) => err instanceof ConfigError && err.field === 'experimentName');
  assert.throws(() => store.get('../etc'), ConfigError);
  assert.throws(() => store.get('missing'), (err: unknown) => err instanceof RunNotFoundError && err.run === 'missing');
  assert.deepEqual(listRuns({ home: store.home }), []);
});

test('metrics round-trip by epoch, NaN included; a value given again replaces the old one', () => {
  const store = RunStore.open(freshHome());
  store.createRun({ options: { ...base, runName: 'm' } });
  store.addMetrics('m', 1, { loss: 0.25, 'recall@10': 0.75 });
  store.addMetrics('m', 0, { loss: 2.5, 'recall@10': 0.5 });
  store.addMetrics('m', 2, { loss: Number.NaN });
  store.addMetrics('m', 1, { loss: 0.125 });
  assert.deepEqual(getRun('m', { home: store.home }).metrics(), [
    { epoch: 0, values: { loss: 2.5, 'recall@10': 0.5 } },
    { epoch: 1, values: { loss: 0.125, 'recall@10': 0.75 } },
    { epoch: 2, values: { loss: Number.NaN } },
  ]);
});

test('final statuses are sticky: a later finish() or cancel request changes nothing', () => {
  const store = RunStore.open(freshHome());
  store.createRun({ options: { ...base, runName: 's' } });
  assert.equal(store.markStarted('s', process.pid), true);
  assert.equal(store.markStarted('s', process.pid), false);
  assert.equal(store.finish('s', 'FINISHED', { artifactDir: '/art' }), true);
  assert.equal(store.finish('s', 'FAILED', { reason: 'late' }), false);
  assert.equal(store.requestCancel('s', 'too late'), false);
  const r = store.get('s');
  assert.equal(r.status, 'FINISHED');
  assert.equal(r.artifactDir, '/art');
  assert.equal(r.reason, undefined);
  assert.equal(r.cancelRequest, undefined);
});

test('a STARTED run whose worker pid is gone is marked FAILED on read, and says so in its log', async () => {
  const store = RunStore.open(freshHome());
  store.createRun({ options: { ...base, runName: 'orphan' } });
  const pid = await deadPid();
  store.markStarted('orphan', pid);
  const run = getRun('orphan', { home: store.home });
  const s = run.status();
  assert.equal(s.status, 'FAILED');
  assert.equal(s.reason, `worker process ${pid} exited without finishing`);
  assert.ok(s.finishedAt);
  assert.match(run.logs(), new RegExp(`ERROR run FAILED: worker process ${pid} exited without finishing`));
  // listRuns applies the same rule.
  store.createRun({ options: { ...base, runName: 'orphan2' } });
  store.setPid('orphan2', pid);
  assert.deepEqual(listRuns({ home: store.home }).map((r) => [r.name, r.status().status]), [['orphan', 'FAILED'], ['orphan2', 'FAILED']]);
});

test('a live pid that is another process than the one recorded (a recycled pid) counts as gone (Linux)', async (t) => {
  if (!existsSync('/proc/self/stat')) return t.skip('no /proc');
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
  try {
    const store = RunStore.open(freshHome());
    store.createRun({ options: { ...base, runName: 'recycled' } });
    store.markStarted('recycled', other.pid!);
    const rec = store.get('recycled');
    assert.equal(rec.status, 'STARTED');
    assert.match(rec.pidStart!, /^\d+$/);
    // The same pid, but a process that started at another time than the one recorded.
    store.db.prepare('UPDATE runs SET pid_start = ? WHERE name = ?').run(String(Number(rec.pidStart) - 1), 'recycled');
    assert.equal(store.get('recycled').reason, `worker process ${other.pid} exited without finishing`);
  } finally {
    other.kill('SIGKILL');
  }
});

test('deleteRun removes rows, metrics and folder; refuses a live run unless force', async () => {
  const store = RunStore.open(freshHome());
  const home = store.home;
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)', 'busy']);
  try {
    store.createRun({ options: { ...base, runName: 'busy' } });
    store.markStarted('busy', live.pid!);
    store.addMetrics('busy', 0, { loss: 1 });
    await assert.rejects(deleteRun('busy', { home }), (err: unknown) => err instanceof RunError && /run 'busy': is STARTED \(worker pid \d+\); cancel it first/.test(err.message));
    assert.equal(store.get('busy').status, 'STARTED');
    const exited = new Promise((r) => live.on('exit', (_c, sig) => r(sig)));
    await deleteRun('busy', { home, force: true });
    assert.equal(await exited, 'SIGKILL');
    assert.equal(store.find('busy'), undefined);
    assert.ok(!existsSync(path.join(home, 'runs', 'busy')));
    assert.equal((store.db.prepare('SELECT COUNT(*) AS n FROM metrics').get() as { n: number }).n, 0);
    await assert.rejects(deleteRun('busy', { home }), RunNotFoundError);
  } finally {
    live.kill('SIGKILL');
  }
  // The name is free again.
  assert.equal(store.createRun({ options: { ...base, runName: 'busy' } }).status, 'CREATED');
});

test('experiments: created with their first run or explicitly, listed with run counts, deleted with their runs', async () => {
  const store = RunStore.open(freshHome());
  const home = store.home;
  store.createRun({ options: { ...base, runName: 'a1', experimentName: 'alpha' } });
  store.createRun({ options: { ...base, runName: 'a2', experimentName: 'alpha' } });
  store.createRun({ options: { ...base, runName: 'b1', experimentName: 'beta' } });
  createExperiment('empty', { home });
  for (const n of ['a1', 'a2', 'b1']) store.finish(n, 'FINISHED');
  assert.deepEqual(
    listExperiments({ home }).map((e) => [e.name, e.runs]),
    [['alpha', 2], ['beta', 1], ['empty', 0]],
  );
  assert.deepEqual(listRuns({ home, experiment: 'alpha' }).map((r) => r.name), ['a1', 'a2']);
  await deleteExperiment('alpha', { home });
  assert.deepEqual(listExperiments({ home }).map((e) => e.name), ['beta', 'empty']);
  assert.deepEqual(listRuns({ home }).map((r) => r.name), ['b1']);
  assert.ok(!existsSync(path.join(home, 'runs', 'a1')));
  await assert.rejects(deleteExperiment('alpha', { home }), (err: unknown) => err instanceof ExperimentError && /experiment 'alpha': no such experiment/.test(err.message));
  // A live run blocks the deletion of its experiment.
  store.createRun({ options: { ...base, runName: 'b2', experimentName: 'beta' } });
  await assert.rejects(deleteExperiment('beta', { home }), (err: unknown) => err instanceof RunError && err.run === 'b2');
  await deleteExperiment('beta', { home, force: true });
  assert.deepEqual(listRuns({ home }), []);
});
