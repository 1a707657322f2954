// The data layer: Document/DocumentArray, Finetuner's CSV rules, JSONL and folder loaders, URI
// loading, the one image-source resolver (paths, file://, http(s), data:), where Documents came
// from (for errors), and the named-dataset store.

export { Document, DocumentArray, LABEL_TAG, isPair, pairDocument, pairImage, pairText, randomId, seededPermutation, seededRandom } from './document.js';
export type { DocumentInit, DocumentJson, ImageSource, Matrix, Modality, SplitOptions } from './document.js';
export { loadCsv, looksLikeImage, parseCsv } from './csv.js';
export type { CsvOptions, CsvResult, CsvStats, SkippedRow } from './csv.js';
export { loadJsonl } from './jsonl.js';
export type { JsonlOptions, JsonlStats } from './jsonl.js';
export { loadFolder } from './folder.js';
export type { FolderOptions, FolderStats } from './folder.js';
export { componentLabels } from './pair_labels.js';
export type { PairKey } from './pair_labels.js';
export { DEFAULT_MAX_URI_BYTES, DEFAULT_URI_TIMEOUT_MS, IMAGE_EXTENSIONS, decodeDataUri, hasImageExtension, loadUriToBlob, localPath, uriKind } from './uri.js';
export type { LoadUriOptions, UriKind } from './uri.js';
export { DATASET_FORMAT, datasetInfo, datasetsRoot, deleteDataset, listDatasets, pull, push, storeHome } from './store.js';
export type { DatasetListing, DatasetMeta, PushOptions, PushResult, StoreOptions } from './store.js';
export { imageSourceKind, imageSourceName, localImagePath, readImageSource, sniffImageType } from './image_source.js';
export type { ImageBytes, ImageSourceKind, ImageSourceOptions, ImageType } from './image_source.js';
export { fetchRemote } from './remote_fetch.js';
export type { RemoteFetchOptions } from './remote_fetch.js';
export { fetchRemoteImages, imageDocOf, imageInputOf, imageName } from './doc_images.js';
export type { FetchImagesOptions, FetchImagesResult } from './doc_images.js';
export { documentError, originOf, setOrigin } from './origin.js';
export type { Origin, OriginField } from './origin.js';
