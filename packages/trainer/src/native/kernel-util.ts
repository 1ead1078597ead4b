/**
 * What the native backend's kernels share: the shape of tfjs-cpu's backend as they use it, the kernel
 * function signature, and reading a tensor's float32 values in place.
 */
import type * as tf from '@tensorflow/tfjs-core';

export type CpuBackend = tf.KernelBackend & {
  data: { get(id: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
};
export type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: CpuBackend; attrs?: Record<string, unknown> };
export type KernelFn = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** A float32 tensor's values, in place (undefined for other dtypes). */
export function f32(backend: CpuBackend, t: tf.TensorInfo): Float32Array | undefined {
  if (t.dtype !== 'float32') return undefined;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : undefined;
}

export const prod = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
