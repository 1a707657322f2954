// One test file's tiny CLIP fixture and throwaway PostgreSQL with pgvector, made before its tests
// and removed after them (under CI=true a missing server is a failure: startPgServer says so).

import { after, before } from 'node:test';
import { pgSkipReason, startPgServer } from './pg_server.js';
import type { PgServer } from './pg_server.js';
import { makeFixture } from './server_setup.js';
import type { Fixture } from './server_setup.js';

export interface FixtureAndPg {
  fx: Fixture | null;
  pgs: PgServer | null;
  /** Skips `t` (naming the reason) unless both the fixture and the server are there. */
  ready(t: { skip(m: string): void }): this is { fx: Fixture; pgs: PgServer };
}

/** Registers the file's before/after hooks; the fixture holds `images` PNGs. */
export function fixtureAndPg(images: number): FixtureAndPg {
  const ctx: FixtureAndPg = {
    fx: null,
    pgs: null,
    ready(t): this is { fx: Fixture; pgs: PgServer } {
      if (!ctx.fx) t.skip('no BPE fixture');
      else if (!ctx.pgs) t.skip(`no PostgreSQL server: ${pgSkipReason()}`);
      return !!ctx.fx && !!ctx.pgs;
    },
  };
  before(async () => {
    ctx.fx = await makeFixture(images);
    if (ctx.fx) ctx.pgs = await startPgServer();
  });
  after(async () => {
    await ctx.pgs?.stop();
    ctx.fx?.cleanup();
  });
  return ctx;
}
