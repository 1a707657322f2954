// OpenAI's CLIP vocabulary (`bpe_simple_vocab_16e6.txt.gz`, MIT, openai/CLIP), shipped in the package's
// assets/ with its licence. open_clip bundles the same file and falls back to it for every model whose
// config names no Hugging Face tokenizer, so open_clip checkpoints (timm's OpenAI repositories, a user's
// own open_clip training output) carry no tokenizer files; clipfit does the same.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUNDLED_BPE_NAME = 'bpe_simple_vocab_16e6.txt.gz';
/** sha256 of openai/CLIP's clip/bpe_simple_vocab_16e6.txt.gz (commit d05afc4). */
export const BUNDLED_BPE_SHA256 = '924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a';
/** Rows of token_embedding for that vocabulary: 256 bytes, 256 `</w>` bytes, 48,894 merges, sot, eot. */
export const CLIP_VOCAB_SIZE = 49408;

/** assets/ in the package root (from src/models/clip/text or dist/models/clip/text alike). */
export function assetsDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../assets');
}

/** Path of the bundled BPE file; null when the installation lacks it. */
export function bundledBpeFile(): string | null {
  const f = path.join(assetsDir(), BUNDLED_BPE_NAME);
  return existsSync(f) ? f : null;
}
