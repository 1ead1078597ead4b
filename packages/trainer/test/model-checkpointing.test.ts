/**
 * Gradient checkpointing (LlamaModel.gradientCheckpointing, model/checkpoint.ts): with the layers
 * recomputed in the backward pass the loss and every gradient equal those of the plain pass (PyTorch's
 * golden numbers; LoRA with dropout, whose masks must replay), on every backend of
 * PARITY_TEST_BACKENDS; the step keeps less memory, and nothing leaks.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadLlama } from '../src/model/io.js';
import type { LlamaModel } from '../src/model/llama.js';
import { l2, PARITY_TEST_BACKENDS, relErr, TINY_LLAMA, useBackend, values } from './helpers.js';

const golden = JSON.parse(readFileSync(path.join(TINY_LLAMA, 'golden.json'), 'utf8')) as {
  input_ids: number[][];
  labels: number[][];
  loss: number;
  grad_norms: Record<string, number>;
};

describe.each(PARITY_TEST_BACKENDS)('gradient checkpointing on tiny-llama (%s)', (backend) => {
  let model: LlamaModel;
  let ids: tf.Tensor2D;
  let labels: tf.Tensor2D;

  beforeAll(async () => {
    await useBackend(backend);
    model = await loadLlama(TINY_LLAMA);
    ids = tf.tensor2d(golden.input_ids, undefined, 'int32');
    labels = tf.tensor2d(golden.labels, undefined, 'int32');
  });
  afterAll(() => {
    model.dispose();
    tf.dispose([ids, labels]);
  });

  /** Loss and gradients (by variable name) of one pass, with or without checkpointing, in training mode. */
  async function pass(checkpointing: boolean, dropoutSeed = 5): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    model.train(true);
    model.gradientCheckpointing = checkpointing;
    model.reseedDropout(dropoutSeed);
    try {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, labels));
      const out = new Map<string, Float32Array>();
      for (const [name, g] of Object.entries(grads)) out.set(name, await values(g));
      const loss = (await values(value))[0]!;
      tf.dispose([value, ...Object.values(grads)]);
      return { loss, grads: out };
    } finally {
      model.gradientCheckpointing = false;
      model.train(false);
    }
  }

  it('full fine-tune: PyTorch loss within 1e-5 and every gradient norm within 1e-3 relative', async () => {
    const { loss, grads } = await pass(true);
    expect(Math.abs(loss - golden.loss)).toBeLessThan(1e-5);
    const named = model.namedVariables();
    expect(grads.size).toBe(named.size);
    for (const [name, variable] of named) {
      const g = grads.get(variable.name)!;
      expect(relErr(Math.sqrt(g.reduce((s, x) => s + x * x, 0)), golden.grad_norms[name]!), name).toBeLessThan(1e-3);
    }
  });

  it('LoRA with dropout: the same masks are replayed, so every gradient equals the plain pass (1e-5 relative)', async () => {
    model.attachLora({ r: 4, loraAlpha: 8, loraDropout: 0.3, targetModules: ['q_proj', 'v_proj', 'gate_proj', 'down_proj'] }, undefined, 3);
    try {
      // lora_B starts at zero (no gradient reaches A): give it values
      for (const [name, v] of model.namedVariables((n) => n.includes('.lora_B.'))) {
        tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', name.length)));
      }
      const lora = new Set(model.namedVariables((n) => n.includes('.lora_')).keys());
      model.setTrainable((n) => lora.has(n));
      const plain = await pass(false);
      const recomputed = await pass(true);
      const otherMasks = await pass(true, 6);
      expect(recomputed.grads.size).toBe(lora.size);
      expect(relErr(recomputed.loss, plain.loss)).toBeLessThan(1e-6);
      for (const [name, g] of plain.grads) {
        const r = recomputed.grads.get(name)!;
        const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
        expect(norm, name).toBeGreaterThan(0);
        let diff = 0;
        for (let i = 0; i < g.length; i++) diff += (g[i]! - r[i]!) ** 2;
        expect(Math.sqrt(diff) / norm, name).toBeLessThan(1e-5);
      }
      // a different dropout seed does change them: the comparison above is not vacuous
      expect(relErr(otherMasks.loss, plain.loss)).toBeGreaterThan(1e-6);
    } finally {
      model.detachLora();
      model.setTrainable(() => true);
    }
  });

  it('keeps fewer bytes at the peak of a training step, and leaks no tensor', async () => {
    if (backend === 'webgpu') return; // tf.profile's byte counts are per backend; the host backends suffice
    const peak = async (checkpointing: boolean) => {
      model.train(true);
      model.gradientCheckpointing = checkpointing;
      try {
        const info = await tf.profile(() => {
          const { value, grads } = tf.variableGrads(() => model.loss(ids, labels));
          tf.dispose([value, ...Object.values(grads)]);
        });
        return info.peakBytes;
      } finally {
        model.gradientCheckpointing = false;
        model.train(false);
      }
    };
    const plain = await peak(false);
    const recomputed = await peak(true);
    expect(recomputed).toBeLessThan(plain);
    const before = tf.memory().numTensors;
    await pass(true);
    await pass(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(await l2(tf.scalar(1))).toBe(1);
  });
});
