/**
 * The native GEMM bridge against tfjs-wasm's matMul (XNNPACK), on the trainer's GEMM shapes:
 * GFLOP/s (2·M·N·K per call) of
 *   - native: a one-node ONNX Gemm in onnxruntime-node, run synchronously from the calling thread
 *     on Float32Arrays as tfjs's cpu backend holds them (src/backends/native/ort.ts), result included;
 *   - wasm:   tf.matMul on the wasm backend (data upload and download not counted).
 * Also the per-call overhead of the bridge (a 1×1×1 product).
 *
 *   node --import tsx packages/trainer/bench/native-gemm.ts [--threads 1,2] [--reps 5]
 *
 * The wasm figures come from a child process per thread count (its thread count is fixed at start).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { loadOrt, type GemmRunner } from '../src/backends/native/ort.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const THREADS = arg('threads', '1,2').split(',').map(Number);
const REPS = Number(arg('reps', '5'));
/** [M, N, K]: lm_head on the bench config (4×256 tokens, vocab 49,954, hidden 256), its MLP, a 1B-size projection. */
const SHAPES: Array<[number, number, number]> = [
  [1024, 49954, 256],
  [1024, 688, 256],
  [512, 2048, 2048],
];

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) out[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5;
  return out;
}

function best(fn: () => void): number {
  fn(); // warm-up (session creation, first-touch)
  let t = Infinity;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t / 1000;
}

async function wasmChild(threads: number): Promise<void> {
  const { setThreadsCount, getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  setThreadsCount(threads);
  await tf.setBackend('wasm');
  await tf.ready();
  const out: Record<string, number> = { threads: getThreadsCount() };
  for (const [m, n, k] of SHAPES) {
    const a = tf.tensor2d(random(m * k, 1), [m, k]);
    const b = tf.tensor2d(random(k * n, 2), [k, n]);
    const s = best(() => tf.matMul(a, b).dispose());
    out[`${m}x${n}x${k}`] = (2 * m * n * k) / s / 1e9;
    tf.dispose([a, b]);
  }
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  if (process.argv.includes('--wasm-child')) return wasmChild(Number(arg('wasm-child', '1')));
  console.log(`native GEMM bridge vs tfjs-wasm matMul, GFLOP/s (best of ${REPS}); machine load not controlled`);
  for (const threads of THREADS) {
    const ort = await loadOrt({ threads });
    if (!ort.ok) throw new Error(ort.reason);
    const gemm: GemmRunner = ort.runtime.gemm;
    const one = new Float32Array([1]);
    const overhead = best(() => {
      for (let i = 0; i < 100; i++) gemm(one, one, 1, 1, 1, false, false);
    });
    const wasm = JSON.parse(
      execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--wasm-child', String(threads), '--reps', String(REPS)], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n')
        .pop()!,
    );
    console.log(`threads ${threads} (wasm reports ${wasm.threads}); bridge overhead ${((overhead / 100) * 1e6).toFixed(1)} µs/call`);
    for (const [m, n, k] of SHAPES) {
      const a = random(m * k, 1);
      const b = random(k * n, 2);
      const s = best(() => void gemm(a, b, m, n, k, false, false));
      const native = (2 * m * n * k) / s / 1e9;
      const w = wasm[`${m}x${n}x${k}`] as number;
      console.log(`  ${m}×${n}×${k}: native ${native.toFixed(1)}  wasm ${w.toFixed(1)}  ratio ${(native / w).toFixed(2)}×`);
    }
    ort.runtime.dispose();
  }
}

await main();
