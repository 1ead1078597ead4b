import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadLlama } from '../src/model/io.js';
import { AdamW } from '../src/train/adamw.js';

const TINY = path.resolve(__dirname, '../../../test-fixtures/tiny-llama');
const golden = JSON.parse(readFileSync(path.join(TINY, 'golden.json'), 'utf8'));

beforeAll(async () => {
  await initBackend('wasm');
});

describe('AdamW on the tiny LLaMA vs PyTorch (golden.json adamw_embed_only)', () => {
  it('one step on embed_tokens gives the same loss and |embeddings| sum', async () => {
    const g = golden.adamw_embed_only;
    const model = await loadLlama(TINY);
    const [batch, seq] = [golden.input_ids.length, golden.input_ids[0].length];
    const ids = tf.tensor2d(golden.input_ids.flat(), [batch, seq], 'int32');
    const labels = tf.tensor2d(golden.labels.flat(), [batch, seq], 'int32');
    const embed = model.namedVariables((n) => n === 'model.embed_tokens.weight').get('model.embed_tokens.weight')!;
    const opt = new AdamW([{ name: 'model.embed_tokens.weight', variable: embed }], { betas: g.betas, eps: g.eps, weightDecay: g.weight_decay });

    const { value, grads } = tf.variableGrads(() => model.loss(ids, labels), [embed]);
    const lossBefore = value.dataSync()[0]!;
    expect(Math.abs(lossBefore - g.loss_before)).toBeLessThan(1e-5);
    const before = tf.memory().numTensors;
    opt.step(new Map([['model.embed_tokens.weight', grads[embed.name]!]]), g.lr);
    expect(tf.memory().numTensors).toBe(before); // the step allocates nothing that outlives it
    value.dispose();
    tf.dispose(grads);

    const lossAfter = tf.tidy(() => model.loss(ids, labels).dataSync()[0]!);
    let absSum = 0;
    for (const x of embed.dataSync()) absSum += Math.abs(x);
    console.log(`adamw_embed_only: loss ${lossBefore} → ${lossAfter} (torch ${g.loss_after}); sum abs ${absSum} (torch ${g.embed_abs_sum_after})`);
    expect(Math.abs(lossAfter - g.loss_after)).toBeLessThan(1e-5);
    expect(Math.abs(absSum - g.embed_abs_sum_after) / g.embed_abs_sum_after).toBeLessThan(1e-5);
    // and the step did move things (loss fell by ~0.34)
    expect(lossBefore - lossAfter).toBeGreaterThan(0.3);
    opt.dispose();
    ids.dispose();
    labels.dispose();
    model.dispose();
  });
});
