// Static files of the web page, from src/server/web/ of the package (the same folder from src/ and
// from dist/, as the package ships src). A request path is decoded, must be free of NUL, '..'
// segments and dot-files, and must resolve — through symlinks — to a regular file inside the web
// folder; anything else is a 404, never a read outside it.

import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEB_ROOT = path.join(PACKAGE_ROOT, 'src', 'server', 'web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

export interface StaticFile {
  file: string;
  contentType: string;
  size: number;
}

/** The file under `root` that URL path `urlPath` names, or null (also for anything unsafe). */
export async function resolveStatic(root: string, urlPath: string): Promise<StaticFile | null> {
  if (!existsSync(root)) return null;
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]!);
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.includes('\\')) return null;
  const segments = rel.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '..' || s.startsWith('.'))) return null;
  const realRoot = await fsp.realpath(root);
  let file = path.join(realRoot, ...segments);
  try {
    let st = await fsp.stat(file);
    if (st.isDirectory()) {
      file = path.join(file, 'index.html');
      st = await fsp.stat(file);
    }
    if (!st.isFile()) return null;
    const real = await fsp.realpath(file);
    const r = path.relative(realRoot, real);
    if (r.startsWith('..') || path.isAbsolute(r)) return null;
    return { file: real, contentType: TYPES[path.extname(real).toLowerCase()] ?? 'application/octet-stream', size: st.size };
  } catch {
    return null;
  }
}
