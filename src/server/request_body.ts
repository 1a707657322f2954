// Reading request bodies that may be JSON or multipart: the multipart parts gathered into files
// (bytes, checked to be images by their magic bytes) and text fields, JSON fields parsed with errors
// that name the field.

import type { FastifyRequest } from 'fastify';
import { badRequest, unsupportedMedia } from './http_errors.js';
import { requireImage, readImageUri } from './images.js';
import type { ImageType, UriPolicy } from './images.js';

export interface Upload {
  field: string;
  filename: string;
  bytes: Uint8Array;
  type: ImageType;
}

export interface MultipartBody {
  files: Upload[];
  fields: Record<string, string>;
}

export type Body<T> = { kind: 'json'; json: T } | { kind: 'multipart'; form: MultipartBody };

/** The body as JSON (validated by the route's schema) or as multipart; anything else is a 415. */
export async function readBody<T>(req: FastifyRequest, route: string, multipart: boolean): Promise<Body<T>> {
  if (multipart && req.isMultipart()) return { kind: 'multipart', form: await readMultipart(req) };
  if (req.body !== null && typeof req.body === 'object' && !Buffer.isBuffer(req.body) && /^application\/json\b/i.test(req.headers['content-type'] ?? ''))
    return { kind: 'json', json: req.body as T };
  const got = req.headers['content-type'] ? `Content-Type ${req.headers['content-type']}` : 'no Content-Type';
  throw unsupportedMedia(`${route} takes application/json${multipart ? ' or multipart/form-data' : ''}, got ${got}`);
}

async function readMultipart(req: FastifyRequest): Promise<MultipartBody> {
  const files: Upload[] = [];
  const fields: Record<string, string> = {};
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      // toBuffer throws RequestFileTooLargeError (413) past limits.fileSize.
      const bytes = new Uint8Array(await part.toBuffer());
      const name = part.filename || `${part.fieldname}[${files.length}]`;
      if (bytes.length === 0) throw badRequest(`upload ${JSON.stringify(name)} is empty`);
      files.push({ field: part.fieldname, filename: part.filename, bytes, type: requireImage(bytes, `upload ${JSON.stringify(name)}`) });
    } else {
      fields[part.fieldname] = String(part.value);
    }
  }
  return { files, fields };
}

/** A multipart text field holding JSON, parsed; undefined when absent. */
export function jsonField(form: MultipartBody, name: string): unknown {
  const raw = form.fields[name];
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw badRequest(`field ${name}: not valid JSON (${(err as Error).message})`);
  }
}

/** Images from URIs (read under the policy) in request order. */
export function readUris(uris: readonly string[], field: string, policy: UriPolicy): Promise<{ bytes: Uint8Array; type: ImageType }[]> {
  return Promise.all(uris.map((u, i) => readImageUri(u, `${field}[${i}]`, policy)));
}
