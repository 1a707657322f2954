// Everything around the search API: /healthz, /api/info, /metrics, /openapi.json, the run store
// for the web page's run view (/api/runs, /api/runs/:name/metrics) and the static web page.

import { createReadStream } from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { RunStore } from '../runs/store.js';
import type { RunRecord } from '../runs/store.js';
import { NAME_RE } from '../runs/names.js';
import { badRequest, notFound } from './http_errors.js';
import type { SearchSettings } from '../search/index_types.js';
import type { ServerMetrics } from './metrics.js';
import type { Encoder } from './models.js';
import { openApiDocument } from './openapi.js';
import type { ApiLimits } from './openapi.js';
import { resolveStatic } from './static.js';

export interface MiscContext {
  encoders: { primary: Encoder; compare?: Encoder };
  limits: ApiLimits;
  metrics: ServerMetrics;
  auth: boolean;
  /** Run store home ($CLIPFIT_HOME). */
  home?: string;
  webRoot: string;
  version: string;
  /** How each index answers searches (backend, approximate, ef, graph parameters). */
  search?: () => { primary: SearchSettings | null; compare: SearchSettings | null };
}

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

function runSummary(r: RunRecord) {
  return {
    name: r.name,
    experiment: r.experiment,
    status: r.status,
    createdAt: r.createdAt,
    startedAt: r.startedAt ?? null,
    finishedAt: r.finishedAt ?? null,
    reason: r.reason ?? null,
    artifactDir: r.artifactDir ?? null,
    progress: r.progress ?? null,
  };
}

export function registerMiscRoutes(app: FastifyInstance, ctx: MiscContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  const describe = (e: Encoder) => ({ id: e.id, source: e.model.source, dim: e.dim, onnx: e.model.isOnnx });
  app.get('/api/info', async () => ({
    model: describe(ctx.encoders.primary),
    compare: ctx.encoders.compare ? describe(ctx.encoders.compare) : null,
    auth: ctx.auth,
    limits: { maxQueryChars: ctx.limits.maxQueryChars, maxK: ctx.limits.maxK, maxUploadBytes: ctx.limits.maxUploadBytes, maxItems: ctx.limits.maxItems },
    search: ctx.search?.() ?? null,
    version: ctx.version,
  }));

  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.render()));

  const doc = openApiDocument(ctx.limits, ctx.version);
  app.get('/openapi.json', async () => doc);

  app.get('/api/runs', async () => ({ runs: RunStore.open(ctx.home).list().map(runSummary) }));

  app.get<{ Params: { name: string } }>('/api/runs/:name/metrics', async (req) => {
    if (!NAME_RE.test(req.params.name)) throw badRequest(`name: run names are 1–100 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, got ${JSON.stringify(req.params.name.slice(0, 120))}`);
    const store = RunStore.open(ctx.home);
    const rec = store.find(req.params.name);
    // The message names the run only: the server's paths are nobody's business.
    if (!rec) throw notFound(`no run named ${JSON.stringify(req.params.name)}`);
    const epochs = store.metrics(rec.name).map((e) => ({ epoch: e.epoch, values: Object.fromEntries(Object.entries(e.values).map(([k, v]) => [k, finite(v)])) }));
    return { name: rec.name, status: rec.status, epochs };
  });

  // Unknown API-ish paths stay JSON 404s; everything else is looked up in the web folder.
  const sendStatic = async (url: string, reply: FastifyReply) => {
    const f = await resolveStatic(ctx.webRoot, url);
    if (!f) throw notFound(`no such page or file: ${url.split('?')[0]}`);
    return reply.type(f.contentType).header('content-length', f.size).header('cache-control', 'no-cache').send(createReadStream(f.file));
  };
  app.get('/', async (req, reply) => sendStatic('/', reply));
  app.get('/*', async (req, reply) => {
    const url = req.url.split('?')[0]!;
    if (/^\/(api|index|images|search|encode|rank)(\/|$)/.test(url)) throw notFound(`no route GET ${url}`);
    return sendStatic(url, reply);
  });
}
