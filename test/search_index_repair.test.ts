// Corruption is loud: a record whose length or bytes are damaged, with intact records after it, is
// not a torn tail — opening fails naming the offset — and `clipfit index repair NAME` keeps every
// intact record in a new generation and reports the range it dropped.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { indexCli } from './index_cli.js';
import { CorruptIndexError } from '../src/errors.js';
import { openIndex } from '../src/search/open_index.js';

const home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-repair-'));
process.env['CLIPFIT_HOME'] = home;
after(() => rmSync(home, { recursive: true, force: true }));

const cli = indexCli;

const DIM = 8;
const vec = (i: number) => Float32Array.from({ length: DIM }, (_, j) => (j === i ? 3 : 0) + Math.cos(i + j));
const unit = (v: Float32Array) => v.map((x) => x / Math.hypot(...v));

/** Four acknowledged adds, one record each; returns the log file and each record's offset. */
async function fourAdds(name: string): Promise<{ log: string; offsets: number[] }> {
  const ix = await openIndex(name, { dim: DIM, model: 'm' });
  for (let i = 0; i < 4; i++) await ix.add([{ id: `item${i}`, vector: vec(i), metadata: { i } }]);
  await ix.close();
  const log = path.join(home, 'indexes', name, 'primary', 'log.bin');
  const bytes = readFileSync(log);
  const offsets: number[] = [];
  for (let at = 16; at < bytes.length; at += 8 + bytes.readUInt32LE(at)) offsets.push(at);
  assert.equal(offsets.length, 4);
  return { log, offsets };
}

for (const [label, damage] of [
  ['a length flipped to point past the end', (b: Buffer, at: number) => (b[at + 3]! ^= 0x40)],
  ['a length flipped shorter, into the record', (b: Buffer, at: number) => (b[at]! ^= 0x10)],
  ['a flipped payload byte', (b: Buffer, at: number) => (b[at + 30]! ^= 0x01)],
] as const) {
  test(`damage in record 2 of 4 (${label}) is an error naming the offset; repair keeps records 1, 3 and 4`, async () => {
    const name = `ix-${label.replace(/\W+/g, '-')}`;
    const { log, offsets } = await fourAdds(name);
    const bytes = readFileSync(log);
    damage(bytes, offsets[1]!);
    writeFileSync(log, bytes);
    await assert.rejects(
      cli('index', 'info', '--index', name),
      (e: unknown) => e instanceof CorruptIndexError && e.file === log && e.message.includes(`record at byte ${offsets[1]}`) && e.message.includes(`from byte ${offsets[2]}`) && /clipfit index repair/.test(e.message),
    );
    const out = await cli('index', 'repair', name);
    assert.match(out[0]!, new RegExp(`^repaired ${name}/primary: 3 item\\(s\\) from 3 intact record\\(s\\), generation 1; dropped 1 damaged range\\(s\\):$`));
    assert.match(out[1]!, new RegExp(`^  log\\.bin bytes ${offsets[1]}-${offsets[2]} \\(${offsets[2]! - offsets[1]!} bytes\\): `));
    assert.match(out[2]!, /the damaged file is kept as .*log\.bin\.damaged-/);
    const ix = await openIndex(name, {});
    assert.deepEqual((await ix.list()).map((e) => e.id).sort(), ['item0', 'item2', 'item3']);
    for (const i of [0, 2, 3]) {
      const got = (await ix.get(`item${i}`))!;
      assert.deepEqual(got.metadata, { i });
      got.vector.forEach((x, j) => assert.ok(Math.abs(x - unit(vec(i))[j]!) < 1e-6));
    }
    await ix.add([{ id: 'after', vector: vec(5) }]);
    await ix.close();
    const again = await openIndex(name, {});
    assert.equal(await again.size(), 4);
    await again.close();
  });
}

test('a torn last record is still cut quietly; repair of an intact index drops nothing', async () => {
  const { log, offsets } = await fourAdds('torn');
  const bytes = readFileSync(log);
  writeFileSync(log, bytes.subarray(0, bytes.length - 7));
  const info = JSON.parse((await cli('index', 'info', '--index', 'torn', '--json')).join('\n'));
  assert.deepEqual([info.size, info.truncatedBytes], [3, bytes.length - 7 - offsets[3]!]);
  const out = await cli('index', 'repair', 'torn');
  assert.deepEqual(out, ['repaired torn/primary: 3 item(s) from 3 intact record(s), generation 1; nothing was damaged']);
  assert.deepEqual(readdirSync(path.dirname(log)).filter((f) => f.includes('damaged')), []);
});
