/**
 * Generation with an embedding padded past the tokenizer (issue 21 #8): LLaMA's 32,000-piece tokenizer
 * on a model whose embedding has 32,128 rows, with the padding rows made the most likely tokens at
 * every position. Every greedy and sampled id must be one the tokenizer can decode (on the JS path and
 * on the device path webgpu uses), and the CLI must answer instead of failing on "id 32000 is outside
 * the vocabulary".
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Mulberry32 } from '@cllama/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { generate, pickNextToken, pickNextTokenOnDevice, resolveGenerationOptions } from '../src/generate.js';
import { loadLlama, saveLlama } from '../src/model/io.js';
import type { LlamaModel } from '../src/model/llama.js';
import { FIXTURES, TINY_LLAMA } from './helpers.js';

const PKG = path.resolve(__dirname, '..');
const CLI = path.join(PKG, 'dist/cli.js');
const LLAMA_TOKENIZER = path.join(FIXTURES, 'tokenizers/llama_tokenizer.model');
const TOKENS = 32000;
const PADDED = 32128;
let root: string;
let padded: string;
let model: LlamaModel;

beforeAll(async () => {
  await initBackend('wasm');
  root = await fs.mkdtemp(path.join(tmpdir(), 'cllama-padded-'));
  padded = path.join(root, 'padded');
  model = await loadLlama(TINY_LLAMA);
  model.resizeTokenEmbeddings(PADDED, 1);
  // the final norm keeps only hidden dimension 0, and padding rows 32000 / 32001 are ±1000 there: whatever
  // the sign of that dimension, a padding id wins every position by a wide margin
  const hidden = model.config.hiddenSize;
  const norm = new Float32Array(hidden);
  norm[0] = 1;
  model.setWeight('model.norm.weight', norm);
  const head = Float32Array.from((await model.readWeight('lm_head.weight')).data);
  head.fill(0, TOKENS * hidden);
  head[TOKENS * hidden] = 1000;
  head[(TOKENS + 1) * hidden] = -1000;
  model.setWeight('lm_head.weight', head);
  await saveLlama(padded, model);
});
afterAll(async () => {
  model.dispose();
  await fs.rm(root, { recursive: true, force: true });
});

const prompt = [1, 15043, 29892, 3186];

describe('an embedding padded past the tokenizer', () => {
  it('without a limit the padding ids win (the setup is hostile), with vocabLimit every greedy and sampled id is below it', async () => {
    const free = await generate(model, prompt, { maxNewTokens: 6, doSample: false, eosTokenId: null });
    expect(free.every((id) => id >= TOKENS)).toBe(true);
    const greedy = await generate(model, prompt, { maxNewTokens: 6, doSample: false, eosTokenId: null, vocabLimit: TOKENS });
    expect(greedy).toHaveLength(6);
    for (const seed of [0, 1, 2, 3, 4, 5, 6, 7]) {
      const sampled = await generate(model, prompt, {
        maxNewTokens: 6,
        temperature: 1,
        topK: 50,
        topP: 0.95,
        repetitionPenalty: 1.1,
        seed,
        eosTokenId: null,
        vocabLimit: TOKENS,
      });
      expect(
        sampled.every((id) => id < TOKENS),
        `seed ${seed}: ${sampled}`,
      ).toBe(true);
    }
    for (const id of greedy) expect(id).toBeLessThan(TOKENS);
  });

  it('the device path (webgpu) picks exactly what the JS path picks, greedy and sampled', async () => {
    const logits = new Float32Array(PADDED).map((_, i) => Math.sin(i * 0.37) * 3);
    logits[PADDED - 1] = 50;
    logits[TOKENS] = 40;
    const t = tf.tensor2d(logits, [1, PADDED]);
    try {
      for (const opts of [
        { doSample: false },
        { temperature: 0.8, seed: 3 },
        { temperature: 1.2, topK: 40, seed: 9 },
        { topP: 0.9, repetitionPenalty: 1.3, seed: 11 },
      ]) {
        const r = resolveGenerationOptions({ ...opts, vocabLimit: TOKENS }, 2);
        for (let k = 0; k < 5; k++) {
          const js = pickNextToken(logits, [5, 7, 31999, 32050], r, Mulberry32.scrambled(k));
          const dev = await pickNextTokenOnDevice(t, [5, 7, 31999, 32050], r, Mulberry32.scrambled(k));
          expect(js).toBeLessThan(TOKENS);
          expect(dev).toBe(js);
        }
      }
      // without the limit the padding id wins: the cut is what keeps it out
      expect(pickNextToken(logits, [], resolveGenerationOptions({ doSample: false }, 2), Mulberry32.scrambled(0))).toBe(PADDED - 1);
    } finally {
      t.dispose();
    }
  });

  it('cllama-train generate and chat answer on every seed instead of "id … is outside the vocabulary"', () => {
    const common = ['--model', padded, '--tokenizer', LLAMA_TOKENIZER, '--backend', 'wasm', '--max-new-tokens', '5'];
    const greedy = spawnSync(process.execPath, [CLI, 'generate', ...common, '--prompt', 'Hello', '--greedy'], { encoding: 'utf8' });
    expect(greedy.status, greedy.stderr).toBe(0);
    expect(greedy.stderr).not.toMatch(/outside the vocabulary/);
    for (const seed of ['0', '1', '2', '3']) {
      const r = spawnSync(process.execPath, [CLI, 'generate', ...common, '--prompt', 'Hello', '--temperature', '1', '--seed', seed], { encoding: 'utf8' });
      expect(r.status, `seed ${seed}: ${r.stderr}`).toBe(0);
    }
    const chat = spawnSync(process.execPath, [CLI, 'chat', ...common, '--temperature', '1'], { encoding: 'utf8', input: 'one\ntwo\n' });
    expect(chat.status, chat.stderr).toBe(0);
    expect(chat.stderr).not.toMatch(/outside the vocabulary/);
  });
});
