/**
 * The fused LM-head cross-entropy walks the tokens in chunks, keeping or recomputing the softmax;
 * every chunking must give the loss and both gradients of the plain formula
 * mean(logsumexp(h·Wᵀ) − (h·Wᵀ)[target]) over counted targets, computed here with tfjs's own ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { fusedLinearCrossEntropy, releaseHeadBlocks } from '../src/model/ops.js';

beforeAll(async () => {
  await initBackend('wasm');
});

function reference(h: tf.Tensor2D, w: tf.Tensor2D, targets: Int32Array) {
  const counted = [...targets].filter((t) => t !== -100).length;
  return tf.tidy(() => {
    // one-hot rows (all zero for ignored tokens), so no gather (whose gradient wasm lacks)
    const onehot = tf.oneHot(tf.tensor1d(Int32Array.from(targets, (t) => (t === -100 ? -1 : t)), 'int32'), w.shape[0]);
    const f = (hh: tf.Tensor, ww: tf.Tensor) => tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(tf.matMul(hh, tf.transpose(ww))), onehot))), counted) as tf.Scalar;
    const { value, grads } = tf.valueAndGrads(f)([h, w]);
    return { loss: value.dataSync()[0]!, dh: grads[0]!.dataSync(), dw: grads[1]!.dataSync() };
  });
}

describe('fusedLinearCrossEntropy chunks', () => {
  const n = 10;
  const hiddenSize = 6;
  const vocab = 23;
  const h = tf.tensor2d(Float32Array.from({ length: n * hiddenSize }, (_, i) => Math.sin(i * 1.3)), [n, hiddenSize]);
  const w = tf.tensor2d(Float32Array.from({ length: vocab * hiddenSize }, (_, i) => Math.cos(i * 0.7) * 0.8), [vocab, hiddenSize]);
  const targets = Int32Array.from([3, 22, -100, 0, 7, 7, -100, 15, 8, 21]);

  it.each([
    [10, 'one chunk'],
    [4, 'chunks of 4 (last one 2)'],
    [1, 'one token per chunk'],
  ])('chunk %i (%s): loss and gradients of the plain formula, softmax kept or recomputed', (chunk) => {
    const ref = reference(h, w, targets);
    for (const keep of [256 * 1024 * 1024, 0]) {
      const { value, grads } = tf.valueAndGrads((hh: tf.Tensor, ww: tf.Tensor) => fusedLinearCrossEntropy(hh as tf.Tensor2D, ww as tf.Tensor2D, targets, chunk, keep))([h, w]);
      expect(Math.abs(value.dataSync()[0]! - ref.loss)).toBeLessThan(1e-5 * ref.loss);
      const [dh, dw] = [grads[0]!.dataSync(), grads[1]!.dataSync()];
      ref.dh.forEach((x, i) => expect(Math.abs(dh[i]! - x)).toBeLessThan(1e-5));
      ref.dw.forEach((x, i) => expect(Math.abs(dw[i]! - x)).toBeLessThan(1e-5));
      tf.dispose([value, ...grads]);
    }
  });
});

describe('fusedLinearCrossEntropy with a frozen head (cached vocabulary blocks on wasm)', () => {
  it('gives the plain formula for every block size, follows a change of the head, and frees its cache', () => {
    const n = 10;
    const hiddenSize = 6;
    const vocab = 23;
    const h = tf.tensor2d(Float32Array.from({ length: n * hiddenSize }, (_, i) => Math.sin(i * 1.3)), [n, hiddenSize]);
    const values = Float32Array.from({ length: vocab * hiddenSize }, (_, i) => Math.cos(i * 0.7) * 0.8);
    const head = tf.variable(tf.tensor2d(values, [vocab, hiddenSize]), false, 'frozen-head-test');
    const targets = Int32Array.from([3, 22, -100, 0, 7, 7, -100, 15, 8, 21]);
    const before = tf.memory().numTensors;
    const check = () => {
      const ref = reference(h, head, targets);
      for (const [chunk, rows] of [[10, 5], [3, 8], [4, 23]] as const) {
        const { value, grads } = tf.valueAndGrads((hh: tf.Tensor) => fusedLinearCrossEntropy(hh as tf.Tensor2D, head, targets, chunk, 256 * 1024 * 1024, rows))([h]);
        expect(Math.abs(value.dataSync()[0]! - ref.loss)).toBeLessThan(1e-5 * ref.loss);
        const dh = grads[0]!.dataSync();
        ref.dh.forEach((x, i) => expect(Math.abs(dh[i]! - x)).toBeLessThan(1e-5));
        tf.dispose([value, ...grads]);
      }
    };
    check();
    tf.tidy(() => head.assign(tf.mul(head, 1.5))); // new values: the cache must not serve the old blocks
    check();
    expect(tf.memory().numTensors).toBeGreaterThan(before); // the last blocks are cached…
    releaseHeadBlocks();
    expect(tf.memory().numTensors).toBe(before); // …until released
    head.dispose();
    h.dispose();
  });
});
