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
