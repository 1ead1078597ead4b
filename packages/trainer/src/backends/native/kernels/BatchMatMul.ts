/**
 * BatchMatMul (tf.matMul, and every matMul in the gradients, transpose flags included) for the native
 * backend: op(A) @ op(B) as one onnxruntime Gemm (2-D; also a batch of A rows against one B, folded
 * into M) or MatMul over equal batch dimensions, reading either layout in place.
 *
 * Reference: tfjs-cpu's BatchMatMul, which every other shape (broadcast batch dimensions, other dtypes,
 * an empty product, mismatched inner sizes: it words the error) still goes to.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { OrtRuntime } from '../ort.js';
import { f32, prod, type CpuBackend, type NativeKernel } from '../kernel-util.js';

/** op(A) @ op(B) natively when the shapes allow it, else undefined (the caller falls back to cpu). */
export function nativeMatMul(
  ort: OrtRuntime,
  backend: CpuBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transA: boolean,
  transB: boolean,
): tf.TensorInfo | undefined {
  const av = f32(backend, a);
  const bv = f32(backend, b);
  if (!av || !bv) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const n = transB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if ((transB ? b.shape[rb - 1] : b.shape[rb - 2]) !== k) return undefined; // let the cpu kernel word the error
  const aBatchDims = a.shape.slice(0, -2);
  const bBatchDims = b.shape.slice(0, -2);
  const aBatch = prod(aBatchDims);
  const bBatch = prod(bBatchDims);
  if (m * n * k === 0) return undefined;
  let out: Float32Array;
  let batchDims: number[];
  if (aBatch === bBatch && (ra === rb || aBatch === 1)) {
    batchDims = ra >= rb ? aBatchDims : bBatchDims;
    out = aBatch === 1 ? ort.gemm(av, bv, m, n, k, transA, transB) : ort.batchGemm(av, bv, aBatch, m, n, k, transA, transB);
  } else if (bBatch === 1 && !transA) {
    // the same B for every batch of A: one GEMM with the batches stacked as rows
    batchDims = aBatchDims;
    out = ort.gemm(av, bv, aBatch * m, n, k, false, transB);
  } else {
    return undefined;
  }
  return backend.makeTensorInfo([...batchDims, m, n], 'float32', out);
}

export const batchMatMulKernel: NativeKernel = {
  kernelName: 'BatchMatMul',
  build: ({ ort, cpu }) => {
    const cpuBatchMatMul = cpu('BatchMatMul');
    return (args) => {
      const { a, b } = args.inputs;
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      return nativeMatMul(ort, args.backend, a!, b!, transposeA, transposeB) ?? cpuBatchMatMul(args);
    };
  },
};
