// The progress display on a fake TTY (rendered as a terminal would: \r, erase-to-end, \n) and on a
// fake pipe (plain lines).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import path from 'node:path';
import { bar, createProgress, formatElapsed } from '../src/train/progress.js';
import { fit } from '../src/train/fit.js';
import type { FitHooks } from '../src/train/fit_types.js';
import { makeShapesCsv } from './fit_data.js';
import { FIXTURES, requireFixture } from './fixtures.js';

/** What a terminal shows after these writes: \r returns to column 0, ESC[K erases to the end of the line. */
function render(writes: string[]): string[] {
  const lines: string[] = [];
  let cur = '';
  let col = 0;
  const s = writes.join('');
  for (let i = 0; i < s.length; ) {
    if (s.startsWith('\x1b[K', i)) {
      cur = cur.slice(0, col);
      i += 3;
    } else if (s[i] === '\r') {
      col = 0;
      i++;
    } else if (s[i] === '\n') {
      lines.push(cur);
      cur = '';
      col = 0;
      i++;
    } else {
      const ch = String.fromCodePoint(s.codePointAt(i)!);
      cur = cur.slice(0, col) + ch + cur.slice(col + ch.length);
      col += ch.length;
      i += ch.length;
    }
  }
  if (cur) lines.push(cur);
  return lines;
}

const FULL = '━'.repeat(30);

test('formatElapsed and bar', () => {
  assert.equal(formatElapsed(12.7), '0:00:12');
  assert.equal(formatElapsed(3 * 3600 + 61), '3:01:01');
  assert.equal(bar(195, 195, 30), FULL);
  assert.equal(bar(11, 20, 30), '━'.repeat(16) + '─'.repeat(14));
  assert.equal(bar(0, 20, 10), '─'.repeat(10));
});

test('TTY: one live bar per epoch, redrawn in place and throttled; val_loss and the metrics after the epoch', () => {
  const writes: string[] = [];
  let t = 0;
  const p = createProgress({ isTTY: true, write: (s) => writes.push(s) }, { intervalMs: 100, now: () => t });
  p.metrics(0, { 'clip-text-to-clip-vision_precision_at_k': 0.05 });
  for (let step = 1; step <= 20; step++) {
    t += 10;
    p.progress({ epoch: 1, epochs: 2, step, steps: 20, loss: 2.4191, elapsedS: step * 0.615 });
    if (step === 5) p.log('warn', 'skipped 1 bad row(s)');
  }
  const draws = writes.filter((w) => w.startsWith('\r') && !w.startsWith('\r\x1b[K')).length;
  // Step 1, step 5 (the redraw after the log line), step 15 (100 ms after that), step 20 (the last).
  assert.equal(draws, 4);
  p.metrics(1, { train_loss: 2.4191, val_loss: 2.8034, 'clip-text-to-clip-vision_precision_at_k': 0.1234, 'clip-text-to-clip-vision_recall_at_1': 0.5 });
  t += 10;
  p.progress({ epoch: 2, epochs: 2, step: 1, steps: 20, loss: 2.1, elapsedS: 0.5 });
  p.close();
  assert.deepEqual(render(writes), [
    'Zero-shot evaluation',
    'clip-text-to-clip-vision_precision_at_k: 0.050',
    'warning: skipped 1 bad row(s)',
    `Training [1/2] ${FULL} 20/20 0:00:12 loss: 2.419 val_loss: 2.803`,
    'clip-text-to-clip-vision_precision_at_k: 0.123',
    'clip-text-to-clip-vision_recall_at_1: 0.500',
    `Training [2/2] ${'━'.repeat(1)}${'─'.repeat(29)} 1/20 0:00:00 loss: 2.100`,
  ]);
  // Every redraw starts at column 0 and erases what the previous one left.
  assert.ok(writes.filter((w) => w.includes('Training')).every((w) => w.startsWith('\r') && w.endsWith('\x1b[K')));
});

test('not a TTY: plain lines, one per tenth of the epoch and one at its end with val_loss, then the metrics', () => {
  const out: string[] = [];
  const p = createProgress({ write: (s) => out.push(s) });
  for (let epoch = 1; epoch <= 2; epoch++) {
    for (let step = 1; step <= 20; step++) p.progress({ epoch, epochs: 2, step, steps: 20, loss: 3 - epoch * 0.5 - step * 0.01, elapsedS: step });
    p.log('info', `epoch ${epoch} done`);
    p.metrics(epoch, { train_loss: 2, val_loss: 2.5 + epoch, 'clip-text-to-clip-vision_ndcg_at_k': 0.1 * epoch });
  }
  p.close();
  const lines = out.join('').split('\n').slice(0, -1);
  assert.ok(out.every((s) => s.endsWith('\n') && !s.includes('\r') && !s.includes('\x1b')), 'no control characters');
  const epoch1 = lines.slice(0, 12);
  assert.deepEqual(epoch1.slice(0, 9), [2, 4, 6, 8, 10, 12, 14, 16, 18].map((s) => `Training [1/2] ${s}/20 0:00:${String(s).padStart(2, '0')} loss: ${(2.5 - s * 0.01).toFixed(3)}`));
  assert.deepEqual(epoch1.slice(9), ['epoch 1 done', 'Training [1/2] 20/20 0:00:20 loss: 2.300 val_loss: 3.500', 'clip-text-to-clip-vision_ndcg_at_k: 0.100']);
  assert.equal(lines.length, 24);
  assert.equal(lines[22], 'Training [2/2] 20/20 0:00:20 loss: 1.800 val_loss: 4.500');
  assert.equal(lines[23], 'clip-text-to-clip-vision_ndcg_at_k: 0.200');
});

test('not a TTY: a run stopped mid-epoch gets its last line on close; few steps print each', () => {
  const out: string[] = [];
  const p = createProgress({ isTTY: false, write: (s) => out.push(s) });
  for (let step = 1; step <= 3; step++) p.progress({ epoch: 1, epochs: 1, step, steps: 4, loss: 1, elapsedS: 0 });
  p.log('error', 'stopped');
  p.close();
  assert.deepEqual(out.join('').split('\n').slice(0, -1), [
    'Training [1/1] 1/4 0:00:00 loss: 1.000',
    'Training [1/1] 2/4 0:00:00 loss: 1.000',
    'Training [1/1] 3/4 0:00:00 loss: 1.000',
    'error: stopped',
  ]);
});

test('plugged into fit() as its hooks: the epoch line with loss and val_loss, then the metrics', async (t) => {
  const tiny = requireFixture('tiny', t);
  if (!tiny) return;
  const { csv } = await makeShapesCsv(24);
  const out: string[] = [];
  const progress = createProgress({ isTTY: false, write: (s) => out.push(s) });
  const hooks: FitHooks = progress;
  await fit(
    { model: tiny, tokenizer: path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'), trainData: csv, valSplit: 0.25, epochs: 1, batchSize: 6, numWorkers: 1, callbacks: [{ type: 'EvaluationCallback', queryData: csv, indexData: csv, limit: 5 }] },
    hooks,
  );
  progress.close();
  const lines = out.join('').split('\n').slice(0, -1);
  const i = lines.findIndex((l) => l.startsWith('Training [1/1] 3/3 '));
  assert.ok(i > 0, lines.join('\n'));
  assert.match(lines[i]!, /^Training \[1\/1\] 3\/3 \d:\d\d:\d\d loss: \d+\.\d{3} val_loss: \d+\.\d{3}$/);
  assert.deepEqual(lines.filter((l) => /^Training/.test(l)).map((l) => l.split(' ')[2]), ['1/3', '2/3', '3/3']);
  assert.ok(lines.includes('Zero-shot evaluation'));
  assert.equal(lines.slice(i + 1).filter((l) => /^clip-text-to-clip-vision_\w+: \d\.\d{3}$/.test(l)).length, 12);
  assert.ok(lines.some((l) => /^model .*: [\d,]+ parameters$/.test(l)), 'info log lines pass through');
  assert.ok(!lines.some((l) => /^epoch \d+: /.test(l)), "fit's one-line metrics log is not repeated");
});
