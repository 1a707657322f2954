// The training progress display, Finetuner-style:
//   Training [2/5] ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 195/195 0:00:12 loss: 2.419 val_loss: 2.803
// On a TTY one live bar per epoch, redrawn in place (`\r`, then erase to the end of the line) at
// most every `intervalMs`; log lines clear the bar, print, and redraw it. Elsewhere (a pipe, a log
// file) plain lines: one each time the epoch passes another tenth, and the epoch's last one. The
// last line of an epoch waits for the epoch's metrics so that it carries val_loss; the other metrics
// follow it one per line. The methods match FitHooks' progress / metrics / log.

import type { FitHooks, LogLevel } from './fit_types.js';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Least time between two redraws of the live bar (default 100 ms). */
  intervalMs?: number;
  /** Width of the bar in characters (default 30; narrower when the terminal is). */
  barWidth?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

type Step = Parameters<NonNullable<FitHooks['progress']>>[0];

export interface Progress extends Required<Pick<FitHooks, 'progress' | 'metrics' | 'log'>> {
  /** Finish an open line (a run that stopped mid-epoch). */
  close(): void;
}

/** h:mm:ss, as rich's TimeElapsedColumn prints it. */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** `━` for the done part, `─` for the rest. */
export function bar(done: number, total: number, width: number): string {
  const filled = total > 0 ? Math.min(width, Math.floor((done / total) * width)) : 0;
  return '━'.repeat(filled) + '─'.repeat(width - filled);
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : String(v));

/** Shown on the epoch's line; the other metrics get lines of their own. */
const LOSSES = ['train_loss', 'val_loss'];

export function createProgress(stream: ProgressStream, opts: ProgressOptions = {}): Progress {
  const tty = stream.isTTY === true;
  const interval = opts.intervalMs ?? 100;
  const now = opts.now ?? (() => Date.now());
  let current: Step | null = null;
  let valLoss: number | undefined;
  /** The live bar is on screen without its newline (TTY). */
  let open = false;
  /** The epoch reached its last step; its final line waits for the metrics. */
  let pending = false;
  let lastDraw = -Infinity;
  let lastTenth = 0;
  /** The step of the last plain line written (not a TTY). */
  let printed = 0;
  /** The epoch whose metrics were shown last. */
  let shownEpoch: number | null = null;

  const line = (p: Step): string => {
    const cols = stream.columns && stream.columns > 0 ? stream.columns : 120;
    const width = Math.max(10, Math.min(opts.barWidth ?? 30, cols - 61));
    const head = `Training [${p.epoch}/${p.epochs}]`;
    const tail = `${p.step}/${p.steps} ${formatElapsed(p.elapsedS)} loss: ${fmt(p.loss)}${valLoss !== undefined ? ` val_loss: ${fmt(valLoss)}` : ''}`;
    return tty ? `${head} ${bar(p.step, p.steps, width)} ${tail}` : `${head} ${tail}`;
  };
  const draw = (): void => {
    stream.write(`\r${line(current!)}\x1b[K`);
    open = true;
    lastDraw = now();
  };
  /** End the epoch's line (the bar, or the plain line that waited for val_loss). */
  const finish = (): void => {
    if (!current) return;
    if (tty) {
      draw();
      stream.write('\n');
    } else if (pending) stream.write(line(current) + '\n');
    open = false;
    pending = false;
    current = null;
  };

  return {
    progress(p: Step): void {
      if (current && (p.epoch !== current.epoch || p.step < current.step)) finish();
      if (!current) {
        valLoss = undefined;
        lastTenth = 0;
        printed = 0;
        lastDraw = -Infinity;
      }
      current = p;
      const last = p.step >= p.steps;
      if (tty) {
        if (last || now() - lastDraw >= interval) draw();
        pending = last;
        return;
      }
      if (last) {
        pending = true;
        return;
      }
      const tenth = Math.floor((p.step * 10) / p.steps);
      if (tenth > lastTenth) {
        lastTenth = tenth;
        printed = p.step;
        stream.write(line(p) + '\n');
      }
    },

    metrics(epoch: number, values: Record<string, number>): void {
      if (current && current.epoch === epoch) {
        if (values['val_loss'] !== undefined) valLoss = values['val_loss'];
        finish();
      } else if (open || pending) finish();
      shownEpoch = epoch;
      const rest = Object.entries(values).filter(([k]) => !LOSSES.includes(k));
      if (!rest.length) return;
      if (epoch === 0) stream.write('Zero-shot evaluation\n');
      for (const [k, v] of rest) stream.write(`${k}: ${fmt(v)}\n`);
    },

    log(level: LogLevel, message: string): void {
      // fit() also logs each epoch's metrics as one line for the run log; they are on screen already.
      if (level === 'info' && shownEpoch !== null && message.startsWith(`epoch ${shownEpoch}: `)) return;
      const text = level === 'info' ? message : `${level === 'warn' ? 'warning' : 'error'}: ${message}`;
      if (tty && open) {
        stream.write(`\r\x1b[K${text}\n`);
        draw();
      } else stream.write(text + '\n');
    },

    close(): void {
      if (!current) return;
      if (tty) {
        draw();
        stream.write('\n');
      } else if (current.step !== printed) stream.write(line(current) + '\n');
      open = false;
      pending = false;
      current = null;
    },
  };
}
