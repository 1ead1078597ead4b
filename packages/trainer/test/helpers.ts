import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(REPO_ROOT, 'test-fixtures');
export const TINY_LLAMA = path.join(FIXTURES, 'tiny-llama');

/** Sum and sum of |x| in float64. */
export function sums(t: tf.Tensor): { sum: number; absSum: number } {
  let sum = 0;
  let absSum = 0;
  for (const x of t.dataSync()) {
    sum += x;
    absSum += Math.abs(x);
  }
  return { sum, absSum };
}

export function relErr(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.abs(expected);
}

/** L2 norm of a tensor (float64 accumulation). */
export function l2(t: tf.Tensor): number {
  let s = 0;
  for (const x of t.dataSync()) s += x * x;
  return Math.sqrt(s);
}

/** Row `index` of the last axis of a [..., V] tensor's flat data. */
export function row(data: ArrayLike<number>, index: number, width: number, count = width): number[] {
  return Array.from({ length: count }, (_, j) => data[index * width + j]!);
}
