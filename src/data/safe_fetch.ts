// Fetching an image URL that a request names, without becoming a proxy into the server's network
// (server-side request forgery). http(s) only, no credentials in the URL; the host is resolved
// first and every address it resolves to must be public — not loopback, private (RFC 1918, ULA),
// carrier-grade NAT, link-local (where cloud metadata services live, 169.254.169.254), multicast,
// reserved or documentation ranges, nor an IPv4 address of those inside IPv6 (mapped, NAT64,
// 6to4) — and the connection goes to the very address that was checked (no second lookup for DNS
// rebinding to answer differently). Redirects are followed only to URLs that pass the same checks.
// Size and time are capped. Every failure is one RemoteFetchError whose message says nothing about
// what the fetch met (refused, 404, blocked, not an image): the detail is kept for the server's log.

import dns from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { LookupFunction } from 'node:net';

export class RemoteFetchError extends Error {
  constructor(readonly detail: string) {
    super('the URL could not be fetched as an image');
    this.name = 'RemoteFetchError';
  }
}

export interface SafeFetchOptions {
  maxBytes: number;
  /** For the whole fetch, redirects included (default 10 000 ms). */
  timeoutMs?: number;
  /** Most redirects followed, each checked like the first URL (default 3). */
  maxRedirects?: number;
  /** Addresses allowed although in a refused range (e.g. ['127.0.0.1'] for a test server). */
  allowAddresses?: readonly string[];
  /** Skip the address checks altogether (an operator who means to fetch from a private network). */
  allowPrivate?: boolean;
}

const BLOCKED_V4: [string, number][] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
];
const BLOCKED_V6: [string, number][] = [
  ['::', 128], ['::1', 128], ['100::', 64], ['2001::', 32], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
];

const blocked = new net.BlockList();
for (const [a, p] of BLOCKED_V4) blocked.addSubnet(a, p, 'ipv4');
for (const [a, p] of BLOCKED_V6) blocked.addSubnet(a, p, 'ipv6');

/** The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16), if any. */
function embeddedV4(v6: string): string | null {
  const words = expandV6(v6);
  if (!words) return null;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (words.slice(0, 5).every((w) => w === 0) && (words[5] === 0xffff || words[5] === 0)) return v4(words[6]!, words[7]!);
  if (words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0)) return v4(words[6]!, words[7]!);
  if (words[0] === 0x2002) return v4(words[1]!, words[2]!);
  return null;
}

/** Eight 16-bit words of an IPv6 address (with a dotted IPv4 tail allowed), or null. */
function expandV6(a: string): number[] | null {
  let s = a.toLowerCase().split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const p = dotted[1]!.split('.').map(Number);
    s = s.slice(0, -dotted[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = s.includes('::') ? 8 - h.length - t.length : 0;
  const all = [...h, ...Array(fill).fill('0'), ...t];
  if (all.length !== 8) return null;
  return all.map((w) => parseInt(w || '0', 16));
}

/** Is `address` in a range a request may not make the server fetch from? */
export function isRefusedAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedV4(address);
    if (v4 !== null && blocked.check(v4, 'ipv4')) return true;
    return blocked.check(address, 'ipv6');
  }
  return true;
}

interface Target {
  url: URL;
  address: string;
  family: 4 | 6;
}

async function checkTarget(raw: string | URL, opts: SafeFetchOptions): Promise<Target> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RemoteFetchError(`not a URL: ${String(raw).slice(0, 100)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RemoteFetchError(`scheme ${url.protocol} refused`);
  if (url.username || url.password) throw new RemoteFetchError('credentials in the URL refused');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: { address: string; family: number }[];
  if (net.isIP(host)) addresses = [{ address: host, family: net.isIP(host) }];
  else {
    try {
      addresses = await dns.lookup(host, { all: true, verbatim: true });
    } catch (err) {
      throw new RemoteFetchError(`${host} does not resolve (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  if (!addresses.length) throw new RemoteFetchError(`${host} resolves to nothing`);
  const allowed = new Set(opts.allowAddresses ?? []);
  // Every address must pass: a name that resolves to one public and one private address is refused.
  for (const a of addresses)
    if (!opts.allowPrivate && !allowed.has(a.address) && isRefusedAddress(a.address)) throw new RemoteFetchError(`${host} resolves to ${a.address}, a refused range`);
  const first = addresses[0]!;
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}

/** The bytes behind `raw` under the rules above; a RemoteFetchError otherwise. */
export async function safeFetch(raw: string, opts: SafeFetchOptions): Promise<Uint8Array> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = AbortSignal.timeout(timeoutMs);
  let current: string | URL = raw;
  for (let hop = 0; ; hop++) {
    const target = await checkTarget(current, opts);
    const res = await request(target, opts.maxBytes, deadline);
    if (res.kind === 'redirect') {
      if (hop >= (opts.maxRedirects ?? 3)) throw new RemoteFetchError('too many redirects');
      current = new URL(res.location, target.url);
      continue;
    }
    return res.bytes;
  }
}

type Answer = { kind: 'redirect'; location: string } | { kind: 'body'; bytes: Uint8Array };

function request(t: Target, maxBytes: number, signal: AbortSignal): Promise<Answer> {
  // The socket goes to the checked address, whatever the name would resolve to now.
  const lookup: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: t.address, family: t.family }]);
    else cb(null, t.address, t.family);
  };
  const lib = t.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new RemoteFetchError('timed out'));
    const req = lib.request(t.url, { method: 'GET', lookup, signal, headers: { accept: 'image/*', 'user-agent': 'clipfit-serve' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        return resolve({ kind: 'redirect', location: res.headers.location });
      }
      if (status !== 200) {
        res.resume();
        return reject(new RemoteFetchError(`HTTP ${status}`));
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.destroy();
        return reject(new RemoteFetchError(`Content-Length ${declared} over ${maxBytes}`));
      }
      const parts: Buffer[] = [];
      let total = 0;
      res.on('data', (d: Buffer) => {
        total += d.length;
        if (total > maxBytes) {
          res.destroy();
          reject(new RemoteFetchError(`more than ${maxBytes} bytes`));
        } else parts.push(d);
      });
      res.on('end', () => resolve({ kind: 'body', bytes: new Uint8Array(Buffer.concat(parts)) }));
      res.on('error', (e) => reject(new RemoteFetchError(e.message)));
    });
    req.on('error', (e) => reject(new RemoteFetchError(signal.aborted ? 'timed out' : e.message)));
    req.end();
  });
}
