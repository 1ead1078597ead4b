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
 */

enum Wire {
  Varint = 0,
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
const ATTR_INT = 2;
const ATTR_INTS = 7;

/** ValueInfoProto of a float tensor whose dimensions are all symbolic (`<name>_0`, `<name>_1`, …). */
function floatInput(name: string, rank: number): Writer {
  const shape = new Writer();
  for (let i = 0; i < rank; i++) shape.message(1, new Writer().string(2, `${name}_${i}`)); // Dimension.dim_param
  const tensorType = new Writer().int(1, FLOAT).message(2, shape); // TypeProto.Tensor
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

function node(op: string, inputs: string[], outputs: string[], attrs: Writer[] = []): Writer {
  const w = new Writer();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(4, op);
  for (const a of attrs) w.message(5, a);
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
 */
export function headSoftmaxModel(): Uint8Array {
  return model(
    [
      node('Gemm', ['A', 'B'], ['X'], [intAttr('transB', 1)]),
      node('Softmax', ['X'], ['Y'], [intAttr('axis', -1)]),
      node('ReduceLogSumExp', ['X'], ['L'], [intsAttr('axes', [-1]), intAttr('keepdims', 1)]),
    ],
    [floatInput('A', 2), floatInput('B', 2)],
    [floatInput('Y', 2), floatInput('L', 2)],
  );
}
