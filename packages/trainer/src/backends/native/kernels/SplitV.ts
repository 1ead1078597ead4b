/**
 * SplitV (tf.split) for the native backend: block copies, no per-element indexing.
 *
 * Reference: tfjs-cpu's SplitV (a Slice per piece, element by element), which other dtypes still go to.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, freshArray, type Alloc, type NativeKernel } from '../kernel-util.js';

/** Splits `x` along `axis` into pieces of the given sizes: block copies, no per-element indexing. */
export function splitAxis(x: Float32Array, shape: readonly number[], axis: number, sizes: readonly number[], alloc: Alloc = freshArray): Float32Array[] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const total = shape[axis]!;
  let start = 0;
  return sizes.map((size) => {
    const out = alloc(outer * size * inner);
    const run = size * inner;
    for (let o = 0; o < outer; o++) out.set(x.subarray((o * total + start) * inner, (o * total + start) * inner + run), o * run);
    start += size;
    return out;
  });
}

export const splitVKernel: NativeKernel = {
  kernelName: 'SplitV',
  build: ({ alloc, cpu }) => {
    const cpuSplit = cpu('SplitV');
    return (args) => {
      const { x } = args.inputs;
      const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
      const xv = f32(args.backend, x!);
      if (!xv) return cpuSplit(args);
      const ax = tf.util.parseAxisParam(axis, x!.shape)[0]!;
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
      return splitAxis(xv, x!.shape, ax, sizes, alloc).map((values, i) => {
        const shape = [...x!.shape];
        shape[ax] = sizes[i]!;
        return args.backend.makeTensorInfo(shape, 'float32', values);
      });
    };
  },
};
