/**
 * Seeded pseudo-random numbers. Every prompt is generated from (seed, request index), so a run is
 * reproducible and a resumed run does not repeat the prompts it already sent.
 */

/** 32-bit string/number hash (FNV-1a) used to derive per-request seeds. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: small, fast, good enough for sampling prompt ingredients. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The random source for request number `index` of a run seeded with `seed`. */
export function requestRng(seed: number, index: number): () => number {
  return mulberry32(hash32(`${seed}:${index}`));
}

/** Integer uniformly in [lo, hi] (both inclusive), like Python's random.randint. */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** k distinct elements in random order (partial Fisher–Yates), like Python's random.sample. */
export function sample<T>(rng: () => number, items: readonly T[], k: number): T[] {
  if (k > items.length) throw new RangeError(`cannot sample ${k} of ${items.length} items`);
  const pool = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k);
}
