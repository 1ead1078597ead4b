/**
 * Fused kernels a backend may provide for work the trainer otherwise writes as a chain of tfjs ops.
 * The chain stays the definition (src/train/adamw.ts); a fused kernel computes the same values in one
 * pass (to within float32 rounding). The native backend registers them (src/native/backend.ts); other
 * backends run the chain.
 */
import * as tf from '@tensorflow/tfjs-core';

/** AdamW's update of one parameter: inputs p, g, m, v; outputs p', m', v' (attrs below). */
export const ADAMW_KERNEL = 'CllamaAdamW';

export interface AdamWKernelAttrs {
  /** 1 − lr · weight decay (1 = no decay). */
  decayFactor: number;
  beta1: number;
  beta2: number;
  /** √(1 − β₂ᵗ). */
  bc2Sqrt: number;
  eps: number;
  /** lr / (1 − β₁ᵗ). */
  stepSize: number;
}

/** Softmax over the last axis of a 2-D x and its log-sum-exp: outputs probs [n, V] and lse [n, 1]. */
export const SOFTMAX_LSE_KERNEL = 'CllamaSoftmaxLogSumExp';

/** True when the active backend has a kernel registered under `name`. */
export function hasFusedKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * The AdamW update in one loop:
 *   p ← p·(1 − lr·wd)   m ← m + (g − m)(1 − β₁)   v ← v·β₂ + g²(1 − β₂)
 *   p ← p − m / (√v / √(1 − β₂ᵗ) + ε) · lr / (1 − β₁ᵗ)
 * computed in float64 and rounded to float32 once per stored value (the op chain rounds after every
 * operation: the two agree to within a few float32 ulps; rounding per operation here made the loop 2.5×
 * slower). The scalars are rounded to float32 first, as the chain's scalar tensors are.
 */
export function adamwUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  a: AdamWKernelAttrs,
  alloc: (length: number) => Float32Array = (length) => new Float32Array(length),
): { p: Float32Array; m: Float32Array; v: Float32Array } {
  const decay = Math.fround(a.decayFactor);
  const oneMinusB1 = Math.fround(1 - a.beta1);
  const b2 = Math.fround(a.beta2);
  const oneMinusB2 = Math.fround(1 - a.beta2);
  const bc2 = Math.fround(a.bc2Sqrt);
  const eps = Math.fround(a.eps);
  const step = Math.fround(a.stepSize);
  const n = p.length;
  const po = alloc(n);
  const mo = alloc(n);
  const vo = alloc(n);
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = m[i]! + (gi - m[i]!) * oneMinusB1;
    const vi = v[i]! * b2 + gi * gi * oneMinusB2;
    mo[i] = mi;
    vo[i] = vi;
    // the stored (float32) moments are what the next step and a checkpoint see
    po[i] = p[i]! * decay - (mo[i]! / (Math.sqrt(vo[i]!) / bc2 + eps)) * step;
  }
  return { p: po, m: mo, v: vo };
}
