/**
 * Add, Sub, Multiply, RealDiv (broadcasting, float32) for the native backend: onnxruntime's
 * Add/Sub/Mul/Div from 32 Ki output elements, typed-array loops below.
 *
 * Reference: tfjs-cpu's kernels, which compute a broadcast binary op element by element through
 * index ↔ coordinate conversions (~2 M elements/s: the loss head's `logits − max` over [tokens, vocab]
 * alone took seconds); they still take other dtypes. Here both operands get strides (0 along a
 * broadcast axis), adjacent axes that broadcast alike are merged, and the innermost axis runs as a
 * plain loop; an odometer walks the outer axes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, ORT_ELEMENTWISE_MIN, prod, type NativeKernel } from '../kernel-util.js';

export type BinaryOp = 'Add' | 'Sub' | 'Multiply' | 'RealDiv';

function broadcastShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

function innerLoop(
  op: BinaryOp,
  out: Float32Array,
  o: number,
  a: Float32Array,
  ia: number,
  sa: number,
  b: Float32Array,
  ib: number,
  sb: number,
  n: number,
): void {
  switch (op) {
    case 'Add':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! + b[ib]!;
      break;
    case 'Sub':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! - b[ib]!;
      break;
    case 'Multiply':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! * b[ib]!;
      break;
    case 'RealDiv':
      for (let j = 0; j < n; j++, ia += sa, ib += sb) out[o + j] = a[ia]! / b[ib]!;
      break;
  }
}

/** a ∘ b with numpy broadcasting; undefined when the shapes do not broadcast (the caller's kernel words the error). */
export function broadcastBinary(
  op: BinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
): { shape: number[]; values: Float32Array } | undefined {
  const shape = broadcastShape(aShape, bShape);
  if (!shape) return undefined;
  const size = shape.reduce((x, y) => x * y, 1);
  const out = new Float32Array(size);
  if (size === 0) return { shape, values: out };
  const rank = shape.length;
  const pa = [...Array(rank - aShape.length).fill(1), ...aShape] as number[];
  const pb = [...Array(rank - bShape.length).fill(1), ...bShape] as number[];
  // axes inner → outer as [extent, stride in a, stride in b] (stride 0 = broadcast); an outer axis merges
  // into its inner neighbour when both operands step across the pair contiguously (or both broadcast)
  const dims: Array<[number, number, number]> = [];
  let strideA = 1;
  let strideB = 1;
  for (let i = rank - 1; i >= 0; i--) {
    const extent = shape[i]!;
    const xa = pa[i] === 1 ? 0 : strideA;
    const xb = pb[i] === 1 ? 0 : strideB;
    strideA *= pa[i]!;
    strideB *= pb[i]!;
    if (extent === 1) continue;
    const inner = dims[dims.length - 1];
    if (inner && xa === inner[1] * inner[0] && xb === inner[2] * inner[0]) inner[0] *= extent;
    else dims.push([extent, xa, xb]);
  }
  dims.reverse(); // outer → inner
  if (dims.length === 0) {
    innerLoop(op, out, 0, a, 0, 0, b, 0, 0, 1);
    return { shape, values: out };
  }
  const [n, sa, sb] = dims[dims.length - 1]!;
  const outer = dims.slice(0, -1);
  const counter = new Array(outer.length).fill(0) as number[];
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < size; o += n) {
    innerLoop(op, out, o, a, ia, sa, b, ib, sb, n);
    // odometer over the outer axes
    for (let k = outer.length - 1; k >= 0; k--) {
      const [extent, ka, kb] = outer[k]!;
      if (++counter[k]! < extent) {
        ia += ka;
        ib += kb;
        break;
      }
      counter[k] = 0;
      ia -= ka * (extent - 1);
      ib -= kb * (extent - 1);
    }
  }
  return { shape, values: out };
}

const ONNX_BINARY: Record<BinaryOp, string> = { Add: 'Add', Sub: 'Sub', Multiply: 'Mul', RealDiv: 'Div' };

export const binaryKernels: NativeKernel[] = (['Add', 'Sub', 'Multiply', 'RealDiv'] as const).map((op) => ({
  kernelName: op,
  build: ({ ort, cpu }) => {
    const cpuOp = cpu(op);
    return (args) => {
      const { a, b } = args.inputs;
      const av = f32(args.backend, a!);
      const bv = f32(args.backend, b!);
      if (!av || !bv) return cpuOp(args);
      const shape = tf.backend_util.assertAndGetBroadcastShape(a!.shape, b!.shape);
      if (prod(shape) >= ORT_ELEMENTWISE_MIN) {
        return args.backend.makeTensorInfo(shape, 'float32', ort.elementwise(ONNX_BINARY[op], av, a!.shape, bv, b!.shape, shape));
      }
      const r = broadcastBinary(op, av, a!.shape, bv, b!.shape)!;
      return args.backend.makeTensorInfo(r.shape, 'float32', r.values);
    };
  },
}));
