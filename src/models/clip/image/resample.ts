// Pillow 9.4's resize for 8-bit images (src/libImaging/Resample.c, Geometry.c, Convert.c),
// reproduced bit for bit so that our pixels equal OpenAI CLIP's torchvision + Pillow pipeline.
//
// BICUBIC (RGB, L, and RGBA/LA in premultiplied form) is separable: a horizontal pass into a uint8
// intermediate, then a vertical pass; an axis whose size does not change is not resampled. Per
// output index i on an axis in → out:
//   scale = in/out, fs = max(scale, 1), support = 2·fs, center = (i + 0.5)·scale
//   xmin = max(trunc(center − support + 0.5), 0), xmax = min(trunc(center + support + 0.5), in)
//   w_j = K((j − center + 0.5)/fs) for j in [xmin, xmax), K = Keys cubic (a = −0.5), Σw normalised to 1
//   k_j = trunc(w_j·2^22 ± 0.5) (away from zero); out = clip8((2^21 + Σ src_j·k_j) >> 22)
// Every output pixel depends only on its own taps, so computing just the centre-crop window gives
// the same integers as resizing the whole image and cropping afterwards (and is much cheaper).
//
// NEAREST (forced by Pillow for modes P and 1) is an affine scale: the source index is trunc(x_o),
// x_o = scale·0.5 and then x_o += scale per output pixel, accumulated in double.

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);
const CLIP_HIGH = 1 << (PRECISION_BITS + 8);
const BICUBIC_SUPPORT = 2;

/** Fixed-point filter taps for outputs [first, first+count) of an axis in → out: output first+i
 * reads `counts[i]` inputs from `starts[i]`, weighted by `weights[i·ksize …]`. */
export interface AxisCoeffs {
  inSize: number;
  outSize: number;
  first: number;
  ksize: number;
  starts: Int32Array;
  counts: Int32Array;
  weights: Int32Array;
}

/** Keys' cubic convolution kernel with a = −0.5, written as Pillow evaluates it. */
function bicubicKernel(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

const COEFF_CACHE_LIMIT = 512;
const coeffCache = new Map<string, AxisCoeffs>();

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for BICUBIC, for outputs [first, first+count)
 * (only the crop window is needed); cached per (in, out, window). */
export function bicubicCoeffs(inSize: number, outSize: number, first = 0, count = outSize - first): AxisCoeffs {
  const key = `${inSize}:${outSize}:${first}:${count}`;
  const hit = coeffCache.get(key);
  if (hit) return hit;
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterscale;
  const starts = new Int32Array(count);
  const counts = new Int32Array(count);
  const weights = new Int32Array(count * ksize);
  const w = new Float64Array(ksize);
  for (let i = 0; i < count; i++) {
    const center = (first + i + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    const n = xmax - xmin;
    let ww = 0;
    for (let x = 0; x < n; x++) {
      const v = bicubicKernel((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    const base = i * ksize;
    for (let x = 0; x < n; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      weights[base + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    starts[i] = xmin;
    counts[i] = n;
  }
  const coeffs: AxisCoeffs = { inSize, outSize, first, ksize, starts, counts, weights };
  if (coeffCache.size >= COEFF_CACHE_LIMIT) coeffCache.delete(coeffCache.keys().next().value!);
  coeffCache.set(key, coeffs);
  return coeffs;
}

function clip8(ss: number): number {
  if (ss >= CLIP_HIGH) return 255;
  if (ss <= 0) return 0;
  return ss >> PRECISION_BITS;
}

/** Pillow's nearest-neighbour source indices for an axis in → out (ImagingScaleAffine). */
export function nearestIndices(inSize: number, outSize: number): Int32Array {
  const scale = inSize / outSize;
  const idx = new Int32Array(outSize);
  let xo = scale * 0.5;
  for (let i = 0; i < outSize; i++) {
    // Pillow fills out-of-range positions with 0; with x_o < in − scale/2 that cannot happen, so clamp.
    const v = xo < 0 ? 0 : Math.trunc(xo);
    idx[i] = v < inSize ? v : inSize - 1;
    xo += scale;
  }
  return idx;
}

/** An 8-bit interleaved image: `channels` bytes per pixel, rows top to bottom. */
export interface Pixels {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

/** The crop window [left, left+cropW) × [top, top+cropH) of the image resized to outW × outH. */
export interface Window {
  outW: number;
  outH: number;
  left: number;
  top: number;
  cropW: number;
  cropH: number;
}

/** Horizontal pass over rows [row0, row0+rows) for the output columns that `c` covers. */
function horizontalPass(src: Pixels, c: AxisCoeffs, row0: number, rows: number): Uint8Array {
  const cropW = c.starts.length;
  const ch = src.channels;
  const inStride = src.width * ch;
  const out = new Uint8Array(cropW * rows * ch);
  const { starts, counts, weights, ksize } = c;
  const s = src.data;
  for (let y = 0; y < rows; y++) {
    const rowBase = (row0 + y) * inStride;
    let o = y * cropW * ch;
    for (let xx = 0; xx < cropW; xx++) {
      const n = counts[xx]!;
      const kb = xx * ksize;
      let p = rowBase + starts[xx]! * ch;
      if (ch === 3) {
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let t = 0; t < n; t++, p += 3) {
          const k = weights[kb + t]!;
          s0 += s[p]! * k;
          s1 += s[p + 1]! * k;
          s2 += s[p + 2]! * k;
        }
        out[o++] = clip8(s0);
        out[o++] = clip8(s1);
        out[o++] = clip8(s2);
      } else {
        for (let b = 0; b < ch; b++) {
          let acc = HALF;
          for (let t = 0, q = p + b; t < n; t++, q += ch) acc += s[q]! * weights[kb + t]!;
          out[o++] = clip8(acc);
        }
      }
    }
  }
  return out;
}

/** Vertical pass: the output rows that `c` covers, from `tmp`, whose first row is source row `row0`. */
function verticalPass(tmp: Uint8Array, width: number, ch: number, c: AxisCoeffs, row0: number): Uint8Array {
  const cropH = c.starts.length;
  const stride = width * ch;
  const out = new Uint8Array(stride * cropH);
  const acc = new Float64Array(stride);
  const { starts, counts, weights, ksize } = c;
  for (let yy = 0; yy < cropH; yy++) {
    acc.fill(HALF);
    const n = counts[yy]!;
    const kb = yy * ksize;
    const first = starts[yy]! - row0;
    for (let t = 0; t < n; t++) {
      const k = weights[kb + t]!;
      const rb = (first + t) * stride;
      for (let i = 0; i < stride; i++) acc[i] += tmp[rb + i]! * k;
    }
    const ob = yy * stride;
    for (let i = 0; i < stride; i++) out[ob + i] = clip8(acc[i]!);
  }
  return out;
}

/** Pillow BICUBIC resize of an 8-bit image to outW × outH, computing only the crop window.
 * Returns cropW × cropH pixels with the source's channel count. */
export function bicubicWindow(src: Pixels, win: Window): Uint8Array {
  const { outW, outH, left, top, cropW, cropH } = win;
  const ch = src.channels;
  const needH = outW !== src.width;
  const needV = outH !== src.height;
  // Source rows the vertical pass reads (all of them map 1:1 when the height does not change).
  let row0 = top;
  let rows = cropH;
  let cv: AxisCoeffs | undefined;
  if (needV) {
    cv = bicubicCoeffs(src.height, outH, top, cropH);
    row0 = cv.starts[0]!;
    rows = cv.starts[cropH - 1]! + cv.counts[cropH - 1]! - row0;
  }
  let tmp: Uint8Array;
  if (needH) {
    tmp = horizontalPass(src, bicubicCoeffs(src.width, outW, left, cropW), row0, rows);
  } else {
    tmp = new Uint8Array(cropW * rows * ch);
    for (let y = 0; y < rows; y++) {
      const b = ((row0 + y) * src.width + left) * ch;
      tmp.set(src.data.subarray(b, b + cropW * ch), y * cropW * ch);
    }
  }
  return cv ? verticalPass(tmp, cropW, ch, cv, row0) : tmp;
}

/** Pillow NEAREST resize (modes P and 1), computing only the crop window. */
export function nearestWindow(src: Pixels, win: Window): Uint8Array {
  const { outW, outH, left, top, cropW, cropH } = win;
  const ch = src.channels;
  const xi = nearestIndices(src.width, outW);
  const yi = nearestIndices(src.height, outH);
  const out = new Uint8Array(cropW * cropH * ch);
  let o = 0;
  for (let y = 0; y < cropH; y++) {
    const rb = yi[top + y]! * src.width;
    for (let x = 0; x < cropW; x++) {
      const p = (rb + xi[left + x]!) * ch;
      for (let b = 0; b < ch; b++) out[o++] = src.data[p + b]!;
    }
  }
  return out;
}

/** RGBA → RGBa / LA → La (alpha last): c' = MULDIV255(c, a) = ((t >> 8) + t) >> 8, t = c·a + 128. */
export function premultiply(src: Pixels): Pixels {
  const { data, channels: ch } = src;
  const out = new Uint8Array(data.length);
  for (let p = 0; p < data.length; p += ch) {
    const a = data[p + ch - 1]!;
    for (let b = 0; b < ch - 1; b++) {
      const t = data[p + b]! * a + 128;
      out[p + b] = ((t >> 8) + t) >> 8;
    }
    out[p + ch - 1] = a;
  }
  return { ...src, data: out };
}

/** RGBa → RGBA / La → LA in place: alpha 0 or 255 keeps c, else min(255, ⌊255·c / a⌋). */
export function unpremultiplyInPlace(data: Uint8Array, ch: number): void {
  for (let p = 0; p < data.length; p += ch) {
    const a = data[p + ch - 1]!;
    if (a === 0 || a === 255) continue;
    for (let b = 0; b < ch - 1; b++) {
      const v = ((255 * data[p + b]!) / a) | 0;
      data[p + b] = v > 255 ? 255 : v;
    }
  }
}
