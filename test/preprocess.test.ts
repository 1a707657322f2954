// Image preprocessing against OpenAI CLIP's own `_transform(n)` outputs (torchvision 0.14.1 on
// Pillow 9.4.0) stored in preprocess.safetensors: decoded pixels, resized+cropped RGB bytes at
// n = 32 and 224 (bit-exact), final pixel tensors (float32); plus typed errors for bad input.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImageError, type ImageErrorKind } from '../src/errors.js';
import {
  decodeImage,
  preprocessBatch,
  preprocessImage,
  resizeWindow,
  toRgbU8,
} from '../src/models/clip/image/preprocess.js';
import { readSafetensors, type StFile } from '../src/runtime/safetensors.js';
import { requireFixture } from './fixtures.js';

interface ImageEntry {
  file: string;
  mode: string;
  size_wh: [number, number];
  resize_wh_32: [number, number];
  crop_left_top_32: [number, number];
  resize_wh_224: [number, number];
  crop_left_top_224: [number, number];
}

const SIZES = [32, 224] as const;

/** Largest |a − b|, after checking the lengths agree. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, what: string): number {
  assert.equal(a.length, b.length, `${what}: length`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Index and values of the first differing element, for messages. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `first difference at flat index ${i}: ${a[i]} vs ${b[i]}`;
  return 'no difference';
}

describe('CLIP preprocessing matches the reference', () => {
  let st: StFile;
  let images: ImageEntry[] = [];
  let imgDir = '';

  before(async () => {
    const stPath = requireFixture('preprocess.safetensors');
    const listPath = requireFixture('images/images.json');
    if (!stPath || !listPath) return;
    st = await readSafetensors(stPath);
    images = JSON.parse(await readFile(listPath, 'utf8'));
    imgDir = path.dirname(listPath);
  });

  const ref = (key: string) => {
    const t = st.tensors.get(key);
    assert.ok(t, `fixture tensor '${key}' is missing`);
    return t;
  };

  test('fixture lists all 12 images', (t) => {
    if (!requireFixture('images/images.json', t)) return;
    assert.equal(images.length, 12);
  });

  test('resize size and centre-crop offsets (Python round half to even)', (t) => {
    if (!requireFixture('images/images.json', t)) return;
    for (const im of images) {
      for (const n of SIZES) {
        const w = resizeWindow(im.size_wh[0], im.size_wh[1], n);
        const key = `_${n}` as const;
        assert.deepEqual([w.outW, w.outH], im[`resize_wh${key}`], `${im.file} resize at ${n}`);
        assert.deepEqual([w.left, w.top], im[`crop_left_top${key}`], `${im.file} crop at ${n}`);
      }
    }
  });

  // Every image, JPEGs included, decodes to exactly Pillow's bytes (measured: sharp 0.35.5's
  // libjpeg decoder and Pillow 9.4's libjpeg-turbo 2.1.5 agree on both JPEGs, max difference 0),
  // so all comparisons below are exact.
  test('decoded pixels equal Pillow’s (mode, shape, bytes)', async (t) => {
    if (!requireFixture('preprocess.safetensors', t)) return;
    for (const im of images) {
      const d = await decodeImage(path.join(imgDir, im.file));
      const r = ref(`${im.file}/decoded_u8`);
      assert.equal(d.mode, im.mode, `${im.file} mode`);
      const shape = d.mode === 'L' ? [d.height, d.width] : [d.height, d.width, d.channels];
      assert.deepEqual(shape, r.shape, `${im.file} decoded shape`);
      assert.equal(maxAbsDiff(d.data, r.data as Uint8Array, im.file), 0, `${im.file} decoded: ${firstDiff(d.data, r.data as Uint8Array)}`);
    }
  });

  for (const n of SIZES) {
    test(`resized + cropped RGB bytes at n=${n} are bit-identical`, async (t) => {
      if (!requireFixture('preprocess.safetensors', t)) return;
      for (const im of images) {
        const got = await toRgbU8(path.join(imgDir, im.file), n);
        const r = ref(`${im.file}/rgb_u8_${n}`);
        assert.deepEqual(r.shape, [n, n, 3]);
        assert.equal(maxAbsDiff(got, r.data as Uint8Array, im.file), 0, `${im.file} rgb_u8_${n}: ${firstDiff(got, r.data as Uint8Array)}`);
      }
    });

    test(`pixel_values at n=${n} within 1e-6 (float32 ToTensor + Normalize)`, async (t) => {
      if (!requireFixture('preprocess.safetensors', t)) return;
      for (const im of images) {
        const got = await preprocessImage(path.join(imgDir, im.file), { size: n });
        const r = ref(`${im.file}/pixel_values_${n}`);
        assert.deepEqual(r.shape, [3, n, n]);
        const d = maxAbsDiff(got, r.data as Float32Array, im.file);
        assert.ok(d <= 1e-6, `${im.file} pixel_values_${n}: max diff ${d}`);
      }
    });
  }

  test('preprocessBatch stacks the same tensors [n,3,32,32]', async (t) => {
    if (!requireFixture('preprocess.safetensors', t)) return;
    const files = images.map((im) => path.join(imgDir, im.file));
    const per = 3 * 32 * 32;
    const out = await preprocessBatch(files, { size: 32 }, 3);
    assert.equal(out.length, files.length * per);
    images.forEach((im, i) => {
      const d = maxAbsDiff(out.subarray(i * per, (i + 1) * per), ref(`${im.file}/pixel_values_32`).data as Float32Array, im.file);
      assert.ok(d <= 1e-6, `${im.file} in batch: max diff ${d}`);
    });
  });

  test('honourExif applies orientation 6 (rotate 90° clockwise); the default ignores it', async (t) => {
    if (!requireFixture('preprocess.safetensors', t)) return;
    const file = 'img08_exif_rot6_160x120.jpg';
    const r = ref(`${file}/decoded_u8`);
    const [h, w] = r.shape as [number, number, number];
    const plain = await decodeImage(path.join(imgDir, file));
    assert.deepEqual([plain.width, plain.height], [w, h]);
    const rot = await decodeImage(path.join(imgDir, file), { honourExif: true });
    assert.deepEqual([rot.width, rot.height], [h, w]);
    // Clockwise: output (x, y) shows source (col y, row h−1−x).
    const src = r.data as Uint8Array;
    let worst = 0;
    for (let y = 0; y < rot.height; y++)
      for (let x = 0; x < rot.width; x++)
        for (let c = 0; c < 3; c++) {
          const s = src[((h - 1 - x) * w + y) * 3 + c]!;
          worst = Math.max(worst, Math.abs(rot.data[(y * rot.width + x) * 3 + c]! - s));
        }
    assert.equal(worst, 0);
  });
});

describe('bad image input gives a typed ImageError naming the file', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'clipfit-preprocess-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function expectImageError(fn: () => Promise<unknown>, file: string, kind: ImageErrorKind): Promise<void> {
    await assert.rejects(fn, (err: unknown) => {
      assert.ok(err instanceof ImageError, `expected ImageError, got ${String(err)}`);
      assert.equal(err.kind, kind, err.message);
      assert.equal(err.file, file);
      assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
      return true;
    });
  }

  async function put(name: string, bytes: Uint8Array | string): Promise<string> {
    const p = path.join(dir, name);
    await writeFile(p, bytes);
    return p;
  }

  test('missing file', async () => {
    const p = path.join(dir, 'does-not-exist.png');
    await expectImageError(() => decodeImage(p), p, 'missing');
    await expectImageError(() => preprocessImage(p, { size: 32 }), p, 'missing');
  });

  test('zero-byte file', async () => {
    const p = await put('empty.jpg', new Uint8Array(0));
    await expectImageError(() => decodeImage(p), p, 'empty');
  });

  test('unsupported formats: text, SVG, TIFF, BMP', async () => {
    const cases: [string, Uint8Array | string][] = [
      ['notes.png', 'this is a text file, not an image\n'],
      ['drawing.svg', '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>\n'],
      ['scan.tif', Uint8Array.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00])],
      ['old.bmp', Uint8Array.from([0x42, 0x4d, 0x3a, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0])],
    ];
    for (const [name, bytes] of cases) {
      const p = await put(name, bytes);
      await expectImageError(() => decodeImage(p), p, 'unsupported');
    }
  });

  test('truncated and corrupted PNG, JPEG and GIF', async (t) => {
    const images = requireFixture('images', t);
    if (!images) return;
    for (const f of ['img07_photo_257x193.jpg', 'img01_rgb_300x200.png', 'img04_palette_120x90.png']) {
      const bytes = await readFile(path.join(images, f));
      const cut = await put(`cut-${f}`, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      await expectImageError(() => decodeImage(cut), cut, 'corrupt');
      const header = await put(`header-only-${f}`, bytes.subarray(0, 40));
      await expectImageError(() => decodeImage(header), header, 'corrupt');
      const garbled = Uint8Array.from(bytes);
      for (let i = 100; i < garbled.length; i += 37) garbled[i] ^= 0xa5;
      const bad = await put(`garbled-${f}`, garbled);
      await expectImageError(() => decodeImage(bad), bad, 'corrupt');
    }
    // A GIF whose frame data stops early.
    const gif = Uint8Array.from([
      ...new TextEncoder().encode('GIF89a'), 4, 0, 4, 0, 0x80, 0, 0, // 4×4 screen, 2-colour global palette
      0, 0, 0, 255, 255, 255,
      0x2c, 0, 0, 0, 0, 4, 0, 4, 0, 0, // image descriptor 4×4
      2, 1, 0x44, 0, 0x3b, // LZW: one byte of data for 16 pixels
    ]);
    const g = await put('short.gif', gif);
    await expectImageError(() => decodeImage(g), g, 'corrupt');
  });

  test('more pixels than maxPixels', async (t) => {
    const images = requireFixture('images', t);
    if (!images) return;
    for (const f of ['img11_rgb_480x360.png', 'img07_photo_257x193.jpg']) {
      const p = path.join(images, f);
      await expectImageError(() => decodeImage(p, { maxPixels: 10_000 }), p, 'too-large');
      await expectImageError(() => preprocessImage(p, { size: 32, maxPixels: 10_000 }), p, 'too-large');
    }
    // At or under the limit it decodes.
    const ok = await decodeImage(path.join(images, 'img02_rgb_32x32.png'), { maxPixels: 32 * 32 });
    assert.equal(ok.width * ok.height, 1024);
  });

  test('bytes input is named by opts.name', async () => {
    await expectImageError(() => decodeImage(new TextEncoder().encode('nope'), { name: 'row 7: photo.jpg' }), 'row 7: photo.jpg', 'unsupported');
  });

  test('a failing image rejects the batch with its own error', async (t) => {
    const images = requireFixture('images', t);
    if (!images) return;
    const p = await put('broken.png', 'not a png');
    await expectImageError(() => preprocessBatch([path.join(images, 'img00_rgb_50x80.png'), p], { size: 32 }), p, 'unsupported');
  });
});
