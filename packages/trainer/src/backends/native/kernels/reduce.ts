/**
 * Sum, Max, Mean over trailing axes (rows of a contiguous block, float32) for the native backend, as
 * tfjs-cpu computes them: float64 accumulation stored as float32; Mean sums x / n rounded to float32
 * per element.
 *
 * Reference: tfjs-cpu's kernels (a transpose, then a closure per element), which reductions over other
 * axes, empty rows, scalars and other dtypes still go to.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, prod, type NativeKernel } from '../kernel-util.js';

/** Sum / Max / Mean over the last `rowLength` elements of each row. */
export type ReduceOp = 'Sum' | 'Max' | 'Mean';

export function reduceRows(op: ReduceOp, x: Float32Array, rowLength: number): Float32Array {
  const rows = rowLength === 0 ? 0 : x.length / rowLength;
  const out = new Float32Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += rowLength) {
    if (op === 'Max') {
      let max = x[o]!;
      for (let j = 1; j < rowLength; j++) if (x[o + j]! > max || Number.isNaN(x[o + j]!)) max = x[o + j]!;
      out[r] = max;
    } else if (op === 'Sum') {
      let sum = 0;
      for (let j = 0; j < rowLength; j++) sum += x[o + j]!;
      out[r] = sum;
    } else {
      let sum = 0;
      for (let j = 0; j < rowLength; j++) sum += Math.fround(x[o + j]! / rowLength);
      out[r] = sum;
    }
  }
  return out;
}

export const reduceKernels: NativeKernel[] = (['Sum', 'Max', 'Mean'] as const).map((op) => ({
  kernelName: op,
  build: ({ cpu }) => {
    const cpuOp = cpu(op);
    return (args) => {
      const { x } = args.inputs;
      // Max names its axes `reductionIndices`, Sum and Mean `axis`
      const { axis, reductionIndices, keepDims } = args.attrs as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims: boolean };
      const xv = f32(args.backend, x!);
      const rank = x!.shape.length;
      const axes = tf.util.parseAxisParam((axis ?? reductionIndices)!, x!.shape).sort((p, q) => p - q);
      if (!xv || rank === 0 || axes.length === 0 || axes.some((ax, i) => ax !== rank - axes.length + i)) return cpuOp(args);
      const kept = x!.shape.slice(0, rank - axes.length);
      const rowLength = prod(x!.shape.slice(rank - axes.length));
      if (rowLength === 0) return cpuOp(args);
      const shape = keepDims ? [...kept, ...axes.map(() => 1)] : kept;
      return args.backend.makeTensorInfo(shape, 'float32', reduceRows(op, xv, rowLength));
    };
  },
}));
