/**
 * The WebGPU backend under Node: Dawn's Node bindings (`webgpu`) + `@tensorflow/tfjs-backend-webgpu`,
 * both optional peers (`webgpu` unpacks to 132 MB, one dawn.node per platform), imported only here,
 * only when tried.
 *
 * Dawn is loaded once and asked for its high-performance adapter (probeAdapter). A software adapter
 * (Mesa's lavapipe/llvmpipe, SwiftShader) runs at ~1 GFLOP/s, slower than wasm: src/backend.ts's
 * `auto` skips it (on Linux it does not even load Dawn without a GPU device node), `--backend webgpu`
 * takes it (CI runs the GPU code path on lavapipe).
 */
import { existsSync, readdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../backend-error.js';

export const WEBGPU_PACKAGES_HINT = 'install webgpu and @tensorflow/tfjs-backend-webgpu (npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0)';
export const VULKAN_DRIVER_HINT =
  "install a Vulkan driver: on a GPU machine the vendor's driver and the Vulkan loader (Debian/Ubuntu: libvulkan1); on a CPU-only machine Mesa >= 25's lavapipe (Debian bookworm: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1)";

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
export type AdapterProbe = { adapter: GpuAdapterLike; summary: GpuAdapterSummary } | { missing: string };

let probe: Promise<AdapterProbe> | undefined;

export function adapterLabel(a: GpuAdapterSummary): string {
  const tags = [a.vendor, a.architecture].filter((s) => s);
  return `${a.description || a.device || 'unnamed'}${tags.length > 0 ? ` [${tags.join(', ')}]` : ''}`;
}

/**
 * Linux exposes a GPU as /dev/nvidia0 (NVIDIA's driver) or /dev/dri/renderD* (Mesa / AMD / Intel).
 * Without either there is no GPU to find, and `auto` does not load Dawn at all (its Vulkan probe of
 * a software device also prints driver warnings on stderr).
 */
export function linuxHasGpuDevice(): boolean {
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
export function probeAdapter(): Promise<AdapterProbe> {
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

export async function useWebgpu(probed: Extract<AdapterProbe, { adapter: unknown }>): Promise<void> {
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
