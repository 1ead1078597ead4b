/**
 * Backend selection, the trainer's one door to its backends: a CLI flag or a library call names a
 * choice, initBackend activates it once and returns what it picked, why, and its facts (the record
 * in backends/<name>/facts.ts that the model, the training loop, the memory check and generation read
 * instead of the backend's name). Only this file and src/backends/ name a backend.
 *
 * `auto` takes the fastest backend this machine can run, in this order, and says why:
 *
 *   1. `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA 11.2 / cuDNN 8.1), when installed;
 *   2. WebGPU (`webgpu`: Dawn's Node bindings, + `@tensorflow/tfjs-backend-webgpu`), when installed and
 *      the adapter Dawn picks is a real GPU — a software adapter (Mesa's lavapipe/llvmpipe,
 *      SwiftShader) runs at ~1 GFLOP/s, slower than wasm, so `auto` skips it (on Linux it does not
 *      even load Dawn when there is no GPU device node);
 *   3. `native` (tfjs-cpu tensors with onnxruntime-node's kernels, backends/native/), when
 *      onnxruntime-node loads: on the CPU the fastest backend here (the bench config 2–3× wasm, real
 *      model shapes that the wasm heap cannot hold at all);
 *   4. `@tensorflow/tfjs-node` (libtensorflow on the CPU), when installed;
 *   5. the embedded WebAssembly backend.
 *
 * Each backend's activation is in its folder (backends/<name>/activate.ts); the optional peers are
 * imported there, only when tried, and the reason names every one skipped (native's own reason
 * included: not installed, its library failed to load, CLLAMA_NATIVE_DISABLE=1). `--backend webgpu`
 * takes any adapter, software ones included (CI runs the GPU code path on lavapipe). `--backend
 * native` falls back to wasm saying why. The pure-JS `cpu` backend is ~40× slower than wasm and is only
 * used when asked for.
 *
 * initBackend also registers the model's gradient overrides (model/register-gradients.ts), once.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from './backends/backend-error.js';
import type { BackendFacts } from './backends/facts.js';
import { factsOf } from './backends/registry.js';
import { useCpu } from './backends/cpu/activate.js';
import { useTensorflow } from './backends/tensorflow/activate.js';
import { useWasm } from './backends/wasm/activate.js';
import { adapterLabel, linuxHasGpuDevice, probeAdapter, useWebgpu, type AdapterProbe, type GpuAdapterSummary } from './backends/webgpu/activate.js';
import { registerGradients } from './model/register-gradients.js';

export { BackendError };
export type { BackendFacts, GpuAdapterSummary };
export { webgpuAdapter } from './backends/webgpu/activate.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'native' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'];

/** Which package provided the backend that is now active, why it was chosen, and its facts. */
export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' | 'webgpu' | 'native' | 'wasm' | 'cpu'. */
  name: string;
  /** The npm package that registered it, e.g. '@tensorflow/tfjs-node-gpu'. */
  package: string;
  /** One line: why this backend (asked for by name, or what `auto` skipped). */
  reason: string;
  /** The WebGPU adapter, for the webgpu backend. */
  adapter?: GpuAdapterSummary;
  /** Why a requested backend was not used (set on a fallback, e.g. native → wasm). */
  fallbackReason?: string;
  /** What the trainer needs to know about it (src/backends/facts.ts). */
  facts: BackendFacts;
}

/** One line for a CLI's stderr: `backend webgpu (NVIDIA …): reason`. */
export function describeBackend(info: BackendInfo): string {
  const where = info.adapter ? `${info.package}, adapter ${adapterLabel(info.adapter)}` : info.package;
  return `backend ${info.name} (${where}): ${info.reason}`;
}

let active: BackendInfo | undefined;

/** `native` (backends/native/): tfjs-cpu tensors with onnxruntime-node kernels; true, or why it is unavailable. */
async function useNative(): Promise<true | string> {
  const { activateNative } = await import('./backends/native/activate.js');
  const r = await activateNative();
  return r.ok ? true : r.reason;
}

type Chosen = Omit<BackendInfo, 'facts'>;

async function choose(choice: BackendChoice): Promise<Chosen> {
  if (choice === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const) {
      if (await useTensorflow(pkg)) return { name: 'tensorflow', package: pkg, reason: 'asked for by name' };
    }
    throw new BackendError(
      "backend 'tensorflow' needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node: install one of them (npm install @tensorflow/tfjs-node) or use --backend wasm",
    );
  }
  if (choice === 'webgpu') {
    const p = await probeAdapter();
    if ('missing' in p) throw new BackendError(`backend 'webgpu': ${p.missing}`);
    await useWebgpu(p);
    return {
      name: 'webgpu',
      package: '@tensorflow/tfjs-backend-webgpu',
      adapter: p.summary,
      reason: p.summary.software ? 'asked for by name (a software adapter: correct, not fast)' : 'asked for by name',
    };
  }
  if (choice === 'native') {
    const native = await useNative();
    if (native === true) return { name: 'native', package: 'onnxruntime-node', reason: 'asked for by name' };
    const fallbackReason = `native backend unavailable: ${native}`;
    await useWasm();
    return { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', reason: `${fallbackReason}; fell back to wasm`, fallbackReason };
  }
  if (choice === 'wasm') {
    await useWasm();
    return { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', reason: 'asked for by name' };
  }
  if (choice === 'cpu') {
    await useCpu();
    return { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', reason: 'asked for by name' };
  }
  // auto
  const skipped: string[] = [];
  if (await useTensorflow('@tensorflow/tfjs-node-gpu'))
    return { name: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', reason: 'auto: tfjs-node-gpu is installed' };
  skipped.push('tfjs-node-gpu not installed');
  const p: AdapterProbe = process.platform === 'linux' && !linuxHasGpuDevice() ? { missing: 'no GPU device' } : await probeAdapter();
  if ('missing' in p) {
    skipped.push(
      p.missing === 'no GPU device'
        ? 'no GPU device (/dev/nvidia*, /dev/dri/renderD*)'
        : p.missing.startsWith('the webgpu backend is not installed')
          ? 'webgpu not installed'
          : 'no WebGPU adapter',
    );
  } else if (p.summary.software) {
    skipped.push(`WebGPU adapter ${adapterLabel(p.summary)} is not a GPU`);
  } else {
    await useWebgpu(p);
    return { name: 'webgpu', package: '@tensorflow/tfjs-backend-webgpu', adapter: p.summary, reason: `auto: ${skipped.join('; ')}; WebGPU adapter is a GPU` };
  }
  const native = await useNative();
  if (native === true) return { name: 'native', package: 'onnxruntime-node', reason: `auto: ${skipped.join('; ')}; onnxruntime-node loads` };
  skipped.push(`native unavailable (${native})`);
  if (await useTensorflow('@tensorflow/tfjs-node')) return { name: 'tensorflow', package: '@tensorflow/tfjs-node', reason: `auto: ${skipped.join('; ')}` };
  skipped.push('tfjs-node not installed');
  await useWasm();
  return { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', reason: `auto: ${skipped.join('; ')}` };
}

/**
 * Activates a backend and returns which one it picked, why, and its facts. Calling it again is cheap
 * (the backend stays registered; the WebGPU adapter is probed once per process).
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new BackendError(`unknown backend '${String(choice)}': use one of ${BACKEND_CHOICES.join(', ')}`);
  }
  await registerGradients();
  const chosen = await choose(choice);
  await tf.ready();
  active = { ...chosen, facts: factsOf(chosen.name) };
  return active;
}

/** The backend picked by the last initBackend call, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}
