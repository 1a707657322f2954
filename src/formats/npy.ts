// NumPy .npy (format 1.0) for float32 C-order matrices: the magic, a padded header dict, the data.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ClipfitError } from '../errors.js';

export function npyBytes(data: Float32Array, shape: readonly number[]): Uint8Array {
  if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new ClipfitError(`npy: shape [${shape}] does not match ${data.length} values`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

export function parseNpy(bytes: Uint8Array, file = '<buffer>'): { data: Float32Array; shape: number[] } {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || !magic.every((b, i) => bytes[i] === b)) throw new ClipfitError(`${file}: not a .npy file`);
  const hlen = new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + hlen));
  if (!header.includes("'descr': '<f4'") || header.includes("'fortran_order': True")) throw new ClipfitError(`${file}: only little-endian float32 C-order arrays are supported`);
  const m = /'shape': \(([^)]*)\)/.exec(header);
  const shape = (m?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  // A copy into a fresh buffer: a Node Buffer's slice() is a view into its shared pool.
  const body = new Uint8Array(bytes.subarray(10 + hlen));
  return { data: new Float32Array(body.buffer, 0, body.byteLength / 4), shape };
}

/** Write atomically (temporary name, then rename). */
export async function writeNpy(file: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fsp.writeFile(tmp, npyBytes(data, shape));
  await fsp.rename(tmp, file);
}
