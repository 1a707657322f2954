// OpenAI CLIP's byte-level BPE tokenizer (clip/simple_tokenizer.py SimpleTokenizer + clip.tokenize),
// reproduced id for id:
//   1. clean: ftfy.fix_text, html.unescape twice, whitespace collapsed, lower-cased (text_clean.ts);
//   2. split into pre-tokens with the regex below (digits one by one, letter runs, other runs);
//   3. each pre-token's UTF-8 bytes → GPT-2 byte characters, `</w>` on the last symbol, merges applied
//      lowest rank first until none applies; the pieces are looked up in the vocabulary;
//   4. tokenize: [sot] + ids + [eot], zero-padded to the context length; too long → cut to
//      contextLength and the last position overwritten with eot (truncate) or an error.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { CaptionError, ConfigError, TokenizerFileError } from '../../../errors.js';
import {
  EOT_TEXT,
  SOT_TEXT,
  bytesToUnicode,
  parseOpenAiBpe,
  readOpenAiBpe,
  readTokenizerJson,
  readVocabMerges,
  type BpeTables,
} from './bpe_files.js';
import { PY_REGEX_WS, cleanCaption } from './text_clean.js';

// SimpleTokenizer's pattern, compiled IGNORECASE; `\s` is spelled as Python's `regex` reads it.
const PRETOKEN_RE = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_REGEX_WS}\\p{L}\\p{N}]+`,
  'giu',
);

const BYTE_TO_CHAR: readonly string[] = (() => {
  const t: string[] = new Array(256);
  for (const [b, c] of bytesToUnicode()) t[b] = c;
  return t;
})();
const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(bytesToUnicode().map(([b, c]) => [c, b]));

/** The pre-tokens of a caption (cleaned, lower-cased, split by SimpleTokenizer's pattern), as byte-level symbols. */
export function preTokenSymbols(text: string): string[] {
  const out: string[] = [];
  for (const m of cleanCaption(text).matchAll(PRETOKEN_RE)) {
    let sym = '';
    for (const b of new TextEncoder().encode(m[0])) sym += BYTE_TO_CHAR[b]!;
    out.push(sym);
  }
  return out;
}

/** Most pre-tokens kept in the BPE cache; the oldest entry goes first. */
const CACHE_LIMIT = 50_000;

export interface TokenizeOptions {
  /** Row length, sot and eot included (CLIP: 77). */
  contextLength?: number;
  /** Cut over-long captions (keeping eot last) instead of throwing. Default true. */
  truncate?: boolean;
}

export interface TokenizedBatch {
  /** Token ids, row-major [n, contextLength], zero-padded. */
  ids: Int32Array;
  shape: [number, number];
  /** Per row, the position CLIP pools the text features from: `argmax(ids)`, the first eot. */
  eotIndex: number[];
}

const textEncoder = new TextEncoder();
const utf8Replace = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

export class ClipTokenizer {
  readonly sotToken: number;
  readonly eotToken: number;
  readonly vocabSize: number;
  /** Where the vocabulary was read from. */
  readonly source: string;

  private readonly encoder: Map<string, number>;
  private readonly decoder: Map<number, string>;
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, readonly number[]>();

  private constructor(tables: BpeTables) {
    this.source = tables.source;
    this.encoder = tables.encoder;
    this.decoder = new Map([...tables.encoder].map(([piece, id]) => [id, piece]));
    this.ranks = new Map(tables.merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    const sot = this.encoder.get(SOT_TEXT);
    const eot = this.encoder.get(EOT_TEXT);
    if (sot === undefined || eot === undefined) {
      throw new TokenizerFileError(tables.source, `vocabulary lacks ${sot === undefined ? SOT_TEXT : EOT_TEXT}`);
    }
    this.sotToken = sot;
    this.eotToken = eot;
    this.vocabSize = this.encoder.size;
  }

  /** From OpenAI's `bpe_simple_vocab_16e6.txt.gz` (gzip or plain text). */
  static async fromBpeGz(file: string): Promise<ClipTokenizer> {
    return new ClipTokenizer(await readOpenAiBpe(file));
  }

  /**
   * From the decompressed text of OpenAI's merges file, e.g. one that a package ships as a module;
   * `source` names it in errors.
   */
  static fromBpeText(text: string, source = 'bpe text'): ClipTokenizer {
    return new ClipTokenizer(parseOpenAiBpe(text, source));
  }

  /** From a Hugging Face `vocab.json` and `merges.txt`. */
  static async fromVocabMerges(vocabJsonFile: string, mergesTxtFile: string): Promise<ClipTokenizer> {
    return new ClipTokenizer(await readVocabMerges(vocabJsonFile, mergesTxtFile));
  }

  /** From a Hugging Face `tokenizer.json`. */
  static async fromTokenizerJson(file: string): Promise<ClipTokenizer> {
    return new ClipTokenizer(await readTokenizerJson(file));
  }

  /**
   * From a model folder, using the first of: vocab.json + merges.txt, tokenizer.json,
   * bpe_simple_vocab_16e6.txt(.gz).
   */
  static async fromFolder(dir: string): Promise<ClipTokenizer> {
    const at = (name: string) => path.join(dir, name);
    if (existsSync(at('vocab.json')) && existsSync(at('merges.txt'))) {
      return ClipTokenizer.fromVocabMerges(at('vocab.json'), at('merges.txt'));
    }
    if (existsSync(at('tokenizer.json'))) return ClipTokenizer.fromTokenizerJson(at('tokenizer.json'));
    for (const name of ['bpe_simple_vocab_16e6.txt.gz', 'bpe_simple_vocab_16e6.txt']) {
      if (existsSync(at(name))) return ClipTokenizer.fromBpeGz(at(name));
    }
    throw new TokenizerFileError(
      dir,
      'no tokenizer files in this folder: looked for vocab.json + merges.txt, tokenizer.json, bpe_simple_vocab_16e6.txt.gz',
    );
  }

  /** The cleaned, lower-cased text that is split into pre-tokens. */
  clean(text: string): string {
    return cleanCaption(text);
  }

  /** BPE ids of `text`, without sot/eot (SimpleTokenizer.encode). */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const m of cleanCaption(text).matchAll(PRETOKEN_RE)) {
      const token = m[0];
      for (const id of this.encodePretoken(token)) ids.push(id);
    }
    return ids;
  }

  /** SimpleTokenizer.decode: pieces joined, bytes decoded as UTF-8 (bad bytes → U+FFFD), `</w>` → ' '. */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    ids.forEach((id, i) => {
      const piece = this.decoder.get(id);
      if (piece === undefined) throw new ConfigError(`ids[${i}]`, `id ${id} is not in the vocabulary (0..${this.vocabSize - 1})`);
      for (const ch of piece) bytes.push(CHAR_TO_BYTE.get(ch)!);
    });
    return utf8Replace.decode(Uint8Array.from(bytes)).replaceAll('</w>', ' ');
  }

  /** clip.tokenize: one zero-padded row of [sot, …ids, eot] per caption. */
  tokenize(texts: string | readonly string[], opts: TokenizeOptions = {}): TokenizedBatch {
    const ctx = opts.contextLength ?? 77;
    const truncate = opts.truncate ?? true;
    if (!Number.isInteger(ctx) || ctx < 1) throw new ConfigError('contextLength', `must be a positive integer, got ${ctx}`);
    const list: readonly unknown[] = typeof texts === 'string' ? [texts] : texts;
    if (!Array.isArray(list)) throw new CaptionError(0, `texts must be a string or an array of strings, got ${describe(texts)}`);
    const rows = list.map((t, i) => {
      if (typeof t !== 'string') throw new CaptionError(i, `caption must be a string, got ${describe(t)}`);
      return this.encode(t);
    });
    const ids = new Int32Array(rows.length * ctx);
    const eotIndex: number[] = [];
    rows.forEach((bpe, i) => {
      const tokens = [this.sotToken, ...bpe, this.eotToken];
      if (tokens.length > ctx) {
        if (!truncate) {
          throw new CaptionError(
            i,
            `${tokens.length} tokens (sot + ${bpe.length} BPE tokens + eot) exceed the context length ${ctx}; ` +
              'shorten the caption or tokenize with truncate: true',
          );
        }
        tokens.length = ctx;
        tokens[ctx - 1] = this.eotToken;
      }
      ids.set(tokens, i * ctx);
      eotIndex.push(argmax(tokens));
    });
    return { ids, shape: [rows.length, ctx], eotIndex };
  }

  private encodePretoken(token: string): readonly number[] {
    // SimpleTokenizer seeds its cache with the two special tokens, so they map straight to their ids.
    if (token === SOT_TEXT) return [this.sotToken];
    if (token === EOT_TEXT) return [this.eotToken];
    const hit = this.cache.get(token);
    if (hit) return hit;
    let chars = '';
    for (const b of textEncoder.encode(token)) chars += BYTE_TO_CHAR[b];
    const ids = this.bpe(chars).map((piece) => {
      const id = this.encoder.get(piece);
      if (id === undefined) throw new TokenizerFileError(this.source, `BPE piece ${JSON.stringify(piece)} is not in the vocabulary`);
      return id;
    });
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, ids);
    return ids;
  }

  /** Merge the symbols of one pre-token, lowest-ranked adjacent pair first, every occurrence at once. */
  private bpe(chars: string): string[] {
    let word = [...chars];
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best === Infinity) break;
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i]!);
          i += 1;
        }
      }
      word = next;
    }
    return word;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}
