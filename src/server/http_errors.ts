// Every 4xx/5xx the server sends is `{ error: { code, message } }`. HttpError carries a status and a
// code; errors from fastify (body parsing, limits, validation), multipart and clipfit's own typed
// errors are mapped onto the same shape by toHttpError.

import { ClipfitError, ImageError, IndexMismatchError, IndexUnavailableError, ModalityError, UnknownVectorIdError, UriError, VectorDimensionError } from '../errors.js';

export type ErrorCode =
  | 'bad_request'
  | 'invalid_json'
  | 'query_too_long'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'needs_reindex'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unprocessable'
  | 'internal'
  | 'unavailable';

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string) => new HttpError(400, 'bad_request', message);
export const notFound = (message: string) => new HttpError(404, 'not_found', message);
export const unsupportedMedia = (message: string) => new HttpError(415, 'unsupported_media_type', message);
export const tooLarge = (message: string) => new HttpError(413, 'payload_too_large', message);

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message: string;
  validation?: unknown;
  validationContext?: string;
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'needs_reindex',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
};

/** The status and JSON body for any error a handler or fastify raised. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof UnknownVectorIdError) return notFound(err.message);
  if (err instanceof UriError) {
    if (err.kind === 'too-large') return tooLarge(err.message);
    if (err.kind === 'unsupported') return badRequest(err.message);
    return new HttpError(422, 'unprocessable', err.message);
  }
  if (err instanceof ImageError) return err.kind === 'too-large' ? tooLarge(err.message) : new HttpError(422, 'unprocessable', err.message);
  if (err instanceof ModalityError || err instanceof VectorDimensionError) return badRequest(err.message);
  // The index database is down or dropped the connection: nothing was written, try again later.
  if (err instanceof IndexUnavailableError) return new HttpError(503, 'unavailable', err.message);
  // Another replica relabelled the index for another model since this server opened it.
  if (err instanceof IndexMismatchError) return new HttpError(409, 'needs_reindex', err.message);
  if (err instanceof ClipfitError) return new HttpError(500, 'internal', err.message);
  const e = err as FastifyLikeError;
  if (e && typeof e === 'object' && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (Array.isArray(e.validation)) {
      const long = (e.validation as { instancePath?: string; keyword?: string; params?: { limit?: number } }[]).find(
        (v) => v.keyword === 'maxLength' && (v.instancePath === '/query' || v.instancePath === '/text' || /^\/texts\/\d+$/.test(v.instancePath ?? '')),
      );
      if (long)
        return new HttpError(400, 'query_too_long', `${long.instancePath!.slice(1)} is longer than ${long.params?.limit} characters; CLIP reads only its first 77 tokens, so send a shorter text`);
    }
    if (e.validation) return badRequest(`invalid ${e.validationContext ?? 'request'}: ${e.message}`);
    if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && /JSON/i.test(e.message)))
      return new HttpError(400, 'invalid_json', `malformed JSON body: ${e.message}`);
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return unsupportedMedia(`${e.message}; send application/json or multipart/form-data`);
    return new HttpError(e.statusCode, CODE_BY_STATUS[e.statusCode] ?? 'bad_request', e.message);
  }
  return new HttpError(500, 'internal', err instanceof Error ? err.message : String(err));
}

export const errorBody = (e: HttpError): ErrorBody => ({ error: { code: e.code, message: e.message } });
