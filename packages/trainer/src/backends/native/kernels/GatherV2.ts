/**
 * GatherV2 for the native backend: whole slices copied per index.
 *
 * The reference is tfjs-cpu's kernel (out[o, i, …] = x[o, indices[i], …] along `axis`, batchDims 0,
 * an error for an index outside [0, dim)): it reads and writes element by element through coordinate
 * conversions (~0.1 s for the loss head's [1020, 256] row gather). Here each gathered slice of
 * `inner` contiguous elements is one copy. Other dtypes and batchDims > 0 go to the cpu kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, prod, type Alloc, type KernelFn, type NativeKernel } from '../kernel-util.js';

/** x viewed as [outer, dim, inner]; out [outer, indices.length, inner]. */
export function gatherSlices(x: Float32Array, outer: number, dim: number, inner: number, indices: Int32Array, alloc: Alloc): Float32Array {
  for (const index of indices) {
    if (!(index >= 0 && index < dim)) throw new Error(`GatherV2: the index value ${index} is not in [0, ${dim - 1}]`);
  }
  const n = indices.length;
  const out = alloc(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      const src = (o * dim + indices[i]!) * inner;
      const dst = (o * n + i) * inner;
      if (inner >= 16) out.set(x.subarray(src, src + inner), dst);
      else for (let j = 0; j < inner; j++) out[dst + j] = x[src + j]!;
    }
  }
  return out;
}

export function gatherKernel(cpu: KernelFn, alloc: Alloc): KernelFn {
  return (args) => {
    const { x, indices } = args.inputs;
    const { axis, batchDims } = args.attrs as { axis: number; batchDims?: number };
    const xv = f32(args.backend, x!);
    const ids = args.backend.data.get(indices!.dataId).values;
    if (!xv || !(ids instanceof Int32Array) || (batchDims ?? 0) !== 0) return cpu(args);
    const ax = tf.util.parseAxisParam(axis, x!.shape)[0]!;
    const shape = [...x!.shape.slice(0, ax), ...indices!.shape, ...x!.shape.slice(ax + 1)];
    const values = gatherSlices(xv, prod(x!.shape.slice(0, ax)), x!.shape[ax]!, prod(x!.shape.slice(ax + 1)), ids, alloc);
    return args.backend.makeTensorInfo(shape, 'float32', values);
  };
}

export const gatherV2Kernel: NativeKernel = { kernelName: 'GatherV2', build: ({ cpu, alloc }) => gatherKernel(cpu('GatherV2'), alloc) };
