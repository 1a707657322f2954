// Typed errors that carry the context a user needs to fix the problem: the op and node, the shapes,
// the file, row or field. Every error clipfit throws on purpose is a ClipfitError.

export class ClipfitError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Shapes or dtypes that do not fit an op. Names the node and the shapes involved. */
export class ShapeError extends ClipfitError {
  constructor(readonly op: string, readonly node: string, detail: string) {
    super(`${op} node '${node}': ${detail}`);
  }
}

/** An op name the builder or the ONNX encoder does not know. */
export class UnknownOpError extends ClipfitError {
  constructor(readonly op: string, readonly node?: string) {
    super(`unknown op '${op}'${node ? ` (node '${node}')` : ''}: no emitter is registered for it`);
  }
}

/** Asked to differentiate through an op that has no gradient rule. */
export class NoGradientError extends ClipfitError {
  constructor(readonly op: string, readonly node: string, readonly input?: number) {
    super(
      `cannot differentiate through ${op} node '${node}'` +
        (input !== undefined ? ` (input ${input})` : '') +
        `: ${op} has no gradient rule; stop the gradient before it or freeze the parameters that feed it`,
    );
  }
}

/** A gradient or loss that holds NaN or Inf, when the check is turned on. */
export class NonFiniteError extends ClipfitError {
  constructor(readonly tensor: string, readonly index: number, readonly value: number, readonly step?: number) {
    super(
      `non-finite value ${value} in '${tensor}' at flat index ${index}` + (step !== undefined ? ` at step ${step}` : ''),
    );
  }
}

/** A safetensors file that is truncated, has a bad header or bad offsets. Names the file and the tensor. */
export class SafetensorsError extends ClipfitError {
  constructor(readonly file: string, detail: string) {
    super(`safetensors '${file}': ${detail}`);
  }
}

/** A runtime (onnxruntime) failure, with the graph it concerned. */
export class RuntimeError extends ClipfitError {
  constructor(readonly graph: string, detail: string, options?: { cause?: unknown }) {
    super(`onnxruntime, graph '${graph}': ${detail}`, options);
  }
}

/** Bad options or configuration; names the field. */
export class ConfigError extends ClipfitError {
  constructor(readonly field: string, detail: string, readonly file?: string) {
    super(`${file ? `${file}: ` : ''}${field}: ${detail}`);
  }
}

/** A parameter (or optimizer-state) key that is missing, unknown or has the wrong shape. Names the key. */
export class ParamError extends ClipfitError {
  constructor(readonly key: string, detail: string, readonly file?: string) {
    super(`${file ? `${file}: ` : ''}parameter '${key}': ${detail}`);
  }
}

/** Why an image could not be used; `file` is the path, URI (or the name given for in-memory bytes).
 * 'refused': the source is not allowed where it was given (an unknown URI scheme, a remote URL with
 * remote fetches off, a local path outside the allowed folder). */
export type ImageErrorKind = 'missing' | 'unreadable' | 'empty' | 'corrupt' | 'unsupported' | 'too-large' | 'refused';

/** An image that cannot be read, decoded or accepted: missing, empty, corrupt or truncated, an
 * unsupported format, more pixels than the limit, or a source that is refused. Names the file. */
export class ImageError extends ClipfitError {
  constructor(readonly file: string, readonly kind: ImageErrorKind, readonly detail: string, options?: { cause?: unknown }) {
    super(`image '${file}' (${kind}): ${detail}`, options);
  }
}

/** A model config or checkpoint of an architecture clipfit does not build (a ResNet or timm image
 * tower, a Hugging Face text tower, SigLIP, …). Names the source and what gave it away. */
export class ArchitectureError extends ClipfitError {
  constructor(readonly source: string, detail: string) {
    super(`${source}: unsupported architecture: ${detail}`);
  }
}

/** A model name or `name::tag` that the registry does not know, or a path that is no model folder. */
export class UnknownModelError extends ClipfitError {
  constructor(readonly model: string, detail: string) {
    super(`model '${model}': ${detail}`);
  }
}

/** A download that failed (HTTP status, broken connection, bad redirect). Names the URL. */
export class DownloadError extends ClipfitError {
  /** True when the failure was the connection's: what arrived is kept and a rerun resumes it. */
  readonly resumable: boolean;
  constructor(readonly url: string, detail: string, options?: { cause?: unknown; resumable?: boolean }) {
    super(`download ${url}: ${detail}`, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.resumable = options?.resumable ?? false;
  }
}

/**
 * A hub repository that lacks a file clipfit needs, or holds one that is truncated or does not parse.
 * Names the repository, revision and file, and says what to do; nothing of it is left in the cache.
 */
export class HubFileError extends DownloadError {
  constructor(readonly repo: string, readonly revision: string, readonly file: string, url: string, detail: string, options?: { cause?: unknown }) {
    super(url, `repository ${repo} (revision ${revision}), file ${file}: ${detail}`, options);
  }
}

/** Downloaded bytes whose sha256 is not the expected digest; nothing is left in the cache. */
export class ChecksumError extends DownloadError {
  constructor(url: string, readonly file: string, readonly expected: string, readonly actual: string) {
    super(url, `sha256 mismatch for '${file}': expected ${expected}, got ${actual}`);
  }
}

/** Offline mode, and the model is not in the cache. Names the model and the folder looked in. */
export class OfflineError extends ClipfitError {
  constructor(readonly model: string, readonly folder: string, detail: string) {
    super(`model '${model}' is not available offline (${folder}): ${detail}`);
  }
}

/** A tokenizer file (BPE merges, vocab.json, merges.txt, tokenizer.json) that is missing or malformed. */
export class TokenizerFileError extends ClipfitError {
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`tokenizer file '${file}': ${detail}`, options);
  }
}

/** A caption that cannot be tokenized: not a string, or too long with truncation off. Names its index. */
export class CaptionError extends ClipfitError {
  constructor(readonly index: number, detail: string) {
    super(`texts[${index}]: ${detail}`);
  }
}

/** A data file (CSV, JSONL, folder, Document JSON) with a bad record. Names the file, the row (for
 * CSV the 1-based row a spreadsheet shows; for JSONL the 1-based line) and the field. */
export class DataError extends ClipfitError {
  constructor(
    readonly file: string,
    readonly row: number | undefined,
    readonly field: string | undefined,
    readonly detail: string,
    readonly unit: 'row' | 'line' = 'row',
    options?: { cause?: unknown },
  ) {
    super(
      `${file}` + (row !== undefined ? `, ${unit} ${row}` : '') + (field !== undefined ? `, field '${field}'` : '') + `: ${detail}`,
      options,
    );
  }
}

/** Why a URI could not be read into bytes. */
export type UriErrorKind = 'missing' | 'unreadable' | 'unsupported' | 'bad-data-uri' | 'http' | 'timeout' | 'too-large' | 'refused';

/** A document URI (local path, file://, data:, http(s)://) that cannot be read. Names the URI. */
export class UriError extends ClipfitError {
  /** The HTTP status of an http(s) answer that was not 2xx. */
  readonly status?: number;
  constructor(readonly uri: string, readonly kind: UriErrorKind, readonly detail: string, options?: { cause?: unknown; status?: number }) {
    super(`uri '${uri.length > 120 ? uri.slice(0, 117) + '...' : uri}' (${kind}): ${detail}`, options);
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** A named dataset in the local store that is misnamed, missing, or cannot be written. Names it. */
export class DatasetError extends ClipfitError {
  constructor(readonly dataset: string, detail: string, readonly version?: number, options?: { cause?: unknown }) {
    super(`dataset '${dataset}'` + (version !== undefined ? ` v${version}` : '') + `: ${detail}`, options);
  }
}

/** Retrieval evaluation inputs that do not fit: embedding sizes, labels, ids, a non-finite value, or a
 * query with nothing relevant to recall. Names the field and the row. */
export class EvaluationError extends ClipfitError {
  constructor(readonly field: string, detail: string, options?: { cause?: unknown }) {
    super(`${field}: ${detail}`, options);
  }
}

/** A run (or experiment) name that is malformed, already taken, unknown, or a run in a state that
 * does not allow the operation (deleting a live run). Names the run and, where it matters, its folder. */
export class RunError extends ClipfitError {
  constructor(readonly run: string, detail: string, options?: { cause?: unknown }) {
    super(`run '${run}': ${detail}`, options);
  }
}

/** Training cannot go on (a NaN loss, a non-finite gradient); names the step. */
export class FitError extends ClipfitError {
  constructor(readonly step: number, detail: string, options?: { cause?: unknown }) {
    super(`training failed at step ${step}: ${detail}`, options);
  }
}

/** fit() stopped because its caller asked it to (FitHooks.shouldStop returned true): a cancel, not a
 * failure. Names where it stopped: the epoch it was in and the run's step count so far. The epochs
 * before it are checkpointed, so the run resumes from there. */
export class FitStoppedError extends ClipfitError {
  constructor(readonly epoch: number, readonly step: number, readonly epochsDone: number) {
    super(`fit stopped on request at epoch ${epoch}, step ${step} (${epochsDone} epoch(s) done)`);
  }

  /** "at epoch E, step S", for a cancel reason. */
  get where(): string {
    return `at epoch ${this.epoch}, step ${this.step}`;
  }
}

/** A run name that is already in the run store. */
export class RunNameTakenError extends RunError {
  constructor(run: string, readonly home: string, detail = 'the name is already taken; pick another name or delete that run') {
    super(run, `${detail} (run store ${home})`);
  }
}

/** A run name that is not in the run store. */
export class RunNotFoundError extends RunError {
  constructor(run: string, readonly home: string) {
    super(run, `no such run in the run store ${home}`);
  }
}

/** An experiment name that is malformed or not in the run store. */
export class ExperimentError extends ClipfitError {
  constructor(readonly experiment: string, detail: string) {
    super(`experiment '${experiment}': ${detail}`);
  }
}

/** Inputs that do not fit the selected tower: image documents given to clip-text, text documents to
 * clip-vision, or a document with neither. Names the document's index and the tower. */
export class ModalityError extends ClipfitError {
  constructor(readonly index: number, readonly model: string, detail: string) {
    super(`documents[${index}] (${model}): ${detail}`);
  }
}

/** An artifact without the exported ONNX tower asked for. Names the file. */
export class MissingOnnxError extends ClipfitError {
  constructor(readonly file: string, detail: string) {
    super(`ONNX model '${file}': ${detail}`);
  }
}

/** A vector whose length is not the index's dimension. Names the item id and both dimensions. */
export class VectorDimensionError extends ClipfitError {
  constructor(readonly id: string, readonly expected: number, readonly actual: number) {
    super(`vector '${id}': dimension ${actual}, but the index holds dimension ${expected}`);
  }
}

/** An id that is not in the vector index (e.g. on remove). */
export class UnknownVectorIdError extends ClipfitError {
  constructor(readonly id: string, readonly where: string) {
    super(`vector '${id}': no such id in the index ${where}`);
  }
}

/** An index folder whose files cannot be read back. Names the file. */
export class CorruptIndexError extends ClipfitError {
  constructor(readonly file: string, detail: string, options?: { cause?: unknown }) {
    super(`index file '${file}': ${detail}`, options);
  }
}

/** A data package (an npm package that ships images or labels) that is not installed, or whose files
 * are not where its version puts them. Names the package and the command that installs it. */
export class MissingPackageError extends ClipfitError {
  constructor(readonly pkg: string, readonly version: string, detail: string) {
    super(`npm package '${pkg}': ${detail}; install it with: npm install --save-dev --save-exact ${pkg}@${version}`);
  }
}

/** A vector index folder held open by another live process (or another handle in this one). Names
 * the folder and the holder's pid. */
export class IndexLockedError extends ClipfitError {
  /** `holder` says who holds it (what, pid, URL); `hint` what to do instead. */
  constructor(readonly dir: string, readonly pid: number, readonly holder?: string, hint?: string) {
    super(
      holder
        ? `index '${dir}' is held by ${holder}; ${hint ?? (pid === process.pid ? 'close the other handle first' : 'stop it or wait for it to finish')}`
        : `index '${dir}' ${pid === process.pid ? 'is already open in this process; close the other handle first' : `is open in process ${pid}; close it there first`}`,
    );
  }
}

/** An index database that cannot be reached or lost the connection mid-statement (refused, reset,
 * shut down, terminated). Names the database (password removed) and the operation. A transaction
 * cut before its COMMIT was rolled back by the server; one cut during its COMMIT may have landed. */
export class IndexUnavailableError extends ClipfitError {
  constructor(readonly where: string, readonly op: string, detail: string, options?: { cause?: unknown }) {
    super(
      `index database ${where}: ${op} failed: ${detail}; ` +
        (op === 'COMMIT' ? 'the write may or may not have been committed: read it back before retrying' : 'nothing was written by this request, retry when the database is back'),
      options,
    );
  }
}

/** An index whose table or label is not what this handle was opened for: made for another model
 * or dimension (perhaps relabelled by another replica's rebuild), or not a clipfit index at all. */
export class IndexMismatchError extends ClipfitError {
  constructor(readonly index: string, readonly expected: string, readonly actual: string, hint: string) {
    super(`index '${index}' holds ${actual}, not ${expected}; ${hint}`);
  }
}

/** `clipfit serve` asked to listen beyond loopback without a bearer token. Names the host. */
export class InsecureServeError extends ClipfitError {
  constructor(readonly host: string) {
    super(`serve: refusing to listen on ${host} without a token: anyone who can reach it could read and change the index; give --token (or listen on 127.0.0.1)`);
  }
}

/** A demo report whose data cannot be written as given (an image that is missing or not a file, a
 * field the page needs that is empty). Names the field, e.g. examples[2].fineTuned[0].image. */
export class DemoReportError extends ClipfitError {
  constructor(readonly field: string, detail: string, options?: { cause?: unknown }) {
    super(`demo report ${field}: ${detail}`, options);
  }
}

/** A LoRA adapter loaded onto a base model other than the one it was trained on (other weights or
 * another architecture). Names the adapter, the base it was trained on and the base it was given. */
export class AdapterMismatchError extends ClipfitError {
  constructor(readonly adapter: string, readonly expectedBase: string, readonly actualBase: string, detail: string) {
    super(`adapter '${adapter}' was trained on base model '${expectedBase}', not on '${actualBase}': ${detail}`);
  }
}
