import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alpacaPrompt,
  applyRepetitionPenalty,
  applyTopK,
  applyTopP,
  generate,
  generateTokens,
  pickNextToken,
  pickNextTokenOnDevice,
  resolveGenerationOptions,
} from '../src/generate.js';
import { loadLlama } from '../src/model/io.js';
import type { LlamaModel } from '../src/model/llama.js';
import { Mulberry32 } from '@cllama/core';
import { FIXTURES, MODEL_TEST_BACKENDS, useBackend, values } from './helpers.js';

/** Step-by-step greedy decoding that reruns the full forward pass on the whole sequence each time. */
async function greedyWithoutCache(model: LlamaModel, prompt: number[], steps: number): Promise<number[]> {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const ids = tf.tensor2d([seq], [1, seq.length], 'int32');
    const logits = model.logits(ids);
    const vocab = model.config.vocabSize;
    const data = await values(logits);
    const last = data.subarray((seq.length - 1) * vocab, seq.length * vocab);
    let best = 0;
    for (let j = 1; j < vocab; j++) if (last[j]! > last[best]!) best = j;
    tf.dispose([ids, logits]);
    seq.push(best);
    out.push(best);
  }
  return out;
}

const cases = MODEL_TEST_BACKENDS.flatMap((backend) => ['tiny-llama', 'tiny-llama-gqa'].map((fixture) => [fixture, backend] as const));

describe.each(cases)('generation with the KV cache on %s (%s)', (fixture, backend) => {
  let model: LlamaModel;
  const prompt = [1, 17, 250, 33, 99, 5];

  beforeAll(async () => {
    await useBackend(backend);
    model = await loadLlama(path.join(FIXTURES, fixture));
  });
  afterAll(() => model.dispose());

  it('greedy with the cache equals step-by-step argmax of the full forward pass', async () => {
    const cached = await generate(model, prompt, { maxNewTokens: 20, eosTokenId: null });
    expect(cached).toHaveLength(20);
    expect(cached).toEqual(await greedyWithoutCache(model, prompt, 20));
  });

  it('seeded sampling is reproducible and the seed matters', async () => {
    const opts = { maxNewTokens: 24, temperature: 1.3, topK: 50, topP: 0.95, eosTokenId: null };
    const a = await generate(model, prompt, { ...opts, seed: 7 });
    const b = await generate(model, prompt, { ...opts, seed: 7 });
    const c = await generate(model, prompt, { ...opts, seed: 8 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('top-k 1 is greedy; stops at EOS; streams tokens one by one', async () => {
    const greedy = await generate(model, prompt, { maxNewTokens: 8, eosTokenId: null });
    expect(await generate(model, prompt, { maxNewTokens: 8, topK: 1, temperature: 0.7, seed: 3, eosTokenId: null })).toEqual(greedy);
    // Declare the third greedy token to be EOS: generation ends right after it.
    expect(await generate(model, prompt, { maxNewTokens: 8, eosTokenId: greedy[2]! })).toEqual(greedy.slice(0, greedy.indexOf(greedy[2]!) + 1));
    const streamed: number[] = [];
    for await (const id of generateTokens(model, prompt, { maxNewTokens: 5, eosTokenId: null })) streamed.push(id);
    expect(streamed).toEqual(greedy.slice(0, 5));
  });

  it('repetition penalty changes greedy output away from repeats', async () => {
    const plain = await generate(model, prompt, { maxNewTokens: 30, eosTokenId: null });
    const penalised = await generate(model, prompt, { maxNewTokens: 30, repetitionPenalty: 5, eosTokenId: null });
    const repeats = (ids: number[]) => ids.length - new Set([...prompt, ...ids]).size + new Set(prompt).size;
    expect(repeats(penalised)).toBeLessThan(repeats(plain));
  });

  it('does not leak tensors across generate calls', async () => {
    await generate(model, prompt, { maxNewTokens: 4 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await generate(model, prompt, { maxNewTokens: 6, temperature: 0.9, seed: i });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe.each(MODEL_TEST_BACKENDS)('token choice on the device (%s) equals the JS logits processors', (backend) => {
  it('greedy, repetition penalty, temperature + top-k + top-p sampling: the same token for the same draw', async () => {
    await useBackend(backend);
    const vocab = 64;
    const logits = Float32Array.from({ length: vocab }, (_, i) => Math.sin(i * 2.1) * 3 + (i % 7) * 0.2);
    const logitsT = tf.tensor2d(logits, [1, vocab]);
    const history = [3, 9, 9, 40, 17];
    for (const options of [
      {},
      { repetitionPenalty: 1.8 },
      { temperature: 0.8 },
      { temperature: 1.2, topK: 10 },
      { topP: 0.8 },
      { temperature: 0.7, topK: 20, topP: 0.9, repetitionPenalty: 1.3 },
    ]) {
      const opts = resolveGenerationOptions(options, 2);
      const host = Mulberry32.scrambled(5);
      const device = Mulberry32.scrambled(5);
      for (let i = 0; i < 40; i++) {
        expect(await pickNextTokenOnDevice(logitsT, history, opts, device), JSON.stringify(options)).toBe(pickNextToken(logits, history, opts, host));
      }
    }
    logitsT.dispose();
  });
});

describe('logits processors (HF semantics)', () => {
  it('repetition penalty divides positive and multiplies negative scores of seen tokens', () => {
    const s = new Float32Array([2, -2, 1, 4]);
    applyRepetitionPenalty(s, [0, 1, 1], 2);
    expect(Array.from(s)).toEqual([1, -4, 1, 4]);
  });

  it('top-k keeps the k best (ties kept), top-p keeps the smallest nucleus', () => {
    const s = new Float32Array([1, 3, 3, 0, 2]);
    applyTopK(s, 2);
    expect(Array.from(s)).toEqual([-Infinity, 3, 3, -Infinity, -Infinity]);
    const p = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    applyTopP(p, 0.7); // ascending cumulative: 0.2 ≤ 0.3 removed; 0.5 > 0.3 kept
    expect(p[2]).toBe(-Infinity);
    expect(p[0]).toBeCloseTo(Math.log(0.5), 6);
    expect(p[1]).toBeCloseTo(Math.log(0.3), 6);
  });

  it('samples in proportion to the processed distribution', () => {
    const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    const opts = resolveGenerationOptions({ topP: 0.7 }, 2);
    const rng = Mulberry32.scrambled(11);
    const counts = [0, 0, 0];
    const n = 4000;
    for (let i = 0; i < n; i++) counts[pickNextToken(logits, [], opts, rng)]!++;
    expect(counts[2]).toBe(0);
    expect(counts[0]! / n).toBeCloseTo(0.625, 1);
    expect(counts[1]! / n).toBeCloseTo(0.375, 1);
  });

  it('Alpaca template matches the recipe (trailing space, input joined by a newline)', () => {
    expect(alpacaPrompt('Name a color.')).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName a color.\n\n### Response: ',
    );
    expect(alpacaPrompt('Translate.', 'hello')).toContain('### Instruction:\nTranslate.\nhello\n\n### Response: ');
  });
});
