// Fault injection, bounded and on loopback only: `clipfit serve` (a real child process) takes
// concurrent adds, deletes and searches from several clients, and is SIGKILLed after a random number
// of answers, several times over, on one index. After each kill the index must open clean (only an
// unacknowledged tail may be cut) and hold every acknowledged add — its vector equal to the model's
// embedding of the uploaded image, its image byte for byte — and no acknowledged delete; after each
// restart the server must find all of them again. The run is reported as `# fault-injection …` lines.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FolderIndex } from '../src/search/folder_index.js';
import { openIndex } from '../src/search/open_index.js';
import { seededRandom } from '../src/util/random.js';
import { cosine, makeFixture, referenceEmbeddings } from './server_setup.js';
import type { Fixture } from './server_setup.js';
import { startServeProcess } from './serve_process.js';
import type { ServeProcess } from './serve_process.js';

/** Requests in all; each run of the server is killed after a random number of answers. */
const TOTAL_REQUESTS = 240;
const MAX_PER_RUN = 60;
const CLIENTS = 4;

let fx: Fixture | null = null;
let home = '';
let refs: Float32Array[] = [];
before(async () => {
  fx = await makeFixture(12);
  if (!fx) return;
  home = mkdtempSync(path.join(os.tmpdir(), 'clipfit-fault-'));
  refs = (await referenceEmbeddings(fx.onnxModel, true, [], fx.images)).images.map((v) => v.map((x) => x / Math.hypot(...v)));
});
after(() => {
  fx?.cleanup();
  if (home) rmSync(home, { recursive: true, force: true });
});

const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

interface Tally {
  sent: number;
  acked: number;
  byStatus: Map<string, number>;
}

test('SIGKILL under concurrent adds, deletes and searches loses no acknowledged write', { timeout: 600_000 }, async (t) => {
  if (!fx) return t.skip('no BPE fixture');
  const random = seededRandom(20240611);
  const root = path.join(home, 'indexes', 'fi');
  const env = { CLIPFIT_HOME: home };
  /** Acknowledged and not deleted since: id → image index. */
  const live = new Map<string, number>();
  /** Acknowledged deletes. */
  const deleted = new Set<string>();
  /** Sent but never answered (the kill came first): they may or may not have happened. */
  const unsure = new Set<string>();
  const tally: Tally = { sent: 0, acked: 0, byStatus: new Map() };
  const count = (k: string) => tally.byStatus.set(k, (tally.byStatus.get(k) ?? 0) + 1);
  const memory: string[] = [];
  let lost = 0;
  let nextId = 0;

  /** The index as the dead server left it: opened by the library, checked item by item. */
  const verifyOnDisk = async (round: number) => {
    const ix = await openIndex('fi', { home });
    try {
      const torn = ix instanceof FolderIndex ? ix.info().truncatedBytes : 0;
      const ids = new Set((await ix.list()).map((e) => e.id));
      for (const [id, img] of live) {
        if (!ids.has(id)) {
          lost++;
          assert.fail(`round ${round}: acknowledged add ${id} is gone`);
        }
        const v = (await ix.get(id))!.vector;
        assert.ok(cosine(v, refs[img]!) > 1 - 1e-5, `round ${round}: vector of ${id}`);
        assert.deepEqual(readFileSync(path.join(root, 'images', `${id}.png`)), readFileSync(fx!.images[img]!), `image of ${id}`);
      }
      for (const id of deleted) {
        if (ids.has(id)) lost++;
        assert.ok(!ids.has(id), `round ${round}: acknowledged delete of ${id} came back`);
      }
      // Whatever else is there was in flight at the kill, and has its image (images go first).
      for (const id of ids) {
        if (!live.has(id)) assert.ok(unsure.has(id), `round ${round}: ${id} was never sent`);
        assert.ok(existsSync(path.join(root, 'images', `${id}.png`)), `round ${round}: ${id} has no image`);
      }
      console.log(`# fault-injection round ${round}: index opened clean with ${ids.size} items (${live.size} acknowledged live, torn tail ${torn} bytes)`);
      // Unsure adds that made it are now simply live; unsure deletes that made it are gone.
      for (const id of unsure) {
        const img = Number(id.split('-')[2]);
        if (ids.has(id) && !live.has(id) && Number.isInteger(img)) live.set(id, img);
        if (!ids.has(id)) live.delete(id);
      }
      unsure.clear();
    } finally {
      await ix.close();
    }
  };

  let round = 0;
  for (; tally.sent < TOTAL_REQUESTS; round++) {
    const budget = Math.min(MAX_PER_RUN, TOTAL_REQUESTS - tally.sent);
    const srv: ServeProcess = await startServeProcess(['--model', fx.onnxModel, '--index', 'fi'], env);
    const rssBefore = rssKb(srv.child.pid!);
    // The restarted server finds every acknowledged item.
    if (live.size && live.size <= 100) {
      const r = (await (await fetch(`${srv.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'a shape', k: 100 }) })).json()) as { results: { id: string }[] };
      const found = new Set(r.results.map((h) => h.id));
      for (const [id] of live) assert.ok(found.has(id), `round ${round}: ${id} not found by /search after the restart`);
      for (const id of deleted) assert.ok(!found.has(id), `round ${round}: deleted ${id} found by /search`);
    }
    const killAfter = Math.min(budget, 10 + Math.floor(random() * (MAX_PER_RUN - 20)));
    let answered = 0, sent = 0, killed = false, rssAtKill = NaN;
    const kill = async () => {
      if (killed) return;
      killed = true;
      rssAtKill = rssKb(srv.child.pid!);
      await srv.kill();
    };
    const client = async () => {
      while (sent < budget && !killed) {
        sent++;
        tally.sent++;
        const op = random();
        let id = '';
        let kind: 'add' | 'delete' | 'search';
        let req: Promise<Response>;
        if (op < 0.5 || live.size < 3) {
          kind = 'add';
          const img = Math.floor(random() * fx!.images.length);
          id = `r${round}-${nextId++}-${img}`;
          const f = new FormData();
          f.append('file', new Blob([readFileSync(fx!.images[img]!)], { type: 'image/png' }), `${id}.png`);
          f.append('ids', JSON.stringify([id]));
          unsure.add(id);
          req = fetch(`${srv.url}/index`, { method: 'POST', body: f });
          const res = await req.catch(() => null);
          if (res?.status === 201) {
            unsure.delete(id);
            live.set(id, img);
          }
          tallyOf(res, kind);
        } else if (op < 0.7) {
          kind = 'delete';
          const ids = [...live.keys()];
          id = ids[Math.floor(random() * ids.length)]!;
          live.delete(id); // no other client picks it meanwhile
          unsure.add(id);
          const res = await fetch(`${srv.url}/index/${id}`, { method: 'DELETE' }).catch(() => null);
          if (res?.status === 200) {
            unsure.delete(id);
            deleted.add(id);
          } else if (res && res.status !== 200) {
            unsure.delete(id);
            live.set(id, Number(id.split('-')[2]));
          }
          tallyOf(res, kind);
        } else {
          kind = 'search';
          const res = await fetch(`${srv.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'a red circle', k: 5 }) }).catch(() => null);
          tallyOf(res, kind);
        }
        if (++answered >= killAfter) await kill();
      }
    };
    const tallyOf = (res: Response | null, kind: string) => {
      void res?.arrayBuffer().catch(() => undefined);
      if (res && res.status < 300) tally.acked++;
      count(`${kind} ${res ? res.status : 'no answer'}`);
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    await kill();
    memory.push(`round ${round}: RSS ${Math.round(rssBefore / 1024)} MiB after start, ${Math.round(rssAtKill / 1024)} MiB at the kill`);
    await verifyOnDisk(round);
  }
  assert.ok(round >= 4, `only ${round} kills`);
  // A last start and a clean stop: everything is there and the lock is released.
  const srv = await startServeProcess(['--model', fx.onnxModel, '--index', 'fi'], env);
  const st = (await (await fetch(`${srv.url}/index`)).json()) as { size: number };
  assert.equal(st.size, live.size);
  assert.equal(await srv.stop(), 0);

  console.log(`# fault-injection: ${round} SIGKILLs, ${tally.sent} requests sent by ${CLIENTS} clients, ${tally.acked} acknowledged, ${lost} lost`);
  for (const [k, n] of [...tally.byStatus].sort()) console.log(`# fault-injection: ${k}: ${n}`);
  for (const m of memory) console.log(`# fault-injection memory ${m}`);
  assert.equal(lost, 0);
  const errors = [...tally.byStatus].filter(([k]) => !/ (200|201|no answer)$/.test(k));
  assert.deepEqual(errors, [], 'every answered request succeeded');
});
