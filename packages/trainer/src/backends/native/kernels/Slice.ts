/**
 * Slice for the native backend: the innermost contiguous runs copied as blocks.
 *
 * Reference: tfjs-cpu's Slice (element by element through coordinate conversions), which other dtypes
 * still go to.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, freshArray, type Alloc, type NativeKernel } from '../kernel-util.js';

/** x[begin : begin + size] of a row-major tensor: the innermost contiguous runs copied as blocks. */
export function sliceBlocks(
  x: Float32Array,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  alloc: Alloc = freshArray,
): Float32Array {
  const rank = shape.length;
  const out = alloc(size.reduce((a, b) => a * b, 1));
  if (out.length === 0 || rank === 0) return out.length ? out.fill(x[0]!) : out;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  // axis k and everything inside it form one contiguous run when the axes inside k are taken whole
  let k = rank - 1;
  while (k > 0 && size[k] === shape[k] && begin[k] === 0) k--;
  const runLen = size[k]! * strides[k]!;
  const counter = new Array<number>(k).fill(0);
  let src = begin.reduce((acc, b, i) => acc + b * strides[i]!, 0);
  for (let o = 0; o < out.length; o += runLen) {
    out.set(x.subarray(src, src + runLen), o);
    for (let i = k - 1; i >= 0; i--) {
      if (++counter[i]! < size[i]!) {
        src += strides[i]!;
        break;
      }
      counter[i] = 0;
      src -= strides[i]! * (size[i]! - 1);
    }
  }
  return out;
}

export const sliceKernel: NativeKernel = {
  kernelName: 'Slice',
  build: ({ alloc, cpu }) => {
    const cpuSlice = cpu('Slice');
    return (args) => {
      const { x } = args.inputs;
      const xv = f32(args.backend, x!);
      if (!xv) return cpuSlice(args);
      const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
      const [b, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
      return args.backend.makeTensorInfo(sz, 'float32', sliceBlocks(xv, x!.shape, b, sz, alloc));
    };
  },
};
