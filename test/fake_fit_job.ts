// A small real job with fit()'s signature, for the run worker tests. It trains nothing; it behaves
// like fit as the run machinery sees it. Its behaviour comes from options.trainData:
//   'ok' (or anything without a query)      run normally
//   '<x>?fail=E'  or  'fail'                throw after E epochs (default 1)
//   '<x>?stepMs=N'                          sleep N ms per step (default 20)
//   '<x>?ignoreStop=1'                      never look at shouldStop (cancel's SIGTERM fallback)
// Asked to stop (shouldStop), it throws FitStoppedError, as fit does.
// epochs (default 3) × steps per epoch = batchSize (default 4). Reports, per epoch e = 0..epochs
// (0 = zero-shot), metrics  { train_loss: 1 / (e + 1), recall_at_1: e / epochs }  and writes
// <workDir>/artifact/model.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FitStoppedError } from '../src/errors.js';
import type { FitHooks, FitOptions, FitResult } from '../src/train/fit_types.js';

export function fakeMetrics(epoch: number, epochs: number): Record<string, number> {
  return { train_loss: 1 / (epoch + 1), recall_at_1: epoch / epochs };
}

export async function fit(options: FitOptions, hooks: FitHooks): Promise<FitResult> {
  const q = new URLSearchParams(options.trainData.includes('?') ? options.trainData.split('?')[1] : '');
  const failAfter = options.trainData === 'fail' ? 1 : q.has('fail') ? Number(q.get('fail')) : undefined;
  const stepMs = Number(q.get('stepMs') ?? 20);
  const ignoreStop = q.get('ignoreStop') === '1';
  const epochs = options.epochs ?? 3;
  const steps = options.batchSize ?? 4;
  if (!options.workDir) throw new Error('fake job: options.workDir is not set');
  const t0 = Date.now();
  hooks.log?.('info', `fake job: ${epochs} epochs of ${steps} steps on ${options.trainData}`);
  hooks.metrics?.(0, fakeMetrics(0, epochs));
  let done = 0;
  let step = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    if (failAfter !== undefined && epoch > failAfter) throw new Error(`fake job: planned failure in epoch ${epoch}`);
    for (let s = 1; s <= steps; s++) {
      if (!ignoreStop && hooks.shouldStop?.()) {
        hooks.log?.('warn', `fake job: stop requested in epoch ${epoch}, step ${s}`);
        throw new FitStoppedError(epoch, step, done);
      }
      await sleep(stepMs);
      step++;
      hooks.progress?.({ epoch, epochs, step: s, steps, loss: 1 / (epoch + 1), elapsedS: (Date.now() - t0) / 1000 });
    }
    done = epoch;
    hooks.metrics?.(epoch, fakeMetrics(epoch, epochs));
    hooks.log?.('info', `fake job: epoch ${epoch} done`);
  }
  const artifactDir = path.join(options.workDir, 'artifact');
  mkdirSync(artifactDir, { recursive: true });
  writeFileSync(path.join(artifactDir, 'model.json'), JSON.stringify({ epochs: done }));
  const totalS = (Date.now() - t0) / 1000;
  return { epochs: done, steps: step, history: [], artifactDir, stoppedEarly: false, timings: { totalS, stepS: totalS, dataWaitS: 0, evalS: 0 } };
}
