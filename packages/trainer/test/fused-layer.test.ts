/**
 * The native backend's fused decoder layer (src/model/fused-layer.ts → src/backends/native/kernels/CllamaDecoderLayer.ts)
 * against its definition, the op chain in llama.ts (`model.fusedLayers = false`), both on `native`:
 * loss, logits and every gradient, for full fine-tuning and LoRA (with and without dropout, on some or
 * all projections), multi-head, grouped-query and multi-query attention, a padding mask, and with
 * gradient checkpointing on and off; plus the dropout masks against tf.dropout bit for bit. Skipped,
 * saying so, where onnxruntime-node is not installed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createLlamaConfig } from '@cllama/lora';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { LlamaModel } from '../src/model/llama.js';
import { dropoutKeepMask, dropoutKeepMasks, leastKeptDraw } from '../src/backends/native/dropout-mask.js';
import { loadOrt } from '../src/backends/native/ort.js';

const ort = await loadOrt({ env: {} });
if (!ort.ok) console.warn(`fused-layer: skipped, ${ort.reason}`);
else ort.runtime.dispose();

describe('LoRA dropout masks (src/backends/native/dropout-mask.ts)', () => {
  it('equal tf.dropout(x, rate, undefined, seed) bit for bit: same kept elements, same multiplier', async () => {
    await initBackend('cpu');
    for (const [seed, rate, n] of [
      [0, 0.05, 1000],
      [123456789, 0.3, 4097],
      [-2147483648, 0.5, 257],
      [42, 0.1, 40000],
    ] as const) {
      const dropped = tf.tidy(() => tf.dropout(tf.ones([n]), rate, undefined, seed).dataSync() as Float32Array);
      const mask = dropoutKeepMask(seed, rate, n);
      const multiplier = Math.fround(1 / Math.fround(1 - rate));
      let kept = 0;
      for (let i = 0; i < n; i++) {
        expect(dropped[i], `seed ${seed} element ${i}`).toBe(mask[i] ? multiplier : 0);
        kept += mask[i]!;
      }
      expect(Math.abs(kept / n - (1 - rate))).toBeLessThan(0.05);
    }
  });

  it('the keep test draw ≥ leastKeptDraw(rate) is float32(float32(draw) + keep) ≥ 1 for every float64 draw near the boundary', () => {
    const d = new Float64Array(1);
    const bits = new BigUint64Array(d.buffer);
    // 0.3: the boundary midpoint ties downwards (an odd float32 above it); 0.05, 0.1: upwards
    for (const rate of [0.01, 0.05, 0.1, 0.123, 0.3, 0.5, 0.9]) {
      const keep = Math.fround(1 - rate);
      const least = leastKeptDraw(rate);
      d[0] = least;
      const base = bits[0]!;
      let mismatches = 0;
      // float64 neighbours of the threshold, then float64s a float32 ulp or so apart
      for (let k = -3000; k <= 3000; k++) {
        bits[0] = base + BigInt(k);
        for (const draw of [d[0]!, least + k * 2 ** -36]) if (Math.fround(Math.fround(draw) + keep) >= 1 !== draw >= least) mismatches++;
      }
      expect(mismatches, `rate ${rate}`).toBe(0);
    }
  });

  it('drawn several streams at once (interleaved), each is the mask its seed alone gives', () => {
    for (const count of [1, 2, 3, 4, 5, 7, 9]) {
      const seeds = Array.from({ length: count }, (_, i) => 1000003 * i - 77);
      const lengths = seeds.map((_, i) => 500 + ((i * 337) % 700)); // unequal: the groups' tails run alone
      const together = dropoutKeepMasks(seeds, 0.2, lengths);
      seeds.forEach((seed, i) => expect(together[i], `${count} streams, stream ${i}`).toEqual(dropoutKeepMask(seed, 0.2, lengths[i]!)));
    }
  });
});

type Grads = Map<string, Float32Array>;

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

describe.skipIf(!ort.ok).each([
  ['multi-head', 4],
  ['grouped-query', 2],
  ['multi-query', 1],
])('fused decoder layer against the op chain on native (%s attention)', (_name, kvHeads) => {
  let model: LlamaModel;
  const ids = [
    [1, 5, 9, 3, 7, 11],
    [4, 8, 15, 16, 23, 42],
  ];
  // the second row is left-padded: its first two positions are masked out
  const attention = [
    [1, 1, 1, 1, 1, 1],
    [0, 0, 1, 1, 1, 1],
  ];

  beforeAll(async () => {
    await initBackend('native');
    const config = createLlamaConfig({
      hiddenSize: 32,
      intermediateSize: 40,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: kvHeads,
      vocabSize: 50,
      maxPositionEmbeddings: 64,
    });
    model = LlamaModel.random(config, 7);
    // norms away from 1, so their gradients and their use in the forward are tested
    for (const [name, v] of model.namedVariables((n) => n.includes('layernorm'))) {
      tf.tidy(() => v.assign(tf.add(1, tf.randomNormal(v.shape, 0, 0.2, 'float32', name.length))));
    }
  });
  afterAll(() => model.dispose());

  /** Loss and gradients of one training pass (dropout on), fused or through the op chain. */
  function pass(fused: boolean, checkpointing: boolean): { loss: number; grads: Grads } {
    model.fusedLayers = fused;
    model.gradientCheckpointing = checkpointing;
    model.train(true);
    model.reseedDropout(11);
    const out: Grads = new Map();
    let loss = Number.NaN;
    try {
      tf.tidy(() => {
        const x = tf.tensor2d(ids, undefined, 'int32');
        const mask = tf.tensor2d(attention, undefined, 'int32');
        const { value, grads } = tf.variableGrads(() => model.loss(x, x, { attentionMask: mask }));
        for (const [name, g] of Object.entries(grads)) out.set(name, Float32Array.from(g.dataSync() as Float32Array));
        loss = value.dataSync()[0]!;
      });
      return { loss, grads: out };
    } finally {
      model.fusedLayers = true;
      model.gradientCheckpointing = false;
      model.train(false);
    }
  }

  function expectSame(chain: { loss: number; grads: Grads }, fused: { loss: number; grads: Grads }, label: string): void {
    expect(Math.abs(fused.loss - chain.loss) / chain.loss, `${label}: loss`).toBeLessThan(1e-6);
    expect([...fused.grads.keys()].sort(), `${label}: the same gradients`).toEqual([...chain.grads.keys()].sort());
    for (const [name, g] of chain.grads) expect(relL2(g, fused.grads.get(name)!), `${label}: ${name}`).toBeLessThan(1e-5);
  }

  it('full fine-tune: loss and every weight gradient, with and without checkpointing; no tensor leaks', () => {
    const before = tf.memory().numTensors;
    const chain = pass(false, false);
    expect(chain.grads.size).toBe(model.namedVariables().size);
    expectSame(chain, pass(true, false), 'fused');
    expectSame(chain, pass(true, true), 'fused, checkpointing');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('LoRA with dropout (some projections, then all): the same masks, loss and LoRA gradients; frozen weights get none', () => {
    for (const targetModules of [
      ['q_proj', 'v_proj', 'gate_proj', 'down_proj'],
      ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    ]) {
      for (const dropout of [0, 0.3]) {
        model.attachLora({ r: 4, loraAlpha: 8, loraDropout: dropout, targetModules }, undefined, 3);
        try {
          // lora_B starts at zero (no gradient reaches A): give it values
          for (const [name, v] of model.namedVariables((n) => n.includes('.lora_B.'))) {
            tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', name.length)));
          }
          const lora = new Set(model.namedVariables((n) => n.includes('.lora_')).keys());
          model.setTrainable((n) => lora.has(n));
          const label = `${targetModules.length} projections, dropout ${dropout}`;
          const chain = pass(false, false);
          expect(chain.grads.size).toBe(lora.size);
          expectSame(chain, pass(true, false), label);
          expectSame(chain, pass(true, true), `${label}, checkpointing`);
          if (dropout > 0) {
            // the masks matter: a pass with dropout off differs
            model.train(false);
            const x = tf.tensor2d(ids, undefined, 'int32');
            const noDropout = tf.tidy(() => model.loss(x, x).dataSync()[0]!);
            x.dispose();
            expect(Math.abs(noDropout - chain.loss)).toBeGreaterThan(1e-4);
          }
        } finally {
          model.detachLora();
          model.setTrainable(() => true);
        }
      }
    }
  });

  it('inference (no tape): the logits equal the chain, and nothing is kept', () => {
    const x = tf.tensor2d(ids, undefined, 'int32');
    const mask = tf.tensor2d(attention, undefined, 'int32');
    const before = tf.memory().numTensors;
    model.fusedLayers = false;
    const chain = tf.tidy(() => model.logits(x, { attentionMask: mask }).dataSync() as Float32Array);
    model.fusedLayers = true;
    const fused = tf.tidy(() => model.logits(x, { attentionMask: mask }).dataSync() as Float32Array);
    expect(tf.memory().numTensors).toBe(before);
    expect(relL2(chain, fused)).toBeLessThan(1e-6);
    tf.dispose([x, mask]);
  });
});
