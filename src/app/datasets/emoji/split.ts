// The train / held-out split, decided by the item key alone: u = the first 4 bytes of sha256(key) as
// a big-endian uint32; the item is in train when u mod 100 < trainPercent. It does not depend on
// which other items exist, on `limit`, on the order of the packages' lists or on a seed, so the same
// emoji lands on the same side in every build and every version of the packages. Skin-tone and
// gender variants share their item's key (codepoints.ts), so they cannot straddle the split.

import { createHash } from 'node:crypto';
import { ConfigError } from '../../../errors.js';

export type EmojiSplit = 'train' | 'eval';

export const DEFAULT_TRAIN_PERCENT = 80;

/** sha256(key)[0..4] as a big-endian uint32, mod 100. */
export function splitBucket(key: string): number {
  return createHash('sha256').update(key, 'utf8').digest().readUInt32BE(0) % 100;
}

export function splitOf(key: string, trainPercent = DEFAULT_TRAIN_PERCENT): EmojiSplit {
  if (!Number.isInteger(trainPercent) || trainPercent < 0 || trainPercent > 100) {
    throw new ConfigError('trainPercent', `must be an integer in [0, 100], got ${trainPercent}`);
  }
  return splitBucket(key) < trainPercent ? 'train' : 'eval';
}

/** Items by side, each side in input order. */
export function splitItems<T extends { key: string }>(items: readonly T[], trainPercent = DEFAULT_TRAIN_PERCENT): Record<EmojiSplit, T[]> {
  const out: Record<EmojiSplit, T[]> = { train: [], eval: [] };
  for (const it of items) out[splitOf(it.key, trainPercent)].push(it);
  return out;
}
