/** Backend choice: no import side effects, `auto`'s order and reason, the webgpu adapter report. */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

describe('initBackend', () => {
  it('importing the package registers nothing; initBackend registers the gradients once', async () => {
    const trainer = await import('../src/index.js');
    expect(tf.getGradient('BatchMatMul')).toBeUndefined();
    expect(tf.findBackendFactory('wasm')).toBeNull();
    const info = await trainer.initBackend('wasm');
    expect(info).toMatchObject({ name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', reason: 'asked for by name' });
    const grad = tf.getGradient('BatchMatMul');
    expect(grad).toBeDefined();
    await trainer.initBackend('wasm');
    expect(tf.getGradient('BatchMatMul')).toBe(grad); // registered once
  });

  it('auto says what it skipped; on this CPU machine it takes native (onnxruntime-node loads), never the software WebGPU adapter', async () => {
    const { initBackend, describeBackend } = await import('../src/index.js');
    const info = await initBackend('auto');
    expect(info.name).toBe('native');
    expect(info.package).toBe('onnxruntime-node');
    expect(info.reason).toMatch(
      /^auto: tfjs-node-gpu not installed; (no GPU device \(\/dev\/nvidia\*, \/dev\/dri\/renderD\*\)|WebGPU adapter .* is not a GPU|no WebGPU adapter); onnxruntime-node loads$/,
    );
    expect(info.facts.name).toBe('native');
    expect(describeBackend(info)).toBe(`backend native (onnxruntime-node): ${info.reason}`);
  });

  it('auto without onnxruntime-node falls back to wasm and says why (CLLAMA_NATIVE_DISABLE=1 stands in for a missing or broken install)', () => {
    const script = [
      "const { initBackend, describeBackend } = await import('./src/index.ts');",
      "const info = await initBackend('auto');",
      'console.log(JSON.stringify({ name: info.name, line: describeBackend(info) }));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: path.resolve(__dirname, '..'),
      env: { ...process.env, CLLAMA_NATIVE_DISABLE: '1' },
      encoding: 'utf8',
    });
    const { name, line } = JSON.parse(out.trim().split('\n').pop()!);
    expect(name).toBe('wasm');
    expect(line).toMatch(
      /^backend wasm \(@tensorflow\/tfjs-backend-wasm\): auto: .*; native unavailable \(CLLAMA_NATIVE_DISABLE=1 is set\); tfjs-node not installed$/,
    );
  });

  it('webgpu reports its adapter and the limits the device was created with', async () => {
    const { initBackend } = await import('../src/index.js');
    const info = await initBackend('webgpu');
    expect(info.name).toBe('webgpu');
    expect(info.adapter!.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    const device = (tf.backend() as unknown as { device: { limits: Record<string, number> } }).device;
    expect(device.limits.maxStorageBufferBindingSize).toBe(info.adapter!.maxStorageBufferBindingSize);
    expect(device.limits.maxBufferSize).toBe(info.adapter!.maxBufferSize);
    expect(device.limits.maxStorageBuffersPerShaderStage).toBeGreaterThan(8);
    expect(info.reason).toBe(info.adapter!.software ? 'asked for by name (a software adapter: correct, not fast)' : 'asked for by name');
  });
});
