// The one place clipfit reads data over the network: the bytes behind an http(s) URL, for
// Documents' uris (loadUriToBlob) and images by URL (image_source.ts: training, evaluation,
// inference and the server). Node's fetch with a timeout and a size cap; redirects are followed.
// Every failure is a UriError naming the URL (kind 'http' with the status for a non-2xx answer,
// 'timeout', 'too-large'). Checks on where a URL may point belong here, in RemoteFetchOptions, so
// that every caller gets them.

import { UriError } from '../errors.js';
import { RemoteFetchError, safeFetch } from './safe_fetch.js';

export interface RemoteFetchOptions {
  /** Give up after this long (default 30 000 ms). */
  timeoutMs?: number;
  /** Refuse anything larger (default 64 MiB). */
  maxBytes?: number;
  signal?: AbortSignal;
  /**
   * Fetch only from public addresses (safe_fetch.ts: checked after DNS resolution, every redirect
   * too), for URLs a server's clients name. Every failure is then one UriError whose detail says
   * nothing of what the fetch met. `allowAddresses` lets named addresses through (tests).
   */
  publicOnly?: { allowAddresses?: readonly string[] };
}

export const DEFAULT_URI_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_URI_BYTES = 64 * 1024 * 1024;

/** The body of an http(s) GET of `url`, at most `maxBytes` long. */
export async function fetchRemote(url: string, opts: RemoteFetchOptions = {}): Promise<Uint8Array> {
  const max = opts.maxBytes ?? DEFAULT_MAX_URI_BYTES;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_URI_TIMEOUT_MS;
  if (opts.publicOnly) {
    try {
      return await safeFetch(url, { maxBytes: max, timeoutMs, ...(opts.publicOnly.allowAddresses ? { allowAddresses: opts.publicOnly.allowAddresses } : {}) });
    } catch (err) {
      if (err instanceof RemoteFetchError) throw new UriError(url, 'refused', err.message, { cause: err });
      throw err;
    }
  }
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const fail = (err: unknown): never => {
    if (err instanceof UriError) throw err;
    if (timeout.aborted) throw new UriError(url, 'timeout', `no complete answer within ${timeoutMs} ms`, { cause: err });
    throw new UriError(url, 'http', (err as Error).message + causeText(err), { cause: err });
  };
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (err) {
    return fail(err);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new UriError(url, 'http', `HTTP ${res.status} ${res.statusText}`, { status: res.status });
  }
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new UriError(url, 'too-large', `Content-Length ${declared} bytes, the limit is ${max}`);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        total += chunk.length;
        // Throwing ends the for-await, whose return() cancels the stream.
        if (total > max) throw new UriError(url, 'too-large', `more than ${max} bytes`);
        parts.push(chunk);
      }
    }
  } catch (err) {
    return fail(err);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const causeText = (err: unknown): string => {
  const c = (err as { cause?: unknown }).cause;
  return c instanceof Error ? ` (${c.message})` : '';
};
