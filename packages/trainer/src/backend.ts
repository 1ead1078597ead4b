/**
 * tfjs backend selection.
 *
 * `auto` prefers the native TensorFlow bindings (`@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`) when the user installed them — they are optional peers because their
 * install step downloads a binary — and otherwise falls back to the embedded WebAssembly backend.
 * `native` (tfjs-cpu tensors in JS memory with onnxruntime-node GEMMs, src/native/; an optional peer
 * too) is asked for by name: it is what trains models past the wasm heap; on small models it is not
 * yet clearly faster than wasm, so `auto` does not pick it (docs/trainer.md).
 * The pure-JS `cpu` backend is ~40× slower than wasm and is only used when asked for by name.
 */
import * as tf from '@tensorflow/tfjs-core';

export type BackendChoice = 'auto' | 'tensorflow' | 'native' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'native', 'wasm', 'cpu'];

export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** Which package provided the backend that is now active. */
export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' | 'wasm' | 'cpu'. */
  name: string;
  /** The npm package that registered it, e.g. '@tensorflow/tfjs-node-gpu'. */
  package: string;
  /** Why a requested backend was not used (set on a fallback, e.g. native → wasm). */
  fallbackReason?: string;
}

let active: BackendInfo | undefined;

async function tryImport(pkg: string): Promise<boolean> {
  try {
    // A computed specifier keeps bundlers from resolving the optional peers at build time.
    await import(/* @vite-ignore */ pkg);
    return true;
  } catch {
    return false;
  }
}

async function useTensorflow(): Promise<BackendInfo | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (await tryImport(pkg)) {
      if (await tf.setBackend('tensorflow')) return { name: 'tensorflow', package: pkg };
    }
  }
  return undefined;
}

/** `native` (src/native/): tfjs-cpu tensors with onnxruntime-node GEMMs; undefined + why when unavailable. */
async function useNative(): Promise<BackendInfo | string> {
  const { activateNative } = await import('./native/activate.js');
  const r = await activateNative();
  return r.ok ? { name: 'native', package: 'onnxruntime-node' } : r.reason;
}

async function useWasm(): Promise<BackendInfo> {
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) {
    throw new BackendError('the wasm backend failed to initialise; try --backend cpu (slow) or install @tensorflow/tfjs-node');
  }
  return { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm' };
}

async function useCpu(): Promise<BackendInfo> {
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
  return { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu' };
}

/**
 * Activates a backend and returns which one it picked. Calling it again with the same choice is
 * cheap (the backend stays registered).
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new BackendError(`unknown backend '${String(choice)}': use one of ${BACKEND_CHOICES.join(', ')}`);
  }
  let info: BackendInfo | undefined;
  if (choice === 'tensorflow') {
    info = await useTensorflow();
    if (!info) {
      throw new BackendError(
        "backend 'tensorflow' needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node: install one of them (npm install @tensorflow/tfjs-node) or use --backend wasm",
      );
    }
  } else if (choice === 'auto') {
    info = (await useTensorflow()) ?? (await useWasm());
  } else if (choice === 'native') {
    const native = await useNative();
    if (typeof native !== 'string') info = native;
    else {
      info = { ...(await useWasm()), fallbackReason: `native backend unavailable: ${native}` };
      console.error(`cllama: --backend native: ${native}; falling back to wasm`);
    }
  } else if (choice === 'wasm') {
    info = await useWasm();
  } else {
    info = await useCpu();
  }
  await tf.ready();
  active = info;
  return info;
}

/** The backend picked by the last initBackend call, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}
