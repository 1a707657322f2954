// Shared bits for the data-layer tests: temporary folders and tiny real PNGs made with sharp.

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { TestContext } from 'node:test';

/** A fresh temporary folder, removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'clipfit-data-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A 2×2 PNG of one colour. */
export function png(r: number, g: number, b: number): Promise<Buffer> {
  return sharp({ create: { width: 2, height: 2, channels: 3, background: { r, g, b } } }).png().toBuffer();
}

/** Write files under dir (folders made as needed); string contents are written as UTF-8. */
export function writeFiles(dir: string, files: Record<string, string | Uint8Array>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
}
