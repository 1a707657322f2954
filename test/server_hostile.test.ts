// clipfit serve probed the way an attacker or an unlucky operator would, on loopback only: deeply
// nested metadata, cross-site writes and DNS rebinding, decompression bombs, server-side request
// forgery, and the smaller leaks (run names, home paths).

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openFolderIndex } from '../src/search/folder_index.js';
import { ConfigError } from '../src/errors.js';
import { dataUri, imageForm, makeFixture, start } from './server_setup.js';
import type { Client, Fixture } from './server_setup.js';

let fx: Fixture | null = null;
let c: Client;
let idx = '';

before(async () => {
  fx = await makeFixture(3);
  if (!fx) return;
  idx = path.join(fx.tmp, 'idx');
  c = await start({ model: fx.onnxModel, index: idx });
});
after(async () => {
  await c?.close();
  fx?.cleanup();
});

const nested = (depth: number): Record<string, unknown> => {
  let m: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) m = { a: m };
  return m;
};
/** The JSON text of nested(depth), written out directly (JSON.stringify itself overflows at 6000). */
const nestedJson = (depth: number): string => `${'{"a":'.repeat(depth - 1)}{"leaf":1}${'}'.repeat(depth - 1)}`;
const storedImages = () => (existsSync(path.join(idx, 'images')) ? readdirSync(path.join(idx, 'images')) : []);

test('metadata nested thousands deep is a 400 before anything is written; search and delete keep working', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  assert.equal((await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: 'ok', metadata: nested(5) }] })).status, 201);
  for (const depth of [3000, 6000]) {
    const r = await c.json('POST', '/index', `{"items":[{"uri":${JSON.stringify(dataUri(fx.images[1]!))},"id":"deep${depth}","metadata":${nestedJson(depth)}}]}`);
    assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
    assert.match(r.body.error.message, /items\[0\]\.metadata: nested deeper than 32 levels/);
    const f = await c.form('/index', imageForm([fx.images[1]!], { ids: JSON.stringify([`form${depth}`]), metadata: nestedJson(depth) }));
    assert.equal(f.status, 400);
    assert.match(f.body.error.message, /field metadata: nested deeper than 32 levels/);
  }
  const big = await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[1]!), id: 'big', metadata: { s: 'x'.repeat(70_000) } }] });
  assert.equal(big.status, 400);
  assert.match(big.body.error.message, /bytes as JSON, the limit is 65536/);
  // A failed add wrote nothing, image included.
  assert.deepEqual(storedImages(), ['ok.png']);
  const s = await c.json('POST', '/search', { query: 'a red square', k: 5 });
  assert.equal(s.status, 200);
  assert.deepEqual(s.body.results.map((h: { id: string }) => h.id), ['ok']);
  assert.equal((await c.json('DELETE', '/index/ok')).status, 200);
  assert.deepEqual(storedImages(), []);
  // The library refuses it too, for every backend (prepareItems).
  const ix = await openFolderIndex(path.join(fx.tmp, 'lib-ix'), { dim: 2, model: 'm' });
  await assert.rejects(ix.add([{ id: 'd', vector: Float32Array.of(1, 0), metadata: nested(3000) }]), (e: unknown) => e instanceof ConfigError && /nested deeper/.test(e.message));
  assert.equal(await ix.size(), 0);
  await ix.close();
});
