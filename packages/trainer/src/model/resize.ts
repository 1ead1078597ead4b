/**
 * New embedding rows for a resized vocabulary, as transformers' `resize_token_embeddings` does by
 * default since v4.46 (`mean_resizing=True`, `_init_added_embeddings_weights_with_mean`):
 *   mean = mean of the old rows; cov = (old − mean)ᵀ(old − mean) / oldRows;
 *   if 1e-9·cov is positive definite (its Cholesky factorisation succeeds): rows ~ N(mean, 1e-9·cov)
 *   else: every new row = mean.
 * Shrinking keeps the first `newRows` rows. Computed in float64; the Cholesky factorisation is
 * O(width³) (about half a minute in JS for width 4096).
 */
import { Mulberry32 } from '@cllama/core';

export const MEAN_RESIZING_EPSILON = 1e-9;

/** Lower-triangular L with L Lᵀ = a (row-major, n×n), or undefined when a is not positive definite. */
export function cholesky(a: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j]!;
      for (let k = 0; k < j; k++) sum -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (!(sum > 0)) return undefined;
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / l[j * n + j]!;
      }
    }
  }
  return l;
}

export function resizedEmbeddingRows(old: Float32Array, oldRows: number, width: number, newRows: number, seed: number): Float32Array {
  const out = new Float32Array(newRows * width);
  out.set(old.subarray(0, Math.min(oldRows, newRows) * width));
  const added = newRows - oldRows;
  if (added <= 0) return out;

  const mean = new Float64Array(width);
  for (let r = 0; r < oldRows; r++) for (let j = 0; j < width; j++) mean[j]! += old[r * width + j]!;
  for (let j = 0; j < width; j++) mean[j]! /= oldRows;

  const cov = new Float64Array(width * width);
  const centered = new Float64Array(width);
  for (let r = 0; r < oldRows; r++) {
    for (let j = 0; j < width; j++) centered[j] = old[r * width + j]! - mean[j]!;
    for (let i = 0; i < width; i++) {
      const ci = centered[i]!;
      for (let j = 0; j <= i; j++) cov[i * width + j]! += ci * centered[j]!;
    }
  }
  for (let i = 0; i < width; i++) {
    for (let j = 0; j <= i; j++) {
      const c = (cov[i * width + j]! / oldRows) * MEAN_RESIZING_EPSILON;
      cov[i * width + j] = c;
      cov[j * width + i] = c;
    }
  }

  const factor = cholesky(cov, width);
  const rng = Mulberry32.scrambled(seed);
  const z = new Float64Array(width);
  for (let r = oldRows; r < newRows; r++) {
    if (factor) for (let j = 0; j < width; j++) z[j] = rng.normal();
    for (let i = 0; i < width; i++) {
      let value = mean[i]!;
      if (factor) for (let k = 0; k <= i; k++) value += factor[i * width + k]! * z[k]!;
      out[r * width + i] = value;
    }
  }
  return out;
}
