import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const tinyLlamaDir = path.join(repoRoot, 'test-fixtures/tiny-llama');
export const tinyLoraDir = path.join(tinyLlamaDir, 'lora');

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(tag = 'lora-test'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `${tag}-`));
}

/** Deterministic PRNG (mulberry32) for fuzzing and test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomFloats(n: number, next: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}
