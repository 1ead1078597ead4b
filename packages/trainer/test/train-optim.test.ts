import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, defaultDecayFor } from '../src/train/adamw.js';
import { GradientAccumulator, clipByGlobalNorm, clipFactor } from '../src/train/gradients.js';
import { LrSchedule, warmupStepsFor } from '../src/train/schedule.js';
import { Xoshiro128 as Rng } from '@cllama/core';
import { epochOrder } from '../src/train/data.js';

const fixture = JSON.parse(readFileSync(resolve(__dirname, '../../../test-fixtures/train/torch_optim.json'), 'utf8'));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

describe('AdamW', () => {
  it('matches torch.optim.AdamW step by step (decay / no-decay groups, changing lr)', () => {
    const f = fixture.adamw;
    const a = tf.variable(tf.tensor(f.init.a, f.shapes.a));
    const b = tf.variable(tf.tensor(f.init.b, f.shapes.b));
    const opt = new AdamW(
      [
        { name: 'a', variable: a, weightDecay: f.weight_decay.a },
        { name: 'b', variable: b, weightDecay: f.weight_decay.b },
      ],
      { betas: f.betas, eps: f.eps },
    );
    const before = tf.memory().numTensors;
    for (let s = 0; s < f.lrs.length; s++) {
      const grads = new Map([
        ['a', tf.tensor(f.grads[s].a, f.shapes.a)],
        ['b', tf.tensor(f.grads[s].b, f.shapes.b)],
      ]);
      opt.step(grads, f.lrs[s]);
      for (const g of grads.values()) g.dispose();
      expect(maxAbsDiff(a.dataSync(), f.after[s].a)).toBeLessThan(2e-6);
      expect(maxAbsDiff(b.dataSync(), f.after[s].b)).toBeLessThan(2e-6);
      expect(tf.memory().numTensors).toBe(before);
    }
    // the weights really moved (the comparison above is not vacuous)
    expect(maxAbsDiff(a.dataSync(), f.init.a)).toBeGreaterThan(1e-3);
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  it('round-trips its state: a restored optimizer continues exactly like the original', async () => {
    const mk = () => tf.variable(tf.tensor([1, -2, 3, 0.5], [2, 2]));
    const p1 = mk();
    const o1 = new AdamW([{ name: 'w', variable: p1 }], { weightDecay: 0.01 });
    const g = (k: number) => new Map([['w', tf.tensor([0.1 * k, -0.3, 0.2, k], [2, 2])]]);
    o1.step(g(1), 0.1);
    const state = await o1.exportState();
    expect(state.step).toBe(1);
    const p2 = tf.variable(tf.tensor(p1.dataSync(), [2, 2]));
    const o2 = new AdamW([{ name: 'w', variable: p2 }], { weightDecay: 0.01 });
    o2.loadState(state);
    o1.step(g(2), 0.05);
    o2.step(g(2), 0.05);
    expect(Array.from(p2.dataSync())).toEqual(Array.from(p1.dataSync()));
    expect(() => new AdamW([{ name: 'other', variable: mk() }]).loadState(state)).toThrow(/no exp_avg for 'other'/);
  });

  it('skips weight decay for norms and biases like HF Trainer', () => {
    expect(defaultDecayFor('model.layers.0.input_layernorm.weight', 0.01)).toBe(0);
    expect(defaultDecayFor('model.norm.weight', 0.01)).toBe(0);
    expect(defaultDecayFor('model.layers.0.self_attn.q_proj.bias', 0.01)).toBe(0);
    expect(defaultDecayFor('model.embed_tokens.weight', 0.01)).toBe(0.01);
    expect(defaultDecayFor('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', 0.01)).toBe(0.01);
  });
});

describe('gradient clipping and accumulation', () => {
  it('clipByGlobalNorm matches torch.nn.utils.clip_grad_norm_', async () => {
    const c = fixture.clip;
    const grads = new Map([
      ['a', tf.tensor(c.grads.a)],
      ['b', tf.tensor(c.grads.b)],
    ]);
    const { norm, grads: clipped } = await clipByGlobalNorm(grads, c.max_norm);
    expect(Math.abs(norm - c.norm) / c.norm).toBeLessThan(1e-6);
    expect(maxAbsDiff(clipped.get('a')!.dataSync(), c.clipped.a)).toBeLessThan(1e-7);
    expect(maxAbsDiff(clipped.get('b')!.dataSync(), c.clipped.b)).toBeLessThan(1e-7);
    for (const t of clipped.values()) t.dispose();
  });

  it("clipFactor is clip_grad_norm_'s factor, and AdamW given it updates exactly as from the clipped gradients", async () => {
    const c = fixture.clip;
    const grads = () =>
      new Map([
        ['a', tf.tensor(c.grads.a)],
        ['b', tf.tensor(c.grads.b)],
      ]);
    const { norm, factor } = await clipFactor(grads(), c.max_norm);
    expect(Math.abs(norm - c.norm) / c.norm).toBeLessThan(1e-6);
    expect(factor).toBeCloseTo(c.max_norm / (c.norm + 1e-6), 6);
    expect((await clipFactor(grads(), 1e9)).factor).toBe(1);
    expect((await clipFactor(grads(), 0)).factor).toBe(1); // max_grad_norm 0: no clipping
    const run = async (folded: boolean) => {
      const a = tf.variable(tf.mul(tf.tensor(c.grads.a), 0.5), true, `clip-a-${folded}`);
      const b = tf.variable(tf.mul(tf.tensor(c.grads.b), -2), true, `clip-b-${folded}`);
      const opt = new AdamW([
        { name: 'a', variable: a },
        { name: 'b', variable: b },
      ]);
      for (let step = 0; step < 2; step++) {
        if (folded) opt.step(grads(), 1e-2, factor);
        else opt.step((await clipByGlobalNorm(grads(), c.max_norm)).grads, 1e-2);
      }
      return [...a.dataSync(), ...b.dataSync(), ...(await opt.exportState()).tensors.flatMap((t) => [...t.data])];
    };
    expect(await run(true)).toEqual(await run(false));
  });

  it('leaves small gradients untouched and accumulates the mean without leaking', async () => {
    const before = tf.memory().numTensors;
    const acc = new GradientAccumulator();
    acc.add(new Map([['w', tf.tensor([0.1, 0.2])]]));
    acc.add(new Map([['w', tf.tensor([0.3, -0.2])]]));
    acc.add(new Map([['w', tf.tensor([0.2, 0.6])]]));
    expect(acc.count()).toBe(3);
    const { norm, grads } = await clipByGlobalNorm(acc.takeMean(), 1.0);
    expect(Array.from(grads.get('w')!.dataSync()).map((x) => +x.toFixed(6))).toEqual([0.2, 0.2]);
    expect(norm).toBeCloseTo(Math.SQRT2 * 0.2, 6);
    for (const t of grads.values()) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('learning-rate schedules (transformers.get_scheduler)', () => {
  it('warmup steps: explicit steps win, else ceil(ratio × total)', () => {
    expect(warmupStepsFor(1000, 0, 0.05)).toBe(50);
    expect(warmupStepsFor(101, 0, 0.03)).toBe(4); // ceil(3.03)
    expect(warmupStepsFor(1000, 7, 0.05)).toBe(7);
  });

  it('cosine with warmup', () => {
    const s = new LrSchedule({ type: 'cosine', baseLr: 2e-4, totalSteps: 110, warmupSteps: 10 });
    expect(s.lrAt(0)).toBe(0); // HF: the first warmed-up step runs at lr 0
    expect(s.lrAt(5)).toBeCloseTo(1e-4, 12);
    expect(s.lrAt(10)).toBeCloseTo(2e-4, 12);
    expect(s.lrAt(60)).toBeCloseTo(1e-4, 12); // half way through the decay: cos(π/2)
    expect(s.lrAt(35)).toBeCloseTo(2e-4 * 0.5 * (1 + Math.cos(Math.PI * 0.25)), 12);
    expect(s.lrAt(110)).toBeCloseTo(0, 12);
  });

  it('linear, constant and constant_with_warmup', () => {
    const lin = new LrSchedule({ type: 'linear', baseLr: 1, totalSteps: 20, warmupRatio: 0.1 });
    expect(lin.warmupSteps).toBe(2);
    expect([0, 1, 2, 11, 20].map((k) => lin.lrAt(k))).toEqual([0, 0.5, 1, 0.5, 0]);
    const c = new LrSchedule({ type: 'constant', baseLr: 3, totalSteps: 5, warmupSteps: 2 });
    expect([0, 4].map((k) => c.lrAt(k))).toEqual([3, 3]);
    const cw = new LrSchedule({ type: 'constant_with_warmup', baseLr: 3, totalSteps: 5, warmupSteps: 2 });
    expect([0, 1, 2, 4].map((k) => cw.lrAt(k))).toEqual([0, 1.5, 3, 3]);
    expect(() => new LrSchedule({ type: 'polynomial' as never, baseLr: 1, totalSteps: 2 })).toThrow(/use one of linear, cosine/);
  });
});

describe('seeded RNG', () => {
  it('is reproducible, restorable mid-stream, and seeds differ', () => {
    const r = Rng.fromSeed(42);
    const first = [r.nextUint32(), r.nextUint32()];
    const saved = JSON.parse(JSON.stringify(r.state()));
    const next = [r.nextUint32(), r.nextFloat()];
    const r2 = Rng.fromState(saved);
    expect([r2.nextUint32(), r2.nextFloat()]).toEqual(next);
    const again = Rng.fromSeed(42);
    expect([again.nextUint32(), again.nextUint32()]).toEqual(first);
    expect(Rng.fromSeed(43).nextUint32()).not.toBe(first[0]);
  });

  it('epoch orders are permutations, fixed per (seed, epoch), different across epochs', () => {
    const o = epochOrder(7, 0, 100);
    expect([...o].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(epochOrder(7, 0, 100))).toEqual(Array.from(o));
    expect(Array.from(epochOrder(7, 1, 100))).not.toEqual(Array.from(o));
    expect(Array.from(epochOrder(7, 0, 5, false))).toEqual([0, 1, 2, 3, 4]);
    // roughly uniform: every value lands in the first half about half the time
    let firstHalf = 0;
    for (let e = 0; e < 200; e++) if (epochOrder(1, e, 10)[0]! < 5) firstHalf++;
    expect(firstHalf).toBeGreaterThan(70);
    expect(firstHalf).toBeLessThan(130);
  });
});
