// Document and DocumentArray: the data model of Jina's docarray as Finetuner uses it. A text-to-image
// training pair is a root Document with two chunks, one `modality: 'text'` (text) and one
// `modality: 'image'` (uri, blob or tensor); labels live in `tags.finetuner_label`.
// JSON form (one Document): {id, text?, uri?, blob? (base64), tensor? {shape, data}, embedding?,
// modality?, tags, chunks?, matches?, scores?}; floats as plain numbers (float32 → double → float32
// round-trips exactly).

import { seededRandom } from '../util/random.js';
import { randomBytes } from 'node:crypto';
import { DataError } from '../errors.js';

export type Modality = 'text' | 'image';

/** The tag Finetuner reads a document's class (or pair group) from. */
export const LABEL_TAG = 'finetuner_label';

/** A row-major (n, dim) float matrix. */
export interface Matrix {
  data: Float32Array;
  shape: [number, number];
}

export interface DocumentInit {
  id?: string;
  text?: string;
  uri?: string;
  blob?: Uint8Array;
  tensor?: Float32Array;
  /** Required with `tensor`; its product must equal tensor.length. */
  shape?: number[];
  embedding?: Float32Array;
  modality?: Modality;
  tags?: Record<string, unknown>;
  chunks?: Iterable<Document | DocumentInit>;
  matches?: Iterable<Document | DocumentInit>;
  scores?: Record<string, number>;
  mimeType?: string;
}

/** 32 random hex digits, like docarray's uuid4().hex. */
export const randomId = (): string => randomBytes(16).toString('hex');

export class Document {
  id: string;
  text?: string;
  uri?: string;
  blob?: Uint8Array;
  tensor?: Float32Array;
  shape?: number[];
  embedding?: Float32Array;
  modality?: Modality;
  mimeType?: string;
  tags: Record<string, unknown>;
  chunks: DocumentArray;
  /** Nearest neighbours, best first; each match carries its `scores` (e.g. {cosine: 0.83}). */
  matches: DocumentArray;
  scores: Record<string, number>;

  constructor(init: DocumentInit = {}) {
    this.id = init.id ?? randomId();
    if (init.text !== undefined) this.text = init.text;
    if (init.uri !== undefined) this.uri = init.uri;
    if (init.blob !== undefined) this.blob = init.blob;
    if (init.tensor !== undefined) {
      const shape = init.shape ?? [init.tensor.length];
      if (shape.reduce((a, b) => a * b, 1) !== init.tensor.length) {
        throw new DataError(`document ${this.id}`, undefined, 'shape', `shape [${shape}] does not hold ${init.tensor.length} values`);
      }
      this.tensor = init.tensor;
      this.shape = shape;
    }
    if (init.embedding !== undefined) this.embedding = init.embedding;
    if (init.modality !== undefined) this.modality = init.modality;
    if (init.mimeType !== undefined) this.mimeType = init.mimeType;
    this.tags = { ...(init.tags ?? {}) };
    this.chunks = new DocumentArray(init.chunks);
    this.matches = new DocumentArray(init.matches);
    this.scores = { ...(init.scores ?? {}) };
  }

  /** The text, else the blob, else the tensor (docarray's `content`). */
  get content(): string | Uint8Array | Float32Array | undefined {
    return this.text ?? this.blob ?? this.tensor;
  }

  toJSON(): DocumentJson {
    const j: DocumentJson = { id: this.id };
    if (this.text !== undefined) j.text = this.text;
    if (this.uri !== undefined) j.uri = this.uri;
    if (this.blob !== undefined) j.blob = Buffer.from(this.blob.buffer, this.blob.byteOffset, this.blob.byteLength).toString('base64');
    if (this.tensor !== undefined) j.tensor = { shape: this.shape ?? [this.tensor.length], data: Array.from(this.tensor) };
    if (this.embedding !== undefined) j.embedding = Array.from(this.embedding);
    if (this.modality !== undefined) j.modality = this.modality;
    if (this.mimeType !== undefined) j.mime_type = this.mimeType;
    j.tags = this.tags;
    if (this.chunks.length) j.chunks = this.chunks.map((c) => c.toJSON());
    if (this.matches.length) j.matches = this.matches.map((m) => m.toJSON());
    if (Object.keys(this.scores).length) j.scores = this.scores;
    return j;
  }

  /** Parse Document JSON; `where` names the source (file and line) in errors. */
  static fromJSON(json: unknown, where = 'document'): Document {
    if (!isObject(json)) throw new DataError(where, undefined, undefined, `a Document must be a JSON object, got ${typeName(json)}`);
    const init: DocumentInit = {};
    const str = (k: string): string | undefined => {
      const v = json[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string') throw new DataError(where, undefined, k, `must be a string, got ${typeName(v)}`);
      return v;
    };
    const floats = (k: string, v: unknown): Float32Array => {
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new DataError(where, undefined, k, 'must be an array of numbers');
      return Float32Array.from(v as number[]);
    };
    const id = str('id');
    if (id !== undefined) init.id = id;
    const text = str('text');
    if (text !== undefined) init.text = text;
    const uri = str('uri');
    if (uri !== undefined) init.uri = uri;
    const blob = str('blob');
    if (blob !== undefined) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(blob)) throw new DataError(where, undefined, 'blob', 'is not base64');
      init.blob = new Uint8Array(Buffer.from(blob, 'base64'));
    }
    if (json['tensor'] !== undefined && json['tensor'] !== null) {
      const t = json['tensor'];
      if (Array.isArray(t)) init.tensor = floats('tensor', t);
      else if (isObject(t)) {
        init.tensor = floats('tensor.data', t['data']);
        const shape = t['shape'];
        if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || (d as number) < 0)) {
          throw new DataError(where, undefined, 'tensor.shape', 'must be an array of non-negative integers');
        }
        init.shape = shape as number[];
      } else throw new DataError(where, undefined, 'tensor', 'must be {shape, data} or an array of numbers');
    }
    if (json['embedding'] !== undefined && json['embedding'] !== null) init.embedding = floats('embedding', json['embedding']);
    const modality = str('modality');
    if (modality !== undefined) {
      if (modality !== 'text' && modality !== 'image') throw new DataError(where, undefined, 'modality', `must be 'text' or 'image', got '${modality}'`);
      init.modality = modality;
    }
    const mime = str('mime_type');
    if (mime !== undefined) init.mimeType = mime;
    if (json['tags'] !== undefined && json['tags'] !== null) {
      if (!isObject(json['tags'])) throw new DataError(where, undefined, 'tags', 'must be an object');
      init.tags = json['tags'];
    }
    if (json['scores'] !== undefined && json['scores'] !== null) init.scores = parseScores(json['scores'], where);
    const kids = (k: 'chunks' | 'matches'): Document[] | undefined => {
      const v = json[k];
      if (v === undefined || v === null) return undefined;
      if (!Array.isArray(v)) throw new DataError(where, undefined, k, 'must be an array of Documents');
      return v.map((c, i) => Document.fromJSON(c, `${where} ${k}[${i}]`));
    };
    const chunks = kids('chunks');
    if (chunks) init.chunks = chunks;
    const matches = kids('matches');
    if (matches) init.matches = matches;
    try {
      return new Document(init);
    } catch (err) {
      if (err instanceof DataError) throw new DataError(where, undefined, err.field, err.detail);
      throw err;
    }
  }
}

export interface DocumentJson {
  id: string;
  text?: string;
  uri?: string;
  blob?: string;
  tensor?: { shape: number[]; data: number[] };
  embedding?: number[];
  modality?: Modality;
  mime_type?: string;
  tags?: Record<string, unknown>;
  chunks?: DocumentJson[];
  matches?: DocumentJson[];
  scores?: Record<string, number>;
}

/** Scores as {name: number} or docarray's {name: {value: number}}. */
function parseScores(v: unknown, where: string): Record<string, number> {
  if (!isObject(v)) throw new DataError(where, undefined, 'scores', 'must be an object');
  const out: Record<string, number> = {};
  for (const [k, s] of Object.entries(v)) {
    const n = isObject(s) ? s['value'] : s;
    if (typeof n !== 'number') throw new DataError(where, undefined, `scores.${k}`, 'must be a number or {value: number}');
    out[k] = n;
  }
  return out;
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** A permutation of 0..n-1 by a Fisher–Yates shuffle driven by `seededRandom(seed)`. */
export { seededRandom };

export function seededPermutation(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

export interface SplitOptions {
  /** Keep documents with the same key on one side (default: none; 'label' uses tags.finetuner_label). */
  groupBy?: 'label' | ((doc: Document) => string);
}

/** An array of Documents. `map` and other builtins return plain arrays (species is Array); `filter`,
 * `slice`, `split` and `shuffle` return DocumentArrays. */
export class DocumentArray extends Array<Document> {
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  /** From Documents or DocumentInits (wrapped into Documents); a number gives that many empty slots
   * (Array.from on a subclass asks for it). */
  constructor(docs?: Iterable<Document | DocumentInit> | number) {
    super();
    if (typeof docs === 'number') this.length = docs;
    else if (docs) for (const d of docs) this.push(d instanceof Document ? d : new Document(d));
  }

  override filter(pred: (d: Document, i: number, a: Document[]) => unknown): DocumentArray {
    return new DocumentArray(Array.prototype.filter.call(this, pred) as Document[]);
  }

  override slice(start?: number, end?: number): DocumentArray {
    return new DocumentArray(Array.prototype.slice.call(this, start, end) as Document[]);
  }

  /** Each document's `text` (undefined where it has none). */
  get texts(): (string | undefined)[] {
    return this.map((d) => d.text);
  }

  get uris(): (string | undefined)[] {
    return this.map((d) => d.uri);
  }

  /** All embeddings as one (n, dim) matrix; throws when one is missing or the dims differ. */
  get embeddings(): Matrix {
    const n = this.length;
    const dim = n ? this[0]!.embedding?.length ?? -1 : 0;
    const data = new Float32Array(n * Math.max(dim, 0));
    for (let i = 0; i < n; i++) {
      const e = this[i]!.embedding;
      if (!e) throw new DataError('DocumentArray', undefined, `[${i}].embedding`, `document ${this[i]!.id} has no embedding`);
      if (e.length !== dim) throw new DataError('DocumentArray', undefined, `[${i}].embedding`, `has ${e.length} values, document 0 has ${dim}`);
      data.set(e, i * dim);
    }
    return { data, shape: [n, Math.max(dim, 0)] };
  }

  /** Set row i of an (n, dim) matrix (or the i-th of n vectors) as document i's embedding (copied). */
  set embeddings(m: Matrix | Float32Array[]) {
    if (Array.isArray(m)) {
      if (m.length !== this.length) throw new DataError('DocumentArray', undefined, 'embeddings', `${m.length} vectors for ${this.length} documents`);
      m.forEach((v, i) => (this[i]!.embedding = Float32Array.from(v)));
      return;
    }
    const [n, dim] = m.shape;
    if (n !== this.length) throw new DataError('DocumentArray', undefined, 'embeddings', `${n} rows for ${this.length} documents`);
    if (m.data.length !== n * dim) throw new DataError('DocumentArray', undefined, 'embeddings', `shape [${n}, ${dim}] does not hold ${m.data.length} values`);
    for (let i = 0; i < n; i++) this[i]!.embedding = m.data.slice(i * dim, (i + 1) * dim);
  }

  /** A new DocumentArray in a seeded random order (same seed, same order). */
  shuffle(seed = 0): DocumentArray {
    return new DocumentArray(seededPermutation(this.length, seed).map((i) => this[i]!));
  }

  /**
   * Deterministic split for validation: `[train, val]`, where val holds round(ratio·n) documents
   * (whole groups, when grouped: groups are taken in seeded order until val reaches that size)
   * picked by a seeded shuffle; both keep the original order. ratio in [0, 1].
   */
  split(ratio: number, seed = 0, opts: SplitOptions = {}): [DocumentArray, DocumentArray] {
    if (!(ratio >= 0 && ratio <= 1)) throw new DataError('DocumentArray', undefined, 'ratio', `must be in [0, 1], got ${ratio}`);
    const want = Math.round(ratio * this.length);
    const key = opts.groupBy === 'label' ? (d: Document) => String(d.tags[LABEL_TAG] ?? d.id) : opts.groupBy;
    const inVal = new Uint8Array(this.length);
    if (!key) {
      const perm = seededPermutation(this.length, seed);
      for (let k = 0; k < want; k++) inVal[perm[k]!] = 1;
    } else {
      const groups = new Map<string, number[]>();
      this.forEach((d, i) => {
        const g = key(d);
        const list = groups.get(g);
        if (list) list.push(i);
        else groups.set(g, [i]);
      });
      const lists = [...groups.values()];
      let taken = 0;
      for (const gi of seededPermutation(lists.length, seed)) {
        if (taken >= want) break;
        for (const i of lists[gi]!) inVal[i] = 1;
        taken += lists[gi]!.length;
      }
    }
    const train = new DocumentArray();
    const val = new DocumentArray();
    this.forEach((d, i) => (inVal[i] ? val : train).push(d));
    return [train, val];
  }

  toJSON(): DocumentJson[] {
    return this.map((d) => d.toJSON());
  }

  /** From a JSON string or an already parsed array of Document JSON. */
  static fromJSON(json: unknown, where = 'DocumentArray'): DocumentArray {
    const v = typeof json === 'string' ? parseJsonString(json, where) : json;
    if (!Array.isArray(v)) throw new DataError(where, undefined, undefined, `a DocumentArray must be a JSON array, got ${typeName(v)}`);
    return new DocumentArray(v.map((d, i) => Document.fromJSON(d, `${where}[${i}]`)));
  }
}

function parseJsonString(s: string, where: string): unknown {
  try {
    return JSON.parse(s);
  } catch (err) {
    throw new DataError(where, undefined, undefined, `invalid JSON: ${(err as Error).message}`, 'row', { cause: err });
  }
}


// ---- text-to-image pairs --------------------------------------------------------------------------

export type ImageSource = { uri: string; blob?: Uint8Array } | { blob: Uint8Array; uri?: string };

/** A root Document with a text chunk and an image chunk, as Finetuner's CLIP training expects. */
export function pairDocument(text: string, image: ImageSource, tags: Record<string, unknown> = {}): Document {
  const img: DocumentInit = { modality: 'image' };
  if (image.uri !== undefined) img.uri = image.uri;
  if (image.blob !== undefined) img.blob = image.blob;
  return new Document({ chunks: [{ text, modality: 'text' }, img], tags });
}

/** True when doc has exactly one text chunk with text and one image chunk with a uri, blob or tensor. */
export function isPair(doc: Document): boolean {
  if (doc.chunks.length !== 2) return false;
  const t = doc.chunks.filter((c) => c.modality === 'text' && typeof c.text === 'string');
  const i = doc.chunks.filter((c) => c.modality === 'image' && (c.uri !== undefined || c.blob !== undefined || c.tensor !== undefined));
  return t.length === 1 && i.length === 1;
}

function pairChunk(doc: Document, modality: Modality): Document {
  if (!isPair(doc)) {
    throw new DataError(`document ${doc.id}`, undefined, 'chunks', 'is not a text-image pair (needs one text chunk and one image chunk)');
  }
  return doc.chunks.find((c) => c.modality === modality)!;
}

/** The caption of a pair. */
export const pairText = (doc: Document): string => pairChunk(doc, 'text').text!;

/** The image chunk of a pair (its uri, blob or tensor). */
export const pairImage = (doc: Document): Document => pairChunk(doc, 'image');
