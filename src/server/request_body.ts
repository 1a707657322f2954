// Reading request bodies that may be JSON or multipart: the multipart parts gathered into files
// (bytes, checked to be images by their magic bytes) and text fields, JSON fields parsed with errors
// that name the field.

import type { FastifyRequest } from 'fastify';
import { badRequest, HttpError, tooLarge, unsupportedMedia } from './http_errors.js';
import { imageDims } from './image_dims.js';
import type { ApiLimits } from './openapi.js';
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

/** The body as JSON (validated by the route's schema) or as multipart (at most `maxBytes` of files
 * together); anything else is a 415. */
export async function readBody<T>(req: FastifyRequest, route: string, multipart: boolean, maxBytes = Infinity): Promise<Body<T>> {
  if (multipart && req.isMultipart()) return { kind: 'multipart', form: await readMultipart(req, maxBytes) };
  if (req.body !== null && typeof req.body === 'object' && !Buffer.isBuffer(req.body) && /^application\/json\b/i.test(req.headers['content-type'] ?? ''))
    return { kind: 'json', json: req.body as T };
  const got = req.headers['content-type'] ? `Content-Type ${req.headers['content-type']}` : 'no Content-Type';
  throw unsupportedMedia(`${route} takes application/json${multipart ? ' or multipart/form-data' : ''}, got ${got}`);
}

async function readMultipart(req: FastifyRequest, maxBytes: number): Promise<MultipartBody> {
  const files: Upload[] = [];
  const fields: Record<string, string> = {};
  let total = 0;
  for await (const part of req.parts()) {
    if (part.type === 'file') {
      // toBuffer throws RequestFileTooLargeError (413) past limits.fileSize.
      const bytes = new Uint8Array(await part.toBuffer());
      total += bytes.length;
      if (total > maxBytes) throw tooLarge(`uploads: more than ${maxBytes} bytes of images in one request`);
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

/**
 * Images from URIs (read under the policy) in request order, four at a time, stopping once they
 * pass `maxBytes` together.
 */
export async function readUris(uris: readonly string[], field: string, policy: UriPolicy, maxBytes = Infinity): Promise<{ bytes: Uint8Array; type: ImageType }[]> {
  const out: { bytes: Uint8Array; type: ImageType }[] = new Array(uris.length);
  let next = 0, total = 0;
  const worker = async () => {
    while (next < uris.length) {
      const i = next++;
      out[i] = await readImageUri(uris[i]!, `${field}[${i}]`, policy);
      total += out[i]!.bytes.length;
      if (total > maxBytes) throw tooLarge(`${field}: more than ${maxBytes} bytes of images in one request`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, uris.length) }, worker));
  return out;
}

/**
 * Refuse, before any decoding, images whose headers declare more pixels than one image or the whole
 * request may have (a few KB of GIF can declare 7000×7000), or that do not declare a size at all.
 */
export function checkImageBudget(images: readonly { bytes: Uint8Array; type: ImageType }[], what: string, limits: ApiLimits): void {
  let pixels = 0;
  images.forEach((im, i) => {
    const d = imageDims(im.bytes, im.type);
    if (!d || d.width < 1 || d.height < 1) throw new HttpError(422, 'unprocessable', `${what}[${i}]: cannot decode: the ${im.type.toUpperCase()} header does not give a width and height`);
    const n = d.width * d.height;
    if (n > limits.maxImagePixels) throw tooLarge(`${what}[${i}]: ${d.width}×${d.height} px is more than ${limits.maxImagePixels} pixels per image`);
    pixels += n;
  });
  if (pixels > limits.maxRequestPixels) throw tooLarge(`${what}: ${pixels} pixels in one request, the limit is ${limits.maxRequestPixels}`);
}
