// clipfit serve refusing bad input, over real HTTP: every 4xx is {error: {code, message}} with the
// documented status — malformed JSON, wrong content types, oversized bodies and uploads, non-image
// uploads, unknown ids, over-long queries, bad ids and file URIs, bearer tokens, CORS, and the
// refusal to listen off loopback without a token.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { InsecureServeError } from '../src/errors.js';
import { createServer } from '../src/server/server.js';
import { dataUri, imageForm, makeFixture, start } from './server_setup.js';
import type { Client, Fixture } from './server_setup.js';

let fx: Fixture | null = null;
let c: Client;
let root = '';

before(async () => {
  fx = await makeFixture(3);
  if (!fx) return;
  root = path.join(fx.tmp, 'allowed');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  copyFileSync(fx.images[0]!, path.join(root, 'sub', 'a.png'));
  copyFileSync(fx.images[1]!, path.join(fx.tmp, 'outside.png'));
  symlinkSync(path.join(fx.tmp, 'outside.png'), path.join(root, 'link.png'));
  c = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx'), allowRoot: root, limits: { maxUploadBytes: 64 * 1024 } });
  await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: 'known' }] });
});
after(async () => {
  await c?.close();
  fx?.cleanup();
});

const isError = (r: { status: number; body: any }, status: number, code: string) => {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.error.code, code, JSON.stringify(r.body));
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 5);
};

test('malformed JSON is a 400 invalid_json; schema violations are 400 bad_request naming the field', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  isError(await c.json('POST', '/search', '{"query": "a red'), 400, 'invalid_json');
  isError(await c.json('POST', '/search', {}), 400, 'bad_request');
  const k = await c.json('POST', '/search', { query: 'x', k: 101 });
  isError(k, 400, 'bad_request');
  assert.match(k.body.error.message, /k/);
  isError(await c.json('POST', '/search', { query: 'x', k: 0 }), 400, 'bad_request');
  isError(await c.json('POST', '/search', { query: 'x', k: '5' }), 400, 'bad_request');
  isError(await c.json('POST', '/search', { query: 'x', extra: 1 }), 400, 'bad_request');
  isError(await c.json('POST', '/search', { query: '   ' }), 400, 'bad_request');
  isError(await c.json('POST', '/encode', {}), 400, 'bad_request');
  isError(await c.json('POST', '/rank', { text: 'x', images: [] }), 400, 'bad_request');
  isError(await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: 'a' }, { uri: dataUri(fx.images[1]!), id: 'a' }] }), 400, 'bad_request');
  isError(await c.form('/index', imageForm([fx.images[0]!], { metadata: '{nope' })), 400, 'bad_request');
  isError(await c.form('/index', imageForm(fx.images.slice(0, 2), { metadata: '[{}]' })), 400, 'bad_request');
});

test('wrong content types are 415', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  isError(await c.json('POST', '/search', 'query=x', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
  isError(await c.json('POST', '/search', 'query=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
  isError(await c.form('/search', imageForm([fx.images[0]!])), 415, 'unsupported_media_type');
  const none = await fetch(`${c.url}/search`, { method: 'POST' });
  isError({ status: none.status, body: await none.json() }, 415, 'unsupported_media_type');
});

test('oversized JSON bodies and uploads are 413; non-image uploads and URIs are 415', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  isError(await c.json('POST', '/search', { query: 'x', pad: 'y'.repeat(1_100_000) }), 413, 'payload_too_large');
  const big = new Uint8Array(100 * 1024);
  big.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const f = new FormData();
  f.append('file', new Blob([big], { type: 'image/png' }), 'big.png');
  isError(await c.form('/index', f), 413, 'payload_too_large');
  const g = new FormData();
  g.append('file', new Blob([new TextEncoder().encode('#!/bin/sh\necho not an image\n')], { type: 'image/png' }), 'fake.png');
  const r = await c.form('/index', g);
  isError(r, 415, 'unsupported_media_type');
  assert.match(r.body.error.message, /fake\.png/);
  isError(await c.json('POST', '/encode', { images: ['data:image/png;base64,' + Buffer.from('GIF? no, text').toString('base64')] }), 415, 'unsupported_media_type');
  // A file with image magic bytes that does not decode is a 422.
  const broken = new Uint8Array(64);
  broken.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  isError(await c.json('POST', '/encode', { images: ['data:image/png;base64,' + Buffer.from(broken).toString('base64')] }), 422, 'unprocessable');
  assert.equal((await c.json('GET', '/index')).body.size, 1, 'nothing was indexed');
});

test('unknown ids are 404; unsafe ids are refused; unknown routes are JSON 404s', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  isError(await c.json('DELETE', '/index/nope'), 404, 'not_found');
  isError(await c.json('GET', '/images/nope'), 404, 'not_found');
  isError(await c.json('GET', '/images/..%2F..%2Fetc%2Fpasswd'), 404, 'not_found');
  isError(await c.json('DELETE', '/index/..%2Fx'), 400, 'bad_request');
  isError(await c.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: '../evil' }] }), 400, 'bad_request');
  isError(await c.json('POST', '/nope', {}), 404, 'not_found');
  isError(await c.json('GET', '/api/nope'), 404, 'not_found');
});

test('a 10,000-character query is a 400 query_too_long; 2,000 characters are accepted (CLIP truncates to 77 tokens)', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const r = await c.json('POST', '/search', { query: 'a red square '.repeat(800).slice(0, 10_000) });
  isError(r, 400, 'query_too_long');
  assert.match(r.body.error.message, /2000 characters/);
  const ok = await c.json('POST', '/search', { query: 'red '.repeat(500) });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  isError(await c.json('POST', '/rank', { text: 'x'.repeat(2001), images: [dataUri(fx.images[0]!)] }), 400, 'query_too_long');
});

test('file URIs: only under --allow-root (symlinks resolved); none at all without it', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const ok = await c.json('POST', '/encode', { images: [path.join(root, 'sub', 'a.png'), 'sub/a.png', `file://${path.join(root, 'sub', 'a.png')}`] });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.embeddings[0], ok.body.embeddings[1]);
  for (const evil of [path.join(fx.tmp, 'outside.png'), '../outside.png', 'link.png', path.join(root, 'link.png'), 'sub/../../outside.png', '/etc/passwd', 'file:///etc/passwd'])
    isError(await c.json('POST', '/encode', { images: [evil] }), 400, 'bad_request');
  isError(await c.json('POST', '/encode', { images: ['ftp://x/y.png'] }), 400, 'bad_request');
  const d = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-noroot') });
  try {
    const r = await d.json('POST', '/rank', { text: 'x', images: [path.join(root, 'sub', 'a.png')] });
    isError(r, 400, 'bad_request');
    assert.match(r.body.error.message, /--allow-root/);
  } finally {
    await d.close();
  }
});

test('bearer token: 401 when missing or wrong on every route but /healthz and the page; images also take ?token=', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const d = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-auth'), token: 's3cret' });
  const auth = { authorization: 'Bearer s3cret' };
  try {
    assert.equal((await d.json('GET', '/healthz')).status, 200);
    for (const [m, route, body] of [
      ['GET', '/index'],
      ['POST', '/search', { query: 'x' }],
      ['POST', '/encode', { texts: ['x'] }],
      ['GET', '/metrics'],
      ['GET', '/openapi.json'],
      ['GET', '/api/runs'],
      ['DELETE', '/index/x'],
      ['GET', '/api/runs/x/metrics'],
      ['GET', '/images/x'],
    ] as const) {
      const missing = await d.json(m, route, body);
      isError(missing, 401, 'unauthorized');
      assert.match(missing.body.error.message, /missing/);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
      const wrong = await d.json(m, route, body, { authorization: 'Bearer nope' });
      isError(wrong, 401, 'unauthorized');
      assert.match(wrong.body.error.message, /wrong/);
    }
    isError(await d.json('GET', '/index', undefined, { authorization: 'Basic czNjcmV0' }), 401, 'unauthorized');
    assert.equal((await d.json('GET', '/index', undefined, auth)).status, 200);
    const add = await d.json('POST', '/index', { items: [{ uri: dataUri(fx.images[0]!), id: 'p' }] }, auth);
    assert.equal(add.status, 201);
    assert.equal((await fetch(`${d.url}/images/p?token=s3cret`)).status, 200);
    assert.equal((await fetch(`${d.url}/images/p?token=bad`)).status, 401);
    assert.equal((await fetch(`${d.url}/index?token=s3cret`)).status, 401, 'the API takes the header only');
    // The page's static files are public (they hold no data; the page asks for the token on a 401).
    const page = await fetch(`${d.url}/`);
    assert.ok(page.status === 200 || page.status === 404, String(page.status));
    assert.notEqual(page.status, 401);
  } finally {
    await d.close();
  }
});

test('CORS is off by default and allows only the --cors origin when on', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const plain = await fetch(`${c.url}/healthz`, { headers: { origin: 'http://evil.example' } });
  assert.equal(plain.headers.get('access-control-allow-origin'), null);
  const d = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-cors'), cors: 'http://localhost:5173', token: 't' });
  try {
    const pre = await fetch(`${d.url}/search`, { method: 'OPTIONS', headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:5173');
    assert.match(pre.headers.get('access-control-allow-headers')!, /authorization/);
  } finally {
    await d.close();
  }
});

test('listening beyond loopback without a token is refused with InsecureServeError', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  await assert.rejects(createServer({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-open'), host: '0.0.0.0' }), (e: unknown) => e instanceof InsecureServeError && /0\.0\.0\.0/.test(e.message));
  await assert.rejects(createServer({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-open'), host: '192.168.1.5' }), InsecureServeError);
});
