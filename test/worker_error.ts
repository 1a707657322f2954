// Worker thread for test/worker_errors.test.ts: throws the error it is asked for, inside the worker,
// and sends it back in wire form, as the image and kNN workers do.

import { parentPort } from 'node:worker_threads';
import { DataError, FitStoppedError, ImageError, UnknownModelError } from '../src/errors.js';
import { errorToWire } from '../src/util/error_wire.js';

const make: Record<string, () => Error> = {
  image: () => new ImageError('shoes/1.png', 'corrupt', 'PNG: bad IHDR'),
  data: () => new DataError('pairs.csv', 7, 'image', 'answers 404', 'row', { cause: new ImageError('http://127.0.0.1/x.png', 'missing', 'HTTP 404') }),
  stopped: () => new FitStoppedError(2, 31, 1),
  model: () => new UnknownModelError('ViT-Q-99', 'not in the registry'),
  type: () => new TypeError('x is not a function'),
};

parentPort!.on('message', (kind: string) => {
  try {
    throw make[kind]!();
  } catch (err) {
    parentPort!.postMessage(errorToWire(err));
  }
});
