// Train a byte-level BPE vocabulary in CLIP's format from a corpus of captions: pre-tokens as
// CLIP's tokenizer makes them (cleaned, lower-cased, SimpleTokenizer's pattern, UTF-8 bytes as
// GPT-2 byte characters, `</w>` on each word's last symbol); then repeatedly merge the most
// frequent adjacent pair (ties broken by the pair's text, so training is deterministic), keeping
// pair counts up to date incrementally. The vocabulary is laid out as OpenAI's: 256 byte symbols,
// the same with `</w>`, one entry per merge, then <|startoftext|> and <|endoftext|>.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../../errors.js';
import { EOT_TEXT, SOT_TEXT, bytesToUnicode } from './bpe_files.js';
import { preTokenSymbols } from './tokenizer.js';

export interface TrainedBpe {
  merges: [string, string][];
  /** piece → id, OpenAI's layout. */
  vocab: Record<string, number>;
}

const SEP = '\u0000';

export function trainBpe(texts: Iterable<string>, opts: { merges: number; minFrequency?: number }): TrainedBpe {
  if (!(Number.isInteger(opts.merges) && opts.merges >= 0)) throw new ConfigError('merges', `must be a non-negative integer, got ${opts.merges}`);
  const minFreq = opts.minFrequency ?? 2;
  // Distinct words with their counts, each as a list of symbols.
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of preTokenSymbols(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words: string[][] = [];
  const freq: number[] = [];
  for (const [w, c] of counts) {
    const chars = [...w];
    chars[chars.length - 1] += '</w>';
    words.push(chars);
    freq.push(c);
  }
  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const addPairs = (wi: number, sign: number) => {
    const w = words[wi]!;
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i]! + SEP + w[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq[wi]!);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  words.forEach((_, wi) => addPairs(wi, 1));

  const merges: [string, string][] = [];
  // A merge whose result is already a piece (ab+c after a+bc) would give one piece two ids: skip it.
  const pieces = new Set<string>(bytesToUnicode().flatMap(([, c]) => [c, `${c}</w>`]));
  while (merges.length < opts.merges) {
    let best = '';
    let bestCount = 0;
    for (const [k, c] of pairCount) if (c > bestCount || (c === bestCount && c > 0 && k < best)) [best, bestCount] = [k, c];
    if (bestCount < minFreq) break;
    const [a, b] = best.split(SEP) as [string, string];
    if (pieces.has(a + b)) {
      pairCount.delete(best);
      continue;
    }
    pieces.add(a + b);
    merges.push([a, b]);
    for (const wi of pairWords.get(best) ?? []) {
      const w = words[wi]!;
      addPairs(wi, -1);
      const merged: string[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(w[i]!);
      }
      words[wi] = merged;
      addPairs(wi, 1);
    }
    pairCount.delete(best);
    pairWords.delete(best);
  }
  const symbols = bytesToUnicode().map(([, c]) => c);
  const ordered = [...symbols, ...symbols.map((s) => `${s}</w>`), ...merges.map(([x, y]) => x + y), SOT_TEXT, EOT_TEXT];
  const vocab: Record<string, number> = {};
  ordered.forEach((p, i) => (vocab[p] = i));
  return { merges, vocab };
}

/** Write vocab.json + merges.txt (Hugging Face layout, which ClipTokenizer.fromVocabMerges reads). */
export async function writeVocabMerges(dir: string, bpe: TrainedBpe): Promise<{ vocab: string; merges: string }> {
  await fsp.mkdir(dir, { recursive: true });
  const vocab = path.join(dir, 'vocab.json');
  const merges = path.join(dir, 'merges.txt');
  await fsp.writeFile(vocab, JSON.stringify(bpe.vocab));
  await fsp.writeFile(merges, ['#version: 0.2', ...bpe.merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n');
  return { vocab, merges };
}
