// The one description of the HTTP API: an OpenAPI 3.1 document served at /openapi.json, whose JSON
// request-body schemas are also what fastify validates JSON bodies against (multipart bodies are
// checked by the handlers). Schemas stay within what both JSON Schema 2020-12 (OpenAPI 3.1) and
// fastify's Ajv read the same way.

import { ID_PATTERN } from './images.js';

export interface ApiLimits {
  /** Longest /search query in characters (default 2000); CLIP reads 77 tokens and truncates the rest. */
  maxQueryChars: number;
  /** Largest k for /search (default 100). */
  maxK: number;
  /** Largest JSON body in bytes (default 1 MiB). */
  maxJsonBytes: number;
  /** Largest uploaded file / fetched image in bytes (default 10 MiB). */
  maxUploadBytes: number;
  /** Most files or URIs in one request (default 64). */
  maxItems: number;
  /** Most texts in one /encode request (default 256). */
  maxTexts: number;
  /** All uploaded / fetched image bytes of one request together (default 32 MiB). */
  maxRequestBytes: number;
  /** Largest width × height of one image, read from its header before decoding (default 4096² ≈ 16.8 Mpx). */
  maxImagePixels: number;
  /** Width × height of all images of one request together (default 64 Mpx). */
  maxRequestPixels: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  maxQueryChars: 2000,
  maxK: 100,
  maxJsonBytes: 1024 * 1024,
  maxUploadBytes: 10 * 1024 * 1024,
  maxItems: 64,
  maxTexts: 256,
  maxRequestBytes: 32 * 1024 * 1024,
  maxImagePixels: 4096 * 4096,
  maxRequestPixels: 64 * 1024 * 1024,
};

type Schema = Record<string, unknown>;

const error: Schema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          enum: ['bad_request', 'invalid_json', 'query_too_long', 'unauthorized', 'forbidden', 'not_found', 'needs_reindex', 'payload_too_large', 'unsupported_media_type', 'unprocessable', 'internal', 'unavailable'],
        },
        message: { type: 'string' },
      },
    },
  },
};

const role: Schema = { type: 'string', enum: ['primary', 'compare'], default: 'primary', description: 'Which model: the served one, or the --compare one.' };
const metadata: Schema = { type: 'object', additionalProperties: true };

/** The JSON request-body schemas, by route key. */
export function jsonBodies(l: ApiLimits): Record<'search' | 'encode' | 'rank' | 'index', Schema> {
  const uri: Schema = { type: 'string', minLength: 1, maxLength: l.maxJsonBytes, description: 'data: URI, http(s):// URL, or a path / file:// URL under the server\'s --allow-root' };
  return {
    search: {
      type: 'object',
      description: 'Exactly one of query (a text, encoded by the model) and vector (an embedding, searched as given).',
      additionalProperties: false,
      properties: {
        query: { type: 'string', minLength: 1, maxLength: l.maxQueryChars, description: `Text query; CLIP reads at most 77 tokens (longer queries are truncated), over ${l.maxQueryChars} characters is a 400 query_too_long.` },
        vector: {
          type: 'array',
          minItems: 1,
          maxItems: 4096,
          items: { type: 'number' },
          description: "A query embedding of the index's dimension (GET /index: dim), finite numbers, not all zero; L2-normalised by the server. Searches the index alone, without the text encoder.",
        },
        k: { type: 'integer', minimum: 1, maximum: l.maxK, default: 10 },
        model: role,
      },
    },
    encode: {
      type: 'object',
      additionalProperties: false,
      properties: {
        texts: { type: 'array', maxItems: l.maxTexts, items: { type: 'string', maxLength: l.maxQueryChars } },
        images: { type: 'array', maxItems: l.maxItems, items: uri },
        model: role,
      },
    },
    rank: {
      type: 'object',
      required: ['text', 'images'],
      additionalProperties: false,
      properties: {
        text: { type: 'string', minLength: 1, maxLength: l.maxQueryChars },
        images: { type: 'array', minItems: 1, maxItems: l.maxItems, items: uri },
        model: role,
      },
    },
    index: {
      type: 'object',
      required: ['items'],
      additionalProperties: false,
      properties: {
        items: {
          type: 'array',
          minItems: 1,
          maxItems: l.maxItems,
          items: {
            type: 'object',
            required: ['uri'],
            additionalProperties: false,
            properties: { uri, id: { type: 'string', pattern: ID_PATTERN }, metadata },
          },
        },
      },
    },
  };
}

const json = (schema: Schema) => ({ 'application/json': { schema } });
const ok = (description: string, schema: Schema) => ({ description, content: json(schema) });
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'Error', content: json({ $ref: '#/components/schemas/Error' }) }]));
const multipart = (description: string, fields: Schema) => ({
  'multipart/form-data': { schema: { type: 'object', description, properties: { file: { type: 'string', contentMediaType: 'application/octet-stream', description: 'One or more image files (PNG, JPEG, WebP, GIF), any field name.' }, ...fields } } },
});

const indexStatus: Schema = {
  type: 'object',
  required: ['size', 'dim', 'model', 'ready'],
  properties: { size: { type: 'integer' }, dim: { type: 'integer' }, model: { type: 'string' }, ready: { type: 'boolean' } },
};

/** The OpenAPI 3.1 document of the server. */
export function openApiDocument(l: ApiLimits, version: string): Schema {
  const b = jsonBodies(l);
  const auth = [{ bearer: [] }];
  return {
    openapi: '3.1.0',
    info: { title: 'clipfit serve', version, description: 'Text-to-image search with a (fine-tuned) CLIP model. Every 4xx/5xx body is {error: {code, message}}.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Needed when the server was started with --token (GET /images/:id and static files also take ?token=).' } },
      schemas: { Error: error },
    },
    security: auth,
    paths: {
      '/healthz': { get: { summary: 'Liveness (no auth)', security: [], responses: { '200': ok('Up', { type: 'object', properties: { status: { const: 'ok' } } }) } } },
      '/api/info': {
        get: {
          summary: 'The models, auth and limits of this server',
          responses: { '200': ok('Info', { type: 'object', properties: { model: { type: 'object' }, compare: { type: ['object', 'null'] }, auth: { type: 'boolean' }, limits: { type: 'object' } } }), ...errors(401) },
        },
      },
      '/index': {
        get: { summary: 'Index size, dimension and model', responses: { '200': ok('Status', { ...indexStatus, properties: { ...(indexStatus['properties'] as Schema), compare: { oneOf: [indexStatus, { type: 'null' }] } } }), ...errors(401) } },
        post: {
          summary: 'Add images (upsert by id); they are stored and served at /images/{id}',
          requestBody: {
            required: true,
            content: {
              ...json(b.index),
              ...multipart('Image files plus optional fields metadata (JSON object for all files, or array aligned with them) and ids (JSON array).', {
                metadata: { type: 'string', description: 'JSON' },
                ids: { type: 'string', description: 'JSON array of ids' },
              }),
            },
          },
          responses: { '201': ok('Added', { type: 'object', properties: { ids: { type: 'array', items: { type: 'string' } }, size: { type: 'integer' } } }), ...errors(400, 401, 409, 413, 415, 422) },
        },
      },
      '/index/{id}': {
        delete: {
          summary: 'Remove one item',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: ID_PATTERN } }],
          responses: { '200': ok('Removed', { type: 'object', properties: { deleted: { type: 'string' }, size: { type: 'integer' } } }), ...errors(400, 401, 404) },
        },
      },
      '/images/{id}': {
        get: {
          summary: 'A stored image',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: ID_PATTERN } }],
          responses: { '200': { description: 'The image', content: { 'image/*': {} } }, ...errors(401, 404) },
        },
      },
      '/search': {
        post: {
          summary: 'Top-k images for a text query or a query vector (cosine similarity, best first)',
          requestBody: { required: true, content: json(b.search) },
          responses: {
            '200': ok('Hits', {
              type: 'object',
              properties: {
                model: role,
                modelId: { type: 'string' },
                results: {
                  type: 'array',
                  items: { type: 'object', properties: { id: { type: 'string' }, score: { type: 'number' }, metadata: { type: ['object', 'null'] }, imageUrl: { type: 'string' } } },
                },
                tookMs: { type: 'number', description: 'The whole request in the server, milliseconds.' },
                indexMs: { type: 'number', description: "The index's search alone, milliseconds." },
              },
            }),
            ...errors(400, 401, 409, 415),
          },
        },
      },
      '/encode': {
        post: {
          summary: 'L2-normalised embeddings: the texts first, then the images, each in input order',
          requestBody: { required: true, content: { ...json(b.encode), ...multipart('Image files plus an optional texts field (JSON array of strings).', { texts: { type: 'string' } }) } },
          responses: {
            '200': ok('Embeddings', {
              type: 'object',
              properties: { embeddings: { type: 'array', items: { type: 'array', items: { type: 'number' } } }, dim: { type: 'integer' }, model: { type: 'string' }, counts: { type: 'object' } },
            }),
            ...errors(400, 401, 413, 415, 422),
          },
        },
      },
      '/rank': {
        post: {
          summary: 'Rank candidate images for one text: score = softmax over candidates of 100·cosine',
          requestBody: { required: true, content: { ...json(b.rank), ...multipart('Image files plus a text field.', { text: { type: 'string' } }) } },
          responses: {
            '200': ok('Ranked', {
              type: 'object',
              properties: {
                text: { type: 'string' },
                model: { type: 'string' },
                results: {
                  type: 'array',
                  items: { type: 'object', properties: { index: { type: 'integer' }, uri: { type: 'string' }, filename: { type: 'string' }, score: { type: 'number' }, cosine: { type: 'number' } } },
                },
              },
            }),
            ...errors(400, 401, 413, 415, 422),
          },
        },
      },
      '/metrics': { get: { summary: 'Prometheus text exposition', responses: { '200': { description: 'Metrics', content: { 'text/plain': {} } }, ...errors(401) } } },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': ok('OpenAPI 3.1', { type: 'object' }), ...errors(401) } } },
      '/api/runs': {
        get: {
          summary: 'Runs in the run store, oldest first',
          responses: { '200': ok('Runs', { type: 'object', properties: { runs: { type: 'array', items: { type: 'object' } } } }), ...errors(401) },
        },
      },
      '/api/runs/{name}/metrics': {
        get: {
          summary: 'Per-epoch metrics of one run (NaN as null)',
          parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': ok('Metrics', {
              type: 'object',
              properties: { name: { type: 'string' }, status: { type: 'string' }, epochs: { type: 'array', items: { type: 'object', properties: { epoch: { type: 'integer' }, values: { type: 'object' } } } } },
            }),
            ...errors(401, 404),
          },
        },
      },
      '/': { get: { summary: 'The web page (static files of src/server/web/)', responses: { '200': { description: 'HTML', content: { 'text/html': {} } }, ...errors(401, 404) } } },
    },
  };
}
