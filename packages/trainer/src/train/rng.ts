/**
 * Seeded pseudo-random numbers with a state that can be written to a checkpoint and restored, so a
 * resumed run draws exactly the numbers the uninterrupted run would have drawn.
 *
 * Generator: xoshiro128** (Blackman & Vigna), 4 × uint32 of state, seeded through splitmix32 so that
 * nearby seeds give unrelated streams. It is not torch's generator: a given --seed does not give the
 * same data order as PyTorch, only the same order on every run of this trainer.
 */

export interface RngState {
  /** The four uint32 words of xoshiro128** state. */
  s: [number, number, number, number];
}

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Rng {
  private s: Uint32Array;

  private constructor(s: ArrayLike<number>) {
    this.s = Uint32Array.from(s);
    if (this.s.length !== 4 || this.s.every((w) => w === 0)) {
      throw new RangeError('Rng state must be four uint32 words, not all zero');
    }
  }

  /** A generator for `seed`; `streams` mixes extra integers in (e.g. the epoch) to derive sub-streams. */
  static fromSeed(seed: number, ...streams: number[]): Rng {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    let mixed = seed >>> 0;
    for (const extra of streams) mixed = (splitmix32(mixed ^ Math.imul(extra + 1, 0x27d4eb2d))() ^ extra) >>> 0;
    const next = splitmix32(mixed);
    return new Rng([next(), next(), next(), next()]);
  }

  static fromState(state: RngState): Rng {
    if (!state || !Array.isArray(state.s)) throw new TypeError('Rng state must look like {"s": [u32, u32, u32, u32]}');
    return new Rng(state.s);
  }

  state(): RngState {
    return { s: [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!] };
  }

  /** Next uint32. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new RangeError(`nextInt bound must be in 1..2^32, got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Uint32Array {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }
}

/**
 * The order in which an epoch visits the training examples. Derived from (seed, epoch) alone, so a
 * resumed run only needs the epoch number and the position within it — the same scheme as HF's
 * RandomSampler seeded per epoch.
 */
export function epochOrder(seed: number, epoch: number, length: number, shuffle = true): Uint32Array {
  if (!shuffle) return Uint32Array.from({ length }, (_, i) => i);
  return Rng.fromSeed(seed, epoch).permutation(length);
}
