import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { UriError } from '../src/errors.js';
import type { UriErrorKind } from '../src/errors.js';
import { Document, loadUriToBlob, uriKind } from '../src/data/index.js';
import { png, tempDir, writeFiles } from './data_helpers.js';

const fails = (kind: UriErrorKind, uriPart: string, re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UriError, String(e));
  assert.equal(e.kind, kind);
  assert.ok(e.message.includes(uriPart), e.message);
  assert.match(e.message, re);
  return true;
};

test('uriKind', () => {
  assert.equal(uriKind('a/b.png'), 'path');
  assert.equal(uriKind('/abs/b.png'), 'path');
  assert.equal(uriKind('C:\\x\\y.png'), 'path');
  assert.equal(uriKind('HTTPS://h/x'), 'http');
  assert.equal(uriKind('data:,x'), 'data');
  assert.equal(uriKind('file:///x'), 'file-url');
  assert.equal(uriKind('s3://bucket/x'), 'unsupported');
});

test('local paths (relative to baseDir), file:// URLs, data: URIs; doc.blob is set', async (t) => {
  const dir = tempDir(t);
  const bytes = await png(255, 0, 0);
  writeFiles(dir, { 'sub/red.png': bytes });
  assert.deepEqual(Buffer.from(await loadUriToBlob('sub/red.png', { baseDir: dir })), bytes);
  assert.deepEqual(Buffer.from(await loadUriToBlob(path.join(dir, 'sub/red.png'))), bytes);
  assert.deepEqual(Buffer.from(await loadUriToBlob(pathToFileURL(path.join(dir, 'sub/red.png')).href)), bytes);
  const doc = new Document({ uri: `data:image/png;base64,${bytes.toString('base64')}` });
  const got = await loadUriToBlob(doc);
  assert.deepEqual(Buffer.from(got), bytes);
  assert.equal(doc.blob, got);
  assert.equal(doc.mimeType, 'image/png');
  // Percent-encoded (not base64) data: %FF is one byte.
  assert.deepEqual(Array.from(await loadUriToBlob('data:application/octet-stream,A%FFb')), [0x41, 0xff, 0x62]);
  // A document with only a blob returns it.
  const b = new Uint8Array([9]);
  assert.equal(await loadUriToBlob(new Document({ blob: b })), b);
});

test('local and data: failures are UriErrors naming the URI', async (t) => {
  const dir = tempDir(t);
  writeFiles(dir, { 'big.bin': Buffer.alloc(100) });
  await assert.rejects(loadUriToBlob('nope.png', { baseDir: dir }), fails('missing', 'nope.png', /no such file/));
  await assert.rejects(loadUriToBlob(dir), fails('unreadable', dir, /not a regular file/));
  await assert.rejects(loadUriToBlob('big.bin', { baseDir: dir, maxBytes: 50 }), fails('too-large', 'big.bin', /100 bytes, the limit is 50/));
  await assert.rejects(loadUriToBlob('s3://bucket/key.png'), fails('unsupported', 's3://bucket/key.png', /only local paths/));
  await assert.rejects(loadUriToBlob('data:image/png;base64'), fails('bad-data-uri', 'data:image/png;base64', /no ','/));
  await assert.rejects(loadUriToBlob('data:image/png;base64,@@@'), fails('bad-data-uri', 'data:image/png', /not base64/));
  await assert.rejects(loadUriToBlob(new Document({ text: 'no uri' })), fails('missing', '', /has no uri/));
});

test('http(s): bytes from a 127.0.0.1 server; 404, timeout and size limits are UriErrors naming the URL', async (t) => {
  const body = await png(0, 0, 255);
  const server = http.createServer((req, res) => {
    if (req.url === '/img.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.length });
      res.end(body);
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/img.png' });
      res.end();
    } else if (req.url === '/slow') {
      setTimeout(() => res.end('late'), 2000).unref();
    } else if (req.url === '/big') {
      res.writeHead(200, { 'content-length': 5000 });
      res.end(Buffer.alloc(5000));
    } else if (req.url === '/chunked') {
      res.writeHead(200); // no content-length: counted while streaming
      for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1000));
      res.end();
    } else {
      res.writeHead(404);
      res.end('not here');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const doc = new Document({ uri: `${base}/img.png` });
  assert.deepEqual(Buffer.from(await loadUriToBlob(doc)), body);
  assert.deepEqual(Buffer.from(doc.blob!), body);
  assert.deepEqual(Buffer.from(await loadUriToBlob(`${base}/redirect`)), body);
  await assert.rejects(loadUriToBlob(`${base}/missing.png`), fails('http', `${base}/missing.png`, /HTTP 404/));
  await assert.rejects(loadUriToBlob(`${base}/slow`, { timeoutMs: 100 }), fails('timeout', `${base}/slow`, /within 100 ms/));
  await assert.rejects(loadUriToBlob(`${base}/big`, { maxBytes: 1000 }), fails('too-large', `${base}/big`, /Content-Length 5000/));
  await assert.rejects(loadUriToBlob(`${base}/chunked`, { maxBytes: 4000 }), fails('too-large', `${base}/chunked`, /more than 4000 bytes/));
  assert.equal((await loadUriToBlob(`${base}/chunked`)).length, 10000);
  // Nothing listens on port 1: a connection error, still naming the URL.
  await assert.rejects(loadUriToBlob('http://127.0.0.1:1/x.png', { timeoutMs: 2000 }), fails('http', 'http://127.0.0.1:1/x.png', /fetch failed/));
});
