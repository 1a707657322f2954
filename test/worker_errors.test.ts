// Typed errors cross worker threads (util/error_wire.ts): thrown in a real worker started the way
// clipfit starts its workers (util/module_worker.ts), each comes back as the same ClipfitError
// subclass with its message, fields, getters and cause; a foreign error comes back as a
// ClipfitError under its own name. The image pool, on a real corrupt image, gives an ImageError.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { ClipfitError, DataError, FitStoppedError, ImageError, UnknownModelError } from '../src/errors.js';
import { ImagePool } from '../src/train/image_pool.js';
import { errorFromWire, type WireError } from '../src/util/error_wire.js';
import { moduleWorker } from '../src/util/module_worker.js';

function thrownIn(w: Worker, kind: string): Promise<Error> {
  return new Promise((resolve) => {
    w.once('message', (m: WireError) => resolve(errorFromWire(m)));
    w.postMessage(kind);
  });
}

test('a ClipfitError thrown in a worker thread arrives as the same class with its fields', async (t) => {
  const w = moduleWorker(new URL('./worker_error.ts', import.meta.url));
  t.after(() => w.terminate());

  const img = await thrownIn(w, 'image');
  assert.ok(img instanceof ImageError && img instanceof ClipfitError);
  assert.equal(img.name, 'ImageError');
  assert.equal(img.message, "image 'shoes/1.png' (corrupt): PNG: bad IHDR");
  assert.deepEqual([img.file, img.kind, img.detail], ['shoes/1.png', 'corrupt', 'PNG: bad IHDR']);
  assert.match(img.stack ?? '', /worker_error\.ts/, 'the stack is where it was thrown');

  const data = await thrownIn(w, 'data');
  assert.ok(data instanceof DataError);
  assert.deepEqual([data.file, data.row, data.field, data.unit], ['pairs.csv', 7, 'image', 'row']);
  assert.equal(data.message, "pairs.csv, row 7, field 'image': answers 404");
  assert.ok(data.cause instanceof ImageError);
  assert.equal((data.cause as ImageError).kind, 'missing');

  const stopped = await thrownIn(w, 'stopped');
  assert.ok(stopped instanceof FitStoppedError);
  assert.equal(stopped.where, 'at epoch 2, step 31', 'getters of the class work');
  assert.equal(stopped.epochsDone, 1);

  const model = await thrownIn(w, 'model');
  assert.ok(model instanceof UnknownModelError);
  assert.equal(model.model, 'ViT-Q-99');

  const foreign = await thrownIn(w, 'type');
  assert.ok(foreign instanceof ClipfitError);
  assert.equal(foreign.name, 'TypeError');
  assert.equal(foreign.message, 'x is not a function');
});

test('the image pool rejects with an ImageError naming the input, from its worker thread', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-wire-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bad = path.join(dir, 'bad.png');
  writeFileSync(bad, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(40, 7)]));
  const pool = new ImagePool(1);
  t.after(() => pool.close());
  const err = await pool.preprocess([bad], ['row 3 image'], { size: 32 }).then(
    () => assert.fail('a corrupt PNG was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ImageError, String(err));
  assert.equal(err.file, 'row 3 image');
  assert.ok(['corrupt', 'unsupported'].includes(err.kind), err.kind);
});
