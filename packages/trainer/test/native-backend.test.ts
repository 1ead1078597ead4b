/**
 * The `native` backend (tfjs-cpu tensors, onnxruntime-node GEMMs: src/native/): each replaced kernel
 * against tfjs-cpu, and the fallback to wasm, said on the CLI's backend line and in BackendInfo, when
 * onnxruntime-node cannot be used. (The PyTorch parity of the whole model on native runs in
 * model-parity.test.ts with the other backends.) The kernel checks are skipped, saying so, where
 * onnxruntime-node is not installed.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadOrt } from '../src/native/ort.js';
import { TINY_LLAMA } from './helpers.js';

interface Golden {
  input_ids: number[][];
  labels: number[][];
  logits_sum: number;
  logits_abs_sum: number;
  logits_first_row: number[];
  logits_last_row: number[];
  loss: number;
  grad_norms: Record<string, number>;
}

const ort = await loadOrt({ env: {} });
if (!ort.ok) console.warn(`native-backend: kernel checks skipped, ${ort.reason}`);
else ort.runtime.dispose();

describe.skipIf(!ort.ok)('native kernels against the cpu backend', () => {
  it('matMul (every transpose flag, batched, broadcast B, fused bias), elementwise, softmax, split, segment sum and transposes agree to 1e-5', async () => {
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true],
      [[2, 3, 5, 7], [2, 3, 7, 4], false, false],
      [[2, 3, 5, 7], [2, 3, 4, 7], false, true],
      [[2, 3, 7, 5], [2, 3, 7, 4], true, false],
      [[4, 5, 7], [7, 3], false, false], // one B for every batch of A
      [[5, 7], [4, 7, 3], false, false], // broadcast A: stays on the cpu kernel
    ];
    const run = async (backend: 'cpu' | 'native') => {
      await initBackend(backend);
      const out: Float32Array[] = [];
      let seed = 1;
      for (const [as, bs, ta, tb] of cases) {
        const a = tf.randomNormal(as, 0, 1, 'float32', seed++);
        const b = tf.randomNormal(bs, 0, 1, 'float32', seed++);
        out.push(tf.matMul(a, b, ta, tb).dataSync() as Float32Array);
      }
      const a = tf.randomNormal([6, 9], 0, 1, 'float32', 99);
      const b = tf.randomNormal([9, 4], 0, 1, 'float32', 100);
      out.push(tf.fused.matMul({ a, b, bias: tf.range(0, 4, 1, 'float32') }).dataSync() as Float32Array);
      // elementwise overrides, both sides of the 32 Ki-element ORT threshold, broadcasting as the loss head does
      for (const [as, bs] of [
        [
          [256, 300],
          [256, 1],
        ],
        [[8, 5], [5]],
        [
          [2, 8, 64, 64],
          [1, 1, 64, 64],
        ],
        [[3, 4], []],
      ] as Array<[number[], number[]]>) {
        const x = tf.randomNormal(as, 0, 1, 'float32', seed++);
        const y = tf.add(tf.abs(tf.randomNormal(bs, 0, 1, 'float32', seed++)), 0.5);
        for (const t of [tf.add(x, y), tf.sub(x, y), tf.mul(x, y), tf.div(x, y), tf.exp(x), tf.sigmoid(x), tf.log(y), tf.softmax(x)])
          out.push(t.dataSync() as Float32Array);
        for (const part of tf.split(x, [1, as[as.length - 1]! - 1], -1)) out.push(part.dataSync() as Float32Array);
        out.push(tf.neg(x).dataSync() as Float32Array);
        out.push(
          tf
            .slice(
              x,
              as.map((d) => (d > 1 ? 1 : 0)),
              as.map((d) => (d > 2 ? d - 2 : 1)),
            )
            .dataSync() as Float32Array,
        );
        out.push(
          tf
            .slice(
              x,
              as.map((_, i) => (i === 0 && as[0]! > 1 ? 1 : 0)),
              as.map((d, i) => (i === 0 && d > 1 ? d - 1 : -1)),
            )
            .dataSync() as Float32Array,
        );
      }
      out.push(tf.unsortedSegmentSum(tf.randomNormal([6, 5], 0, 1, 'float32', 7), tf.tensor1d([3, 0, 3, 9, 1, 0], 'int32'), 10).dataSync() as Float32Array);
      const big = tf.randomNormal([64, 48, 32], 0, 1, 'float32', 101);
      out.push(tf.transpose(big, [2, 0, 1]).dataSync() as Float32Array);
      out.push(tf.transpose(tf.reshape(big, [3072, 32])).dataSync() as Float32Array);
      return out;
    };
    const cpu = await run('cpu');
    const native = await run('native');
    expect(native.length).toBe(cpu.length);
    native.forEach((n, i) => {
      expect(n.length, `case ${i}`).toBe(cpu[i]!.length);
      let maxErr = 0;
      for (let j = 0; j < n.length; j++) maxErr = Math.max(maxErr, Math.abs(n[j]! - cpu[i]![j]!));
      expect(maxErr, `case ${i}`).toBeLessThan(1e-5);
    });
  });
});

describe('native fallback', () => {
  it('CLLAMA_NATIVE_DISABLE=1: --backend native falls back to wasm, says so on stderr, and still scores', async () => {
    const cli = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../dist/cli.js');
    const ids = path.join(TINY_LLAMA, 'golden.json');
    const golden = JSON.parse(readFileSync(ids, 'utf8')) as Golden;
    const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const tmp = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'cllama-native-'));
    try {
      writeFileSync(path.join(tmp, 'ids.json'), JSON.stringify(golden.input_ids));
      const r = await promisify(execFile)(
        'node',
        [cli, 'score', '--model', TINY_LLAMA, '--input-ids', path.join(tmp, 'ids.json'), '--json', '--backend', 'native'],
        {
          env: { ...process.env, CLLAMA_NATIVE_DISABLE: '1' },
        },
      );
      expect(r.stderr.trim()).toBe(
        'cllama-train: backend wasm (@tensorflow/tfjs-backend-wasm): native backend unavailable: CLLAMA_NATIVE_DISABLE=1 is set; fell back to wasm',
      );
      expect(JSON.parse(r.stdout).backend).toBe('wasm');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('BackendInfo carries the reason, in-process', async () => {
    process.env.CLLAMA_NATIVE_DISABLE = '1';
    try {
      const info = await initBackend('native');
      expect(info.name).toBe('wasm');
      expect(info.fallbackReason).toBe('native backend unavailable: CLLAMA_NATIVE_DISABLE=1 is set');
    } finally {
      delete process.env.CLLAMA_NATIVE_DISABLE;
    }
  });
});
