// The first values of every stream are pinned: they are the numbers the packages drew before the
// generators moved here (data order, mixes, LoRA init, dropout, prompts), so any change is a
// behaviour change of the whole project.
import { describe, expect, it } from 'vitest';
import { hashString, Mulberry32, mulberry32, Xoshiro128 } from '../src/index.js';

describe('mulberry32', () => {
  it('keeps its stream', () => {
    const g = mulberry32(42);
    expect([g(), g(), g()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  });
  it('the scrambled seeding keeps its stream, with normals and 31-bit integers', () => {
    const g = Mulberry32.scrambled(7);
    expect([g.next(), g.normal(), g.int()]).toEqual([0.9823943767696619, -0.5515358851833668, 271681199]);
  });
  it('normals have mean 0 and variance 1', () => {
    const g = new Mulberry32(1);
    let s = 0;
    let s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = g.normal();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.03);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.03);
  });
});

describe('xoshiro128**', () => {
  it('keeps its streams (trainer draws and data-tool draws)', () => {
    const x = Xoshiro128.fromSeed(42);
    expect([x.nextUint32(), x.nextFloat(), x.nextInt(10)]).toEqual([2837322924, 0.12688010395504534, 2]);
    expect(Xoshiro128.fromSeed(42, 1).state()).toEqual({ s: [4138512488, 1939001209, 3321932685, 4070353634] });
    const d = Xoshiro128.fromSeed('42:shuffle');
    expect([d.nextDouble(), d.uniformInt(100)]).toEqual([0.2964782130707443, 99]);
    expect(Array.from(Xoshiro128.fromSeed(3, 0).permutation(8))).toEqual([7, 2, 1, 6, 4, 3, 5, 0]);
  });
  it('a restored state continues the same stream', () => {
    const a = Xoshiro128.fromSeed(9);
    a.nextUint32();
    const b = Xoshiro128.fromState(a.state());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(Array.from({ length: 5 }, () => a.nextUint32()));
  });
  it('refuses bad seeds and states', () => {
    expect(() => Xoshiro128.fromSeed(1.5)).toThrow(RangeError);
    expect(() => Xoshiro128.fromState({ s: [0, 0, 0, 0] })).toThrow(RangeError);
  });
  it('shuffle and sample are permutations / distinct picks', () => {
    const x = Xoshiro128.fromSeed(5);
    expect(x.shuffle([...Array(20).keys()]).sort((p, q) => p - q)).toEqual([...Array(20).keys()]);
    const picks = x.sample(50, 10);
    expect(new Set(picks).size).toBe(10);
    expect(picks.every((p) => p >= 0 && p < 50)).toBe(true);
    expect(x.sample(3, 10)).toHaveLength(3);
  });
  it('hashString is FNV-1a', () => {
    expect(hashString('')).toBe(0x811c9dc5);
    expect(hashString('cllama')).toBe(2178282823);
  });
});
