// How the server opens an index folder: clipfit's embedded folder index, labelled with the model
// whose vectors it holds. A served index is a folder of three:
//   <dir>/primary/  vectors of the primary model      <dir>/compare/  vectors of the compare model
//   <dir>/images/   the images themselves, <id>.<ext> (what a reindex encodes again)
// The vector indexes get folders of their own: the folder index may swap its whole folder on a rebuild.

import path from 'node:path';
import { openFolderIndex } from '../search/folder_index.js';
import type { VectorIndex } from '../search/index_types.js';

export type IndexOpener = (dir: string, opts: { dim: number; model: string }) => Promise<VectorIndex>;

export const defaultIndexOpener: IndexOpener = (dir, opts) => openFolderIndex(dir, opts);

export const layout = (dir: string) => ({ primary: path.join(dir, 'primary'), compare: path.join(dir, 'compare'), images: path.join(dir, 'images') });
