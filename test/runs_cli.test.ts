// `clipfit runs …` / `clipfit experiments …` through commander, and followRun (Ctrl-C included, in a
// real child process following a real detached run).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Command, CommanderError } from 'commander';
import { followRun, registerRunCommands } from '../src/app/cli/commands_runs.js';
import { RunError } from '../src/errors.js';
import { getRun, inProcessRun, startRun } from '../src/runs/index.js';
import { DEFAULT_MODEL } from '../src/models/clip/weights/registry.js';
import { RunStore, type RunRecord } from '../src/runs/store.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const JOB = path.join(REPO, 'test', 'fake_fit_job.ts');
const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-runs-cli-'));
process.env['CLIPFIT_HOME'] = home;
after(() => rmSync(home, { recursive: true, force: true }));

/** Run `clipfit <args>` with the run commands; resolves to what it printed. */
async function cli(...args: string[]): Promise<string[]> {
  const out: string[] = [];
  const program = new Command().name('clipfit').exitOverride().configureOutput({ writeOut: (s) => out.push(...s.trimEnd().split('\n')), writeErr: () => {} });
  registerRunCommands(program, (line) => out.push(...line.split('\n')));
  await program.parseAsync(['node', 'clipfit', ...args]);
  return out;
}

async function inProcess(runName: string, trainData: string, experimentName: string, epochs = 2): Promise<void> {
  startRun({ model: 'fake', trainData, runName, experimentName, epochs }, { jobModule: JOB, detach: false });
  await inProcessRun(runName);
}

before(async () => {
  await inProcess('cli-ok', 'ok?stepMs=1', 'cli');
  await inProcess('cli-fail', 'fail', 'cli', 3);
  await inProcess('other-ok', 'ok?stepMs=1', 'other', 1);
});

test('runs list: a table, and --json that parses to the run records', async () => {
  const recs = JSON.parse((await cli('runs', 'list', '--json')).join('\n')) as RunRecord[];
  assert.deepEqual(recs.map((r) => [r.name, r.experiment, r.status]), [
    ['cli-ok', 'cli', 'FINISHED'],
    ['cli-fail', 'cli', 'FAILED'],
    ['other-ok', 'other', 'FINISHED'],
  ]);
  assert.equal(recs[1]!.reason, 'fake job: planned failure in epoch 2');
  const lines = await cli('runs', 'list', '--experiment', 'cli');
  assert.match(lines[0]!, /^NAME\s+EXPERIMENT\s+STATUS\s+CREATED\s+FINISHED\s+REASON$/);
  assert.equal(lines.length, 3);
  assert.match(lines[2]!, /^cli-fail\s+cli\s+FAILED\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-.*fake job: planned failure in epoch 2$/);
  assert.deepEqual(await cli('runs', 'list', '--experiment', 'none'), ['no runs in experiment none']);
});

test('runs status: text and --json', async () => {
  const rec = JSON.parse((await cli('runs', 'status', 'cli-ok', '--json')).join('\n')) as RunRecord;
  assert.equal(rec.status, 'FINISHED');
  assert.equal(rec.artifactDir, path.join(home, 'runs', 'cli-ok', 'artifact'));
  assert.equal(rec.options.trainData, 'ok?stepMs=1');
  const text = await cli('runs', 'status', 'cli-fail');
  assert.ok(text.includes('status:     FAILED (fake job: planned failure in epoch 2)'), text.join('\n'));
  assert.ok(text.some((l) => /^progress:   epoch 1\/3, step 4\/4, loss 0\.5, \d+\.\d s$/.test(l)), text.join('\n'));
  assert.ok(text.includes(`folder:     ${path.join(home, 'runs', 'cli-fail')}`), text.join('\n'));
  await assert.rejects(cli('runs', 'status', 'nope'), /run 'nope': no such run in the run store/);
});

test('runs status names the model a run used: the default model when none was given, never undefined', async () => {
  await inProcessRunWithout('cli-default-model');
  try {
    const rec = JSON.parse((await cli('runs', 'status', 'cli-default-model', '--json')).join('\n')) as RunRecord;
    assert.equal(rec.status, 'FINISHED');
    assert.equal(rec.options.model, DEFAULT_MODEL, 'recorded as resolved, so a resume loads the same model');
    const text = await cli('runs', 'status', 'cli-default-model');
    assert.ok(text.includes(`model:      ${DEFAULT_MODEL}`), text.join('\n'));
    assert.equal(DEFAULT_MODEL, 'ViT-T-8-64::icons');
    // A record from before the store filled the model in still shows the default it ran with.
    RunStore.open(home).db.prepare(`UPDATE runs SET options = json_remove(options, '$.model') WHERE name = 'cli-default-model'`).run();
    assert.equal(getRun('cli-default-model').options.model, undefined);
    const old = await cli('runs', 'status', 'cli-default-model');
    assert.ok(old.includes(`model:      ${DEFAULT_MODEL}`), old.join('\n'));
    assert.ok(!old.some((l) => l.includes('undefined')), old.join('\n'));
    // A model given is shown as given.
    assert.ok((await cli('runs', 'status', 'cli-ok')).includes('model:      fake'));
  } finally {
    await cli('runs', 'delete', 'cli-default-model');
  }
});

/** A run started without a model (the fake job ignores it). */
async function inProcessRunWithout(runName: string): Promise<void> {
  startRun({ trainData: 'ok?stepMs=1', runName, experimentName: 'cli', epochs: 1 }, { jobModule: JOB, detach: false });
  await inProcessRun(runName);
}

test('runs metrics: a table per epoch, and --json', async () => {
  // The fake job reports train_loss = 1/(e+1), recall_at_1 = e/epochs.
  assert.deepEqual(JSON.parse((await cli('runs', 'metrics', 'cli-ok', '--json')).join('\n')), [
    { epoch: 0, values: { recall_at_1: 0, train_loss: 1 } },
    { epoch: 1, values: { recall_at_1: 0.5, train_loss: 0.5 } },
    { epoch: 2, values: { recall_at_1: 1, train_loss: 1 / 3 } },
  ]);
  assert.deepEqual((await cli('runs', 'metrics', 'cli-ok')).map((l) => l.split(/\s+/)), [
    ['epoch', 'recall_at_1', 'train_loss'],
    ['0', '0', '1'],
    ['1', '0.5', '0.5'],
    ['2', '1', '0.333333'],
  ]);
});

test('runs logs: the log; -f on a finished run prints it, the outcome, and sets the exit code', async () => {
  const logs = await cli('runs', 'logs', 'cli-ok');
  assert.deepEqual(logs, getRun('cli-ok').logs().trimEnd().split('\n'));
  try {
    const followed = await cli('runs', 'logs', 'cli-fail', '--follow');
    assert.equal(followed.at(-1), 'run cli-fail FAILED: fake job: planned failure in epoch 2');
    assert.ok(followed.some((l) => l.includes('ERROR run FAILED: Error: fake job: planned failure in epoch 2')), 'the stack is in the log');
    assert.equal(process.exitCode, 1);
  } finally {
    process.exitCode = 0;
  }
});

test('runs cancel and runs delete on a live run', async () => {
  startRun({ model: 'fake', trainData: 'ok?stepMs=20', runName: 'cli-live', experimentName: 'cli', epochs: 500 }, { jobModule: JOB, detach: false });
  await assert.rejects(cli('runs', 'delete', 'cli-live'), (err: unknown) => err instanceof RunError && /is STARTED .*cancel it first or delete with force/.test(err.message));
  const canceled = await cli('runs', 'cancel', 'cli-live', '--grace', '10');
  assert.equal(canceled.length, 1, canceled.join('\n'));
  assert.match(canceled[0]!, /^run cli-live CANCELED: canceled by user at epoch \d+, step \d+$/);
  assert.deepEqual(await cli('runs', 'delete', 'cli-live'), ['deleted run cli-live']);
  assert.ok(!existsSync(path.join(home, 'runs', 'cli-live')), 'folder removed');
  // --force takes a live run down.
  startRun({ model: 'fake', trainData: 'ok?stepMs=20', runName: 'cli-live2', experimentName: 'cli', epochs: 500 }, { jobModule: JOB, detach: false });
  assert.deepEqual(await cli('runs', 'delete', 'cli-live2', '--force'), ['deleted run cli-live2']);
  assert.ok(!existsSync(path.join(home, 'runs', 'cli-live2')), 'folder removed');
  await assert.rejects(cli('runs', 'status', 'cli-live2'), /no such run/);
});

test('experiments list (--json) and delete', async () => {
  await inProcess('doomed-1', 'ok?stepMs=1', 'doomed', 1);
  const ex = JSON.parse((await cli('experiments', 'list', '--json')).join('\n')) as { name: string; runs: number }[];
  assert.deepEqual(ex.map((e) => [e.name, e.runs]), [['cli', 2], ['other', 1], ['doomed', 1]]);
  assert.match((await cli('experiments', 'list'))[3]!, /^doomed\s+1\s+\d{4}-/);
  assert.deepEqual(await cli('experiments', 'delete', 'doomed'), ['deleted experiment doomed']);
  assert.deepEqual(JSON.parse((await cli('runs', 'list', '--json')).join('\n')).map((r: RunRecord) => r.name), ['cli-ok', 'cli-fail', 'other-ok']);
});

test('--help of every command has examples', async () => {
  for (const args of [['runs'], ['runs', 'list'], ['runs', 'status'], ['runs', 'logs'], ['runs', 'metrics'], ['runs', 'cancel'], ['runs', 'delete'], ['experiments'], ['experiments', 'list'], ['experiments', 'delete']]) {
    let out: string[] = [];
    await assert.rejects(
      (async () => {
        out = [];
        const program = new Command().name('clipfit').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: () => {} });
        registerRunCommands(program, () => {});
        await program.parseAsync(['node', 'clipfit', ...args, '--help']);
      })(),
      (err: unknown) => err instanceof CommanderError && err.code === 'commander.helpDisplayed',
    );
    assert.match(out.join(''), /Examples?:\n {2}\$ clipfit (runs|experiments) /, args.join(' '));
  }
});

test('followRun: without wait prints how to follow; with wait returns 0 / 1 by outcome', async () => {
  const printed: string[] = [];
  assert.equal(await followRun(getRun('cli-ok'), (l) => printed.push(l), { wait: false }), 0);
  assert.ok(printed.includes('  follow its log:  clipfit runs logs cli-ok -f'), printed.join('\n'));
  printed.length = 0;
  assert.equal(await followRun(getRun('cli-ok'), (l) => printed.push(l), { wait: true }), 0);
  assert.match(printed.at(-1)!, /^run cli-ok FINISHED; artifact: .*cli-ok\/artifact$/);
  assert.equal(await followRun(getRun('cli-fail'), () => {}, { wait: true }), 1);
});

test('followRun: Ctrl-C stops following, not the run, and says how to reattach', async () => {
  const run = startRun({ model: 'fake', trainData: 'ok?stepMs=30', runName: 'cli-followed', epochs: 500 }, { jobModule: JOB });
  const child = spawn(
    process.execPath,
    [
      '--import', 'tsx', '--input-type=module', '-e',
      `import { followRun } from './src/app/cli/commands_runs.ts';
       import { getRun } from './src/runs/index.ts';
       const code = await followRun(getRun('cli-followed'), (l) => console.log(l), { wait: true, pollMs: 50 });
       console.log('EXIT ' + code);
       process.exit(code);`,
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
  );
  let out = '';
  let interrupted = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!interrupted && out.includes('fake job: epoch 1 done')) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  const code = await new Promise((r) => child.on('exit', (c) => r(c)));
  try {
    assert.equal(code, 130);
    assert.match(out, /stopped following run cli-followed; it keeps running\. Reattach with: clipfit runs logs cli-followed -f\nEXIT 130\n$/);
    assert.equal(run.status().status, 'STARTED');
  } finally {
    assert.equal((await run.cancel({ graceMs: 10_000 })).status, 'CANCELED');
  }
  assert.equal(await followRun(run, () => {}, { wait: true }), 1);
});

test('runs logs --json, resume, and delete --json', async () => {
  const entries = JSON.parse((await cli('runs', 'logs', 'cli-ok', '--json')).join('\n')) as { level: string; message: string }[];
  assert.equal(entries[0]!.message, 'run cli-ok created');
  assert.ok(entries.every((e) => ['info', 'warn', 'error'].includes(e.level)));
  await assert.rejects(cli('runs', 'resume', 'cli-ok'), (e: unknown) => e instanceof RunError && /is FINISHED; only a FAILED or CANCELED run can be resumed/.test(e.message));
  await inProcess('to-delete', 'ok?stepMs=1', 'cli', 1);
  assert.deepEqual(JSON.parse((await cli('runs', 'delete', 'to-delete', '--json')).join('\n')), { deleted: 'to-delete' });
  assert.throws(() => getRun('to-delete'), RunError);
});

test("followRun on a terminal draws a live bar from the run's progress instead of its plain progress lines", async () => {
  const run = startRun({ model: 'fake', trainData: 'ok?stepMs=300', runName: 'live-bar', experimentName: 'cli', epochs: 1, batchSize: 6 }, { jobModule: JOB, detach: false });
  let screen = '';
  const printed: string[] = [];
  const code = await followRun(run, (l) => printed.push(l), { wait: true, pollMs: 50, live: { isTTY: true, write: (s: string) => void (screen += s) } });
  await inProcessRun('live-bar');
  assert.equal(code, 0);
  assert.match(screen, /\r.*Training \[1\/1\] .*━.* \d\/6 /, 'a bar redrawn in place');
  assert.ok(!/ INFO  Training \[/.test(screen), 'the plain progress lines are left out');
  assert.match(screen, /run live-bar started/, 'other log lines still show');
  assert.match(printed.at(-1)!, /run live-bar FINISHED/);
});
