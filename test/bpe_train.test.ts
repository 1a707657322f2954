// A BPE vocabulary trained by clipfit loads in ClipTokenizer and behaves like CLIP's.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { trainBpe, writeVocabMerges } from '../src/models/clip/text/bpe_train.js';
import { ClipTokenizer } from '../src/models/clip/text/tokenizer.js';

const corpus = [
  'arrow left', 'arrow right', 'arrow up', 'arrow down', 'arrow up right', 'home', 'house', 'home outline',
  'bell', 'bell ring', 'bell off', 'user', 'user plus', 'user minus', 'users', 'calendar', 'calendar check',
  'Café crème', 'shopping cart', 'cart plus', 'cart minus', 'camera', 'camera off', 'heart', 'heart broken',
];

test('trained merges follow frequency, load as vocab.json + merges.txt, and round-trip text', async () => {
  const bpe = trainBpe(corpus, { merges: 60, minFrequency: 2 });
  assert.ok(bpe.merges.length > 10 && bpe.merges.length <= 60);
  // The most frequent pair in the corpus comes first: 'r' 'r' (arrow ×5, …) or 'a' 'r' … — it must occur ≥ 2 times.
  const [a, b] = bpe.merges[0]!;
  const occurrences = corpus.join(' ').split(a + b).length - 1;
  assert.ok(occurrences >= 2, `first merge ${a}+${b}`);
  assert.equal(bpe.vocab['!'], 0);
  assert.equal(bpe.vocab['!</w>'], 256);
  assert.equal(bpe.vocab['<|endoftext|>'], 512 + bpe.merges.length + 1);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-bpe-'));
  const files = await writeVocabMerges(dir, bpe);
  const tok = await ClipTokenizer.fromVocabMerges(files.vocab, files.merges);
  assert.equal(tok.vocabSize, 512 + bpe.merges.length + 2);
  assert.equal(tok.eotToken, tok.vocabSize - 1);
  for (const text of ['arrow up right', 'calendar check', 'café crème', 'an unseen word']) {
    const ids = tok.encode(text);
    assert.equal(tok.decode(ids).trim(), text.toLowerCase());
  }
  assert.ok(tok.encode('arrow').length < 'arrow'.length, 'frequent words compress');
  assert.deepEqual(trainBpe(corpus, { merges: 60 }), bpe, 'deterministic');
  assert.throws(() => trainBpe(corpus, { merges: -1 }), /merges: must be a non-negative integer/);
});
