/**
 * What the native backend's kernels share: the shape of tfjs-cpu's backend as they use it, the kernel
 * function signature, reading a tensor's float32 values in place, and the context every kernel of
 * kernels/ is built from (register-all-kernels.ts builds them).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OrtRuntime } from './ort.js';

export type CpuBackend = tf.KernelBackend & {
  data: { get(id: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
};
export type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: CpuBackend; attrs?: Record<string, unknown> };
export type KernelFn = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** Output allocation: the native backend passes its pool's (pool.ts); contents are overwritten. */
export type Alloc = (length: number) => Float32Array;
export const freshArray: Alloc = (length) => new Float32Array(length);

/** Elementwise ops this large go to ORT's vectorised kernels; smaller ones stay in JS loops. */
export const ORT_ELEMENTWISE_MIN = 1 << 15;

/** A float32 tensor's values, in place (undefined for other dtypes). */
export function f32(backend: CpuBackend, t: tf.TensorInfo): Float32Array | undefined {
  if (t.dtype !== 'float32') return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : undefined;
}

export const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** What a native kernel is built from. */
export interface NativeKernelContext {
  ort: OrtRuntime;
  /** Output arrays for the JS loops: wherever ORT's outputs come from (the backend's pool, once created). */
  alloc: Alloc;
  /** tfjs-cpu's kernel of that name: each replacement's reference, and its fallback for the cases it does not cover. */
  cpu(kernelName: string): KernelFn;
}

/** One kernel of the native backend (tfjs's KernelConfig, built once the runtime is there). */
export interface NativeKernel {
  kernelName: string;
  build(ctx: NativeKernelContext): KernelFn;
}

/** tfjs-cpu's registered kernel function of that name. */
export function cpuKernel(name: string): KernelFn {
  const k = tf.getKernel(name, 'cpu');
  if (!k) throw new Error(`tfjs-backend-cpu has no ${name} kernel`);
  return k.kernelFunc as unknown as KernelFn;
}
