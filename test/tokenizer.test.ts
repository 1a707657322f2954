// CLIP tokenizer against OpenAI's own output (tokenizer.jsonl: 300 captions run through
// SimpleTokenizer and clip.tokenize), loaded from both shipped layouts.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClipTokenizer } from '../src/models/clip/text/tokenizer.js';
import { CaptionError, ConfigError, TokenizerFileError } from '../src/errors.js';
import { FIXTURES, requireFixture } from './fixtures.js';

interface Rec {
  id: number;
  category: string;
  text: string;
  cleaned: string;
  bpe_ids: number[];
  n_bpe: number;
  tokens_77: number[];
  tokens_77_truncate_false: number[] | null;
  truncate_false_error: string | null;
  decoded: string;
}

function loadRecords(file: string): Rec[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Rec);
}

/** Runs `check` on every record; fails with the first few mismatches, named by id and category. */
function checkAll(recs: Rec[], check: (r: Rec) => string | null): void {
  const bad: string[] = [];
  for (const r of recs) {
    const why = check(r);
    if (why !== null) bad.push(`#${r.id} [${r.category}] ${JSON.stringify(r.text).slice(0, 80)}: ${why}`);
  }
  assert.equal(bad.length, 0, `${bad.length}/${recs.length} records differ:\n${bad.slice(0, 10).join('\n')}`);
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const argmax = (xs: readonly number[]) => xs.reduce((best, x, i) => (x > xs[best]! ? i : best), 0);

const SOURCES: Array<[string, () => Promise<ClipTokenizer>]> = [
  ['bpe_simple_vocab_16e6.txt.gz', () => ClipTokenizer.fromBpeGz(path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'))],
  [
    'tiny-hf vocab.json + merges.txt',
    () => ClipTokenizer.fromVocabMerges(path.join(FIXTURES, 'tiny-hf/vocab.json'), path.join(FIXTURES, 'tiny-hf/merges.txt')),
  ],
];

for (const [name, load] of SOURCES) {
  describe(`tokenizer.jsonl via ${name}`, () => {
    let tok: ClipTokenizer | null = null;
    let recs: Rec[] = [];
    before(async () => {
      const jsonl = requireFixture('tokenizer.jsonl');
      if (jsonl === null || requireFixture('bpe_simple_vocab_16e6.txt.gz') === null || requireFixture('tiny-hf/vocab.json') === null) return;
      recs = loadRecords(jsonl);
      tok = await load();
    });
    const ready = (t: { skip: (msg: string) => void }): ClipTokenizer | null => {
      if (tok === null) t.skip(`fixtures missing under ${FIXTURES}`);
      return tok;
    };

    test('vocabulary layout: 49408 entries, sot 49406, eot 49407', (t) => {
      const k = ready(t);
      if (!k) return;
      assert.equal(recs.length, 300);
      assert.equal(k.vocabSize, 49408);
      assert.equal(k.sotToken, 49406);
      assert.equal(k.eotToken, 49407);
    });

    test('cleaned text equals whitespace_clean(basic_clean(text)).lower() for all records', (t) => {
      const k = ready(t);
      if (!k) return;
      checkAll(recs, (r) => {
        const c = k.clean(r.text);
        return c === r.cleaned ? null : `got ${JSON.stringify(c)}, want ${JSON.stringify(r.cleaned)}`;
      });
    });

    test('encode equals SimpleTokenizer.encode (bpe_ids) for all records', (t) => {
      const k = ready(t);
      if (!k) return;
      checkAll(recs, (r) => {
        const ids = k.encode(r.text);
        return same(ids, r.bpe_ids) && ids.length === r.n_bpe ? null : `got [${ids.join(',')}], want [${r.bpe_ids.join(',')}]`;
      });
    });

    test('decode equals SimpleTokenizer.decode for all records', (t) => {
      const k = ready(t);
      if (!k) return;
      checkAll(recs, (r) => {
        const d = k.decode(r.bpe_ids);
        return d === r.decoded ? null : `got ${JSON.stringify(d)}, want ${JSON.stringify(r.decoded)}`;
      });
    });

    test('tokenize (truncate=true) equals clip.tokenize(text, 77, truncate=True), one caption at a time', (t) => {
      const k = ready(t);
      if (!k) return;
      checkAll(recs, (r) => {
        const out = k.tokenize([r.text]);
        if (out.shape[0] !== 1 || out.shape[1] !== 77) return `shape ${out.shape}`;
        const row = [...out.ids];
        if (!same(row, r.tokens_77)) return `got [${row.join(',')}]`;
        return out.eotIndex[0] === argmax(r.tokens_77) ? null : `eotIndex ${out.eotIndex[0]}, want ${argmax(r.tokens_77)}`;
      });
    });

    test('tokenize (truncate=false) equals clip.tokenize(text, 77, truncate=False), or raises where it raised', (t) => {
      const k = ready(t);
      if (!k) return;
      let raised = 0;
      checkAll(recs, (r) => {
        if (r.truncate_false_error !== null) {
          raised += 1;
          try {
            k.tokenize([r.text], { truncate: false });
            return 'did not throw';
          } catch (err) {
            if (!(err instanceof CaptionError)) return `threw ${String(err)}`;
            const want = `texts[0]: ${r.n_bpe + 2} tokens`;
            return err.message.startsWith(want) ? null : `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(want)}`;
          }
        }
        const row = [...k.tokenize([r.text], { truncate: false }).ids];
        return same(row, r.tokens_77_truncate_false!) ? null : `got [${row.join(',')}]`;
      });
      assert.equal(raised, 10);
    });

    test('a batch of all 300 captions gives the same rows as one at a time', (t) => {
      const k = ready(t);
      if (!k) return;
      const out = k.tokenize(recs.map((r) => r.text));
      assert.deepEqual(out.shape, [300, 77]);
      recs.forEach((r, i) => {
        assert.deepEqual([...out.ids.subarray(i * 77, (i + 1) * 77)], r.tokens_77, `row ${i}`);
        assert.equal(out.eotIndex[i], argmax(r.tokens_77), `eotIndex row ${i}`);
      });
    });
  });
}

describe('ClipTokenizer inputs and files', () => {
  let tok: ClipTokenizer | null = null;
  let recs: Rec[] = [];
  before(async () => {
    const gz = requireFixture('bpe_simple_vocab_16e6.txt.gz');
    const jsonl = requireFixture('tokenizer.jsonl');
    if (gz === null || jsonl === null) return;
    tok = await ClipTokenizer.fromBpeGz(gz);
    recs = loadRecords(jsonl);
  });

  test('a caption that is not a string is rejected with its index', (t) => {
    if (!tok) return t.skip('fixtures missing');
    const k = tok;
    assert.throws(
      () => k.tokenize(['a', 'b', 'c', 42 as unknown as string]),
      (e: unknown) => e instanceof CaptionError && e.index === 3 && e.message === 'texts[3]: caption must be a string, got number',
    );
    assert.throws(() => k.tokenize([null as unknown as string]), /texts\[0\]: caption must be a string, got null/);
  });

  test('overflow with truncate=false names the caption and its token count', (t) => {
    if (!tok) return t.skip('fixtures missing');
    const long = recs.find((r) => r.id === 196)!; // "a " * 76: n_bpe 76, one over
    assert.equal(long.n_bpe, 76);
    assert.throws(
      () => tok!.tokenize(['fits', long.text], { truncate: false }),
      (e: unknown) => e instanceof CaptionError && e.index === 1 && /78 tokens .*76 BPE tokens.*context length 77/.test(e.message),
    );
  });

  test('n_bpe 75 fits exactly; 76 is cut with eot at position 76', (t) => {
    if (!tok) return t.skip('fixtures missing');
    const k = tok;
    for (const id of [195, 196]) {
      const r = recs.find((x) => x.id === id)!;
      const row: number[] = Array.from(k.tokenize(r.text).ids);
      assert.deepEqual(row, r.tokens_77);
      assert.equal(row[76], 49407);
    }
  });

  test('a shorter context length follows the same rule (sot + first ctx-2 ids + eot)', (t) => {
    if (!tok) return t.skip('fixtures missing');
    const r = recs.find((x) => x.id === 19)!; // 19 BPE ids
    const out = tok.tokenize([r.text], { contextLength: 10 });
    assert.deepEqual([...out.ids], [49406, ...r.bpe_ids.slice(0, 8), 49407]);
    assert.equal(out.eotIndex[0], 9);
    assert.throws(() => tok!.tokenize([r.text], { contextLength: 10, truncate: false }), CaptionError);
    assert.throws(() => tok!.tokenize([r.text], { contextLength: 0 }), ConfigError);
  });

  test('a literal <|endoftext|> is pooled like CLIP: argmax, the first eot', (t) => {
    if (!tok) return t.skip('fixtures missing');
    const r = recs.find((x) => x.id === 173)!; // "hello <|endoftext|> world"
    const out = tok.tokenize([r.text]);
    assert.equal(out.eotIndex[0], r.tokens_77.indexOf(49407));
    assert.equal(out.eotIndex[0], 2);
  });

  test('decode rejects an id outside the vocabulary', (t) => {
    if (!tok) return t.skip('fixtures missing');
    assert.throws(() => tok!.decode([320, 49408]), /ids\[1\].*49408/);
  });

  test('fromFolder picks vocab.json + merges.txt, or the OpenAI BPE file, and names a folder with neither', async (t) => {
    if (requireFixture('tiny-hf/vocab.json', t) === null || requireFixture('tiny/config.json', t) === null) return;
    const hf = await ClipTokenizer.fromFolder(path.join(FIXTURES, 'tiny-hf'));
    assert.equal(hf.source, path.join(FIXTURES, 'tiny-hf/vocab.json'));
    const openai = await ClipTokenizer.fromFolder(FIXTURES);
    assert.equal(openai.source, path.join(FIXTURES, 'bpe_simple_vocab_16e6.txt.gz'));
    const r = recs.find((x) => x.id === 19)!;
    assert.deepEqual(hf.encode(r.text), r.bpe_ids);
    assert.deepEqual(openai.encode(r.text), r.bpe_ids);
    await assert.rejects(ClipTokenizer.fromFolder(path.join(FIXTURES, 'tiny')), (e: unknown) => e instanceof TokenizerFileError && e.message.includes('tiny'));
  });

  test('malformed tokenizer files fail with the file and line named', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'clipfit-tok-'));
    const short = path.join(dir, 'short.txt');
    await writeFile(short, '#version: 0.2\ni n\nt h\n');
    await assert.rejects(ClipTokenizer.fromBpeGz(short), (e: unknown) => e instanceof TokenizerFileError && e.message.includes(short) && /48894/.test(e.message));
    const vocab = path.join(dir, 'vocab.json');
    const merges = path.join(dir, 'merges.txt');
    await writeFile(vocab, JSON.stringify({ a: 0, b: 1, 'ab</w>': 2 }));
    await writeFile(merges, '#version: 0.2\na b</w>\nbad\n');
    await assert.rejects(ClipTokenizer.fromVocabMerges(vocab, merges), (e: unknown) => e instanceof TokenizerFileError && /merges\.txt.*line 3/.test(e.message));
    await writeFile(merges, '#version: 0.2\na b</w>\n');
    await assert.rejects(ClipTokenizer.fromVocabMerges(vocab, merges), (e: unknown) => e instanceof TokenizerFileError && e.message.includes('<|startoftext|>'));
    await writeFile(vocab, '{"a": 0,');
    await assert.rejects(ClipTokenizer.fromVocabMerges(vocab, merges), (e: unknown) => e instanceof TokenizerFileError && /not valid JSON/.test(e.message));
  });
});

test('fromBpeText on the decompressed merges gives the vocabulary of the .gz file', async (t) => {
  const gz = requireFixture('bpe_simple_vocab_16e6.txt.gz', t);
  const jsonl = requireFixture('tokenizer.jsonl', t);
  if (gz === null || jsonl === null) return;
  const { gunzipSync } = await import('node:zlib');
  const fromText = ClipTokenizer.fromBpeText(gunzipSync(readFileSync(gz)).toString('utf8'), 'merges text');
  assert.equal(fromText.vocabSize, 49408);
  const recs = loadRecords(jsonl);
  for (const r of recs.filter((x) => x.category === 'product')) assert.deepEqual(fromText.encode(r.text), r.bpe_ids, `#${r.id}`);
});
