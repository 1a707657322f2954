// A loopback HTTP server for image-by-URL tests: serves the given bytes by path (image/png, or
// text/plain for the non-image ones), 404 for anything else, and counts the requests per path.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface ImageServer {
  /** http://127.0.0.1:PORT */
  base: string;
  hits: Map<string, number>;
}

export async function serveImages(t: TestContext, files: Record<string, Uint8Array | string>): Promise<ImageServer> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const p = req.url ?? '/';
    hits.set(p, (hits.get(p) ?? 0) + 1);
    const body = files[p];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': typeof body === 'string' ? 'text/plain' : 'image/png' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

/** bytes as a base64 data: URI. */
export const dataUri = (bytes: Uint8Array, type = 'image/png'): string => `data:${type};base64,${Buffer.from(bytes).toString('base64')}`;
