// How the server opens an index: the one layout every opener shares (src/search/index_root.ts) —
//   <dir>/primary/  vectors of the primary model      <dir>/compare/  vectors of the compare model
//   <dir>/images/   the images themselves, <id>.<ext> (what a reindex encodes again)
// with the server holding <dir>'s owner lock for as long as it runs. The vector indexes get folders
// of their own: the folder index may swap its whole folder on a rebuild.

import { openFolderIndex } from '../search/folder_index.js';
import { rootLayout } from '../search/index_root.js';
import type { VectorIndex } from '../search/index_types.js';

export type IndexOpener = (dir: string, opts: { dim: number; model: string }) => Promise<VectorIndex>;

export const defaultIndexOpener: IndexOpener = (dir, opts) => openFolderIndex(dir, opts);

export const layout = rootLayout;
