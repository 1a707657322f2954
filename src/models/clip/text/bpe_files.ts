// Readers for the three ways a CLIP BPE vocabulary is shipped:
// * OpenAI's `bpe_simple_vocab_16e6.txt.gz`: merges only; the vocabulary is derived from them
//   (256 byte symbols, the same with `</w>`, one entry per merge, then <|startoftext|>, <|endoftext|>);
// * Hugging Face `vocab.json` + `merges.txt`;
// * Hugging Face `tokenizer.json` (model.vocab, model.merges, added_tokens).

import { readFile } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { TokenizerFileError } from '../../../errors.js';

const gunzipAsync = promisify(gunzip);

export const SOT_TEXT = '<|startoftext|>';
export const EOT_TEXT = '<|endoftext|>';

/** Merges of OpenAI's file that CLIP uses: lines 1..48894 (49152 − 256 − 2; line 0 is the header). */
export const OPENAI_MERGE_COUNT = 49152 - 256 - 2;

export interface BpeTables {
  /** BPE piece → id. */
  encoder: Map<string, number>;
  /** Merge pairs in rank order. */
  merges: Array<[string, string]>;
  /** Where the tables came from, for error messages. */
  source: string;
}

/**
 * GPT-2's reversible byte → character map: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100 upwards, so no BPE symbol is whitespace or a control character. Returned in the
 * order OpenAI's vocabulary lists them (the printable ranges first).
 */
export function bytesToUnicode(): Array<[number, string]> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]);
}

async function readText(file: string): Promise<string> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new TokenizerFileError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      raw = await gunzipAsync(raw);
    } catch (err) {
      throw new TokenizerFileError(file, `is not a valid gzip file: ${String(err)}`, { cause: err });
    }
  }
  return raw.toString('utf8');
}

function parseMergeLine(line: string, file: string, where: string): [string, string] {
  // Python's str.split(): runs of whitespace separate the parts.
  const parts = line.trim().split(/\s+/);
  if (parts.length !== 2 || parts[0] === '') {
    throw new TokenizerFileError(file, `${where}: expected two symbols separated by a space, got ${JSON.stringify(line)}`);
  }
  return [parts[0]!, parts[1]!];
}

/** OpenAI's merges file (gzip or plain text). */
export async function readOpenAiBpe(file: string): Promise<BpeTables> {
  return parseOpenAiBpe(await readText(file), file);
}

/** The text of OpenAI's merges file; `file` names it in errors. */
export function parseOpenAiBpe(text: string, file: string): BpeTables {
  const lines = text.split('\n');
  if (lines.length < OPENAI_MERGE_COUNT + 1) {
    throw new TokenizerFileError(file, `has ${Math.max(0, lines.length - 1)} merge lines after the header, CLIP needs ${OPENAI_MERGE_COUNT}`);
  }
  const merges: Array<[string, string]> = [];
  for (let i = 1; i <= OPENAI_MERGE_COUNT; i++) merges.push(parseMergeLine(lines[i]!, file, `line ${i + 1}`));
  const symbols = bytesToUnicode().map(([, c]) => c);
  const vocab = [...symbols, ...symbols.map((s) => `${s}</w>`), ...merges.map(([a, b]) => a + b), SOT_TEXT, EOT_TEXT];
  const encoder = new Map<string, number>();
  vocab.forEach((piece, id) => encoder.set(piece, id));
  return { encoder, merges, source: file };
}

function vocabFromObject(obj: unknown, file: string, field: string): Map<string, number> {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new TokenizerFileError(file, `${field} must be an object mapping pieces to ids`);
  }
  const encoder = new Map<string, number>();
  for (const [piece, id] of Object.entries(obj as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new TokenizerFileError(file, `${field}[${JSON.stringify(piece)}] must be a non-negative integer id, got ${JSON.stringify(id)}`);
    }
    encoder.set(piece, id);
  }
  return encoder;
}

async function readJson(file: string): Promise<unknown> {
  const text = await readText(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenizerFileError(file, `is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Hugging Face vocab.json + merges.txt. */
export async function readVocabMerges(vocabJsonFile: string, mergesTxtFile: string): Promise<BpeTables> {
  const encoder = vocabFromObject(await readJson(vocabJsonFile), vocabJsonFile, 'vocab');
  const lines = (await readText(mergesTxtFile)).split('\n');
  const merges: Array<[string, string]> = [];
  lines.forEach((line, i) => {
    if ((i === 0 && line.startsWith('#version')) || line.trim() === '') return;
    merges.push(parseMergeLine(line, mergesTxtFile, `line ${i + 1}`));
  });
  return { encoder, merges, source: vocabJsonFile };
}

/** Hugging Face tokenizer.json (a BPE model). */
export async function readTokenizerJson(file: string): Promise<BpeTables> {
  const json = (await readJson(file)) as { model?: { type?: unknown; vocab?: unknown; merges?: unknown }; added_tokens?: unknown };
  const model = json?.model;
  if (!model || typeof model !== 'object') throw new TokenizerFileError(file, 'has no "model" object');
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new TokenizerFileError(file, `model.type is ${JSON.stringify(model.type)}, CLIP needs "BPE"`);
  }
  const encoder = vocabFromObject(model.vocab, file, 'model.vocab');
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens as Array<{ id?: unknown; content?: unknown }>) {
      if (typeof t?.content === 'string' && typeof t.id === 'number' && !encoder.has(t.content)) encoder.set(t.content, t.id);
    }
  }
  if (!Array.isArray(model.merges)) throw new TokenizerFileError(file, 'model.merges must be an array');
  const merges = (model.merges as unknown[]).map((m, i): [string, string] => {
    if (typeof m === 'string') return parseMergeLine(m, file, `model.merges[${i}]`);
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    throw new TokenizerFileError(file, `model.merges[${i}] must be "a b" or ["a", "b"], got ${JSON.stringify(m)}`);
  });
  return { encoder, merges, source: file };
}
