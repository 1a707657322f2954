// The floors of src/: every import, static or dynamic, value or type-only, points to the same floor
// or one below, and no two folders import each other (directly or round a longer loop). Floors, top
// to bottom:
//
//   app (cli, demo, pretrain, datasets, examples)
//   server
//   api        runs, inference, the package entry points (index.ts, engine.ts)
//   train, eval, search
//   models, data
//   ops, autodiff
//   onnx, runtime, formats
//   util, errors.ts
//
// Read from the files on disk with TypeScript's own import scanner, so a new file or a new import is
// checked the day it is written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Floor of each top-level room (a folder of src/, or a file directly in it). */
const FLOORS: Record<string, number> = {
  'errors.ts': 0,
  util: 0,
  onnx: 1,
  runtime: 1,
  formats: 1,
  ops: 2,
  autodiff: 2,
  models: 3,
  data: 3,
  train: 4,
  eval: 4,
  search: 4,
  runs: 5,
  inference: 5,
  'index.ts': 5,
  'engine.ts': 5,
  server: 6,
  app: 7,
};
const FLOOR_NAMES = ['util', 'onnx/runtime', 'ops/autodiff', 'models/data', 'train/eval/search', 'api', 'server', 'app'];

/** Dynamic imports whose specifier is not a string literal, each with the reason it is not one of ours. */
const VARIABLE_IMPORTS: Record<string, string> = {
  'search/open_index.ts': "the optional 'pg' package, named by a variable so that TypeScript does not require it",
  'runs/execute.ts': 'a job module the caller names (tests run a fake fit); clipfit\'s own fit is a literal import',
  'app/report/chart.ts': "the web page's chart.js, plain JavaScript shipped in src/server/web/ (not compiled into dist/)",
};

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The room of a file: its top folder under src/ (models/ counts its model folders as rooms of their own). */
function roomOf(rel: string): string {
  const parts = rel.split('/');
  if (parts.length === 1) return parts[0]!;
  if (parts[0] === 'models' && parts.length > 2) return `${parts[0]}/${parts[1]}`;
  if (parts[0] === 'app' && parts.length > 2) return `${parts[0]}/${parts[1]}`;
  return parts[0]!;
}

const floorOf = (room: string): number | undefined => FLOORS[room.split('/')[0]!];

interface Edge {
  file: string;
  spec: string;
  from: string;
  to: string;
}

interface Scan {
  /** Imports between rooms. */
  edges: Edge[];
  /** Every relative import, as from → to file (both relative to src/). */
  fileEdges: Edge[];
  problems: string[];
}

/** Module specifiers of a file: import/export … from, import('…') (a computed one as its source text) and import('…').T types. */
function importsOf(abs: string, text: string): { spec: string; computed?: string }[] {
  const out: { spec: string; computed?: string }[] = [];
  const sf = ts.createSourceFile(abs, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push({ spec: node.moduleSpecifier.text });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteralLike(arg)) out.push({ spec: arg.text });
      else out.push({ spec: '', computed: arg ? arg.getText(sf) : '' });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push({ spec: node.argument.literal.text });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Every relative import of src/**.ts, as an edge between rooms (imports inside one room are left out). */
function scanImports(src = SRC): Scan {
  const edges: Edge[] = [];
  const fileEdges: Edge[] = [];
  const problems: string[] = [];
  for (const abs of sourceFiles(src)) {
    const file = path.relative(src, abs).split(path.sep).join('/');
    const text = readFileSync(abs, 'utf8');
    const from = roomOf(file);
    if (floorOf(from) === undefined) problems.push(`${file}: room '${from}' has no floor; add it to FLOORS in test/architecture.test.ts`);
    for (const { spec, computed } of importsOf(abs, text)) {
      if (computed !== undefined) {
        if (!VARIABLE_IMPORTS[file]) problems.push(`${file}: dynamic import(${computed}) of a computed specifier; import a literal path so the floors can be checked`);
        continue;
      }
      if (!spec.startsWith('.')) continue;
      const target = path.relative(src, path.resolve(path.dirname(abs), spec)).split(path.sep).join('/').replace(/\.js$/, '.ts');
      if (target.startsWith('..')) {
        problems.push(`${file}: imports '${spec}', outside src/`);
        continue;
      }
      const to = roomOf(target);
      if (to !== from) edges.push({ file, spec, from, to });
      if (target !== file) fileEdges.push({ file, spec, from: file, to: target });
    }
  }
  return { edges, fileEdges, problems };
}

/** Upward imports: from a room to a room on a higher floor. */
function upward(edges: Edge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const a = floorOf(e.from);
    const b = floorOf(e.to);
    if (a === undefined || b === undefined) {
      if (b === undefined) out.push(`${e.file}: imports '${e.spec}' (room '${e.to}' has no floor)`);
      continue;
    }
    if (b > a) out.push(`${e.file}: imports '${e.spec}' — ${e.from} (${FLOOR_NAMES[a]}) must not import ${e.to} (${FLOOR_NAMES[b]}, a floor above)`);
  }
  return out;
}

/** Rooms that reach each other through imports (Tarjan's strongly connected components of size > 1). */
function cycles(edges: Edge[]): string[][] {
  const adj = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!adj.has(e.from)) adj.set(e.from, new Set());
    if (!adj.has(e.to)) adj.set(e.to, new Set());
    adj.get(e.from)!.add(e.to);
  }
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of adj.get(v)!) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of [...adj.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** The imports that hold a cycle of rooms together, named by file. */
function cycleImports(edges: Edge[], comp: string[]): string[] {
  const set = new Set(comp);
  return edges.filter((e) => set.has(e.from) && set.has(e.to)).map((e) => `${e.file} imports '${e.spec}' (${e.from} → ${e.to})`);
}

test('every room of src/ has a floor', () => {
  const { problems } = scanImports();
  assert.deepEqual(problems, []);
});

test('no import points up a floor (app → server → api → train/eval/search → models/data → ops/autodiff → onnx/runtime → util)', () => {
  const { edges } = scanImports();
  assert.ok(edges.length > 50, `only ${edges.length} imports between rooms were found; the scan is broken`);
  assert.deepEqual(upward(edges), []);
});

test('no two rooms import each other, directly or round a loop', () => {
  const { edges } = scanImports();
  const found = cycles(edges).map((c) => `${c.join(' ⇄ ')}:\n    ${cycleImports(edges, c).join('\n    ')}`);
  assert.deepEqual(found, []);
});

test('no two files import each other, not even for a type (a shared type gets a file of its own)', () => {
  const { fileEdges } = scanImports();
  const found = cycles(fileEdges).map((c) => `${c.join(' ⇄ ')}:\n    ${cycleImports(fileEdges, c).join('\n    ')}`);
  assert.deepEqual(found, []);
});

test('inside models/clip: text/ and image/ stand alone, weights/ reads only the config, text/ and image/', () => {
  const { fileEdges } = scanImports();
  const clip = 'models/clip/';
  const part = (f: string) => (f.startsWith(clip) ? (/^(text|image|weights)\//.exec(f.slice(clip.length))?.[1] ?? 'model') : null);
  const allowed: Record<string, (to: string) => boolean> = {
    text: (to) => part(to) === 'text',
    image: (to) => part(to) === 'image',
    weights: (to) => ['text', 'image', 'weights'].includes(part(to)!) || to === `${clip}config.ts`,
  };
  const bad = fileEdges
    .filter((e) => part(e.from) && part(e.to) && allowed[part(e.from)!] && !allowed[part(e.from)!]!(e.to))
    .map((e) => `${e.file}: imports '${e.spec}'`);
  assert.deepEqual(bad, []);
  assert.ok(fileEdges.some((e) => part(e.from) === 'weights' && part(e.to) === 'text'), 'the check sees models/clip');
});

test('every error src/ throws on purpose is a ClipfitError: no bare `throw new Error(`', () => {
  const bare = sourceFiles(SRC).flatMap((abs) =>
    readFileSync(abs, 'utf8')
      .split('\n')
      .flatMap((line, i) => (/\bthrow new (Type|Range)?Error\(/.test(line) ? [`${path.relative(SRC, abs)}:${i + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(bare, []);
});

test('the library never imports the app', () => {
  const { edges } = scanImports();
  const bad = edges.filter((e) => !e.from.startsWith('app') && e.to.startsWith('app')).map((e) => `${e.file}: imports '${e.spec}'`);
  assert.deepEqual(bad, []);
});

test('the checks see a planted upward import, a type-only cycle and a computed dynamic import', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipfit-arch-'));
  try {
    const put = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    };
    put('onnx/encode.ts', "import { OPS } from '../ops/registry.js';\n");
    put('ops/registry.ts', "import type { Graph } from '../onnx/graph.js';\n");
    put('onnx/graph.ts', 'export class Graph {}\n');
    put('runs/job.ts', "const spec = '../train/fit.js';\nawait import(spec);\nawait import('../train/fit.js');\n");
    put('train/fit.ts', "import { x } from '../app/cli/main.js';\n");
    put('app/cli/main.ts', 'export const x = 1;\n');
    const { edges, problems } = scanImports(dir);
    assert.deepEqual(problems, ['runs/job.ts: dynamic import(spec) of a computed specifier; import a literal path so the floors can be checked']);
    assert.deepEqual(upward(edges).sort(), [
      "onnx/encode.ts: imports '../ops/registry.js' — onnx (onnx/runtime) must not import ops (ops/autodiff, a floor above)",
      "train/fit.ts: imports '../app/cli/main.js' — train (train/eval/search) must not import app/cli (app, a floor above)",
    ]);
    assert.deepEqual(cycles(edges), [['onnx', 'ops']]);
    assert.ok(edges.some((e) => e.file === 'runs/job.ts' && e.to === 'train'), 'a literal dynamic import is an edge');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
