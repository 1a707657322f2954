// The emoji retrieval dataset: Google and Twemoji images to train on, OpenMoji images as a style
// shift, English CLDR labels as captions and queries, other locales and tags as extra query sets.

export { buildEmojiDataset, DEFAULT_EMOJI_SIZE, DEFAULT_QUERY_LOCALES, EMOJI_IMAGE_SETS, EMOJI_MANIFEST_FORMAT, emojiImagePath } from './build.js';
export type { EmojiBuildOptions, EmojiBuildProgress, EmojiImageSet, EmojiManifest, EmojiManifestItem } from './build.js';
export { emojiChars, groupKey, itemKey, joinCode } from './codepoints.js';
export { loadEmojiEvalSet, scoreEmojiEvalSet } from './eval_set.js';
export type { EmojiEvalSet, EmojiIndexSet } from './eval_set.js';
export { emojibaseLabels, findItem, joinEmoji } from './join.js';
export type { EmojiItem, EmojiJoin, EmojiJoinStats } from './join.js';
export { EMOJI_PACKAGES, EMOJI_STYLES, resolveEmojiPackages, SHIFTED_STYLES, TRAIN_STYLES } from './packages.js';
export type { EmojiPackage, EmojiPackageDirs, EmojiStyle, EmojiResolveOptions } from './packages.js';
export { pushEmojiDataset } from './push.js';
export type { EmojiPushOptions } from './push.js';
export { DEFAULT_TRAIN_PERCENT, splitBucket, splitItems, splitOf } from './split.js';
export type { EmojiSplit } from './split.js';
export { tagQueries } from './writers.js';
export type { TagQuery } from './writers.js';
