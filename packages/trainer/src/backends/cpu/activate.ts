/** tfjs's pure-JS `cpu` backend: ~40× slower than wasm, used only when asked for by name. */
import * as tf from '@tensorflow/tfjs-core';

export async function useCpu(): Promise<void> {
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
}
