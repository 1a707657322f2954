// clipfit serve probed the way an attacker or an unlucky operator would, on loopback only: deeply
// nested metadata, cross-site writes and DNS rebinding, decompression bombs, server-side request
// forgery, and the smaller leaks (run names, home paths).

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { openFolderIndex } from '../src/search/folder_index.js';
import { ConfigError } from '../src/errors.js';
import { isRefusedAddress } from '../src/data/safe_fetch.js';
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

/** A raw HTTP request with headers fetch will not set (Host). */
function rawRequest(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; body: any }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('without a token: cross-site writes and foreign Host headers (DNS rebinding) are 403; the page, curl and --allowed-host work', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const form = () => imageForm([fx!.images[2]!], { ids: JSON.stringify(['x1']) });
  const evil = await c.form('/index', form(), { origin: 'http://evil.example' });
  assert.equal(evil.status, 403, JSON.stringify(evil.body));
  assert.equal(evil.body.error.code, 'forbidden');
  assert.equal((await c.form('/index', form(), { 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await c.form('/index', form(), { origin: 'null' })).status, 403);
  assert.equal((await c.json('DELETE', '/index/x1', undefined, { origin: 'http://evil.example' })).status, 403);
  assert.deepEqual(storedImages().filter((f) => f.startsWith('x1')), [], 'nothing was written');
  // Same origin (the page) and no Origin at all (curl) write.
  const port = new URL(c.url).port;
  assert.equal((await c.form('/index', form(), { origin: c.url, 'sec-fetch-site': 'same-origin' })).status, 201);
  assert.equal((await c.json('DELETE', '/index/x1')).status, 200);
  // DNS rebinding: the browser sends the attacker's name as Host, for reads as well.
  for (const host of [`attacker.example:${port}`, 'attacker.example', `127.0.0.1.attacker.example:${port}`]) {
    const r = await rawRequest(`${c.url}/index`, 'GET', { host });
    assert.equal(r.status, 403, host);
    assert.match(r.body.error.message, /--allowed-host/);
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) assert.equal((await rawRequest(`${c.url}/index`, 'GET', { host })).status, 200, host);
  const named = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-named'), allowedHosts: ['search.internal'] });
  try {
    const p2 = new URL(named.url).port;
    assert.equal((await rawRequest(`${named.url}/index`, 'GET', { host: `search.internal:${p2}` })).status, 200);
    assert.equal((await rawRequest(`${named.url}/index`, 'GET', { host: `other.internal:${p2}` })).status, 403);
  } finally {
    await named.close();
  }
  // With a token the token is the protection: no Host or Origin rules.
  const tok = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-tok'), token: 'secret' });
  try {
    assert.equal((await rawRequest(`${tok.url}/index`, 'GET', { host: 'search.example.com', authorization: 'Bearer secret' })).status, 200);
  } finally {
    await tok.close();
  }
});

/** A GIF of a few dozen bytes whose logical screen is w × h, with one 1×1 frame. */
function gifDeclaring(w: number, h: number): Buffer {
  const head = Buffer.from('GIF89a');
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(w, 0);
  screen.writeUInt16LE(h, 2);
  const desc = Buffer.from([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0x80]); // 1×1 at 0,0 with a 2-colour local table
  const table = Buffer.from([0, 0, 0, 255, 255, 255]);
  const lzw = Buffer.from([0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([head, screen, desc, table, lzw, Buffer.from([0x3b])]);
}

const blobForm = (bufs: Buffer[], type: string, fields: Record<string, string> = {}) => {
  const f = new FormData();
  bufs.forEach((b, i) => f.append('file', new Blob([b], { type }), `f${i}`));
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
};

test('decompression bombs are refused from their headers; images decode in worker threads; a request has a byte and pixel budget', { timeout: 120_000 }, async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const decodedBefore = c.server.decodePool.decoded;
  const bomb = gifDeclaring(7000, 7000);
  assert.ok(bomb.length < 100);
  const r = await c.form('/index', blobForm([bomb], 'image/gif', { ids: '["bomb"]' }));
  assert.equal(r.status, 413, JSON.stringify(r.body));
  assert.match(r.body.error.message, /7000×7000 px is more than 16777216 pixels per image/);
  const enc = await c.json('POST', '/encode', { images: [`data:image/gif;base64,${bomb.toString('base64')}`] });
  assert.equal(enc.status, 413);
  assert.equal(c.server.decodePool.decoded, decodedBefore, 'nothing was decoded');
  assert.deepEqual(storedImages().filter((f) => f.startsWith('bomb')), []);

  // Under the per-image limit but over the request's: five 4000×4000 images.
  const big = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#c33' } }).png({ compressionLevel: 9 }).toBuffer();
  const many = await c.form('/index', blobForm([big, big, big, big, big], 'image/png'));
  assert.equal(many.status, 413);
  assert.match(many.body.error.message, /80000000 pixels in one request, the limit is 67108864/);

  // A large GIF is decoded by a worker: /healthz answers while it is being decoded.
  const gif = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#3a6' } }).gif().toBuffer();
  const adding = c.form('/index', blobForm([gif], 'image/gif', { ids: '["biggif"]' }));
  while (c.server.decodePool.active === 0) await new Promise((r) => setTimeout(r, 1));
  assert.equal((await fetch(`${c.url}/healthz`)).status, 200);
  assert.equal(c.server.decodePool.active, 1, '/healthz was answered while the GIF was still decoding');
  assert.equal((await adding).status, 201);
  assert.equal(c.server.decodePool.decoded, decodedBefore + 1);

  // All uploads of one request together are capped (not only each file).
  const noise = await sharp(Buffer.from(Array.from({ length: 256 * 256 * 3 }, (_, i) => (i * 7919) % 251)), { raw: { width: 256, height: 256, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
  const small = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-budget'), limits: { maxUploadBytes: noise.length + 10, maxRequestBytes: Math.floor(noise.length * 1.5) } });
  try {
    assert.equal((await small.form('/index', blobForm([noise], 'image/png'))).status, 201);
    const two = await small.form('/index', blobForm([noise, noise], 'image/png'));
    assert.equal(two.status, 413);
    assert.match(two.body.error.message, /bytes of images in one request/);
  } finally {
    await small.close();
  }
});

/** An HTTP server on `host` that counts requests and answers each with `answer`. */
async function httpOn(host: string, answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const s = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    answer(req, res);
  });
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as { port: number }).port;
  return { url: `http://${host}:${port}`, hits, close: () => new Promise((r) => s.close(() => r())) };
}

test('remote image URIs: off by default; when on, loopback, private and metadata addresses and redirects to them are refused with one message', { timeout: 60_000 }, async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const png = readFileSync(fx.images[0]!);
  const b = await httpOn('127.0.0.2', (_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png));
  const a = await httpOn('127.0.0.1', (req, res) => {
    if (req.url === '/img.png') res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    else if (req.url === '/text') res.writeHead(200).end('not an image');
    else if (req.url === '/to-b') res.writeHead(302, { location: `${b.url}/img.png` }).end();
    else if (req.url === '/to-metadata') res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    else if (req.url === '/to-self') res.writeHead(302, { location: '/img.png' }).end();
    else res.writeHead(404).end('no');
  });
  const closed = await httpOn('127.0.0.1', () => {});
  await closed.close();
  const remote = await start({ model: fx.onnxModel, index: path.join(fx.tmp, 'idx-remote'), allowRemoteUris: true, remoteAllowAddresses: ['127.0.0.1'] });
  try {
    // Off by default.
    const off = await c.json('POST', '/encode', { images: [`${a.url}/img.png`] });
    assert.equal(off.status, 400);
    assert.match(off.body.error.message, /--allow-remote-uris/);
    assert.deepEqual(a.hits, []);
    // On, through an address the test allows: fetched, and a redirect within it is followed.
    assert.equal((await remote.json('POST', '/index', { items: [{ uri: `${a.url}/img.png`, id: 'fetched' }] })).status, 201);
    assert.equal((await remote.json('POST', '/encode', { images: [`${a.url}/to-self`] })).status, 200);
    // Refused: loopback not on the list (directly and as a redirect target), metadata, other schemes;
    // and a refused port, a 404 and a non-image all answer the very same words.
    const messages = new Set<string>();
    for (const uri of [`${b.url}/img.png`, `${a.url}/to-b`, `${a.url}/to-metadata`, 'http://169.254.169.254/latest/meta-data/', 'http://[::1]:9/x', `${closed.url}/img.png`, `${a.url}/missing`, `${a.url}/text`, 'http://localhost:9/x']) {
      const r = await remote.json('POST', '/encode', { images: [uri] });
      assert.equal(r.status, 422, `${uri}: ${JSON.stringify(r.body)}`);
      messages.add(r.body.error.message);
    }
    assert.deepEqual([...messages], ['images[0]: the URL could not be fetched as an image']);
    assert.deepEqual(b.hits, [], 'nothing reached the loopback server that was not allowed');
    const ftp = await remote.json('POST', '/encode', { images: ['ftp://example.com/x.png'] });
    assert.equal(ftp.status, 400);
  } finally {
    await remote.close();
    await a.close();
    await b.close();
  }
});

test('refused address ranges, IPv4 inside IPv6 included', () => {
  for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::a9fe:a9fe', '2002:c0a8:0101::1', 'fd00:ec2::254', 'fe80::1', 'ff02::1'])
    assert.equal(isRefusedAddress(a), true, a);
  for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(isRefusedAddress(a), false, a);
});

test('/api/runs: an invalid run name is a 400, an unknown one a 404 that does not show the server\'s paths', async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  for (const name of ['bad%20name!', '..%2F..%2Fetc', '.hidden', '-lead']) {
    const r = await c.json('GET', `/api/runs/${name}/metrics`);
    assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'bad_request');
  }
  const r = await c.json('GET', '/api/runs/nope/metrics');
  assert.equal(r.status, 404);
  assert.equal(r.body.error.message, 'no run named "nope"');
});
