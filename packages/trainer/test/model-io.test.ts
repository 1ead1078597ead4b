/** HF folder round trips through @cllama/lora, vocabulary resizing, and the model's input checks. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createLlamaConfig } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadLlama, saveLlama } from '../src/model/io.js';
import { LlamaModel, ModelError } from '../src/model/llama.js';
import { cholesky, resizedEmbeddingRows } from '../src/model/resize.js';
import { TINY_LLAMA } from './helpers.js';

describe('save / load / resize (wasm)', () => {
  let tmp: string;
  beforeAll(async () => {
    await initBackend('wasm');
    tmp = mkdtempSync(path.join(tmpdir(), 'cllama-model-io-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('save → load is exact, and a folder saved as 3 shards loads back identically', async () => {
    const model = await loadLlama(TINY_LLAMA);
    const original = model.exportWeights();
    const single = path.join(tmp, 'single');
    await saveLlama(single, model);
    expect(readdirSync(single).sort()).toEqual(['config.json', 'model.safetensors']);

    // ~660 kB of weights: 300 kB shards give 3 files.
    const sharded = path.join(tmp, 'sharded');
    await saveLlama(sharded, model, { maxShardBytes: 300_000 });
    const files = readdirSync(sharded).sort();
    expect(files).toEqual([
      'config.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    for (const dir of [single, sharded]) {
      const back = await loadLlama(dir);
      const weights = back.exportWeights();
      expect(weights.map((w) => w.name)).toEqual(original.map((w) => w.name));
      weights.forEach((w, i) => {
        expect(w.shape).toEqual(original[i]!.shape);
        expect(Buffer.from(w.data.buffer).equals(Buffer.from(original[i]!.data.buffer))).toBe(true);
      });
      expect(back.config.vocabSize).toBe(model.config.vocabSize);
      back.dispose();
    }
    model.dispose();
  });

  it('F16 save loads back within half-precision rounding', async () => {
    const model = await loadLlama(TINY_LLAMA);
    const dir = path.join(tmp, 'f16');
    await saveLlama(dir, model, { dtype: 'F16' });
    const back = await loadLlama(dir);
    const a = model.exportWeight('model.layers.1.mlp.up_proj.weight').data;
    const b = back.exportWeight('model.layers.1.mlp.up_proj.weight').data;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(a[i]!), 1e-3));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-3);
    model.dispose();
    back.dispose();
  });

  it('resizeTokenEmbeddings keeps old rows, samples new ones around the old mean, and saves the new vocab', async () => {
    const model = await loadLlama(TINY_LLAMA);
    const oldEmbed = model.exportWeight('model.embed_tokens.weight').data;
    const [oldRows, width] = [model.config.vocabSize, model.config.hiddenSize];
    model.resizeTokenEmbeddings(oldRows + 40, 1);
    expect(model.config.vocabSize).toBe(oldRows + 40);
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const w = model.exportWeight(name);
      expect(w.shape).toEqual([oldRows + 40, width]);
    }
    const embed = model.exportWeight('model.embed_tokens.weight').data;
    expect(embed.subarray(0, oldRows * width)).toEqual(oldEmbed);
    const mean = new Float64Array(width);
    for (let r = 0; r < oldRows; r++) for (let j = 0; j < width; j++) mean[j]! += oldEmbed[r * width + j]! / oldRows;
    // New rows ~ N(mean, 1e-9 cov): within ~1e-3 of the mean for these weights, but not all equal.
    let maxDev = 0;
    for (let r = oldRows; r < oldRows + 40; r++) for (let j = 0; j < width; j++) maxDev = Math.max(maxDev, Math.abs(embed[r * width + j]! - mean[j]!));
    expect(maxDev).toBeGreaterThan(0);
    expect(maxDev).toBeLessThan(1e-3);
    expect(embed.subarray(oldRows * width, (oldRows + 1) * width)).not.toEqual(embed.subarray((oldRows + 1) * width, (oldRows + 2) * width));

    // Forward and loss work with the new ids; saving writes vocab_size.
    const ids = tf.tensor2d([[1, oldRows + 39, 5]], undefined, 'int32');
    const loss = model.loss(ids, ids);
    expect(Number.isFinite(loss.dataSync()[0]!)).toBe(true);
    tf.dispose([ids, loss]);
    const dir = path.join(tmp, 'resized');
    await saveLlama(dir, model);
    const back = await loadLlama(dir);
    expect(back.config.vocabSize).toBe(oldRows + 40);
    back.dispose();
    model.dispose();
  });

  it('falls back to the mean when the covariance is not positive definite (fewer rows than width)', () => {
    const old = new Float32Array([1, 2, 3, 3, 2, 1]); // 2 rows × width 3: rank-1 covariance
    const out = resizedEmbeddingRows(old, 2, 3, 4, 0);
    expect(Array.from(out.subarray(6))).toEqual([2, 2, 2, 2, 2, 2]);
    expect(cholesky(new Float64Array([4, 2, 2, 3]), 2)).toEqual(new Float64Array([2, 0, 1, Math.sqrt(2)]));
  });

  it('rejects bad weights, configs and ids with clear errors', async () => {
    const config = createLlamaConfig({ hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, vocabSize: 10 });
    const model = LlamaModel.random(config, 3);
    const weights = model.exportWeights();
    expect(() => new LlamaModel(config, weights.slice(1))).toThrow(/missing weight 'model.embed_tokens.weight'/);
    expect(() => new LlamaModel(config, [...weights, { name: 'model.layers.0.foo.weight', shape: [1], data: new Float32Array(1) }])).toThrow(
      /unexpected weight 'model.layers.0.foo.weight'/,
    );
    const wrong = weights.map((w) => (w.name === 'model.norm.weight' ? { ...w, shape: [8], data: new Float32Array(8) } : w));
    expect(() => new LlamaModel(config, wrong)).toThrow(ModelError);
    expect(() => new LlamaModel({ ...config, numKeyValueHeads: 3 } as typeof config, weights)).toThrow(/not a multiple/);
    expect(() => new LlamaModel({ ...config, ropeScaling: { type: 'dynamic', factor: 2 } } as unknown as typeof config, weights)).toThrow(/rope_scaling/);
    const bad = tf.tensor2d([[1, 10]], undefined, 'int32');
    expect(() => model.logits(bad)).toThrow(/outside the embedding table/);
    expect(() => model.loss(tf.tensor2d([[1, 2]], undefined, 'int32'), tf.tensor2d([[1, 12]], undefined, 'int32'))).toThrow(/outside the vocabulary/);
    bad.dispose();
    model.dispose();
  });
});
