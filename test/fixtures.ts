// Where the golden fixtures live (../shared beside the repo, never copied in), and the rule for a
// missing one: under CI (CI=true) it is a failure; elsewhere the test is skipped with a message.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = path.resolve(REPO_ROOT, '../shared/fixtures/clip-reference');

/** Absolute path of a fixture; returns null (after skipping t) when it is missing outside CI. */
export function requireFixture(relPath: string, t?: TestContext): string | null {
  const p = path.join(FIXTURES, relPath);
  if (existsSync(p)) return p;
  if (process.env.CI === 'true') throw new Error(`fixture missing under CI: ${p}`);
  t?.skip(`fixture missing: ${p}`);
  return null;
}
