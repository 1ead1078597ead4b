/**
 * Seeded pseudo-random numbers. Every prompt is generated from (seed, request index), so a run is
 * reproducible and a resumed run does not repeat the prompts it already sent. The generator
 * (mulberry32) and the hash (FNV-1a) come from @cllama/core.
 */

import { hashString, mulberry32 } from '@cllama/core';

/** The random source for request number `index` of a run seeded with `seed`. */
export function requestRng(seed: number, index: number): () => number {
  return mulberry32(hashString(`${seed}:${index}`));
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
