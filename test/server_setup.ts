// Shared set-up of the server tests: two tiny random CLIPs (an artifact with ONNX towers, and a
// plain model folder with other weights), a few coloured-shape PNGs, and helpers to start a server
// on 127.0.0.1:0 and call it with fetch.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encode, getModel } from '../src/inference/index.js';
import { ClipModel } from '../src/models/clip/clip_model.js';
import { createModelFolder } from '../src/models/clip/weights/init.js';
import { serve } from '../src/server/server.js';
import type { ServeOptions } from '../src/server/server.js';
import { makeShapesCsv } from './fit_data.js';
import { requireFixture } from './fixtures.js';

export interface Fixture {
  tmp: string;
  /** Artifact-like folder: open_clip weights + exported ONNX towers. */
  onnxModel: string;
  /** Plain model folder (safetensors only), other seed. */
  plainModel: string;
  images: string[];
  captions: string[];
  cleanup(): void;
}

/** null when the BPE fixture is missing (outside CI). */
export async function makeFixture(n = 6): Promise<Fixture | null> {
  const bpe = requireFixture('bpe_simple_vocab_16e6.txt.gz');
  if (!bpe) return null;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'clipfit-server-'));
  const onnxModel = path.join(tmp, 'model-a');
  const plainModel = path.join(tmp, 'model-b');
  await createModelFolder(onnxModel, 'tiny-test', { kind: 'bpe-gz', file: bpe }, 1);
  const m = await ClipModel.load(onnxModel);
  await m.exportOnnx(onnxModel);
  await m.release();
  await createModelFolder(plainModel, 'tiny-test', { kind: 'bpe-gz', file: bpe }, 2);
  const shapes = await makeShapesCsv(n);
  const images = shapes.captions.map((_, i) => path.join(shapes.dir, `img${String(i).padStart(3, '0')}.png`));
  return {
    tmp,
    onnxModel,
    plainModel,
    images,
    captions: shapes.captions,
    cleanup: () => {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(shapes.dir, { recursive: true, force: true });
    },
  };
}

/** Reference embeddings straight from the inference library (not through the server). */
export async function referenceEmbeddings(model: string, isOnnx: boolean, texts: string[], images: string[]): Promise<{ texts: Float32Array[]; images: Float32Array[] }> {
  const rows = (m: Float32Array, n: number) => Array.from({ length: n }, (_, i) => m.slice((i * m.length) / n, ((i + 1) * m.length) / n));
  const t = await getModel(model, { selectModel: 'clip-text', isOnnx });
  const v = await getModel(model, { selectModel: 'clip-vision', isOnnx });
  const te = texts.length ? rows((await encode(t, texts)).data, texts.length) : [];
  const ie = images.length ? rows((await encode(v, images)).data, images.length) : [];
  await t.release();
  await v.release();
  return { texts: te, images: ie };
}

export const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

export interface Client {
  url: string;
  close(): Promise<void>;
  server: Awaited<ReturnType<typeof serve>>;
  json(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  form(route: string, form: FormData, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
}

export async function start(opts: ServeOptions): Promise<Client> {
  const server = await serve({ port: 0, host: '127.0.0.1', ...opts });
  const url = server.url;
  const parse = async (r: Response) => {
    const text = await r.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body, headers: r.headers };
  };
  return {
    url,
    server,
    close: () => server.close(),
    json: async (method, route, body, headers = {}) =>
      parse(
        await fetch(url + route, {
          method,
          headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
          ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
        }),
      ),
    form: async (route, form, headers = {}) => parse(await fetch(url + route, { method: 'POST', body: form, headers })),
  };
}

export function imageForm(files: readonly string[], fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  for (const file of files) f.append('file', new Blob([readFileSync(file)], { type: 'image/png' }), path.basename(file));
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

export const dataUri = (file: string): string => `data:image/png;base64,${readFileSync(file).toString('base64')}`;
