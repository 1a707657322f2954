// clipfit serve --int8: the int8 towers serve /encode and /search (the artifact's model_int8.onnx,
// or a plain folder's weights quantized on load), close to the fp32 embeddings, and an index
// records them as another model than the fp32 towers (so a switch of precision asks for --reindex).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cosine, dataUri, makeFixture, referenceEmbeddings, start } from './server_setup.js';
import type { Fixture } from './server_setup.js';

let fx: Fixture | null = null;
before(async () => {
  fx = await makeFixture(4);
});
after(() => fx?.cleanup());

const QUERIES = ['a red square', 'a blue circle'];

for (const which of ['onnxModel', 'plainModel'] as const) {
  test(`serve int8 (${which === 'onnxModel' ? "artifact's model_int8.onnx" : 'weights quantized on load'}): /encode within cosine 0.99 of fp32, id marked +int8`, async (t) => {
    if (!fx) return t.skip('no BPE fixture');
    const model = fx[which];
    const ref = await referenceEmbeddings(model, which === 'onnxModel', QUERIES, fx.images.slice(0, 2));
    const c = await start({ model, int8: true, index: path.join(fx.tmp, `idx-int8-${which}`) });
    try {
      assert.match(c.server.encoders.primary.id, /\+int8$/);
      const r = await c.json('POST', '/encode', { texts: QUERIES, images: fx.images.slice(0, 2).map(dataUri) });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const want = [...ref.texts, ...ref.images];
      r.body.embeddings.forEach((e: number[], i: number) => {
        const cos = cosine(e, want[i]!);
        assert.ok(cos >= 0.99 && cos < 1 + 1e-6, `embedding ${i}: cosine ${cos} to fp32`);
        assert.ok(e.some((x, k) => x !== want[i]![k]), `embedding ${i} is not the fp32 one`);
      });
      assert.equal((await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: 'a' }] })).status, 201);
      const s = await c.json('POST', '/search', { query: QUERIES[0], k: 1 });
      assert.equal(s.status, 200, JSON.stringify(s.body));
      assert.equal(s.body.results[0].id, 'a');
    } finally {
      await c.close();
    }
  });
}

test('an index built with fp32 towers needs --reindex before int8 towers write into it', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const index = path.join(fx.tmp, 'idx-precision');
  let c = await start({ model: fx.onnxModel, index });
  assert.equal((await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: 'a' }] })).status, 201);
  await c.close();
  c = await start({ model: fx.onnxModel, int8: true, index });
  try {
    assert.equal((await c.json('GET', '/index')).body.ready, false);
    assert.equal((await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[1]!) }] })).status, 409);
  } finally {
    await c.close();
  }
  c = await start({ model: fx.onnxModel, int8: true, index, reindex: true });
  try {
    assert.equal((await c.json('GET', '/index')).body.ready, true);
    assert.equal((await c.json('POST', '/search', { query: QUERIES[0], k: 1 })).body.results[0].id, 'a');
  } finally {
    await c.close();
  }
});
