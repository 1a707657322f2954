// A real crash: a child process adds items in a loop (compacting now and then) and prints each id
// once add() has resolved; it is SIGKILLed mid-loop, three times over on one index. Every
// acknowledged id must be there after reopening, with its vector, and the index must take writes.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, test } from 'node:test';
import { openFolderIndex } from '../src/search/folder_index.js';
import { REPO_ROOT } from './fixtures.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'clipfit-crash-'));
after(() => rmSync(root, { recursive: true, force: true }));
const DIM = 16;

/** Item i's vector: a deterministic function of i, so the parent can check what it reads back. */
const vectorOf = (i: number) => Float32Array.from({ length: DIM }, (_, j) => Math.sin(i * 0.37 + j * 1.13) + (j === i % DIM ? 2 : 0));

const child = `
import { openFolderIndex } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'src/search/folder_index.ts')).href)};
const [dir, start] = [process.argv[2], Number(process.argv[3])];
const DIM = ${DIM};
const vectorOf = ${vectorOf.toString()};
const ix = await openFolderIndex(dir, { dim: DIM, model: 'crash-test', kind: 'hnsw' });
for (let i = start; ; i++) {
  const batch = [{ id: 'c' + i, vector: vectorOf(i), metadata: { i } }];
  if (i % 5 === 0) batch.push({ id: 'c' + i + 'b', vector: vectorOf(i + 100000), metadata: { i, b: true } });
  await ix.add(batch);
  process.stdout.write(batch.map((b) => b.id).join(' ') + '\\n');
  if (i % 40 === 39) await ix.compact();
  if (i % 17 === 16) {
    process.stdout.write('?c' + (i - 3) + '\\n');
    await ix.remove('c' + (i - 3));
    process.stdout.write('-c' + (i - 3) + '\\n');
  }
}
`;

/** Run the child from `start`, kill it `ms` after its first acknowledgement; the acked lines. */
function runAndKill(script: string, dir: string, start: number, ms: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', script, dir, String(start)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '', timer: NodeJS.Timeout | undefined;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      timer ??= setTimeout(() => p.kill('SIGKILL'), ms);
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`child exited with ${code}/${signal} before the kill: ${err}`));
      // Only whole lines were acknowledged.
      resolve(out.split('\n').slice(0, -1));
    });
  });
}

test('every acknowledged write survives SIGKILL at an arbitrary moment', { timeout: 120_000 }, async () => {
  const script = path.join(root, 'child.mts');
  writeFileSync(script, child);
  const dir = path.join(root, 'index');
  const live = new Set<string>();
  let next = 0;
  for (const ms of [1000, 450, 1300]) {
    const lines = await runAndKill(script, dir, next, ms);
    assert.ok(lines.length > 3, `the child acknowledged only ${lines.length} writes`);
    // '?id': a remove began (it may or may not have reached the log); '-id': it was acknowledged.
    let removing: string | undefined;
    for (const line of lines) {
      if (line.startsWith('?')) removing = line.slice(1);
      else if (line.startsWith('-')) {
        live.delete(line.slice(1));
        removing = undefined;
      } else for (const id of line.split(' ')) live.add(id);
    }
    if (removing) live.delete(removing);
    const adds = lines.filter((l) => /^c/.test(l));
    console.log(`# kill after ${ms} ms: ${adds.length} acknowledged adds`);
    const last = adds.at(-1)!.split(' ')[0]!;
    next = Number(last.slice(1)) + 1;

    const ix = await openFolderIndex(dir, { kind: 'hnsw' });
    const ids = new Set((await ix.list()).map((e) => e.id));
    if (removing && ids.has(removing)) live.add(removing);
    for (const id of live) assert.ok(ids.has(id), `acknowledged id ${id} lost after kill at ${ms} ms`);
    // At most the one batch in flight (unacknowledged) may be there in addition, and deletes held.
    const extra = [...ids].filter((id) => !live.has(id));
    assert.ok(extra.length <= 2, `unexpected ids ${extra.slice(0, 5)}`);
    for (const id of live) {
      if (id.startsWith('parent')) continue;
      const got = (await ix.get(id))!;
      const i = Number(id.slice(1).replace('b', ''));
      const v = vectorOf(id.endsWith('b') ? i + 100000 : i), nv = Math.hypot(...v);
      got.vector.forEach((x, j) => assert.ok(Math.abs(x - v[j]! / nv) < 1e-6, `vector of ${id}`));
    }
    // Usable: the nearest neighbour of an acknowledged item is itself, and a write goes through.
    const probe = [...live].find((id) => /^c\d+$/.test(id))!;
    assert.equal((await ix.search(vectorOf(Number(probe.slice(1))), 1, { exact: true }))[0]!.id, probe);
    await ix.add([{ id: `parent${ms}`, vector: vectorOf(-ms) }]);
    live.add(`parent${ms}`);
    for (const id of extra) live.add(id);
    await ix.close();
  }
});
