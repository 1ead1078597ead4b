/**
 * Shapes, ids and numbers of the model commands (issue #14): a prompt that does not fit
 * max_position_embeddings or holds ids beyond the embedding is an error (not an empty completion);
 * scoring with every label -100 is "no tokens to score" (not perplexity 1 over 0 tokens); the
 * tokenizer is checked against the embedding after an adapter grows it; --seed abc / 1e99 are refused.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { parseNonNegativeInt, parseNumber, parsePositiveInt } from '../src/cli/common.js';
import { loadForGeneration } from '../src/cli/generate.js';
import { generate, GenerationError } from '../src/generate.js';
import { loadLlama } from '../src/model/io.js';
import type { LlamaModel } from '../src/model/llama.js';
import { scoreBatches, ScoreError } from '../src/score.js';
import { FIXTURES, TINY_LLAMA } from './helpers.js';

const PKG = path.resolve(__dirname, '..');
let model: LlamaModel;
beforeAll(async () => {
  await initBackend('wasm');
  model = await loadLlama(TINY_LLAMA); // vocab 512, max_position_embeddings 256
});
afterAll(() => model.dispose());

describe('generate', () => {
  it('refuses a prompt of max_position_embeddings tokens or more instead of returning nothing', async () => {
    const long = Array.from({ length: 256 }, (_, i) => 1 + (i % 500));
    await expect(generate(model, long, { maxNewTokens: 4 })).rejects.toThrow(GenerationError);
    await expect(generate(model, long, { maxNewTokens: 4 })).rejects.toThrow(
      /the prompt is 256 tokens but the model reads at most 256 \(max_position_embeddings\)/,
    );
    expect(await generate(model, long.slice(0, 255), { maxNewTokens: 4 })).toHaveLength(1); // one position left
  });

  it('refuses a tokenizer with more tokens than the embedding, before generating anything', async () => {
    // LLaMA's 32,000-piece tokenizer on tiny-llama (vocab 512): ids 512… would have no embedding row
    const flags = { model: TINY_LLAMA, tokenizer: path.join(FIXTURES, 'tokenizers/llama_tokenizer.model'), backend: 'wasm' as const };
    await expect(loadForGeneration(flags)).rejects.toThrow(/the tokenizer has 32000 tokens but the model's embedding only 512 \(ids 512…31999 have no row\)/);
  });

  it('refuses prompt ids outside the embedding', async () => {
    await expect(generate(model, [1, 600, 3], { maxNewTokens: 2 })).rejects.toThrow(/prompt token 1 is id 600, outside the model's vocabulary 0…511/);
    await expect(generate(model, [1, -1], { maxNewTokens: 2 })).rejects.toThrow(GenerationError);
  });
});

describe('score', () => {
  it('every label -100 is an error, not perplexity 1 over 0 tokens', async () => {
    const ids = [[1, 5, 9, 12]];
    await expect(scoreBatches(model, ids, [[-100, -100, -100, -100]])).rejects.toThrow(ScoreError);
    await expect(scoreBatches(model, ids, [[7, -100, -100, -100]])).rejects.toThrow(/no tokens to score/); // position 0 never counts
    const ok = await scoreBatches(model, ids, [[-100, -100, -100, 12]]);
    expect(ok.tokens).toBe(1);
    expect(ok.loss).toBeGreaterThan(0);
  });

  it('ids or labels beyond the embedding are an error', async () => {
    await expect(scoreBatches(model, [[1, 512]], [[1, 2]])).rejects.toThrow(/input id 512 is outside the model's vocabulary 0…511/);
    await expect(scoreBatches(model, [[1, 2]], [[1, 9999]])).rejects.toThrow(/label 9999 is outside/);
  });
});

describe('number flags of the model commands', () => {
  it('whole numbers are digits: abc, 1e99, 1.5, empty and out-of-range values are refused', () => {
    const seed = parseNonNegativeInt('--seed');
    expect(seed('0')).toBe(0);
    expect(seed('42')).toBe(42);
    for (const bad of ['abc', '1e99', '1e3', '1.5', '', ' ', '-1', '0x10', '9007199254740993'])
      expect(() => seed(bad)).toThrow(/--seed must be a non-negative integer/);
    const n = parsePositiveInt('--max-new-tokens');
    for (const bad of ['0', '1e99', 'x']) expect(() => n(bad)).toThrow(/--max-new-tokens must be a positive integer/);
    expect(() => parseNumber('--top-p', 1e-6, 1)('')).toThrow(/--top-p must be a number/);
  });

  it('generate --seed abc is refused in one line before the model is loaded', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(PKG, 'src/cli.ts'),
        'generate',
        '--model',
        TINY_LLAMA,
        '--tokenizer',
        path.join(FIXTURES, 'tokenizers/llama_tokenizer.model'),
        '--prompt',
        'hi',
        '--seed',
        'abc',
      ],
      { cwd: PKG, encoding: 'utf8' },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--seed must be a non-negative integer, got 'abc'/);
    expect(r.stdout).toBe('');
  });
});
