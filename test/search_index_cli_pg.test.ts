// `clipfit index add` into a Postgres index that `clipfit serve` replicas share: the images go into
// the database with their vectors (the replicas cannot read the adding machine's files), under ids
// a server's /images/:id serves, and a server on that index finds and serves them.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pgImageId } from '../src/app/cli/commands_index.js';
import { indexCli } from './index_cli.js';
import { fixtureAndPg } from './pg_fixture.js';
import { referenceEmbeddings, start } from './server_setup.js';

const ctx = fixtureAndPg(4);

test('index add into Postgres stores each image with its vector; a server on the index serves and finds them', { timeout: 300_000 }, async (t) => {
  if (!ctx.ready(t)) return;
  const db = await ctx.pgs.createDatabase('cli_add');
  const spec = `${db}#shop`;
  const out = await indexCli('index', 'add', '--index', spec, '--model', ctx.fx.onnxModel, '--json', path.dirname(ctx.fx.images[0]!));
  const res = JSON.parse(out.join('\n'));
  assert.equal(res.added, 4);
  assert.equal(res.size, 4);
  const ids = ctx.fx.images.map((f) => pgImageId(f));
  assert.deepEqual([...res.ids].sort(), [...ids].sort());
  for (const id of ids) assert.match(id, /^img00\d\.png-[0-9a-f]{12}$/);

  const rows = await ctx.pgs.admin<{ id: string; type: string; n: number }>('SELECT id, type, length(bytes) AS n FROM clipfit_img_shop ORDER BY id', [], 'cli_add');
  assert.deepEqual(rows.map((r) => r.id), [...ids].sort());
  assert.ok(rows.every((r) => r.type === 'png'));

  // Adding the same files again replaces them: still 4 items and 4 images.
  const again = JSON.parse((await indexCli('index', 'add', '--index', spec, '--model', ctx.fx.onnxModel, '--json', ...ctx.fx.images)).join('\n'));
  assert.equal(again.size, 4);
  assert.equal((await ctx.pgs.admin('SELECT id FROM clipfit_img_shop', [], 'cli_add')).length, 4);

  const c = await start({ model: ctx.fx.onnxModel, index: spec });
  try {
    const ref = await referenceEmbeddings(ctx.fx.onnxModel, true, [], ctx.fx.images);
    for (const [i, file] of ctx.fx.images.entries()) {
      const r = await c.json('POST', '/search', { vector: Array.from(ref.images[i]!), k: 1 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.results[0].id, ids[i]);
      assert.equal(r.body.results[0].metadata.uri, file);
      const img = await fetch(`${c.url}${r.body.results[0].imageUrl}`);
      assert.equal(img.status, 200);
      assert.equal(img.headers.get('content-type'), 'image/png');
      assert.deepEqual(new Uint8Array(await img.arrayBuffer()), new Uint8Array(readFileSync(file)));
    }
  } finally {
    await c.close();
  }
});
