/** The embedded WebAssembly backend (`@tensorflow/tfjs-backend-wasm`, a dependency): always there. */
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../backend-error.js';

export async function useWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) {
    throw new BackendError('the wasm backend failed to initialise; try --backend cpu (slow) or install @tensorflow/tfjs-node');
  }
}
