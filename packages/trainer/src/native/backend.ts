/**
 * The `native` tfjs backend: tfjs's pure-JS `cpu` backend with its GEMM-shaped kernels run by
 * onnxruntime-node.
 *
 * Tensors live where the cpu backend keeps them, in ordinary JS typed arrays (no 32-bit wasm heap:
 * models past ~100 M parameters fit, up to the machine's memory). Every cpu kernel is registered again
 * under the name `native`; these are replaced:
 *
 *   BatchMatMul (tf.matMul and every matMul in the gradients, transpose flags included)
 *                 → ONNX Gemm (2-D; also a batch of A rows against one B, folded into M) or MatMul
 *                   over equal batch dimensions; broadcasting shapes stay on the cpu kernel
 *   _FusedMatMul  → the same product, then the cpu kernels for bias and activation
 *   Transpose     → ONNX Transpose for tensors of 64 Ki elements and more
 *
 * through src/native/ort.ts (synchronous native calls on the arrays in place). Elementwise kernels
 * stay the cpu backend's JS loops. Non-float32 inputs go to the cpu kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OrtRuntime } from './ort.js';

export const NATIVE_BACKEND_NAME = 'native';

/** Below this many elements the per-call cost of a native transpose (~30 µs) is not worth it. */
const NATIVE_TRANSPOSE_MIN = 1 << 16;

type CpuBackend = tf.KernelBackend & { data: { get(id: object): { values?: unknown } }; makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo };
type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: CpuBackend; attrs?: Record<string, unknown> };
type KernelFn = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

function cpuKernel(name: string): KernelFn {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`tfjs-backend-cpu has no ${name} kernel`);
  return k.kernelFunc as unknown as KernelFn;
}

function f32(backend: CpuBackend, t: tf.TensorInfo): Float32Array | undefined {
  if (t.dtype !== 'float32') return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : undefined;
}

const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** op(A) @ op(B) natively when the shapes allow it, else undefined (the caller falls back to cpu). */
function nativeMatMul(ort: OrtRuntime, backend: CpuBackend, a: tf.TensorInfo, b: tf.TensorInfo, transA: boolean, transB: boolean): tf.TensorInfo | undefined {
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

function registerKernel(name: string, kernelFunc: KernelFn): void {
  tf.registerKernel({ kernelName: name, backendName: NATIVE_BACKEND_NAME, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

/**
 * Registers the `native` backend (tfjs-backend-cpu's MathBackendCPU + its kernels + the native
 * overrides above). Idempotent; call only once onnxruntime-node has loaded.
 */
export async function registerNativeBackend(ort: OrtRuntime): Promise<void> {
  if (tf.findBackendFactory(NATIVE_BACKEND_NAME)) return;
  const cpu = await import('@tensorflow/tfjs-backend-cpu'); // registers the cpu kernels we copy
  tf.registerBackend(
    NATIVE_BACKEND_NAME,
    () => {
      const backend = new cpu.MathBackendCPU();
      // its first write prints "install our node backend" advice, which does not apply here
      (backend as unknown as { firstUse: boolean }).firstUse = false;
      return backend;
    },
    0,
  );
  const overridden = new Set(['BatchMatMul', '_FusedMatMul', 'Transpose']);
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (!overridden.has(k.kernelName)) tf.registerKernel({ ...k, backendName: NATIVE_BACKEND_NAME });
  }
  const cpuBatchMatMul = cpuKernel('BatchMatMul');
  const cpuFused = cpuKernel('_FusedMatMul');
  const cpuTranspose = cpuKernel('Transpose');
  const cpuAdd = cpuKernel('Add');

  registerKernel('BatchMatMul', (args) => {
    const { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    return nativeMatMul(ort, args.backend, a!, b!, transposeA, transposeB) ?? cpuBatchMatMul(args);
  });

  registerKernel('_FusedMatMul', (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs;
    const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    if (preluActivationWeights || (activation && activation !== 'linear')) return cpuFused(args);
    const product = nativeMatMul(ort, args.backend, a!, b!, transposeA, transposeB);
    if (!product) return cpuFused(args);
    if (!bias) return product;
    const out = cpuAdd({ inputs: { a: product, b: bias }, backend: args.backend }) as tf.TensorInfo;
    args.backend.disposeData(product.dataId);
    return out;
  });

  registerKernel('Transpose', (args) => {
    const { x } = args.inputs;
    const { perm } = args.attrs as { perm: number[] };
    const xv = f32(args.backend, x!);
    if (!xv || xv.length < NATIVE_TRANSPOSE_MIN || perm.every((p, i) => p === i)) return cpuTranspose(args);
    return args.backend.makeTensorInfo(
      perm.map((p) => x!.shape[p]!),
      'float32',
      ort.transpose(xv, x!.shape, perm),
    );
  });
}
