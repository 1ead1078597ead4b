/**
 * Parity with an independent PyTorch implementation of HF LLaMA (test-fixtures/tiny-llama/golden.json),
 * on every backend of PARITY_TEST_BACKENDS (wasm, webgpu, native) with the same tolerances: logits, HF
 * causal-LM loss, and the gradient norm of every weight. Values are read with await data() (webgpu
 * has no synchronous read).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadLlama } from '../src/model/io.js';
import type { LlamaModel } from '../src/model/llama.js';
import { FIXTURES, l2, PARITY_TEST_BACKENDS, relErr, row, sums, useBackend, values } from './helpers.js';

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

// tiny-llama: the project's shared fixture (MHA, untied). The other two come from
// test/reference/llama_reference.py: GQA + rope_theta 500000; tied embeddings + linear rope scaling + MQA.
const cases = PARITY_TEST_BACKENDS.flatMap((backend) => ['tiny-llama', 'tiny-llama-gqa', 'tiny-llama-tied'].map((fixture) => [fixture, backend] as const));

describe.each(cases)('%s parity with PyTorch (%s)', (fixture, backend) => {
  const dir = path.join(FIXTURES, fixture);
  const golden = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8')) as Golden;
  let model: LlamaModel;
  let ids: tf.Tensor2D;
  let labels: tf.Tensor2D;

  beforeAll(async () => {
    await useBackend(backend);
    model = await loadLlama(dir);
    ids = tf.tensor2d(golden.input_ids, undefined, 'int32');
    labels = tf.tensor2d(golden.labels, undefined, 'int32');
  });
  afterAll(() => {
    model.dispose();
    tf.dispose([ids, labels]);
  });

  it('logits: sums and two rows within 1e-4 relative', async () => {
    const logits = model.logits(ids);
    const vocab = model.config.vocabSize;
    const [batch, seq] = ids.shape;
    expect(logits.shape).toEqual([batch, seq, vocab]);
    const { sum, absSum } = await sums(logits);
    expect(relErr(sum, golden.logits_sum)).toBeLessThan(1e-4);
    expect(relErr(absSum, golden.logits_abs_sum)).toBeLessThan(1e-4);
    const data = await values(logits);
    const first = row(data, 0, vocab, golden.logits_first_row.length);
    const last = row(data, batch * seq - 1, vocab, golden.logits_last_row.length);
    for (const [actual, expected] of [
      [first, golden.logits_first_row],
      [last, golden.logits_last_row],
    ] as const) {
      actual.forEach((a, j) => expect(Math.abs(a - expected[j]!)).toBeLessThanOrEqual(1e-4 * Math.abs(expected[j]!) + 1e-6));
    }
    logits.dispose();
  });

  it.each([
    ['softmax kept for the backward pass', undefined],
    ['logits recomputed in the backward pass', 0],
  ])('HF causal-LM loss within 1e-5 and every weight gradient norm within 1e-3 relative (%s)', async (_label, keepProbsBytes) => {
    const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, { keepProbsBytes, chunkTokens: 20 }));
    expect(Math.abs((await values(value))[0]! - golden.loss)).toBeLessThan(1e-5);
    const named = model.namedVariables();
    expect([...named.keys()].sort()).toEqual(Object.keys(golden.grad_norms).sort());
    for (const [name, variable] of named) {
      const norm = await l2(grads[variable.name]!);
      expect(relErr(norm, golden.grad_norms[name]!), name).toBeLessThan(1e-3);
    }
    value.dispose();
    tf.dispose(grads);
  });

  it('loss equals the shifted mean cross-entropy of the full logits, whatever the chunk size', async () => {
    const logits = model.logits(ids);
    const vocab = model.config.vocabSize;
    const [batch, seq] = ids.shape;
    const data = await values(logits);
    let total = 0;
    let count = 0;
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < seq - 1; t++) {
        const target = golden.labels[b]![t + 1]!;
        if (target === -100) continue;
        const r = row(data, b * seq + t, vocab);
        const max = Math.max(...r);
        const lse = max + Math.log(r.reduce((acc, x) => acc + Math.exp(x - max), 0));
        total += lse - r[target]!;
        count++;
      }
    }
    logits.dispose();
    for (const chunkTokens of [7, 64, 4096]) {
      const loss = model.loss(ids, labels, { chunkTokens });
      expect(relErr((await values(loss))[0]!, total / count), `chunk ${chunkTokens}`).toBeLessThan(1e-6);
      loss.dispose();
    }
  });

  it('a frozen lm_head gets no gradient work and the embedding gradient is unchanged', async () => {
    const embed = model.variables((n) => n === 'model.embed_tokens.weight');
    const full = tf.variableGrads(() => model.loss(ids, labels), embed);
    model.setTrainable((n) => n === 'model.embed_tokens.weight');
    try {
      const frozen = tf.variableGrads(() => model.loss(ids, labels));
      expect(Object.keys(frozen.grads)).toEqual([embed[0]!.name]);
      const a = await values(full.grads[embed[0]!.name]!);
      const b = await values(frozen.grads[embed[0]!.name]!);
      expect(Array.from(b)).toEqual(Array.from(a));
      tf.dispose([frozen.value, ...Object.values(frozen.grads)]);
    } finally {
      model.setTrainable(() => true);
      tf.dispose([full.value, ...Object.values(full.grads)]);
    }
  });

  it('does not leak tensors across repeated forward/backward', () => {
    const step = () => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, labels));
      tf.dispose([value, ...Object.values(grads)]);
      model.logits(ids).dispose();
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('attention mask (padding) on the wasm per-sequence attention path', () => {
  it('a right-padded row gives the logits of the sequence alone; masking changes a left-padded row; cpu (batched attention) agrees', async () => {
    await initBackend('wasm');
    const model = await loadLlama(path.join(FIXTURES, 'tiny-llama'));
    try {
      const seqA = [1, 15, 27, 99, 4, 8];
      const seqB = [1, 42, 7, 3]; // shorter: left-padded with two 0s and masked
      const alone = model.logits(tf.tensor2d([seqB], undefined, 'int32'));
      const padded = tf.tensor2d([seqA, [0, 0, ...seqB]], undefined, 'int32');
      const mask = tf.tensor2d(
        [
          [1, 1, 1, 1, 1, 1],
          [0, 0, 1, 1, 1, 1],
        ],
        undefined,
        'int32',
      );
      const both = model.logits(padded, { attentionMask: mask });
      const vocab = model.config.vocabSize;
      // right padding keeps the rotary positions: row B's first four positions equal seqB run alone
      const right = model.logits(tf.tensor2d([seqA, [...seqB, 0, 0]], undefined, 'int32'), {
        attentionMask: tf.tensor2d(
          [
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 0, 0],
          ],
          undefined,
          'int32',
        ),
      });
      const r = right.dataSync();
      const a = alone.dataSync();
      for (let t = 0; t < seqB.length; t++) {
        for (let j = 0; j < vocab; j += 97) expect(Math.abs(r[(seqB.length + 2 + t) * vocab + j]! - a[t * vocab + j]!)).toBeLessThan(1e-4);
      }
      // the masked left padding must change row B's logits relative to attending to the pad tokens
      const unmasked = model.logits(padded).dataSync();
      const masked = both.dataSync();
      let diff = 0;
      for (let j = 0; j < vocab; j++) diff = Math.max(diff, Math.abs(unmasked[11 * vocab + j]! - masked[11 * vocab + j]!));
      expect(diff).toBeGreaterThan(1e-3);
      // the cpu backend runs the batched attention: same logits
      await initBackend('cpu');
      const cpuModel = await loadLlama(path.join(FIXTURES, 'tiny-llama'));
      const onCpu = cpuModel.logits(padded, { attentionMask: mask }).dataSync();
      cpuModel.dispose();
      await initBackend('wasm');
      for (let i = 0; i < onCpu.length; i += 53) expect(Math.abs(onCpu[i]! - masked[i]!)).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });
});
