// Encode a Graph as an ONNX ModelProto. Only nodes that the outputs need are written; parameters
// become graph inputs, constants initializers. One opset is pinned for every graph clipfit makes.
// Every node was checked against the op table when it was emitted (ops/registry.ts emit), so the
// encoder does not look ops up again (and the IR floor never imports the op table above it).

import onnxProto from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';
const { onnx } = onnxProto;
import { ClipfitError } from '../errors.js';
import { ONNX_DTYPE } from './dtype.js';
import type { TypedArray } from './dtype.js';
import type { Attr, Graph, Node, Value } from './graph.js';

/** The default-domain opset every clipfit graph uses (LayerNormalization 17, Reduce* axes-as-input 18). */
export const OPSET = 20;
export const MS_OPSET = 1;
export const IR_VERSION = 9;

function tensorProto(name: string, dtype: keyof typeof ONNX_DTYPE, dims: readonly number[], data: TypedArray): O.ITensorProto {
  return {
    name,
    dataType: ONNX_DTYPE[dtype],
    dims: [...dims],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

function attrProto(name: string, a: Attr): O.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in a) return { name, type: T.INT, i: a.i };
  if ('f' in a) return { name, type: T.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: T.INTS, ints: a.ints };
  if ('floats' in a) return { name, type: T.FLOATS, floats: a.floats };
  if ('s' in a) return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
  return { name, type: T.TENSOR, t: tensorProto('', a.t.dtype, a.t.shape, a.t.data) };
}

function valueInfo(v: Value, symbolicOut: boolean): O.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[v.dtype],
        shape: {
          dim: v.shape.map((d) =>
            typeof d === 'number' ? { dimValue: d } : symbolicOut || /^[A-Za-z_]\w*$/.test(d) ? { dimParam: d } : {},
          ),
        },
      },
    },
  };
}

/** The nodes needed to compute `outputs`, in topological (emission) order. */
export function liveNodes(graph: Graph, outputs: readonly Value[]): Node[] {
  const needed = new Set<Node>();
  const stack = outputs.map((v) => v.producer).filter((n): n is Node => n !== null);
  while (stack.length) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    for (const x of n.inputs) if (x?.producer && !needed.has(x.producer)) stack.push(x.producer);
  }
  return graph.nodes.filter((n) => needed.has(n));
}

export interface EncodeOptions {
  /** Graph outputs; default graph.outputs. */
  outputs?: readonly Value[];
  /** Feed these parameters' values as initializers instead of inputs (for export). */
  bakeParams?: Map<string, Float32Array>;
  docString?: string;
}

export function toModelProto(graph: Graph, opts: EncodeOptions = {}): O.ModelProto {
  const outputs = opts.outputs ?? graph.outputs;
  if (outputs.length === 0) throw new ClipfitError(`graph '${graph.name}' has no outputs`);
  const nodes = liveNodes(graph, outputs);
  const used = new Set<Value>(outputs);
  for (const n of nodes) for (const x of n.inputs) if (x) used.add(x);
  let usesMs = false;
  const nodeProtos = nodes.map((n) => {
    if (n.domain === 'com.microsoft') usesMs = true;
    return {
      name: n.name,
      opType: n.op,
      domain: n.domain,
      input: n.inputs.map((x) => (x ? x.name : '')),
      output: n.outputs.map((y) => y.name),
      attribute: Object.entries(n.attrs).map(([k, a]) => attrProto(k, a)),
    };
  });
  const inputs: O.IValueInfoProto[] = [];
  const inits: O.ITensorProto[] = [];
  for (const v of graph.inputs) if (used.has(v)) inputs.push(valueInfo(v, false));
  for (const p of graph.params) {
    if (!used.has(p)) continue;
    const baked = opts.bakeParams?.get(p.name);
    if (baked) inits.push(tensorProto(p.name, 'float32', p.shape as number[], baked));
    else inputs.push(valueInfo(p, false));
  }
  for (const c of graph.consts) if (used.has(c)) inits.push(tensorProto(c.name, c.dtype, c.shape as number[], c.data!));
  const opsetImport: O.IOperatorSetIdProto[] = [{ domain: '', version: OPSET }];
  if (usesMs) opsetImport.push({ domain: 'com.microsoft', version: MS_OPSET });
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'clipfit',
    opsetImport,
    docString: opts.docString ?? '',
    graph: {
      name: graph.name,
      node: nodeProtos,
      input: inputs,
      initializer: inits,
      output: outputs.map((v) => valueInfo(v, false)),
    },
  });
}

export function encodeModel(graph: Graph, opts: EncodeOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(graph, opts)).finish();
}
