// `clipfit serve`: a fastify app over a primary model (and optionally a compare model), a vector
// index of image embeddings and the images themselves. createServer builds it without listening;
// serve() listens on host:port. Off-loopback listening needs a bearer token (InsecureServeError).

import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import fastifyMultipart from '@fastify/multipart';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConfigError, InsecureServeError } from '../errors.js';
import type { VectorIndex } from '../search/index_types.js';
import { Catalog } from './catalog.js';
import type { Role } from './catalog.js';
import { errorBody, HttpError, toHttpError } from './http_errors.js';
import { ServerMetrics } from './metrics.js';
import { Encoder, loadServeModel } from './models.js';
import type { EncoderOptions, LoadedModel } from './models.js';
import { DEFAULT_LIMITS } from './openapi.js';
import type { ApiLimits } from './openapi.js';
import { registerApiRoutes } from './routes_api.js';
import { registerMiscRoutes } from './routes_misc.js';
import { originGuard } from './origin_guard.js';
import { DecodePool } from './decode_pool.js';
import { readFolderConfig } from '../models/clip/weights/checkpoint.js';
import { PACKAGE_ROOT, WEB_ROOT } from './static.js';
import { defaultIndexOpener, layout } from './index_open.js';
import { openPgServeIndex } from './index_pg.js';
import type { PgServeIndex } from './index_pg.js';
import type { IndexOpener } from './index_open.js';
import { storeHome } from '../data/store.js';
import { claimIndexRoot } from '../search/index_root.js';
import type { IndexLock } from '../search/index_lock.js';
import { resolveIndexSpec } from '../search/open_index.js';
import { MAX_PG_EF } from '../search/pgvector_index.js';

export type { IndexOpener } from './index_open.js';

export interface ServeOptions {
  /** A fit() artifact, a model folder, `name::tag` (from the cache, offline), a run name, or a loaded model. */
  model: string | LoadedModel;
  /** A second model for before/after comparisons; its own index of the same items is kept. */
  compare?: string | LoadedModel;
  /** Index name (→ $CLIPFIT_HOME/indexes/<name>), index folder, a Postgres URL (postgres://…/db[#name],
   * which several servers may share), or an open VectorIndex (default name 'default'). */
  index?: string | VectorIndex;
  /** With an open `index`: the compare model's index. */
  compareIndex?: VectorIndex;
  /** Folder for the stored images (and the compare index) when `index` is an open VectorIndex. */
  indexDir?: string;
  /** How index folders are opened (default: clipfit's folder index). */
  openIndex?: IndexOpener;
  /** HNSW candidate list of every search (default: the index's own, recorded setting; pgvector 200). */
  efSearch?: number;
  /** Rebuild, on start, any index made by another model than the one serving (else /search is a 409). */
  reindex?: boolean;
  /** Bearer token for every route but /healthz. */
  token?: string;
  /** Default 127.0.0.1; any other interface needs a token. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Allow this origin cross-origin requests (CORS is off by default). */
  cors?: string;
  /** Without a token, the Host names (besides the listening host and loopback) the server answers to. */
  allowedHosts?: string[];
  /** Local image paths / file:// URIs in requests are read only inside this folder (default: never). */
  allowRoot?: string;
  /** Fetch http(s) image URIs in requests (default false); only public addresses are fetched. */
  allowRemoteUris?: boolean;
  /** Addresses remote fetches may reach although loopback or private (a known internal image host, tests). */
  remoteAllowAddresses?: string[];
  limits?: Partial<ApiLimits>;
  /** $CLIPFIT_HOME: model cache, run store, indexes. */
  home?: string;
  threads?: number;
  /** Encode with int8 towers (LoadModelOptions.int8); models passed in already loaded are used as they are. */
  int8?: boolean;
  /** Micro-batching: most items per encoder run (32) and longest wait for more (3 ms). */
  batch?: EncoderOptions;
  /** The static web folder (default src/server/web of the package). */
  webRoot?: string;
  /** fastify's logger (default off). */
  logger?: boolean;
  /** Progress lines while starting (reindexing). */
  log?: (line: string) => void;
}

export interface ClipfitServer {
  app: FastifyInstance;
  /** Set once listening (serve()). */
  url?: string;
  catalog: Catalog;
  metrics: ServerMetrics;
  encoders: { primary: Encoder; compare?: Encoder };
  /** The index folder's owner lock, held while the server runs (it records the URL once listening);
   * none for an index in Postgres, which replicas share. */
  indexLock?: IndexLock;
  /** The worker threads that decode request images. */
  decodePool: DecodePool;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
export const isLoopbackHost = (host: string): boolean => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

const homeOf = (opts: ServeOptions): string => storeHome(opts.home ? { home: opts.home } : {});

/** The folder of an index name or path: the same one `clipfit index --index SPEC` opens. */
export function indexDirOf(spec: string, home: string): string {
  const loc = resolveIndexSpec(spec, { home });
  if (loc.backend !== 'folder') throw new ConfigError('index', `the server keeps its index in a folder (a name or a path) or a postgres:// database, got ${JSON.stringify(spec)}`);
  return loc.dir;
}

function version(): string {
  try {
    return String(JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version);
  } catch {
    return '0.0.0';
  }
}

function tokenMatches(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkLimits(l: ApiLimits): ApiLimits {
  for (const [k, v] of Object.entries(l)) if (!Number.isInteger(v) || v < 1) throw new ConfigError(`limits.${k}`, `must be a positive integer, got ${v}`);
  return l;
}

async function loadModel(m: string | LoadedModel, opts: ServeOptions): Promise<{ model: LoadedModel; owned: boolean }> {
  if (typeof m !== 'string') return { model: m, owned: false };
  return { model: await loadServeModel(m, { home: homeOf(opts), ...(opts.threads !== undefined ? { threads: opts.threads } : {}), ...(opts.int8 ? { int8: true } : {}) }), owned: true };
}

/** The app, its models and index loaded, not yet listening. */
export async function createServer(opts: ServeOptions): Promise<ClipfitServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!opts.token && !isLoopbackHost(host)) throw new InsecureServeError(host);
  if (opts.token !== undefined && opts.token.length < 1) throw new ConfigError('token', 'must not be empty');
  const limits = checkLimits({ ...DEFAULT_LIMITS, ...opts.limits });
  const home = homeOf(opts);
  const pgLocation = typeof opts.index === 'string' ? resolveIndexSpec(opts.index, { home }) : undefined;
  // pgvector takes hnsw.ef_search up to 1000; the folder index's graph up to 4096.
  const maxEf = pgLocation?.backend === 'postgres' ? MAX_PG_EF : 4096;
  if (opts.efSearch !== undefined && (!Number.isInteger(opts.efSearch) || opts.efSearch < 1 || opts.efSearch > maxEf))
    throw new ConfigError('efSearch', `must be an integer in [1, ${maxEf}]${maxEf === MAX_PG_EF ? " (pgvector's limit)" : ''}, got ${opts.efSearch}`);
  const metrics = new ServerMetrics();
  const log = opts.log ?? (() => {});
  const toRelease: LoadedModel[] = [];
  const opened: VectorIndex[] = [];
  const handed = opts.index !== undefined && typeof opts.index !== 'string';
  const inPg = pgLocation?.backend === 'postgres' ? pgLocation : undefined;
  const dir = handed ? path.resolve(opts.indexDir ?? indexDirOf('default', home)) : inPg ? '' : indexDirOf((opts.index as string | undefined) ?? 'default', home);
  // Before any model loads: a second server, or an `index` command, already on it is refused at once.
  // An index in Postgres has no owner: replicas share it.
  const indexLock = inPg ? undefined : await claimIndexRoot(dir, 'clipfit serve', handed ? dir : String(opts.index ?? 'default'));
  let pgIndex: PgServeIndex | undefined;
  const decodePool = new DecodePool();
  try {
    const primary = await loadModel(opts.model, opts);
    if (primary.owned) toRelease.push(primary.model);
    const compare = opts.compare !== undefined ? await loadModel(opts.compare, opts) : undefined;
    if (compare?.owned) toRelease.push(compare.model);
    const batch = { ...opts.batch, prepareImages: decodeWith(decodePool, limits.maxImagePixels) };
    const encoders = {
      primary: new Encoder(primary.model, 'primary', metrics, batch),
      ...(compare ? { compare: new Encoder(compare.model, 'compare', metrics, batch) } : {}),
    };

    const open = opts.openIndex ?? defaultIndexOpener;
    let primaryIndex: VectorIndex;
    let compareIndex: VectorIndex | undefined;
    if (inPg) {
      pgIndex = await openPgServeIndex(inPg.url, inPg.name ?? 'default', { dim: primary.model.dim, model: primary.model.id }, compare ? { dim: compare.model.dim, model: compare.model.id } : undefined);
      primaryIndex = pgIndex.primary;
      compareIndex = pgIndex.compare;
    } else if (opts.index !== undefined && typeof opts.index !== 'string') {
      primaryIndex = opts.index;
      if (compare) compareIndex = opts.compareIndex ?? (await open(layout(dir).compare, { dim: compare.model.dim, model: compare.model.id }));
    } else {
      primaryIndex = await open(layout(dir).primary, { dim: primary.model.dim, model: primary.model.id });
      opened.push(primaryIndex);
      if (compare) {
        compareIndex = await open(layout(dir).compare, { dim: compare.model.dim, model: compare.model.id });
        opened.push(compareIndex);
      }
    }
    const catalog = new Catalog(
      pgIndex ? pgIndex.store : dir,
      { encoder: encoders.primary, index: primaryIndex },
      compare && compareIndex ? { encoder: encoders.compare!, index: compareIndex } : undefined,
    );
    catalog.efSearch = opts.efSearch;
    await catalog.refreshSizes();
    for (const role of ['primary', 'compare'] as Role[]) {
      if (!catalog.has(role)) continue;
      const stale = role === 'primary' ? !catalog.ready(role) : await catalog.outOfStep(role);
      if (!stale) continue;
      const st = catalog.status(role);
      if (opts.reindex || (role === 'compare' && catalog.ready(role))) {
        const stored = (await catalog.images.list()).length;
        if (stored === 0 && st.size > 0)
          throw new ConfigError('reindex', `the ${role} index in ${dir} holds ${st.size} vectors but no stored images to encode again; rebuild it with the index tools`);
        log(`reindexing the ${role} index (${stored} images) with ${encoders[role]!.id}…`);
        await catalog.reindex(role);
        log(`reindexed the ${role} index: ${catalog.status(role).size} items`);
      } else {
        log(`warning: the ${role} index holds vectors of ${st.model}, not of ${encoders[role]!.id}; /search answers 409 until you restart with --reindex`);
      }
    }
    metrics.gauge('clipfit_index_items', 'Items in each index.', () => new Map([...catalog.sizes()].map(([r, n]) => [`index="${r}"`, n])));
    metrics.gauge('clipfit_index_ready', 'Whether the index was made by the serving model (1) or needs a rebuild (0).', () => new Map([...catalog.sizes().keys()].map((r) => [`index="${r}"`, catalog.ready(r) ? 1 : 0])));

    const app = buildApp({ opts, limits, metrics, catalog, encoders, home });
    let closed = false;
    const server: ClipfitServer = {
      app,
      catalog,
      metrics,
      encoders,
      indexLock,
      decodePool,
      close: async () => {
        if (closed) return;
        closed = true;
        await app.close();
        if (opts.index !== undefined && typeof opts.index !== 'string') {
          // The caller owns the index it handed in; only what was opened here is closed.
          await primaryIndex.flush();
          if (compareIndex && !opts.compareIndex) await compareIndex.close();
        } else await catalog.close();
        await pgIndex?.close();
        await decodePool.close();
        await indexLock?.release();
        for (const m of toRelease) await m.release();
      },
    };
    return server;
  } catch (err) {
    for (const ix of opened) await ix.close().catch(() => {});
    await pgIndex?.close().catch(() => {});
    for (const m of toRelease) await m.release().catch(() => {});
    await decodePool.close();
    await indexLock?.release();
    throw err;
  }
}

interface AppParts {
  opts: ServeOptions;
  limits: ApiLimits;
  metrics: ServerMetrics;
  catalog: Catalog;
  encoders: { primary: Encoder; compare?: Encoder };
  home: string;
}

/** Images for `model`: decoded and resized to its input size in the pool, as small PNGs. */
function decodeWith(pool: DecodePool, maxPixels: number): (images: readonly Uint8Array[], model: LoadedModel) => Promise<Uint8Array[]> {
  const sizes = new Map<string, Promise<number>>();
  const sizeOf = (m: LoadedModel) => {
    let s = sizes.get(m.dir);
    if (!s) sizes.set(m.dir, (s = readFolderConfig(m.dir).then((c) => c.config.preprocess_cfg.image_size)));
    return s;
  };
  return async (images, model) => {
    const size = await sizeOf(model);
    return Promise.all(images.map((b) => pool.decode(b, size, maxPixels)));
  };
}

const starts = new WeakMap<FastifyRequest, number>();

function buildApp(p: AppParts): FastifyInstance {
  const { opts, limits, metrics } = p;
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: limits.maxJsonBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  app.removeContentTypeParser(['text/plain']);
  void app.register(fastifyMultipart, {
    limits: { fileSize: limits.maxUploadBytes, files: limits.maxItems, fields: 16, fieldSize: limits.maxJsonBytes, parts: limits.maxItems + 16 },
  });

  const guard = opts.token ? undefined : originGuard({ listenHost: opts.host ?? '127.0.0.1', ...(opts.allowedHosts ? { allowedHosts: opts.allowedHosts } : {}), ...(opts.cors ? { cors: opts.cors } : {}) });
  app.addHook('onRequest', async (req, reply) => {
    starts.set(req, performance.now());
    reply.header('x-content-type-options', 'nosniff');
    guard?.(req);
    if (opts.cors) {
      reply.header('access-control-allow-origin', opts.cors).header('vary', 'Origin');
      if (req.method === 'OPTIONS') return; // preflight: answered below, no auth
    }
    if (!opts.token) return;
    const url = req.url.split('?')[0]!;
    if (url === '/healthz') return;
    const read = req.method === 'GET' || req.method === 'HEAD';
    // The page's own files hold no data, and a browser cannot send a header when it loads a page:
    // they are public, and the page asks for the token when the API answers 401.
    if (read && (req.routeOptions.url === '/' || req.routeOptions.url === '/*')) return;
    const h = req.headers.authorization;
    let given: string | undefined;
    if (h !== undefined) given = /^Bearer (.+)$/i.exec(h)?.[1];
    else if (read && req.routeOptions.url === '/images/:id') {
      // <img src> cannot send headers: images also take ?token=.
      const q = (req.query as Record<string, unknown> | undefined)?.['token'];
      if (typeof q === 'string') given = q;
    }
    if (given === undefined) throw new HttpError(401, 'unauthorized', 'missing bearer token: send Authorization: Bearer <token>');
    if (!tokenMatches(given, opts.token)) throw new HttpError(401, 'unauthorized', 'wrong bearer token');
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    const t0 = starts.get(req);
    if (t0 !== undefined) metrics.latency.observe((performance.now() - t0) / 1000, { route });
  });

  app.setErrorHandler(async (err, req, reply) => {
    const h = toHttpError(err);
    if (h.status >= 500) req.log.error(err);
    if (h.status === 401) reply.header('www-authenticate', 'Bearer');
    if (h.status === 503) reply.header('retry-after', '1');
    return reply.code(h.status).send(errorBody(h));
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).send(errorBody(new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`))));

  if (opts.cors)
    app.options('/*', async (_req, reply) =>
      reply
        .code(204)
        .header('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS')
        .header('access-control-allow-headers', 'authorization, content-type')
        .header('access-control-max-age', '600')
        .send(),
    );

  const uriPolicy = { ...(opts.allowRoot ? { allowedRoot: path.resolve(opts.allowRoot) } : {}), allowRemote: opts.allowRemoteUris ?? false, ...(opts.remoteAllowAddresses ? { allowAddresses: opts.remoteAllowAddresses } : {}), maxBytes: limits.maxUploadBytes };
  void app.register(async (scope) => {
    registerApiRoutes(scope, { catalog: p.catalog, encoders: p.encoders, limits, uriPolicy });
    const search = () => ({ primary: p.catalog.searchSettings('primary'), compare: p.catalog.has('compare') ? p.catalog.searchSettings('compare') : null });
    registerMiscRoutes(scope, { encoders: p.encoders, limits, metrics, auth: !!opts.token, home: p.home, webRoot: opts.webRoot ?? WEB_ROOT, version: version(), search });
  });
  return app;
}

/** createServer, then listen on host:port (default 127.0.0.1:8080). */
export async function serve(opts: ServeOptions): Promise<ClipfitServer & { url: string }> {
  const server = await createServer(opts);
  try {
    const url = await server.app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 });
    await server.indexLock?.update({ url });
    return Object.assign(server, { url });
  } catch (err) {
    await server.close();
    throw err;
  }
}
