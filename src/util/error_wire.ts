// Errors across worker threads. A structured clone keeps an Error's message but not its class or
// fields, so a worker sends this form instead: the class name, the message and stack, the error's
// own fields and its cause. The receiving side rebuilds the same ClipfitError subclass with the
// same fields (an ImageError keeps its file and kind, a DataError its file, row and field, …), so
// `instanceof` and the fields a caller reads work as if the error had been thrown on its thread.
// Any other error comes back as a ClipfitError under the original name.

import * as errors from '../errors.js';

export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable fields of the error (file, row, kind, …), those that survive a structured clone. */
  fields: Record<string, unknown>;
  cause?: WireError;
}

const cloneable = (v: unknown): boolean => {
  if (v === null || ['string', 'number', 'boolean', 'undefined', 'bigint'].includes(typeof v)) return true;
  if (Array.isArray(v)) return v.every(cloneable);
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v as object).every(cloneable);
  return false;
};

export function errorToWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (k !== 'name' && cloneable(v)) fields[k] = v;
  const w: WireError = { name: e.name, message: e.message, fields };
  if (e.stack !== undefined) w.stack = e.stack;
  if (e.cause !== undefined) w.cause = errorToWire(e.cause);
  return w;
}

type ErrorClass = abstract new (...args: never[]) => errors.ClipfitError;

function errorClass(name: string): ErrorClass | undefined {
  const c = (errors as Record<string, unknown>)[name];
  return typeof c === 'function' && (c === errors.ClipfitError || c.prototype instanceof errors.ClipfitError) ? (c as ErrorClass) : undefined;
}

export function errorFromWire(w: WireError): Error {
  const cls = errorClass(w.name);
  const e: Error = cls ? (Object.create(cls.prototype) as Error) : new errors.ClipfitError(w.message);
  // What Error's constructor would have set: own, non-enumerable message, stack and cause.
  const own = (k: string, value: unknown) => Object.defineProperty(e, k, { value, writable: true, configurable: true, enumerable: false });
  own('message', w.message);
  if (w.stack !== undefined) own('stack', w.stack);
  if (w.cause) own('cause', errorFromWire(w.cause));
  e.name = w.name;
  Object.assign(e, w.fields);
  return e;
}
