// The npm packages the emoji dataset is built from, and where they are installed. They are
// devDependencies: the builder reads their files, nothing is downloaded. Each package's licence and
// credit line go into the dataset's ATTRIBUTION.md (writers.ts).

import { existsSync, promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DataError, MissingPackageError } from '../../../errors.js';

/** The image styles: google and twitter are the training styles, openmoji the shifted one. */
export type EmojiStyle = 'google' | 'twitter' | 'openmoji';
export const EMOJI_STYLES: readonly EmojiStyle[] = ['google', 'twitter', 'openmoji'];
export const TRAIN_STYLES: readonly EmojiStyle[] = ['google', 'twitter'];
export const SHIFTED_STYLES: readonly EmojiStyle[] = ['openmoji'];

export type EmojiPackageRole = EmojiStyle | 'labels';

export interface EmojiPackage {
  role: EmojiPackageRole;
  name: string;
  /** The version the builder was written against (the pinned devDependency). */
  version: string;
  /** Licence of what we use from it (the images, or the labels). */
  licence: string;
  /** Credit text, as the package's README / LICENSE asks for it. */
  credit: string;
  homepage: string;
}

export const EMOJI_PACKAGES: Readonly<Record<EmojiPackageRole, EmojiPackage>> = {
  google: {
    role: 'google',
    name: 'emoji-datasource-google',
    version: '16.0.0',
    licence: 'Apache-2.0 (images: Noto Color Emoji); the emoji-data metadata is MIT, Copyright (c) 2013 Cal Henderson',
    credit:
      'Android/Google/Noto images are available under the Apache License 2.0 (https://github.com/googlei18n/noto-emoji/blob/master/LICENSE). ' +
      'Packaged by emoji-data, Copyright (c) 2013 Cal Henderson (https://github.com/iamcal/emoji-data), MIT License.',
    homepage: 'https://github.com/iamcal/emoji-data',
  },
  twitter: {
    role: 'twitter',
    name: 'emoji-datasource-twitter',
    version: '16.0.0',
    licence: 'CC-BY-4.0 (images: Twemoji); the emoji-data metadata is MIT, Copyright (c) 2013 Cal Henderson',
    credit:
      'Twemoji graphics, Copyright 2020 Twitter, Inc and other contributors (https://github.com/jdecked/twemoji), ' +
      'available under the Creative Commons Attribution 4.0 license (https://github.com/jdecked/twemoji/blob/v15.0.2/LICENSE-GRAPHICS). ' +
      'Packaged by emoji-data, Copyright (c) 2013 Cal Henderson (https://github.com/iamcal/emoji-data), MIT License.',
    homepage: 'https://github.com/jdecked/twemoji',
  },
  openmoji: {
    role: 'openmoji',
    name: 'openmoji',
    version: '17.0.0',
    licence: 'CC-BY-SA-4.0 (graphics)',
    credit:
      'All emojis designed by OpenMoji (https://openmoji.org/) – the open-source emoji and icon project. ' +
      'License: CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). ' +
      'Rasterised here from the colour SVGs with resvg and composited on white; the PNGs are an adaptation and are shared under the same licence.',
    homepage: 'https://openmoji.org/',
  },
  labels: {
    role: 'labels',
    name: 'emojibase-data',
    version: '17.0.0',
    licence: 'MIT, Copyright (c) 2017-2019 Miles Johnson (data from Unicode CLDR)',
    credit: 'Labels and tags from emojibase-data (https://emojibase.dev), MIT License, Copyright (c) 2017-2019 Miles Johnson; derived from Unicode CLDR annotations.',
    homepage: 'https://emojibase.dev',
  },
};

/** Installed package folders by role, and the versions found. */
export interface EmojiPackageDirs {
  dirs: Record<EmojiPackageRole, string>;
  versions: Record<EmojiPackageRole, string>;
}

export interface EmojiResolveOptions {
  /** A node_modules-like folder holding the packages (default: Node's resolution from this module). */
  packagesDir?: string;
}

const require = createRequire(import.meta.url);

/** The folder of one package; MissingPackageError names the package and how to install it. */
export function resolvePackageDir(pkg: EmojiPackage, opts: EmojiResolveOptions = {}): string {
  if (opts.packagesDir !== undefined) {
    const dir = path.join(path.resolve(opts.packagesDir), pkg.name);
    if (!existsSync(path.join(dir, 'package.json'))) throw new MissingPackageError(pkg.name, pkg.version, `not found in ${path.resolve(opts.packagesDir)}`);
    return dir;
  }
  try {
    return path.dirname(require.resolve(`${pkg.name}/package.json`));
  } catch (err) {
    throw new MissingPackageError(pkg.name, pkg.version, `cannot be resolved from ${path.dirname(new URL(import.meta.url).pathname)} (${(err as Error).message.split('\n')[0]})`);
  }
}

/** All four packages' folders; the first one missing throws. */
export async function resolveEmojiPackages(opts: EmojiResolveOptions = {}): Promise<EmojiPackageDirs> {
  const dirs = {} as Record<EmojiPackageRole, string>;
  const versions = {} as Record<EmojiPackageRole, string>;
  for (const pkg of Object.values(EMOJI_PACKAGES)) {
    const dir = resolvePackageDir(pkg, opts);
    const meta = await readJson<{ version?: unknown }>(path.join(dir, 'package.json'));
    dirs[pkg.role] = dir;
    versions[pkg.role] = typeof meta.version === 'string' ? meta.version : 'unknown';
  }
  return { dirs, versions };
}

/** A package file that must exist: missing → MissingPackageError (a broken or different version). */
export function packageFile(role: EmojiPackageRole, dirs: EmojiPackageDirs, ...parts: string[]): string {
  const file = path.join(dirs.dirs[role], ...parts);
  if (!existsSync(file)) {
    const pkg = EMOJI_PACKAGES[role];
    throw new MissingPackageError(pkg.name, pkg.version, `${file} does not exist (found version ${dirs.versions[role]}, expected ${pkg.version})`);
  }
  return file;
}

export async function readJson<T>(file: string): Promise<T> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new DataError(file, undefined, undefined, `cannot read: ${(err as Error).message}`, 'row', { cause: err });
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new DataError(file, undefined, undefined, `invalid JSON: ${(err as Error).message}`, 'row', { cause: err });
  }
}
