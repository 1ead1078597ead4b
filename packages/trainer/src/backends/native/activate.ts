/**
 * Turning the `native` backend on: load onnxruntime-node (ort.ts), register the backend (backend.ts)
 * and make it tfjs's active backend — or say why not, so that the caller can fall back to wasm and
 * tell the user.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerNativeBackend, NATIVE_BACKEND_NAME } from './backend.js';
import { loadOrt, type OrtRuntime } from './ort.js';

export type NativeActivation = { ok: true; threads: number; version: string } | { ok: false; reason: string };

let runtime: OrtRuntime | undefined;

export async function activateNative(env: NodeJS.ProcessEnv = process.env): Promise<NativeActivation> {
  if (!runtime) {
    const loaded = await loadOrt({ env });
    if (!loaded.ok) return loaded;
    runtime = loaded.runtime;
    await registerNativeBackend(runtime);
  } else if (env.CLLAMA_NATIVE_DISABLE === '1') {
    return { ok: false, reason: 'CLLAMA_NATIVE_DISABLE=1 is set' };
  }
  if (!(await tf.setBackend(NATIVE_BACKEND_NAME))) return { ok: false, reason: 'the native backend failed to initialise' };
  return { ok: true, threads: runtime.threads, version: runtime.version };
}
