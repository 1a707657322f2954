// `clipfit runs …` and `clipfit experiments …`, and followRun for `clipfit fit`. Only the CLI prints.

import { createProgress } from '../../train/progress.js';
import type { ProgressStream } from '../../train/progress.js';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { DEFAULT_MODEL } from '../../models/clip/weights/registry.js';
import { deleteExperiment, deleteRun, getRun, listExperiments, listRuns, resumeRun } from '../../runs/launch.js';
import type { Run } from '../../runs/run.js';
import type { RunRecord } from '../../runs/store.js';

type Print = (line: string) => void;

export interface FollowRunOptions {
  /** true: stream the log until the run ends and resolve to its exit code; false: print how to follow it, resolve 0. */
  wait: boolean;
  /** Stop following (as Ctrl-C does). */
  signal?: AbortSignal;
  pollMs?: number;
  /** A terminal: draw the run's progress as a live bar there instead of its plain progress lines. */
  live?: ProgressStream;
}

const reattach = (name: string): string => `clipfit runs logs ${name} -f`;

/** One line on how a run ended (or stands). */
export function describeStatus(rec: RunRecord): string {
  switch (rec.status) {
    case 'FINISHED':
      return `run ${rec.name} FINISHED${rec.reason ? ` (${rec.reason})` : ''}; artifact: ${rec.artifactDir ?? '-'}`;
    case 'FAILED':
    case 'CANCELED':
      return `run ${rec.name} ${rec.status}: ${rec.reason ?? 'no reason recorded'}`;
    default:
      return `run ${rec.name} is ${rec.status}`;
  }
}

/** Exit code for a run's final status: 0 FINISHED, 1 FAILED or CANCELED. */
export const exitCodeOf = (rec: RunRecord): number => (rec.status === 'FINISHED' ? 0 : 1);

/**
 * Follow a run from the CLI. With wait: print its log lines as they come until the run reaches a
 * final status, then a summary; resolves 0 when it FINISHED, 1 when it FAILED or was CANCELED. Ctrl-C
 * (SIGINT) stops following, not the run (its worker is in another process group): prints how to
 * reattach and resolves 130. Without wait: prints the commands to follow the run and resolves 0.
 */
export async function followRun(run: Run, print: Print, opts: FollowRunOptions): Promise<number> {
  if (!opts.wait) {
    print(`run ${run.name} is running in the background (experiment ${run.experiment})`);
    print(`  follow its log:  ${reattach(run.name)}`);
    print(`  its status:      clipfit runs status ${run.name}`);
    print(`  stop it:         clipfit runs cancel ${run.name}`);
    return 0;
  }
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  const onOuterAbort = (): void => stop.abort();
  opts.signal?.addEventListener('abort', onOuterAbort);
  if (opts.signal?.aborted) stop.abort();
  process.on('SIGINT', onSigint);
  // On a terminal the worker's progress (stored about once a second) drives a live bar; its plain
  // `Training [e/E] …` log lines, written for files and pipes, are then left out.
  const bar = opts.live ? createProgress(opts.live) : null;
  const timer = bar
    ? setInterval(() => {
        const p = run.status().progress;
        if (p) bar.progress(p);
      }, 250)
    : null;
  try {
    for await (const line of run.streamLogs({ signal: stop.signal, ...(opts.pollMs ? { pollMs: opts.pollMs } : {}) })) {
      if (!bar) print(line);
      else if (!/ Training \[\d+\/\d+\] /.test(line)) bar.log('info', line);
    }
  } finally {
    if (timer) clearInterval(timer);
    bar?.close();
    process.off('SIGINT', onSigint);
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
  const rec = run.info();
  if (stop.signal.aborted && (rec.status === 'CREATED' || rec.status === 'STARTED')) {
    print(`stopped following run ${run.name}; it keeps running. Reattach with: ${reattach(run.name)}`);
    return 130;
  }
  print(describeStatus(rec));
  return exitCodeOf(rec);
}

function table(rows: string[][], print: Print): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) print(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

const shortTime = (iso?: string): string => (iso ? iso.slice(0, 19).replace('T', ' ') : '-');

function fmtNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
}

export function registerRunCommands(program: Command, print: Print): void {
  const runs = program
    .command('runs')
    .description('Fine-tuning runs: list them, check their status, read or follow their logs, cancel, delete')
    .addHelpText(
      'after',
      `
Runs live in the run store under $CLIPFIT_HOME (default ~/.cache/clipfit): runs.sqlite, and runs/<name>/
with run.log, checkpoints and the artifact. A run's worker keeps going after the command that started it exits.

Examples:
  $ clipfit runs list
  $ clipfit runs logs swift-heron-3fa9 -f
  $ clipfit runs status swift-heron-3fa9 --json`,
    );

  runs
    .command('list')
    .description('List runs, oldest first')
    .option('--experiment <name>', 'only the runs of this experiment')
    .option('--json', 'print JSON (an array of run records)')
    .addHelpText('after', '\nExamples:\n  $ clipfit runs list\n  $ clipfit runs list --experiment products --json')
    .action((o: { experiment?: string; json?: boolean }) => {
      const recs = listRuns(o.experiment !== undefined ? { experiment: o.experiment } : {}).map((r) => r.info());
      if (o.json) return print(JSON.stringify(recs, null, 2));
      if (!recs.length) return print(o.experiment ? `no runs in experiment ${o.experiment}` : 'no runs');
      table(
        [
          ['NAME', 'EXPERIMENT', 'STATUS', 'CREATED', 'FINISHED', 'REASON'],
          ...recs.map((r) => [r.name, r.experiment, r.status, shortTime(r.createdAt), shortTime(r.finishedAt), r.reason ?? '']),
        ],
        print,
      );
    });

  runs
    .command('status')
    .description("Show a run's status, progress, times and artifact folder")
    .argument('<name>', 'run name')
    .option('--json', 'print JSON (the run record)')
    .addHelpText('after', '\nExamples:\n  $ clipfit runs status swift-heron-3fa9\n  $ clipfit runs status swift-heron-3fa9 --json')
    .action((name: string, o: { json?: boolean }) => {
      const r = getRun(name).info();
      if (o.json) return print(JSON.stringify(r, null, 2));
      print(`run:        ${r.name}`);
      print(`experiment: ${r.experiment}`);
      print(`status:     ${r.status}${r.reason ? ` (${r.reason})` : ''}`);
      if (r.progress) {
        const p = r.progress;
        print(`progress:   epoch ${p.epoch}/${p.epochs}, step ${p.step}/${p.steps}, loss ${fmtNumber(p.loss)}, ${p.elapsedS.toFixed(1)} s`);
      }
      print(`created:    ${r.createdAt}`);
      if (r.startedAt) print(`started:    ${r.startedAt}${r.pid ? ` (worker pid ${r.pid})` : ''}`);
      if (r.finishedAt) print(`finished:   ${r.finishedAt}`);
      // Runs recorded before the store filled in the model used the default.
      print(`model:      ${r.options.model ?? DEFAULT_MODEL}`);
      print(`train data: ${r.options.trainData}`);
      print(`folder:     ${r.dir}`);
      if (r.artifactDir) print(`artifact:   ${r.artifactDir}`);
    });

  runs
    .command('logs')
    .description("Print a run's log; with --follow, keep printing new lines until the run ends")
    .argument('<name>', 'run name')
    .option('-f, --follow', 'follow the log of a live run (Ctrl-C stops following, not the run); exits 1 if the run fails or is canceled')
    .option('--json', 'print the log entries as JSON ([{ time, level, message }])')
    .addHelpText('after', '\nExamples:\n  $ clipfit runs logs swift-heron-3fa9\n  $ clipfit runs logs swift-heron-3fa9 -f')
    .action(async (name: string, o: { follow?: boolean; json?: boolean }) => {
      const run = getRun(name);
      if (o.json && !o.follow) return print(JSON.stringify(run.logEntries(), null, 2));
      if (!o.follow) {
        for (const line of run.logs().split('\n')) if (line) print(line);
        return;
      }
      const code = await followRun(run, print, { wait: true, ...(process.stdout.isTTY ? { live: process.stdout } : {}) });
      if (code !== 0) process.exitCode = code;
    });

  runs
    .command('metrics')
    .description('Print the metrics a run recorded, one row per epoch (0 = zero-shot, before training)')
    .argument('<name>', 'run name')
    .option('--json', 'print JSON ([{ epoch, values }])')
    .addHelpText('after', '\nExamples:\n  $ clipfit runs metrics swift-heron-3fa9\n  $ clipfit runs metrics swift-heron-3fa9 --json')
    .action((name: string, o: { json?: boolean }) => {
      const m = getRun(name).metrics();
      if (o.json) return print(JSON.stringify(m, null, 2));
      if (!m.length) return print(`run ${name} has recorded no metrics yet`);
      const keys = [...new Set(m.flatMap((e) => Object.keys(e.values)))].sort();
      table([['epoch', ...keys], ...m.map((e) => [String(e.epoch), ...keys.map((k) => (k in e.values ? fmtNumber(e.values[k]!) : '-'))])], print);
    });

  runs
    .command('cancel')
    .description('Cancel a run: it stops at its next step (its worker gets SIGTERM if it does not within the grace time)')
    .argument('<name>', 'run name')
    .option('--grace <seconds>', 'seconds to wait for the run to stop before SIGTERM', (v) => Number.parseFloat(v), 15)
    .option('--json', 'print the run record as JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit runs cancel swift-heron-3fa9\n  $ clipfit runs cancel swift-heron-3fa9 --grace 60')
    .action(async (name: string, o: { grace: number; json?: boolean }) => {
      if (!(o.grace >= 0)) throw new ConfigError('--grace', `must be a number of seconds >= 0, got ${o.grace}`);
      const run = getRun(name);
      await run.cancel({ graceMs: o.grace * 1000 });
      if (o.json) return print(JSON.stringify(run.info(), null, 2));
      print(describeStatus(run.info()));
    });

  runs
    .command('resume')
    .description('Run a FAILED or CANCELED run again from its last epoch checkpoint (same final weights as an uninterrupted run)')
    .argument('<name>', 'run name')
    .option('--wait', 'follow it to the end; exit non-zero when it fails')
    .addHelpText('after', '\nExample:\n  $ clipfit runs resume swift-heron-3fa9 --wait')
    .action(async (name: string, o: { wait?: boolean }) => {
      const run = resumeRun(name);
      print(`resumed run ${name}`);
      process.exitCode = await followRun(run, print, { wait: !!o.wait });
    });

  runs
    .command('delete')
    .description("Delete a run: its record, metrics and folder (log, checkpoints, artifact)")
    .argument('<name>', 'run name')
    .option('--force', 'also delete a live run (its worker is killed)')
    .option('--json', 'print { "deleted": name } as JSON')
    .addHelpText('after', '\nExamples:\n  $ clipfit runs delete swift-heron-3fa9\n  $ clipfit runs delete swift-heron-3fa9 --force')
    .action(async (name: string, o: { force?: boolean; json?: boolean }) => {
      await deleteRun(name, { force: !!o.force });
      print(o.json ? JSON.stringify({ deleted: name }) : `deleted run ${name}`);
    });

  const experiments = program
    .command('experiments')
    .description('Experiments group runs (fit --experiment NAME; the default experiment is "default")')
    .addHelpText('after', '\nExamples:\n  $ clipfit experiments list\n  $ clipfit experiments delete old-tries --force');

  experiments
    .command('list')
    .description('List experiments with their number of runs')
    .option('--json', 'print JSON ([{ name, createdAt, runs }])')
    .addHelpText('after', '\nExamples:\n  $ clipfit experiments list\n  $ clipfit experiments list --json')
    .action((o: { json?: boolean }) => {
      const ex = listExperiments();
      if (o.json) return print(JSON.stringify(ex, null, 2));
      if (!ex.length) return print('no experiments');
      table([['NAME', 'RUNS', 'CREATED'], ...ex.map((e) => [e.name, String(e.runs), shortTime(e.createdAt)])], print);
    });

  experiments
    .command('delete')
    .description('Delete an experiment and all its runs')
    .argument('<name>', 'experiment name')
    .option('--force', 'also delete live runs (their workers are killed)')
    .addHelpText('after', '\nExamples:\n  $ clipfit experiments delete old-tries\n  $ clipfit experiments delete old-tries --force')
    .action(async (name: string, o: { force?: boolean }) => {
      await deleteExperiment(name, { force: !!o.force });
      print(`deleted experiment ${name}`);
    });
}
