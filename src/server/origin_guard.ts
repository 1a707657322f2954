// Without a bearer token, the only thing between a local server and the web pages its user opens is
// the browser. Two checks close what the browser leaves open:
//   DNS rebinding: a page on attacker.example whose name is re-pointed at 127.0.0.1 talks to the
//     server as same-origin; its requests carry Host: attacker.example. The Host header must name
//     the listening host, a loopback name, or a host given with --allowed-host.
//   Cross-site writes: a form or fetch from another site may POST (multipart is a "simple"
//     request, sent without a preflight). A request that changes or spends anything (every method
//     but GET/HEAD/OPTIONS) must come from this origin: its Origin, when sent, equals
//     http://<Host>, or the --cors origin; Sec-Fetch-Site, when sent, is same-origin or none.
//     Clients that send neither (curl, scripts) are not browsers and are let through.

import type { FastifyRequest } from 'fastify';
import { HttpError } from './http_errors.js';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** The host name of a Host header value ("h:port", "[v6]:port"), lower case, without the port. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

export interface GuardOptions {
  /** The interface the server listens on. */
  listenHost: string;
  /** More names the server may be reached by (--allowed-host). */
  allowedHosts?: readonly string[];
  /** The --cors origin, allowed to write cross-origin. */
  cors?: string;
}

export function originGuard(o: GuardOptions): (req: FastifyRequest) => void {
  const allowed = new Set([o.listenHost, ...LOOPBACK_NAMES, ...(o.allowedHosts ?? [])].map((h) => hostName(h)));
  const forbidden = (message: string) => new HttpError(403, 'forbidden', message);
  return (req) => {
    const host = req.headers.host;
    if (!host || !allowed.has(hostName(host)))
      throw forbidden(`Host ${JSON.stringify(host ?? '')} is not a name of this server; start it with --allowed-host NAME to be reached by that name`);
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (o.cors && origin === o.cors) return;
      if (origin !== `http://${host.toLowerCase()}`) throw forbidden(`cross-origin ${req.method} from ${origin} refused: this server takes writes from its own page only (or set --token, or --cors ORIGIN)`);
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw forbidden(`${site} ${req.method} refused: this server takes writes from its own page only (or set --token)`);
  };
}
