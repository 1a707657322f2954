// The search API: /encode, /rank, /index (add, delete, status), /images/:id and /search.

import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { Metadata } from '../search/index_types.js';
import { metadataProblem } from '../search/prepare.js';
import type { Catalog, NewItem, Role } from './catalog.js';
import { badRequest, notFound } from './http_errors.js';
import { checkId, CONTENT_TYPES, isSafeId, newId } from './images.js';
import type { ImageType, UriPolicy } from './images.js';
import type { Encoder } from './models.js';
import { jsonBodies } from './openapi.js';
import type { ApiLimits } from './openapi.js';
import { checkImageBudget, jsonField, readBody, readUris } from './request_body.js';

export interface ApiContext {
  catalog: Catalog;
  encoders: { primary: Encoder; compare?: Encoder };
  limits: ApiLimits;
  uriPolicy: UriPolicy;
}

const jsonSchema = (schema: Record<string, unknown>) => ({ body: { content: { 'application/json': { schema } } } });
const toArray = (v: Float32Array): number[] => Array.from(v);
const dot = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** softmax(100·cos) over the candidates, computed stably: exp(x − max) / Σ exp(x − max). */
export function rankScores(cosines: readonly number[], scale = 100): number[] {
  const logits = cosines.map((c) => scale * c);
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** A search vector: `dim` finite numbers, not all zero (the index normalises it), as a Float32Array. */
export function checkVector(v: readonly unknown[], dim: number, role: Role): Float32Array {
  if (v.length !== dim) throw badRequest(`vector: ${v.length} numbers, but the ${role} index holds ${dim}-dimensional vectors`);
  const out = new Float32Array(dim);
  let nonzero = false;
  for (let i = 0; i < dim; i++) {
    const x = v[i];
    // JSON has no NaN or Infinity, but 1e999 parses to Infinity, and float32 overflows past ~3.4e38.
    if (typeof x !== 'number' || !Number.isFinite(x) || !Number.isFinite(Math.fround(x))) throw badRequest(`vector[${i}]: must be a finite number, got ${JSON.stringify(x) ?? String(x)}`);
    out[i] = x;
    nonzero ||= x !== 0;
  }
  if (!nonzero) throw badRequest('vector: all zeros has no direction to search in');
  return out;
}

/** 400 when metadata is too deep, too large or no object. */
export function checkMetadata(m: unknown, field: string): void {
  const bad = m === undefined ? null : metadataProblem(m);
  if (bad) throw badRequest(`${field}: ${bad}`);
}

export function registerApiRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const bodies = jsonBodies(ctx.limits);
  const encoder = (role: Role | undefined): Encoder => {
    const e = ctx.encoders[role ?? 'primary'];
    if (!e) throw badRequest('model: no compare model on this server (start it with --compare MODEL)');
    return e;
  };
  const tooMany = (n: number, what: string) => {
    if (n > ctx.limits.maxItems) throw badRequest(`${what}: ${n} images, at most ${ctx.limits.maxItems} per request`);
  };

  app.post('/encode', { schema: jsonSchema(bodies.encode) }, async (req) => {
    const body = await readBody<{ texts?: string[]; images?: string[]; model?: Role }>(req, 'POST /encode', true, ctx.limits.maxRequestBytes);
    let texts: string[];
    let images: { bytes: Uint8Array; type: ImageType }[];
    let role: Role | undefined;
    if (body.kind === 'json') {
      texts = body.json.texts ?? [];
      tooMany((body.json.images ?? []).length, 'images');
      images = await readUris(body.json.images ?? [], 'images', ctx.uriPolicy, ctx.limits.maxRequestBytes);
      role = body.json.model;
    } else {
      const t = jsonField(body.form, 'texts') ?? [];
      if (!Array.isArray(t) || t.some((x) => typeof x !== 'string')) throw badRequest('field texts: must be a JSON array of strings');
      if (t.length > ctx.limits.maxTexts) throw badRequest(`field texts: ${t.length} texts, at most ${ctx.limits.maxTexts}`);
      if (t.some((x: string) => x.length > ctx.limits.maxQueryChars)) throw badRequest(`field texts: a text is longer than ${ctx.limits.maxQueryChars} characters`);
      texts = t as string[];
      images = body.form.files;
      const m = body.form.fields['model'];
      if (m !== undefined && m !== 'primary' && m !== 'compare') throw badRequest(`field model: 'primary' or 'compare', got ${JSON.stringify(m)}`);
      role = m as Role | undefined;
    }
    if (texts.length + images.length === 0) throw badRequest('nothing to encode: give texts and/or images');
    tooMany(images.length, 'images');
    checkImageBudget(images, 'images', ctx.limits);
    const enc = encoder(role);
    const [te, ie] = await Promise.all([enc.texts(texts), enc.images(images.map((i) => i.bytes))]);
    return { embeddings: [...te, ...ie].map(toArray), dim: enc.dim, model: enc.id, counts: { texts: texts.length, images: images.length } };
  });

  app.post('/rank', { schema: jsonSchema(bodies.rank) }, async (req) => {
    const body = await readBody<{ text: string; images: string[]; model?: Role }>(req, 'POST /rank', true, ctx.limits.maxRequestBytes);
    let text: string;
    let cands: { bytes: Uint8Array; type: ImageType; label: { uri: string } | { filename: string } }[];
    let role: Role | undefined;
    if (body.kind === 'json') {
      text = body.json.text;
      tooMany(body.json.images.length, 'images');
      const read = await readUris(body.json.images, 'images', ctx.uriPolicy, ctx.limits.maxRequestBytes);
      cands = read.map((r, i) => ({ bytes: r.bytes, type: r.type, label: { uri: body.json.images[i]! } }));
      role = body.json.model;
    } else {
      const t = body.form.fields['text'];
      if (!t) throw badRequest('field text: required (the caption to rank the uploaded images for)');
      if (t.length > ctx.limits.maxQueryChars) throw badRequest(`field text: longer than ${ctx.limits.maxQueryChars} characters`);
      text = t;
      if (body.form.files.length === 0) throw badRequest('no images: upload one or more image files to rank');
      cands = body.form.files.map((f) => ({ bytes: f.bytes, type: f.type, label: { filename: f.filename } }));
      const m = body.form.fields['model'];
      if (m !== undefined && m !== 'primary' && m !== 'compare') throw badRequest(`field model: 'primary' or 'compare', got ${JSON.stringify(m)}`);
      role = m as Role | undefined;
    }
    tooMany(cands.length, 'images');
    checkImageBudget(cands, 'images', ctx.limits);
    const enc = encoder(role);
    const [[q], ims] = await Promise.all([enc.texts([text]), enc.images(cands.map((c) => c.bytes))]);
    const cos = ims.map((v) => dot(q!, v));
    const scores = rankScores(cos);
    const results = cands.map((c, i) => ({ index: i, ...c.label, score: scores[i]!, cosine: cos[i]! })).sort((a, b) => b.score - a.score || a.index - b.index);
    return { text, model: enc.id, results };
  });

  const indexStatus = () => ({
    ...ctx.catalog.status('primary'),
    compare: ctx.catalog.has('compare') ? ctx.catalog.status('compare') : null,
  });

  app.get('/index', async () => {
    // Other replicas may have written since: count again.
    await ctx.catalog.refreshSizes();
    return indexStatus();
  });

  app.post('/index', { schema: jsonSchema(bodies.index) }, async (req, reply) => {
    const body = await readBody<{ items: { uri: string; id?: string; metadata?: Metadata }[] }>(req, 'POST /index', true, ctx.limits.maxRequestBytes);
    let items: NewItem[];
    if (body.kind === 'json') {
      // Everything about the items is checked before a URI is fetched or a byte is written.
      body.json.items.forEach((it, i) => {
        if (it.id !== undefined) checkId(it.id, `items[${i}].id`);
        checkMetadata(it.metadata, `items[${i}].metadata`);
      });
      tooMany(body.json.items.length, 'items');
      const read = await readUris(
        body.json.items.map((i) => i.uri),
        'items',
        ctx.uriPolicy,
        ctx.limits.maxRequestBytes,
      );
      items = body.json.items.map((it, i) => ({
        id: it.id !== undefined ? checkId(it.id, `items[${i}].id`) : newId(),
        bytes: read[i]!.bytes,
        type: read[i]!.type as ImageType,
        ...(it.metadata ? { metadata: it.metadata } : {}),
      }));
    } else {
      const { files } = body.form;
      if (files.length === 0) throw badRequest('no images: upload one or more image files (multipart file parts)');
      tooMany(files.length, 'uploads');
      const meta = jsonField(body.form, 'metadata');
      const ids = jsonField(body.form, 'ids');
      const isObj = (m: unknown): m is Metadata => m !== null && typeof m === 'object' && !Array.isArray(m);
      if (meta !== undefined && !isObj(meta) && !(Array.isArray(meta) && meta.length === files.length && meta.every((m) => m === null || isObj(m))))
        throw badRequest(`field metadata: a JSON object (for every file) or an array of ${files.length} objects (one per file, in order)`);
      if (ids !== undefined && !(Array.isArray(ids) && ids.length === files.length)) throw badRequest(`field ids: a JSON array of ${files.length} ids (one per file, in order)`);
      (Array.isArray(meta) ? meta : [meta]).forEach((m, i) => checkMetadata(m ?? undefined, Array.isArray(meta) ? `field metadata[${i}]` : 'field metadata'));
      items = files.map((f, i) => {
        const m = Array.isArray(meta) ? meta[i] : meta;
        return {
          id: ids ? checkId((ids as unknown[])[i], `ids[${i}]`) : newId(),
          bytes: f.bytes,
          type: f.type,
          metadata: { ...(f.filename ? { filename: f.filename } : {}), ...(isObj(m) ? m : {}) },
        };
      });
    }
    checkImageBudget(items, 'items', ctx.limits);
    const seen = new Set<string>();
    for (const it of items) {
      if (seen.has(it.id)) throw badRequest(`id ${JSON.stringify(it.id)} appears twice in one request`);
      seen.add(it.id);
    }
    const size = await ctx.catalog.add(items);
    return reply.code(201).send({ ids: items.map((i) => i.id), size });
  });

  app.delete<{ Params: { id: string } }>('/index/:id', async (req) => {
    const id = checkId(req.params.id, 'id');
    const size = await ctx.catalog.remove(id);
    return { deleted: id, size };
  });

  app.get<{ Params: { id: string } }>('/images/:id', async (req, reply) => {
    const { id } = req.params;
    const found = isSafeId(id) ? await ctx.catalog.images.open(id) : null;
    if (!found) throw notFound(`no image with id ${JSON.stringify(id)}`);
    return reply.type(CONTENT_TYPES[found.type]).header('cache-control', 'private, max-age=60').send(found.body);
  });

  // A text query (encoded by the model) or a vector (searched as it is: the index alone).
  app.post('/search', { schema: jsonSchema(bodies.search) }, async (req) => {
    const t0 = performance.now();
    const body = await readBody<{ query?: string; vector?: number[]; k?: number; model?: Role }>(req, 'POST /search', false);
    if (body.kind !== 'json') throw badRequest('POST /search takes application/json');
    const { query, vector, k = 10, model = 'primary' } = body.json;
    if ((query === undefined) === (vector === undefined)) throw badRequest('give either query (a text) or vector (an embedding), not both');
    if (query !== undefined && !query.trim()) throw badRequest('query: empty (give some words to search for)');
    if (!ctx.catalog.has(model)) throw badRequest('model: no compare model on this server (start it with --compare MODEL)');
    const r = await ctx.catalog.search(model, query ?? checkVector(vector!, ctx.catalog.dim(model), model), k);
    const ms = (x: number) => Math.round(x * 1000) / 1000;
    return {
      model,
      modelId: ctx.encoders[model]!.id,
      results: r.hits.map((h) => ({ id: h.id, score: h.score, metadata: h.metadata ?? null, imageUrl: `/images/${encodeURIComponent(h.id)}` })),
      tookMs: ms(performance.now() - t0),
      indexMs: ms(r.indexMs),
    };
  });
}
