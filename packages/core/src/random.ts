/**
 * Seeded pseudo-random numbers: the two generators the packages use, in one place.
 *
 * - mulberry32 (Tommy Ettinger): one uint32 of state, tiny and fast. Used where a stream only has to
 *   be reproducible: LoRA weight init, LoRA dropout masks, sampling during generation, embedding
 *   rows of a resized vocabulary, the tokenizer trainer's sentence sample, the crawler's prompts.
 *   `Mulberry32` adds Box–Muller normals and a 31-bit integer (e.g. to seed tf.dropout).
 * - xoshiro128** (Blackman & Vigna), seeded through splitmix32 so that nearby seeds give unrelated
 *   streams: four uint32 of state that can be saved and restored (a resumed training run draws
 *   exactly what the uninterrupted run would have drawn). Used for the training data order and the
 *   dropout seeds, and for the data tools' mixing and shuffling.
 *
 * Neither is torch's or Python's generator: a seed gives the same numbers on every run of these
 * tools, not the same numbers as PyTorch. Changing any arithmetic here changes every seeded output
 * of the project (data order, mixes, initial weights); the tests pin the first values of each stream.
 */

/** FNV-1a over UTF-16 code units: a stable 32-bit hash, e.g. to turn a string into a seed. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** splitmix32: a uint32 stream from a uint32 seed; used to fill xoshiro's state. */
export function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** mulberry32 seeded with `seed >>> 0`: uniform floats in [0, 1) with 32 random bits. */
export function mulberry32(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.next();
}

/** mulberry32 as an object, with normals (Box–Muller, the spare kept) and 31-bit integers. */
export class Mulberry32 {
  private state: number;
  private spareNormal: number | undefined;

  /** State = `seed >>> 0` (the plain mulberry32 seeding). */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /**
   * The trainer's seeding: floor(seed) XOR 0x9e3779b9, so seed 0 does not start from state 0. Kept
   * because saved models and golden tests depend on it.
   */
  static scrambled(seed: number): Mulberry32 {
    return new Mulberry32((Math.floor(seed) ^ 0x9e3779b9) >>> 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const s = this.spareNormal;
      this.spareNormal = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A 31-bit integer, e.g. to seed tf.dropout. */
  int(): number {
    return Math.floor(this.next() * 0x7fffffff);
  }
}

/** The saved form of a `Xoshiro128` generator. */
export interface RngState {
  /** The four uint32 words of xoshiro128** state. */
  s: [number, number, number, number];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * xoshiro128** with a saveable state. Two families of draws, each kept bit-identical to the code it
 * replaced:
 * - `nextFloat` (32 bits) / `nextInt` (rejection sampling, no modulo bias) / `permutation`: the
 *   trainer's data order and dropout seeds;
 * - `nextDouble` (53 bits) / `uniformInt` (floor(nextDouble() · n)) / `shuffle` / `sample`: the data
 *   tools' mixing, shuffling and instruction variation.
 */
export class Xoshiro128 {
  private s: Uint32Array;

  private constructor(s: ArrayLike<number>) {
    this.s = Uint32Array.from(s);
    if (this.s.length !== 4 || this.s.every((w) => w === 0)) {
      throw new RangeError('Rng state must be four uint32 words, not all zero');
    }
  }

  /**
   * A generator for `seed` (an integer, or a string hashed with FNV-1a); `streams` mixes extra integers
   * in (e.g. the epoch) to derive independent sub-streams.
   */
  static fromSeed(seed: number | string, ...streams: number[]): Xoshiro128 {
    if (typeof seed === 'number' && !Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    let mixed = typeof seed === 'string' ? hashString(seed) : seed >>> 0;
    for (const extra of streams) mixed = (splitmix32(mixed ^ Math.imul(extra + 1, 0x27d4eb2d))() ^ extra) >>> 0;
    const next = splitmix32(mixed);
    return new Xoshiro128([next(), next(), next(), next()]);
  }

  static fromState(state: RngState): Xoshiro128 {
    if (!state || !Array.isArray(state.s)) throw new TypeError('Rng state must look like {"s": [u32, u32, u32, u32]}');
    return new Xoshiro128(state.s);
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

  /** Uniform float in [0, 1) with 32 bits of randomness (one draw). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform float in [0, 1) with 53 bits of randomness (two draws). */
  nextDouble(): number {
    return ((this.nextUint32() >>> 5) * 67108864 + (this.nextUint32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias (rejection sampling on uint32 draws). */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new RangeError(`nextInt bound must be in 1..2^32, got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A random permutation of 0..n-1 (Fisher–Yates with `nextInt`). */
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

  /** Integer in [0, n) as floor(nextDouble() · n). */
  uniformInt(n: number): number {
    return Math.floor(this.nextDouble() * n);
  }

  /** In-place Fisher–Yates shuffle with `uniformInt`. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.uniformInt(i + 1);
      const tmp = a[i]!;
      a[i] = a[j]!;
      a[j] = tmp;
    }
    return a;
  }

  /** `k` distinct indices of [0, n), in random order (partial Fisher–Yates; O(k) extra memory via a map). */
  sample(n: number, k: number): number[] {
    const swapped = new Map<number, number>();
    const out: number[] = [];
    for (let i = 0; i < Math.min(k, n); i++) {
      const j = i + this.uniformInt(n - i);
      const vj = swapped.get(j) ?? j;
      swapped.set(j, swapped.get(i) ?? i);
      out.push(vj);
    }
    return out;
  }
}
