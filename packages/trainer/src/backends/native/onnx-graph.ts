/**
 * The few ONNX models the native backend runs, written as protobuf bytes by hand.
 *
 * An ONNX file is a protobuf `ModelProto`; a one-op model needs only a handful of its fields, so
 * they are encoded here directly (varint keys, length-delimited sub-messages) instead of pulling in
 * a protobuf runtime and the onnx.proto schema. Field numbers are onnx.proto's (IR version 8,
 * opset 17). Every dimension is symbolic, so one session serves every shape of its op signature.
 *
 *   gemm(transA, transB):      Y = op(A) · op(B)             Gemm, 2-D, op = transpose when flagged
 *   batchMatMul(transA, transB, rank):  Y = op(A) @ op(B)    Transpose (last two axes) + MatMul
 *   transpose, elementwise:    one ONNX op
 *   headSoftmax:               Y = softmax(A · Bᵀ), L = logsumexp(A · Bᵀ) over the last axis (the loss head)
 *
 * Larger graphs (a decoder layer's forward and backward, src/backends/native/decoder-layer-graph.ts) are written
 * with `OnnxGraph`: named values, nodes in order, constants as initializers, float / uint8 inputs, and
 * onnxruntime's `com.microsoft` domain (FusedMatMul: a MatMul whose transposes and scale are read in place).
 */

enum Wire {
  Varint = 0,
  Fixed32 = 5,
  Bytes = 2,
}

/** Protobuf writer for the subset used here: varint ints and length-delimited fields. */
class Writer {
  private readonly parts: number[] = [];

  private varint(v: number): void {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n; // two's complement, as protobuf encodes negative int64
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      this.parts.push(byte);
    } while (x !== 0n);
  }

  int(field: number, v: number): this {
    this.varint((field << 3) | Wire.Varint);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.varint((field << 3) | Wire.Fixed32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.parts.push(x);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.varint((field << 3) | Wire.Bytes);
    this.varint(data.length);
    for (const b of data) this.parts.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT
const UINT8 = 2;
const INT32 = 6;
const INT64 = 7;
const BOOL = 9;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

/** ValueInfoProto of a tensor whose dimensions are all symbolic (`<name>_0`, `<name>_1`, …). */
function floatInput(name: string, rank: number, type = FLOAT): Writer {
  const shape = new Writer();
  for (let i = 0; i < rank; i++) shape.message(1, new Writer().string(2, `${name}_${i}`)); // Dimension.dim_param
  const tensorType = new Writer().int(1, type).message(2, shape); // TypeProto.Tensor
  return new Writer().string(1, name).message(2, new Writer().message(1, tensorType)); // ValueInfoProto
}

function intAttr(name: string, v: number): Writer {
  return new Writer().string(1, name).int(3, v).int(20, ATTR_INT);
}

function intsAttr(name: string, vs: number[]): Writer {
  const w = new Writer().string(1, name);
  for (const v of vs) w.int(8, v);
  return w.int(20, ATTR_INTS);
}

function floatAttr(name: string, v: number): Writer {
  return new Writer().string(1, name).float(2, v).int(20, ATTR_FLOAT);
}

function stringAttr(name: string, v: string): Writer {
  return new Writer().string(1, name).string(4, v).int(20, ATTR_STRING);
}

function node(op: string, inputs: string[], outputs: string[], attrs: Writer[] = [], domain = ''): Writer {
  const w = new Writer();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(4, op);
  for (const a of attrs) w.message(5, a);
  if (domain) w.string(7, domain);
  return w;
}

function model(nodes: Writer[], inputs: Writer[], output: Writer | Writer[]): Uint8Array {
  const graph = new Writer();
  for (const n of nodes) graph.message(1, n);
  graph.string(2, 'cllama');
  for (const i of inputs) graph.message(11, i);
  for (const o of Array.isArray(output) ? output : [output]) graph.message(12, o);
  return new Writer()
    .int(1, 8) // ir_version
    .string(2, 'cllama') // producer_name
    .message(8, new Writer().string(1, '').int(2, 17)) // opset_import: ai.onnx 17
    .message(7, graph)
    .finish();
}

/** Y = op(A) · op(B) for 2-D A, B (ONNX Gemm: the transposes are read in place, never copied). */
export function gemmModel(transA: boolean, transB: boolean): Uint8Array {
  return model(
    [node('Gemm', ['A', 'B'], ['Y'], [intAttr('transA', transA ? 1 : 0), intAttr('transB', transB ? 1 : 0)])],
    [floatInput('A', 2), floatInput('B', 2)],
    floatInput('Y', 2),
  );
}

/** Y = op(A) @ op(B) for rank-`rank` A, B with equal batch dimensions (MatMul after Transposes). */
export function batchMatMulModel(transA: boolean, transB: boolean, rank: number): Uint8Array {
  const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
  const nodes: Writer[] = [];
  let a = 'A';
  let b = 'B';
  if (transA) {
    nodes.push(node('Transpose', ['A'], ['At'], [intsAttr('perm', perm)]));
    a = 'At';
  }
  if (transB) {
    nodes.push(node('Transpose', ['B'], ['Bt'], [intsAttr('perm', perm)]));
    b = 'Bt';
  }
  nodes.push(node('MatMul', [a, b], ['Y']));
  return model(nodes, [floatInput('A', rank), floatInput('B', rank)], floatInput('Y', rank));
}

/** Y = transpose(X, perm) (ONNX Transpose) for a float tensor of rank perm.length. */
export function transposeModel(perm: readonly number[]): Uint8Array {
  return model([node('Transpose', ['A'], ['Y'], [intsAttr('perm', [...perm])])], [floatInput('A', perm.length)], floatInput('Y', perm.length));
}

/** Y = op(inputs…) for one elementwise ONNX op (Add, Sub, Mul, Div with numpy broadcasting; Exp, Sigmoid, Log). */
export function elementwiseModel(op: string, ranks: readonly number[]): Uint8Array {
  const names = ranks.map((_, i) => (i === 0 ? 'A' : 'B'));
  const outRank = Math.max(...ranks);
  return model(
    [node(op, names, ['Y'])],
    ranks.map((r, i) => floatInput(names[i]!, r)),
    floatInput('Y', outRank),
  );
}

/**
 * The loss head's forward: X = A · Bᵀ (hidden states [n, H] times the head [V, H]), then
 * Y = softmax(X) and L = log Σ exp(X) over the vocabulary (L kept as [n, 1]); X stays inside ORT.
 * L is read off the softmax: max(Y) = exp(max(X) − L), so L = max(X) − log max(Y) — two max passes
 * instead of ONNX ReduceLogSumExp's generic reduction (measured ~0.1 s less on [1020, 49954]); max(Y)
 * ≥ 1/V never underflows, so this is as exact as log Σ exp to a float32 ulp of L.
 */
export function headSoftmaxModel(): Uint8Array {
  return model(
    [
      node('Gemm', ['A', 'B'], ['X'], [intAttr('transB', 1)]),
      node('Softmax', ['X'], ['Y'], [intAttr('axis', -1)]),
      node('ReduceMax', ['X'], ['M'], [intsAttr('axes', [-1]), intAttr('keepdims', 1)]),
      node('ReduceMax', ['Y'], ['P'], [intsAttr('axes', [-1]), intAttr('keepdims', 1)]),
      node('Log', ['P'], ['LP']),
      node('Sub', ['M', 'LP'], ['L']),
    ],
    [floatInput('A', 2), floatInput('B', 2)],
    [floatInput('Y', 2), floatInput('L', 2)],
  );
}

/** An attribute value: an integer, a float (`{ f: 0.5 }`), a string (`{ s: 'add' }`) or a list of integers. */
export type AttrValue = number | { f: number } | { s: string } | number[];

/**
 * A graph written node by node. Every value is named (`v<n>` unless given a name); inputs and outputs
 * have symbolic dimensions; constants are initializers (int64 lists for shapes and axes, float scalars).
 */
interface NodeSpec {
  type: string;
  inputs: string[];
  outputs: string[];
  attrs: Writer[];
  domain: string;
}

export class OnnxGraph {
  private readonly nodes: NodeSpec[] = [];
  private readonly inputNames = new Set<string>();
  /** Value → new name, for values that became graph outputs (see `output`). */
  private readonly renamed = new Map<string, string>();
  private readonly inputs: Writer[] = [];
  private readonly outputs: Writer[] = [];
  private readonly initializers: Writer[] = [];
  private readonly constants = new Map<string, string>();
  private next = 0;

  /** A float input (or bool / uint8, for masks; int32, for indices) of the given rank. */
  input(name: string, rank: number, type: 'float32' | 'uint8' | 'bool' | 'int32' = 'float32'): string {
    this.inputs.push(floatInput(name, rank, { float32: FLOAT, uint8: UINT8, bool: BOOL, int32: INT32 }[type]));
    this.inputNames.add(name);
    return name;
  }

  /**
   * Makes `value` a graph output named `name`. A node's value is renamed (no copy: onnxruntime keeps an
   * Identity in front of a graph output, a copy per run); an input, a constant or a value that is
   * already an output goes through an Identity.
   */
  output(name: string, value: string, rank: number): void {
    if (value !== name) {
      const renamable = !this.inputNames.has(value) && !this.renamed.has(value) && this.nodes.some((n) => n.outputs.includes(value));
      if (renamable) this.renamed.set(value, name);
      else this.nodes.push({ type: 'Identity', inputs: [value], outputs: [name], attrs: [], domain: '' });
    }
    this.outputs.push(floatInput(name, rank));
  }

  /** A constant int64 vector (shapes, axes, split sizes). */
  ints(values: readonly number[]): string {
    return this.constant(`i${values.join('_')}`, INT64, [values.length], () => {
      const b = new Uint8Array(8 * values.length);
      const view = new DataView(b.buffer);
      values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
      return b;
    });
  }

  /** A constant float32 scalar. */
  scalar(value: number): string {
    return this.constant(`f${value}`, FLOAT, [], () => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, value, true);
      return b;
    });
  }

  private constant(key: string, type: number, dims: number[], raw: () => Uint8Array): string {
    let name = this.constants.get(key);
    if (!name) {
      name = `c${this.constants.size}`;
      const t = new Writer();
      for (const d of dims) t.int(1, d); // TensorProto.dims
      t.int(2, type).string(8, name).bytes(9, raw()); // data_type, name, raw_data
      this.initializers.push(t);
      this.constants.set(key, name);
    }
    return name;
  }

  /** Appends a node with one output and returns that output's name. */
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, domain = ''): string {
    return this.opN(type, inputs, 1, attrs, domain)[0]!;
  }

  /** Appends a node with `count` outputs. */
  opN(type: string, inputs: string[], count: number, attrs: Record<string, AttrValue> = {}, domain = ''): string[] {
    const outs = Array.from({ length: count }, () => `v${this.next++}`);
    const a = Object.entries(attrs).map(([k, v]) =>
      Array.isArray(v) ? intsAttr(k, v) : typeof v === 'number' ? intAttr(k, v) : 'f' in v ? floatAttr(k, v.f) : stringAttr(k, v.s),
    );
    this.nodes.push({ type, inputs, outputs: outs, attrs: a, domain });
    return outs;
  }

  /** The ModelProto bytes (IR 8; opsets ai.onnx 17 and com.microsoft 1). */
  bytes(): Uint8Array {
    const graph = new Writer();
    const name = (v: string) => this.renamed.get(v) ?? v;
    for (const n of this.nodes) graph.message(1, node(n.type, n.inputs.map(name), n.outputs.map(name), n.attrs, n.domain));
    graph.string(2, 'cllama');
    for (const t of this.initializers) graph.message(5, t);
    for (const i of this.inputs) graph.message(11, i);
    for (const o of this.outputs) graph.message(12, o);
    return new Writer()
      .int(1, 8)
      .string(2, 'cllama')
      .message(8, new Writer().string(1, '').int(2, 17))
      .message(8, new Writer().string(1, 'com.microsoft').int(2, 1))
      .message(7, graph)
      .finish();
  }
}
