// The record format shared by the index log and snapshot. A record is framed as
//   u32 length | u32 crc32(payload) | payload            (little-endian)
// and its payload starts with a type byte:
//   1 upsert:  u32 n, then n × (str id, str metadata JSON or empty, dim × f32 vector)
//   2 delete:  str id
//   3 clear:   str model
//   4 slots:   u32 n, then n × (u32 slot, str id, str metadata, dim × f32)   (snapshot only)
// where str is u32 byte length + UTF-8. An empty metadata string means "no metadata" (no JSON
// text is empty). Vectors are raw float32 in the machine's byte order, which must be little-endian.

import os from 'node:os';
import { ClipfitError } from '../errors.js';
import type { Metadata } from './index_types.js';
import { crc32 } from './crc32.js';

if (os.endianness() !== 'LE') throw new ClipfitError('clipfit vector index files are little-endian; this machine is big-endian');

export const FRAME_BYTES = 8;
/** Longest payload a reader accepts; a larger length field is torn or garbage. Writers split below it. */
export const MAX_PAYLOAD = 1 << 30;
/** Writers start a new record past this many payload bytes. */
export const SPLIT_PAYLOAD = 64 << 20;

export const T_UPSERT = 1;
export const T_DELETE = 2;
export const T_CLEAR = 3;
export const T_SLOTS = 4;

/** One decoded item; `vector` views the payload bytes (copy them out before the payload is reused). */
export interface RecordItem {
  slot: number;
  id: string;
  metadata: Metadata | undefined;
  vectorBytes: Uint8Array;
}

export type DecodedRecord =
  | { type: typeof T_UPSERT | typeof T_SLOTS; items: RecordItem[] }
  | { type: typeof T_DELETE; id: string }
  | { type: typeof T_CLEAR; model: string };

export interface EncodeItem {
  slot?: number;
  id: string;
  metadata: Metadata | undefined;
  vector: Float32Array;
}

const strBytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const metaText = (m: Metadata | undefined): string => (m === undefined ? '' : JSON.stringify(m));

/** Frame a payload: length, crc, bytes. */
export function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(FRAME_BYTES);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

/** Item records (upsert, or slots when `withSlots`), split so no payload exceeds SPLIT_PAYLOAD. */
export function encodeItems(items: readonly EncodeItem[], withSlots: boolean): Buffer[] {
  const out: Buffer[] = [];
  let parts: Buffer[] = [];
  let bytes = 0;
  let n = 0;
  const close = () => {
    if (!n) return;
    const head = Buffer.alloc(5);
    head.writeUInt8(withSlots ? T_SLOTS : T_UPSERT, 0);
    head.writeUInt32LE(n, 1);
    out.push(frame(Buffer.concat([head, ...parts])));
    parts = [];
    bytes = 0;
    n = 0;
  };
  for (const it of items) {
    const id = strBytes(it.id);
    const meta = strBytes(metaText(it.metadata));
    const head = Buffer.alloc((withSlots ? 4 : 0) + 4);
    if (withSlots) head.writeUInt32LE(it.slot ?? 0, 0);
    head.writeUInt32LE(id.length, withSlots ? 4 : 0);
    const metaLen = Buffer.alloc(4);
    metaLen.writeUInt32LE(meta.length, 0);
    const vec = Buffer.from(it.vector.buffer, it.vector.byteOffset, it.vector.byteLength);
    const size = head.length + id.length + 4 + meta.length + vec.length;
    if (n && bytes + size > SPLIT_PAYLOAD) close();
    parts.push(head, id, metaLen, meta, vec);
    bytes += size;
    n++;
  }
  close();
  return out;
}

/** A record holding one string: type byte, u32 length, UTF-8 bytes. */
function stringRecord(type: number, value: string): Buffer {
  const s = strBytes(value);
  const p = Buffer.alloc(5 + s.length);
  p.writeUInt8(type, 0);
  p.writeUInt32LE(s.length, 1);
  s.copy(p, 5);
  return frame(p);
}

export const encodeDelete = (id: string): Buffer => stringRecord(T_DELETE, id);

export const encodeClear = (model: string): Buffer => stringRecord(T_CLEAR, model);

/** Decode a payload whose crc checked out; throws a ClipfitError saying what is wrong otherwise (its caller names the file and byte). */
export function decodePayload(p: Buffer, dim: number): DecodedRecord {
  let at = 0;
  const need = (k: number) => {
    if (at + k > p.length) throw new ClipfitError(`payload ends at byte ${p.length}, needs ${at + k}`);
  };
  const u32 = () => {
    need(4);
    const v = p.readUInt32LE(at);
    at += 4;
    return v;
  };
  const str = () => {
    const len = u32();
    need(len);
    const s = p.toString('utf8', at, at + len);
    at += len;
    return s;
  };
  need(1);
  const type = p.readUInt8(at++);
  let rec: DecodedRecord;
  if (type === T_UPSERT || type === T_SLOTS) {
    const n = u32();
    const items: RecordItem[] = [];
    for (let i = 0; i < n; i++) {
      const slot = type === T_SLOTS ? u32() : -1;
      const id = str();
      const meta = str();
      need(dim * 4);
      const vectorBytes = p.subarray(at, at + dim * 4);
      at += dim * 4;
      let metadata: Metadata | undefined;
      if (meta !== '') {
        const v: unknown = JSON.parse(meta);
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ClipfitError(`item '${id}' metadata is not a JSON object`);
        metadata = v as Metadata;
      }
      items.push({ slot, id, metadata, vectorBytes });
    }
    rec = { type, items };
  } else if (type === T_DELETE) rec = { type, id: str() };
  else if (type === T_CLEAR) rec = { type, model: str() };
  else throw new ClipfitError(`unknown record type ${type}`);
  if (at !== p.length) throw new ClipfitError(`${p.length - at} stray bytes after the record (wrong dimension?)`);
  return rec;
}
