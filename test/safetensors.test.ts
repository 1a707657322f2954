// safetensors reading and writing: the fixture files, every dtype, and malformed files.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { SafetensorsError } from '../src/errors.js';
import { floatToHalf, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors } from '../src/runtime/safetensors.js';
import { requireFixture } from './fixtures.js';

/** A file written by hand: header JSON as given, then the data bytes. */
function handMade(header: object | string, data: Uint8Array = new Uint8Array()): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

test('reads the reference fixture: scalars, F32, I64 and metadata', async (t) => {
  const file = requireFixture('tiny/forward.safetensors', t);
  if (!file) return;
  const f = await readSafetensors(file);
  assert.equal(f.metadata['variant'], 'A');
  assert.deepEqual(f.tensors.get('loss')!.shape, []);
  assert.ok(Math.abs((f.tensors.get('loss')!.data as Float32Array)[0]! - 1.96146) < 1e-5);
  const texts = f.tensors.get('texts')!;
  assert.equal(texts.dtype, 'I64');
  assert.deepEqual(texts.shape, [6, 77]);
  assert.equal((texts.data as BigInt64Array)[0], 49406n);
});

test('round-trips F32, F64, I64, I32 and U8 with metadata', () => {
  const bytes = serializeSafetensors(
    [
      ['a', { shape: [2, 2], data: Float32Array.from([1, -2, 3.5, 4]) }],
      ['s', { shape: [], data: Float32Array.from([7]) }],
      ['d', { shape: [1], data: Float64Array.from([Math.PI]) }],
      ['i', { shape: [3], data: BigInt64Array.from([1n, -2n, 9007199254740993n]) }],
      ['j', { shape: [2], data: Int32Array.from([5, -6]) }],
      ['u', { shape: [3], data: Uint8Array.from([0, 128, 255]) }],
    ],
    { producer: 'test' },
  );
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0, 'header padded to a multiple of 8');
  const f = parseSafetensors(bytes);
  assert.equal(f.metadata['producer'], 'test');
  assert.deepEqual(Array.from(f.tensors.get('a')!.data as Float32Array), [1, -2, 3.5, 4]);
  assert.deepEqual(f.tensors.get('s')!.shape, []);
  assert.equal((f.tensors.get('d')!.data as Float64Array)[0], Math.PI);
  assert.equal((f.tensors.get('i')!.data as BigInt64Array)[2], 9007199254740993n);
  assert.deepEqual(Array.from(f.tensors.get('j')!.data as Int32Array), [5, -6]);
  assert.deepEqual(Array.from(f.tensors.get('u')!.data as Uint8Array), [0, 128, 255]);
});

test('reads F16 and BF16 as float32', () => {
  // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 2^-24 = 0x0001.
  const f16 = new Uint8Array(Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001]).buffer);
  // BF16: the top 16 bits of float32 1.5 (0x3FC00000) and -0.15625 (0xBE200000).
  const bf16 = new Uint8Array(Uint16Array.from([0x3fc0, 0xbe20]).buffer);
  const data = new Uint8Array(12);
  data.set(f16, 0);
  data.set(bf16, 8);
  const f = parseSafetensors(
    handMade({ h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] }, b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] } }, data),
  );
  assert.deepEqual(Array.from(f.tensors.get('h')!.data as Float32Array), [1, -2, 65504, 2 ** -24]);
  assert.deepEqual(Array.from(f.tensors.get('b')!.data as Float32Array), [1.5, -0.15625]);
});

test('malformed files are SafetensorsErrors naming the file and the tensor', () => {
  const ok = serializeSafetensors([['w', { shape: [4], data: new Float32Array(4) }]]);
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(3), /empty.*truncated: 3 bytes/],
    ['short header', ok.subarray(0, 20), /short header.*truncated: header needs/],
    ['cut data', ok.subarray(0, ok.length - 4), /cut data.*truncated: tensor 'w' ends at 16/],
    ['not json', handMade('{"w": [1,'), /not json.*bad header: not valid UTF-8 JSON/],
    ['huge header', (() => { const b = new Uint8Array(16); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); return b; })(), /implausible/],
    ['bad dtype', handMade({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /tensor 'w': unsupported dtype Q4/],
    ['bad shape', handMade({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor 'w': bad shape/],
    ['size mismatch', handMade({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor 'w': data_offsets span 4 bytes but F32\[2\] needs 8/],
    [
      'overlap',
      handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)),
      /tensors 'a' and 'b' overlap/,
    ],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(() => parseSafetensors(bytes, name), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `${name}: ${String(e)}`);
      assert.match(e.message, re, name);
      return true;
    });
  }
});

test('writing is atomic: a failed write leaves the old file and no temporary behind', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-st-'));
  const file = path.join(dir, 'w.safetensors');
  await writeSafetensors(file, [['w', { shape: [2], data: Float32Array.from([1, 2]) }]]);
  // A shape that does not match the data fails before anything is written.
  await assert.rejects(writeSafetensors(file, [['w', { shape: [3], data: Float32Array.from([9, 9]) }]]), SafetensorsError);
  const f = await readSafetensors(file);
  assert.deepEqual(Array.from(f.tensors.get('w')!.data as Float32Array), [1, 2]);
  assert.deepEqual(readdirSync(dir), ['w.safetensors']);
  writeFileSync(path.join(dir, 'bad.safetensors'), new Uint8Array(2));
  await assert.rejects(readSafetensors(path.join(dir, 'bad.safetensors')), /bad\.safetensors.*truncated/);
  await assert.rejects(readSafetensors(path.join(dir, 'missing.safetensors')), /missing\.safetensors.*cannot read: ENOENT/);
});

test('writes F16 from float32 with round-to-nearest-even, and reads it back', () => {
  // Bit patterns from IEEE 754 binary16: 1 = 0x3C00, -2 = 0xC000, 0.1 → 0x2E66 (0.0999755859375),
  // 65504 = 0x7BFF (max), 65520 rounds up to +Inf 0x7C00, 2⁻²⁴ = 0x0001 (smallest subnormal),
  // 2⁻²⁵ is a tie between 0 and 2⁻²⁴ and goes to even (0), 1 + 2⁻¹¹ is a tie that stays at 1.
  const cases: [number, number][] = [
    [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff], [65520, 0x7c00], [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [-0, 0x8000], [Infinity, 0x7c00],
  ];
  for (const [x, bits] of cases) assert.equal(floatToHalf(x), bits, `floatToHalf(${x})`);
  assert.equal(floatToHalf(NaN) & 0x7c00, 0x7c00);
  const data = new Float32Array([1, -2, 0.1, 65504, 3.14159, -1e-3]);
  const bytes = serializeSafetensors([['w', { shape: [2, 3], data, dtype: 'F16' }]]);
  const back = parseSafetensors(bytes).tensors.get('w')!;
  assert.equal(back.dtype, 'F16');
  assert.equal(bytes.length - 8 - Number(new DataView(bytes.buffer).getBigUint64(0, true)), 12); // 2 bytes each
  const got = back.data as Float32Array;
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(got[i]! - data[i]!) <= Math.abs(data[i]!) * 2 ** -11, `${got[i]} vs ${data[i]}`);
  assert.throws(() => serializeSafetensors([['i', { shape: [1], data: new Int32Array([1]), dtype: 'F16' }]]), SafetensorsError);
});
