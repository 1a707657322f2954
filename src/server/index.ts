// clipfit serve: the HTTP search service (JSON API, web page, Prometheus metrics).

export { createServer, indexDirOf, isLoopbackHost, serve } from './server.js';
export type { ClipfitServer, IndexOpener, ServeOptions } from './server.js';
export { DEFAULT_LIMITS, openApiDocument } from './openapi.js';
export type { ApiLimits } from './openapi.js';
export { Encoder, loadServeModel, resolveServeModel } from './models.js';
export type { EncoderOptions, LoadedModel, LoadModelOptions } from './models.js';
export { MicroBatcher } from './batcher.js';
export type { BatcherOptions } from './batcher.js';
export { HttpError } from './http_errors.js';
export type { ErrorBody, ErrorCode } from './http_errors.js';
