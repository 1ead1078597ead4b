/**
 * libtensorflow through `@tensorflow/tfjs-node-gpu` (CUDA 11.2 / cuDNN 8.1) or `@tensorflow/tfjs-node`
 * (CPU): optional peers (their install downloads a binary), imported only when tried.
 */
import * as tf from '@tensorflow/tfjs-core';

export type TensorflowPackage = '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';

async function tryImport(pkg: string): Promise<boolean> {
  try {
    // A computed specifier keeps bundlers from resolving the optional peers at build time.
    await import(/* @vite-ignore */ pkg);
    return true;
  } catch {
    return false;
  }
}

/** Activates the `tensorflow` backend from `pkg`; false when it is not installed. */
export async function useTensorflow(pkg: TensorflowPackage): Promise<boolean> {
  return (await tryImport(pkg)) && (await tf.setBackend('tensorflow'));
}
