// Run and experiment names: validated (they name folders under <home>/runs/) and, for runs, generated
// as adjective-noun-4hex when the caller gives none (2^16 suffixes per word pair, retried on collision).

import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';

/** Letters, digits, '.', '_' and '-', starting with a letter or digit: no path separators, no '..'. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function checkName(field: 'runName' | 'experimentName', name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new ConfigError(
      field,
      `invalid name ${JSON.stringify(name)}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (no path separators)`,
    );
  }
  return name;
}

const ADJECTIVES = [
  'amber', 'brave', 'calm', 'clever', 'crisp', 'dapper', 'eager', 'fancy', 'gentle', 'happy',
  'jolly', 'keen', 'lively', 'lucky', 'mellow', 'nimble', 'proud', 'quiet', 'rapid', 'shiny',
  'silent', 'sunny', 'swift', 'tidy', 'vivid', 'witty', 'young', 'zesty', 'bold', 'cosmic',
];
const NOUNS = [
  'otter', 'falcon', 'maple', 'comet', 'harbor', 'lantern', 'meadow', 'pebble', 'quartz', 'river',
  'sparrow', 'tundra', 'violet', 'willow', 'zephyr', 'badger', 'canyon', 'dune', 'ember', 'fjord',
  'glacier', 'heron', 'island', 'juniper', 'kestrel', 'lagoon', 'mirage', 'nebula', 'orchid', 'panda',
];

/** A fresh name like `swift-heron-3fa9`. */
export function generateName(): string {
  const b = randomBytes(4);
  return `${ADJECTIVES[b[0]! % ADJECTIVES.length]}-${NOUNS[b[1]! % NOUNS.length]}-${b.subarray(2).toString('hex')}`;
}
