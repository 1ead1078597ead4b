import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, type BackendInfo } from '../src/backend.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(REPO_ROOT, 'test-fixtures');
export const TINY_LLAMA = path.join(FIXTURES, 'tiny-llama');

/**
 * The backends the model tests run on, with the same tolerances: wasm, and webgpu — in CI on Mesa's
 * lavapipe (.ci/run installs it). A machine without a WebGPU adapter FAILS these tests, with the
 * message saying what to install; they are never skipped.
 */
export const MODEL_TEST_BACKENDS = ['wasm', 'webgpu'] as const;
export type ModelTestBackend = (typeof MODEL_TEST_BACKENDS)[number];

/**
 * The PyTorch parity tests also run on `native` (tfjs-cpu tensors + onnxruntime-node GEMMs; the repo's
 * onnxruntime-node comes with the transformers.js dev dependency, so CI has it).
 */
export const PARITY_TEST_BACKENDS = [...MODEL_TEST_BACKENDS, 'native'] as const;

/** Activates `name` and checks it really is the active one. */
export async function useBackend(name: ModelTestBackend | 'native'): Promise<BackendInfo> {
  const info = await initBackend(name);
  if (info.name !== name || tf.getBackend() !== name) throw new Error(`asked for backend ${name}, got ${info.name}`);
  return info;
}

/** A tensor's values, read asynchronously (the webgpu backend has no synchronous read under Node). */
export async function values(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from((await t.data()) as Float32Array);
}

/** Sum and sum of |x| in float64. */
export async function sums(t: tf.Tensor): Promise<{ sum: number; absSum: number }> {
  let sum = 0;
  let absSum = 0;
  for (const x of await t.data()) {
    sum += x;
    absSum += Math.abs(x);
  }
  return { sum, absSum };
}

export function relErr(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.abs(expected);
}

/** L2 norm of a tensor (float64 accumulation). */
export async function l2(t: tf.Tensor): Promise<number> {
  let s = 0;
  for (const x of await t.data()) s += x * x;
  return Math.sqrt(s);
}

/** Row `index` of the last axis of a [..., V] tensor's flat data. */
export function row(data: ArrayLike<number>, index: number, width: number, count = width): number[] {
  return Array.from({ length: count }, (_, j) => data[index * width + j]!);
}

export const ZH_TOKENIZER = path.join(FIXTURES, 'tokenizers/chinese_sp.model');

export const exists = (p: string): Promise<boolean> =>
  fs.stat(p).then(
    () => true,
    () => false,
  );

/**
 * Flags of a small `cllama-train pretrain` / `sft` run on the tiny model and the 20,000-piece Chinese
 * tokenizer: wasm, batch 4, no eval split, no progress bar (pretrain: blocks of 32); `extra` wins.
 */
export function tinyTrainFlags(mode: 'pretrain' | 'sft', o: { datasetDir: string; outputDir: string; dataCacheDir?: string }, extra: string[] = []): string[] {
  return [
    mode,
    '--backend',
    'wasm',
    '--model-name-or-path',
    TINY_LLAMA,
    '--tokenizer-name-or-path',
    ZH_TOKENIZER,
    '--dataset-dir',
    o.datasetDir,
    ...(o.dataCacheDir ? ['--data-cache-dir', o.dataCacheDir] : []),
    '--output-dir',
    o.outputDir,
    ...(mode === 'pretrain' ? ['--block-size', '32'] : []),
    '--per-device-train-batch-size',
    '4',
    '--validation-split-percentage',
    '0',
    '--no-progress',
    ...extra,
  ];
}

/** A CLI run's stderr lines other than the backend line it prints once its inputs are valid. */
export function errorLines(stderr: string): string[] {
  return stderr
    .trim()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('cllama-train: backend '));
}
