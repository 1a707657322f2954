// Learning-rate schedules with linear warm-up, stepped per batch or per epoch:
//   warm-up:  lr·(t+1)/w for t < w
//   constant: lr
//   linear:   lr·(1 − p),            p = (t − w)/(T − w)
//   cosine:   lr·½·(1 + cos(π·p))    (open_clip's cosine_lr, without its final floor)

import { ConfigError } from '../errors.js';
import type { SchedulerName } from './fit_types.js';

export interface Schedule {
  /** Learning rate for step t (0-based) of `total`. */
  lr(t: number): number;
}

export function makeSchedule(name: SchedulerName, baseLr: number, total: number, warmup = 0): Schedule {
  if (!['constant', 'linear', 'cosine'].includes(name)) throw new ConfigError('scheduler', `must be constant, linear or cosine, got ${JSON.stringify(name)}`);
  if (!(warmup >= 0) || !Number.isInteger(warmup)) throw new ConfigError('schedulerOptions.warmupSteps', `must be a non-negative integer, got ${warmup}`);
  return {
    lr(t: number): number {
      if (t < warmup) return (baseLr * (t + 1)) / warmup;
      if (name === 'constant') return baseLr;
      const span = Math.max(1, total - warmup);
      const p = Math.min(1, (t - warmup) / span);
      return name === 'linear' ? baseLr * (1 - p) : baseLr * 0.5 * (1 + Math.cos(Math.PI * p));
    },
  };
}
