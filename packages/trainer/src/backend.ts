/**
 * tfjs backend selection.
 *
 * `auto` takes the fastest backend this machine can run, in this order, and says why:
 *
 *   1. `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA 11.2 / cuDNN 8.1), when installed;
 *   2. WebGPU (`webgpu`: Dawn's Node bindings, + `@tensorflow/tfjs-backend-webgpu`), when installed and
 *      the adapter Dawn picks is a real GPU — a software adapter (Mesa's lavapipe/llvmpipe,
 *      SwiftShader) runs at ~1 GFLOP/s, slower than wasm, so `auto` skips it (on Linux it does not
 *      even load Dawn when there is no GPU device node);
 *   3. `@tensorflow/tfjs-node` (libtensorflow on the CPU), when installed;
 *   4. the embedded WebAssembly backend.
 *
 * The native and WebGPU packages are optional peers: tfjs-node's install downloads a binary and
 * `webgpu` unpacks to 132 MB (one dawn.node per platform). They are imported only here, only when
 * tried. `--backend webgpu` takes any adapter, software ones included (CI runs the GPU code path on
 * lavapipe). The pure-JS `cpu` backend is ~40× slower than wasm and is only used when asked for.
 *
 * initBackend also registers the model's gradient overrides (register-gradients.ts), once.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { registerGradients } from './model/register-gradients.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'native' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'];

export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

/** What Dawn reports about a WebGPU adapter (GPUAdapterInfo), plus whether it is a software one. */
export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader): correct, not fast. */
  software: boolean;
  /** Largest buffer / storage binding the device was created with (bytes). */
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** Which package provided the backend that is now active, and why it was chosen. */
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
}

/** One line for a CLI's stderr: `backend webgpu (NVIDIA …): reason`. */
export function describeBackend(info: BackendInfo): string {
  const where = info.adapter ? `${info.package}, adapter ${adapterLabel(info.adapter)}` : info.package;
  return `backend ${info.name} (${where}): ${info.reason}`;
}

export const WEBGPU_PACKAGES_HINT = 'install webgpu and @tensorflow/tfjs-backend-webgpu (npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0)';
export const VULKAN_DRIVER_HINT =
  "install a Vulkan driver: on a GPU machine the vendor's driver and the Vulkan loader (Debian/Ubuntu: libvulkan1); on a CPU-only machine Mesa >= 25's lavapipe (Debian bookworm: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1)";

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

async function useTensorflow(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Promise<boolean> {
  return (await tryImport(pkg)) && (await tf.setBackend('tensorflow'));
}

/** `native` (src/native/): tfjs-cpu tensors with onnxruntime-node GEMMs; true, or why it is unavailable. */
async function useNative(): Promise<true | string> {
  const { activateNative } = await import('./native/activate.js');
  const r = await activateNative();
  return r.ok ? true : r.reason;
}

async function useWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) {
    throw new BackendError('the wasm backend failed to initialise; try --backend cpu (slow) or install @tensorflow/tfjs-node');
  }
}

async function useCpu(): Promise<void> {
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
}

// ------------------------------------------------------------------------------------------ WebGPU

/** The parts of the WebGPU API used here (the optional `webgpu` package brings the full types). */
interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  isFallbackAdapter?: boolean;
  features: ReadonlySet<string>;
  limits: Record<string, number>;
  requestDevice(descriptor: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<{
    limits: Record<string, number>;
    addEventListener?(type: 'uncapturederror', listener: (event: unknown) => void): void;
  }>;
}
interface WebGpuModule {
  create(flags: string[]): { requestAdapter(options?: { powerPreference?: string }): Promise<GpuAdapterLike | null> };
  globals: Record<string, unknown>;
}

/** Found adapter, or why there is none. */
type AdapterProbe = { adapter: GpuAdapterLike; summary: GpuAdapterSummary } | { missing: string };

let probe: Promise<AdapterProbe> | undefined;

function adapterLabel(a: GpuAdapterSummary): string {
  const tags = [a.vendor, a.architecture].filter((s) => s);
  return `${a.description || a.device || 'unnamed'}${tags.length > 0 ? ` [${tags.join(', ')}]` : ''}`;
}

/**
 * Linux exposes a GPU as /dev/nvidia0 (NVIDIA's driver) or /dev/dri/renderD* (Mesa / AMD / Intel).
 * Without either there is no GPU to find, and `auto` does not load Dawn at all (its Vulkan probe of
 * a software device also prints driver warnings on stderr).
 */
function linuxHasGpuDevice(): boolean {
  try {
    if (existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl')) return true;
    return readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

function summarise(adapter: GpuAdapterLike): GpuAdapterSummary {
  const info = adapter.info ?? {};
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: adapter.isFallbackAdapter === true || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader|software/i.test(text),
    maxBufferSize: adapter.limits.maxBufferSize ?? 0,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize ?? 0,
  };
}

/** Loads Dawn (once) and asks it for its high-performance adapter. */
function probeAdapter(): Promise<AdapterProbe> {
  probe ??= (async (): Promise<AdapterProbe> => {
    let dawn: WebGpuModule;
    try {
      dawn = (await import(/* @vite-ignore */ 'webgpu' as string)) as WebGpuModule;
      await import(/* @vite-ignore */ '@tensorflow/tfjs-backend-webgpu' as string);
    } catch {
      return { missing: `the webgpu backend is not installed: ${WEBGPU_PACKAGES_HINT}` };
    }
    // tfjs-backend-webgpu uses the WebGPU enums (GPUBufferUsage, GPUMapMode, …) as globals, and its
    // backend checks that navigator.gpu exists: give it Dawn's (Node 20 has no navigator at all).
    for (const [name, value] of Object.entries(dawn.globals)) if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
    const gpu = dawn.create([]);
    const g = globalThis as { navigator?: { gpu?: unknown } };
    if (g.navigator === undefined) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    if (!g.navigator!.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { missing: `Dawn found no WebGPU adapter (no Vulkan driver): ${VULKAN_DRIVER_HINT}` };
    return { adapter, summary: summarise(adapter) };
  })();
  return probe;
}

/**
 * Registers the 'webgpu' tfjs backend on `adapter`. tfjs-backend-webgpu registers itself only when
 * `navigator.gpu` exists at import, and reads back with OffscreenCanvas in `readSync`; under Node we
 * register the exported WebGPUBackend ourselves, on a device created with the adapter's largest
 * buffer limits (a 7B model's embed_tokens is 818 MB in float32), and make a synchronous read of a
 * tensor that lives only on the GPU a clear error (use `await t.data()`).
 */
async function registerWebgpu(adapter: GpuAdapterLike): Promise<void> {
  const mod = (await import(/* @vite-ignore */ '@tensorflow/tfjs-backend-webgpu' as string)) as {
    WebGPUBackend: new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend;
  };
  let deviceError: string | undefined;
  class NodeWebGPUBackend extends mod.WebGPUBackend {
    override async read(dataId: object): Promise<tf.backend_util.BackendValues> {
      const values = await super.read(dataId);
      if (deviceError) throw new BackendError(`the WebGPU device reported an error, results are not valid: ${deviceError.split('\n')[0]}`);
      return values;
    }
    override readSync(dataId: object): tf.backend_util.BackendValues {
      const stored = (this as unknown as { tensorMap: tf.DataStorage<{ values?: tf.backend_util.BackendValues | null }> }).tensorMap.get(dataId);
      if (stored?.values == null) {
        throw new BackendError(
          'a synchronous read (dataSync/arraySync) of a tensor on the webgpu backend: Node has no OffscreenCanvas, read it with await tensor.data()',
        );
      }
      return super.readSync(dataId);
    }
  }
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const limits = adapter.limits;
      const requiredLimits: Record<string, number> = {};
      for (const name of [
        'maxBufferSize',
        'maxStorageBufferBindingSize',
        'maxStorageBuffersPerShaderStage',
        'maxComputeWorkgroupStorageSize',
        'maxComputeWorkgroupsPerDimension',
        'maxComputeWorkgroupSizeX',
        'maxComputeInvocationsPerWorkgroup',
      ]) {
        if (typeof limits[name] === 'number') requiredLimits[name] = limits[name]!;
      }
      const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
      const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
      // A shader or validation error is reported asynchronously and would leave wrong values behind:
      // remember the first one and fail the next read with it.
      device.addEventListener?.('uncapturederror', (event) => {
        deviceError ??= (event as { error?: { message?: string } }).error?.message ?? 'unknown WebGPU error';
      });
      return new NodeWebGPUBackend(device, adapter.info);
    },
    0,
  );
}

async function useWebgpu(probed: Extract<AdapterProbe, { adapter: unknown }>): Promise<void> {
  if (!tf.findBackend('webgpu')) await registerWebgpu(probed.adapter);
  if (!(await tf.setBackend('webgpu')))
    throw new BackendError(`the webgpu backend failed to initialise on ${adapterLabel(probed.summary)}; try --backend wasm`);
}

/**
 * The WebGPU adapter Dawn would use, without activating the backend (for reports and `auto`), or
 * why there is none.
 */
export async function webgpuAdapter(): Promise<GpuAdapterSummary | { missing: string }> {
  const p = await probeAdapter();
  return 'missing' in p ? p : p.summary;
}

// ------------------------------------------------------------------------------------------ choice

async function choose(choice: BackendChoice): Promise<BackendInfo> {
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
  if (await useTensorflow('@tensorflow/tfjs-node')) return { name: 'tensorflow', package: '@tensorflow/tfjs-node', reason: `auto: ${skipped.join('; ')}` };
  skipped.push('tfjs-node not installed');
  await useWasm();
  return { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', reason: `auto: ${skipped.join('; ')}` };
}

/**
 * Activates a backend and returns which one it picked and why. Calling it again is cheap (the
 * backend stays registered; the WebGPU adapter is probed once per process).
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new BackendError(`unknown backend '${String(choice)}': use one of ${BACKEND_CHOICES.join(', ')}`);
  }
  await registerGradients();
  const info = await choose(choice);
  await tf.ready();
  active = info;
  return info;
}

/** The backend picked by the last initBackend call, if any. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}

/**
 * True when the active backend can read a tensor synchronously (dataSync). The webgpu backend under
 * Node cannot: its values come back with `await tensor.data()` only.
 */
export function canReadSync(): boolean {
  return tf.getBackend() !== 'webgpu';
}
