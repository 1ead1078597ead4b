/**
 * LoRA in the forward pass: PEFT adapter parity with PyTorch (golden.json "lora"), unmerged and merged,
 * on every backend of MODEL_TEST_BACKENDS; training mode and export on wasm.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writePeftAdapter, type LoraConfig } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLlama } from '../src/model/io.js';
import type { LlamaModel } from '../src/model/llama.js';
import { attachLoraFromDir } from '../src/model/adapter.js';
import { MODEL_TEST_BACKENDS, relErr, row, sums, TINY_LLAMA, useBackend, values } from './helpers.js';

const golden = JSON.parse(readFileSync(path.join(TINY_LLAMA, 'golden.json'), 'utf8')) as {
  input_ids: number[][];
  labels: number[][];
  lora: { logits_abs_sum: number; logits_last_row: number[]; merged_q_proj_0_abs_sum: number };
};

async function logitsOf(model: LlamaModel, ids: tf.Tensor2D): Promise<Float32Array> {
  const t = model.logits(ids);
  const d = await values(t);
  t.dispose();
  return d;
}

const CONFIG: LoraConfig = {
  r: 4,
  loraAlpha: 8,
  loraDropout: 0.3,
  targetModules: ['q_proj', 'v_proj', 'down_proj'],
  modulesToSave: ['embed_tokens', 'lm_head'],
  bias: 'none',
  fanInFanOut: false,
};

describe.each(MODEL_TEST_BACKENDS)('LoRA parity on tiny-llama (%s)', (backend) => {
  let model: LlamaModel;
  let ids: tf.Tensor2D;
  let labels: tf.Tensor2D;
  let tmp: string;

  beforeAll(async () => {
    await useBackend(backend);
    model = await loadLlama(TINY_LLAMA);
    ids = tf.tensor2d(golden.input_ids, undefined, 'int32');
    labels = tf.tensor2d(golden.labels, undefined, 'int32');
    tmp = mkdtempSync(path.join(tmpdir(), 'cllama-lora-'));
  });
  afterAll(() => {
    model.dispose();
    tf.dispose([ids, labels]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the PEFT adapter, unmerged, gives PyTorch+PEFT logits within 1e-4; merged equals unmerged within 1e-4', async () => {
    const base = await logitsOf(model, ids);
    await attachLoraFromDir(model, path.join(TINY_LLAMA, 'lora'));
    const t = model.logits(ids);
    const vocab = model.config.vocabSize;
    expect(relErr((await sums(t)).absSum, golden.lora.logits_abs_sum)).toBeLessThan(1e-4);
    const unmerged = await values(t);
    t.dispose();
    const last = row(unmerged, ids.shape[0] * ids.shape[1] - 1, vocab, 16);
    last.forEach((x, j) => expect(Math.abs(x - golden.lora.logits_last_row[j]!)).toBeLessThanOrEqual(1e-4 * Math.abs(golden.lora.logits_last_row[j]!) + 1e-6));

    model.mergeLora();
    expect(model.loraAttached).toBe(false);
    const merged = await logitsOf(model, ids);
    let maxDiff = 0;
    for (let i = 0; i < merged.length; i++) maxDiff = Math.max(maxDiff, Math.abs(merged[i]! - unmerged[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
    const q0 = (await model.readWeight('model.layers.0.self_attn.q_proj.weight')).data.reduce((a, x) => a + Math.abs(x), 0);
    expect(relErr(q0, golden.lora.merged_q_proj_0_abs_sum)).toBeLessThan(1e-4);
    // The adapter really changed the model.
    expect(Math.abs((await sums(tf.tensor(merged))).absSum - (await sums(tf.tensor(base))).absSum)).toBeGreaterThan(1);
    model.dispose();
    model = await loadLlama(TINY_LLAMA);
  });
});

describe('LoRA on tiny-llama (wasm)', () => {
  let model: LlamaModel;
  let ids: tf.Tensor2D;
  let labels: tf.Tensor2D;
  let tmp: string;

  beforeAll(async () => {
    await useBackend('wasm');
    model = await loadLlama(TINY_LLAMA);
    ids = tf.tensor2d(golden.input_ids, undefined, 'int32');
    labels = tf.tensor2d(golden.labels, undefined, 'int32');
    tmp = mkdtempSync(path.join(tmpdir(), 'cllama-lora-'));
  });
  afterAll(() => {
    model.dispose();
    tf.dispose([ids, labels]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a fresh adapter starts at the base model, trains only where asked, and drops out only in training mode', async () => {
    const base = await logitsOf(model, ids);
    model.attachLora(CONFIG, undefined, 5);
    expect(await logitsOf(model, ids)).toEqual(base); // B = 0
    const loraVars = model.variables((n) => n.includes('.lora_'));
    expect(loraVars).toHaveLength(2 * 3 * model.config.numHiddenLayers);

    // B is zero, so move it to make the branch matter, then check gradients reach A and B.
    for (const v of model.variables((n) => n.endsWith('lora_B.weight'))) v.assign(tf.fill(v.shape, 0.01));
    const { value, grads } = tf.variableGrads(() => model.loss(ids, labels), loraVars);
    expect(Object.keys(grads)).toHaveLength(loraVars.length);
    for (const g of Object.values(grads)) expect((await sums(g)).absSum).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);

    const evalLoss = () => {
      const l = model.loss(ids, labels);
      const x = l.dataSync()[0]!;
      l.dispose();
      return x;
    };
    const e1 = evalLoss();
    expect(evalLoss()).toBe(e1);
    model.train();
    const t1 = evalLoss();
    const t2 = evalLoss();
    model.eval();
    expect(t1).not.toBe(e1);
    expect(t2).not.toBe(t1); // a new dropout mask each call
    model.train();
    model.reseedDropout(42);
    const r1 = evalLoss();
    model.reseedDropout(42);
    expect(evalLoss()).toBe(r1); // same seed, same masks
    expect(r1).not.toBe(e1);
    model.eval();
    expect(evalLoss()).toBe(e1);
  });

  it('exportLora → writePeftAdapter → attachLoraFromDir reproduces the logits', async () => {
    const before = await logitsOf(model, ids);
    const dir = path.join(tmp, 'adapter');
    await writePeftAdapter(dir, CONFIG, model.exportLora());
    const other = await loadLlama(TINY_LLAMA);
    await attachLoraFromDir(other, dir);
    expect(await logitsOf(other, ids)).toEqual(before);
    other.dispose();
    model.detachLora();
  });
});
