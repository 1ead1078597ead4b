/**
 * The `native` tfjs backend: tfjs's pure-JS `cpu` backend with its GEMM-shaped kernels run by
 * onnxruntime-node.
 *
 * Tensors live where the cpu backend keeps them, in ordinary JS typed arrays (no 32-bit wasm heap:
 * models past ~100 M parameters fit, up to the machine's memory), their output arrays recycled
 * through a pool (pool.ts). Every cpu kernel is registered again under the name `native`, and
 * register-all-kernels.ts replaces the ones listed there with onnxruntime calls (through ort.ts:
 * synchronous native calls on the arrays in place) or typed-array loops, one file per kernel in
 * kernels/, and adds the trainer's fused kernels. Non-float32 inputs go to the cpu kernels.
 */
import { totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { ArrayPool } from './pool.js';
import type { OrtRuntime } from './ort.js';
import { registerAllKernels } from './register-all-kernels.js';

export const NATIVE_BACKEND_NAME = 'native';

/** Bytes of freed output arrays kept for reuse (pool.ts). */
const POOL_BYTES = Math.min(1024 ** 3, totalmem() / 16);

/**
 * Registers the `native` backend (tfjs-backend-cpu's MathBackendCPU + its kernels + the native
 * kernels, register-all-kernels.ts). Idempotent; call only once onnxruntime-node has loaded.
 */
export async function registerNativeBackend(ort: OrtRuntime): Promise<void> {
  if (tf.findBackendFactory(NATIVE_BACKEND_NAME)) return;
  const cpu = await import('@tensorflow/tfjs-backend-cpu'); // registers the cpu kernels we copy
  // output arrays for the loop kernels: wherever ORT's outputs come from (the backend's pool, once created)
  const alloc = (length: number) => ort.alloc(length);
  /** tfjs-cpu's backend with its data's arrays recycled through the pool (pool.ts). */
  class NativeBackend extends cpu.MathBackendCPU {
    readonly pool = new ArrayPool(POOL_BYTES);

    override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object {
      const dataId = super.write(values, shape, dtype);
      this.pool.registered(values, dataId);
      return dataId;
    }

    override move(dataId: object, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
      this.pool.registered(values, dataId);
      super.move(dataId, values, shape, dtype, refCount);
    }

    override readSync(dataId: object): tf.backend_util.BackendValues {
      this.pool.escaped(this.data.get(dataId)?.values);
      return super.readSync(dataId);
    }

    override disposeData(dataId: object, force = false): boolean {
      const values = this.data.get(dataId)?.values;
      const done = super.disposeData(dataId, force);
      if (values && !this.data.has(dataId)) this.pool.released(values, dataId);
      return done;
    }

    override dispose(): void {
      this.pool.clear();
      super.dispose();
    }
  }
  tf.registerBackend(
    NATIVE_BACKEND_NAME,
    () => {
      const backend = new NativeBackend();
      // its first write prints "install our node backend" advice, which does not apply here
      (backend as unknown as { firstUse: boolean }).firstUse = false;
      ort.alloc = (length) => backend.pool.alloc(length);
      return backend;
    },
    0,
  );
  registerAllKernels(NATIVE_BACKEND_NAME, ort, alloc);
}
