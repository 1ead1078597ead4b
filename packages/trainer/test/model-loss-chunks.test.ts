/**
 * The fused LM-head cross-entropy (lm-head-loss.ts) walks the tokens in chunks, keeping or recomputing
 * the softmax, and on wasm a frozen head in cached vocabulary blocks; every variant must give the loss
 * and both gradients of referenceLinearCrossEntropy (full logits, log-softmax, the target's column).
 * The chunking runs on every backend of PARITY_TEST_BACKENDS (native: the fused head kernel and the
 * head gradient without a transpose); the blocks are a wasm feature.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { fusedLinearCrossEntropy, referenceLinearCrossEntropy } from '../src/model/lm-head-loss.js';
import { releaseHeadBlocks } from '../src/model/lm-head-blocks.js';
import { PARITY_TEST_BACKENDS, useBackend, values } from './helpers.js';

const n = 10;
const hiddenSize = 6;
const vocab = 23;
const targets = Int32Array.from([3, 22, -100, 0, 7, 7, -100, 15, 8, 21]);
const hiddenValues = Float32Array.from({ length: n * hiddenSize }, (_, i) => Math.sin(i * 1.3));
const headValues = Float32Array.from({ length: vocab * hiddenSize }, (_, i) => Math.cos(i * 0.7) * 0.8);

/** Loss and the gradients w.r.t. every input of `f`, as host arrays. */
async function lossAndGrads(f: (...xs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[]): Promise<{ loss: number; grads: Float32Array[] }> {
  const { value, grads } = tf.valueAndGrads(f)(inputs);
  const out = { loss: (await values(value))[0]!, grads: await Promise.all(grads.map(values)) };
  tf.dispose([value, ...grads]);
  return out;
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((x, i) => expect(Math.abs(actual[i]! - x)).toBeLessThan(1e-5));
}

describe.each(PARITY_TEST_BACKENDS)('fusedLinearCrossEntropy chunks (%s)', (backend) => {
  it.each([
    [10, 'one chunk'],
    [4, 'chunks of 4 (last one 2)'],
    [1, 'one token per chunk'],
  ])('chunk %i (%s): loss and both gradients of the reference, softmax kept or recomputed', async (chunk) => {
    await useBackend(backend);
    const h = tf.tensor2d(hiddenValues, [n, hiddenSize]);
    const w = tf.tensor2d(headValues, [vocab, hiddenSize]);
    const ref = await lossAndGrads((hh, ww) => referenceLinearCrossEntropy(hh as tf.Tensor2D, ww as tf.Tensor2D, targets), [h, w]);
    for (const keep of [256 * 1024 * 1024, 0]) {
      const fused = await lossAndGrads(
        (hh, ww) => fusedLinearCrossEntropy(hh as tf.Tensor2D, ww as tf.Tensor2D, targets, { chunkTokens: chunk, keepProbsBytes: keep }),
        [h, w],
      );
      expect(Math.abs(fused.loss - ref.loss)).toBeLessThan(1e-5 * ref.loss);
      expectClose(fused.grads[0]!, ref.grads[0]!);
      expectClose(fused.grads[1]!, ref.grads[1]!);
    }
    tf.dispose([h, w]);
  });
});

describe('the reference itself', () => {
  it('is mean(logsumexp(h·Wᵀ) − (h·Wᵀ)[target]) over counted targets, computed in float64 here', async () => {
    await useBackend('wasm');
    let total = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (targets[i] === -100) continue;
      const logits = Array.from({ length: vocab }, (_, v) => {
        let s = 0;
        for (let j = 0; j < hiddenSize; j++) s += hiddenValues[i * hiddenSize + j]! * headValues[v * hiddenSize + j]!;
        return s;
      });
      const max = Math.max(...logits);
      total += max + Math.log(logits.reduce((a, x) => a + Math.exp(x - max), 0)) - logits[targets[i]!]!;
      count++;
    }
    const loss = referenceLinearCrossEntropy(tf.tensor2d(hiddenValues, [n, hiddenSize]), tf.tensor2d(headValues, [vocab, hiddenSize]), targets);
    expect(Math.abs((await values(loss))[0]! - total / count)).toBeLessThan(1e-5);
  });
});

describe('fusedLinearCrossEntropy with a frozen head (cached vocabulary blocks on wasm)', () => {
  it('gives the reference for every block size, follows a change of the head, and frees its cache', async () => {
    await useBackend('wasm');
    const h = tf.tensor2d(hiddenValues, [n, hiddenSize]);
    const head = tf.variable(tf.tensor2d(headValues, [vocab, hiddenSize]), false, 'frozen-head-test');
    const before = tf.memory().numTensors;
    const check = async () => {
      const ref = await lossAndGrads((hh) => referenceLinearCrossEntropy(hh as tf.Tensor2D, head, targets), [h]);
      for (const [chunk, rows] of [
        [10, 5],
        [3, 8],
        [4, 23],
      ] as const) {
        const fused = await lossAndGrads(
          (hh) =>
            fusedLinearCrossEntropy(hh as tf.Tensor2D, head, targets, {
              chunkTokens: chunk,
              keepProbsBytes: 256 * 1024 * 1024,
              frozenHeadBlockRows: rows,
            }),
          [h],
        );
        expect(Math.abs(fused.loss - ref.loss)).toBeLessThan(1e-5 * ref.loss);
        expectClose(fused.grads[0]!, ref.grads[0]!);
      }
    };
    await check();
    tf.tidy(() => head.assign(tf.mul(head, 1.5))); // new values: the cache must not serve the old blocks
    await check();
    expect(tf.memory().numTensors).toBeGreaterThan(before); // the last blocks are cached…
    releaseHeadBlocks();
    expect(tf.memory().numTensors).toBe(before); // …until released
    head.dispose();
    h.dispose();
  });
});
