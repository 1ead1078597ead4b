/**
 * The backend facts (src/backends/facts.ts): chosen once by initBackend, given to the model when it
 * is built, and read instead of the backend's name. What is checked:
 *
 *   - loading a model does not choose a backend: before initBackend it is a one-line ModelError;
 *   - initBackend returns the chosen backend's record, and a model loaded then carries it;
 *   - the facts decide the path, not the mathematics: the same model on the same backend (wasm) with
 *     `perHeadAttention` and `transposeFlagsFree` flipped gives the same loss and gradients, while the
 *     kernels it runs differ (tf.profile counts the matMuls: per-head attention runs one 2-D matMul pair
 *     per (sequence, head); with free transpose flags the forward runs no Transpose for x @ Wᵀ);
 *   - a backend without a facts file gets the generic record under its own name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { GENERIC_FACTS } from '../src/backends/facts.js';
import { dataParallelBackends, factsOf } from '../src/backends/registry.js';
import { WASM_FACTS } from '../src/backends/wasm/facts.js';
import { loadLlama } from '../src/model/io.js';
import { LlamaModel } from '../src/model/llama.js';
import { TINY_LLAMA } from './helpers.js';

describe('backend facts', () => {
  it('loadLlama before initBackend refuses in one line (loading does not choose a backend)', async () => {
    await expect(loadLlama(TINY_LLAMA)).rejects.toThrow(
      /^loading .*tiny-llama: no backend chosen yet; call initBackend\(\) \(e\.g\. initBackend\('auto'\)\) first$/,
    );
  });

  it('initBackend returns the chosen backend with its facts; a model loaded then is built with them', async () => {
    const info = await initBackend('wasm');
    expect(info.facts).toBe(WASM_FACTS);
    expect(info.facts).toMatchObject({
      perHeadAttention: true,
      transposeFlagsFree: false,
      frozenHeadBlockRows: 8192,
      heapTensors: true,
      threads: { dataParallel: true },
    });
    const model = await loadLlama(TINY_LLAMA);
    expect(model.facts).toBe(WASM_FACTS);
    model.dispose();
  });

  it('the names --threads applies to and an unknown backend come from the records', () => {
    expect(dataParallelBackends()).toEqual(['wasm', 'cpu']);
    expect(factsOf('native')).toMatchObject({ transposeFlagsFree: true, headChunk: { max: 1024 }, threads: { dataParallel: false } });
    expect(factsOf('webgpu')).toMatchObject({ addNFanIn: 7, syncReads: false });
    expect(factsOf('webgl')).toEqual({ ...GENERIC_FACTS, name: 'webgl', threads: { dataParallel: false, why: 'the webgl backend already uses every core' } });
    expect(factsOf(undefined)).toBe(GENERIC_FACTS);
  });

  it('flipping perHeadAttention / transposeFlagsFree changes the kernels run, not the loss or the gradients', async () => {
    await initBackend('wasm');
    const base = await loadLlama(TINY_LLAMA);
    const weights = base.exportWeights();
    const config = base.config;
    base.dispose();
    const ids = tf.tensor2d(
      Array.from({ length: 2 * 12 }, (_, i) => (i * 37 + 5) % config.vocabSize),
      [2, 12],
      'int32',
    );
    const run = async (facts: typeof WASM_FACTS) => {
      const model = new LlamaModel(config, weights, facts);
      let loss = 0;
      let grads: Float32Array[] = [];
      const profile = await tf.profile(async () => {
        const { value, grads: g } = tf.variableGrads(() => model.loss(ids, ids));
        loss = (await value.data())[0]!;
        grads = await Promise.all(Object.values(g).map(async (t) => Float32Array.from((await t.data()) as Float32Array)));
        tf.dispose([value, ...Object.values(g)]);
      });
      // (counted at once: tf.profile hands back one profile object, which its next call starts over)
      const matMuls = profile.kernels.filter((k) => k.name === 'BatchMatMul').length;
      // the forward alone (logits): where x @ Wᵀ takes a Transpose
      const forward = await tf.profile(() => tf.dispose(model.logits(ids)));
      const forwardTransposes = forward.kernels.filter((k) => k.name === 'Transpose').length;
      model.dispose();
      return { loss, grads, matMuls, forwardTransposes };
    };
    const perHead = await run(WASM_FACTS);
    const batched = await run({ ...WASM_FACTS, perHeadAttention: false });
    const flags = await run({ ...WASM_FACTS, transposeFlagsFree: true });
    const heads = config.numAttentionHeads * 2; // (sequence, head) pairs
    // forward: q·kᵀ and P·v per pair instead of once per layer; the backward doubles each
    expect(perHead.matMuls - batched.matMuls).toBe(config.numHiddenLayers * (heads - 1) * 2 * 3);
    // free transpose flags: no Transpose for the 7 projections of every layer and the LM head
    expect(perHead.forwardTransposes - flags.forwardTransposes).toBe(7 * config.numHiddenLayers + 1);
    for (const other of [batched, flags]) {
      expect(Math.abs(other.loss - perHead.loss)).toBeLessThan(1e-5);
      other.grads.forEach((g, i) => {
        const ref = perHead.grads[i]!;
        let diff = 0;
        let norm = 0;
        for (let j = 0; j < g.length; j++) {
          diff = Math.max(diff, Math.abs(g[j]! - ref[j]!));
          norm = Math.max(norm, Math.abs(ref[j]!));
        }
        expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(norm, 1e-3));
      });
    }
    ids.dispose();
  });
});
