/**
 * CllamaAdamW (contract in src/kernel-names.ts) for the native backend: one parameter's AdamW update
 * in one pass over p, g, m, v (in WebAssembly SIMD, ../adamw-simd.ts, where the runtime has it; else
 * the JS loop adamwUpdate below).
 *
 * Reference: the op chain in src/train/adamw.ts (the definition, which every other backend runs;
 * test/native-backend.test.ts compares the two).
 *
 * In place over each of p, m and v that nothing but its variable can see (an array of the pool's, one
 * tensor, never read out: ../pool.ts `exclusive`; the moments start as the pool's zeros, kernels/
 * ZerosLike.ts, so they qualify from the first step): the optimizer state is then never reallocated,
 * where new arrays every step kept up to the pool's cap of freed ones on top of it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ADAMW_KERNEL, type AdamWKernelAttrs } from '../../../kernel-names.js';
import { f32, type CpuBackend, type NativeKernel } from '../kernel-util.js';
import { adamwSimd } from '../adamw-simd.js';
import type { ArrayPool } from '../pool.js';

/**
 * The AdamW update in one loop (the kernel runs ../adamw-simd.ts's SIMD version where WebAssembly SIMD
 * exists; this loop is its fallback), of the gradient g ← float32(gradScale · g) (the clipping factor; the
 * chain multiplies first, rounding to float32, and so does this loop):
 *   p ← p·(1 − lr·wd)   m ← m + (g − m)(1 − β₁)   v ← v·β₂ + g²(1 − β₂)
 *   p ← p − m / (√v / √(1 − β₂ᵗ) + ε) · lr / (1 − β₁ᵗ)
 * computed in float64 and rounded to float32 once per stored value (the op chain rounds after every
 * operation: the two agree to within a few float32 ulps; rounding per operation here made the loop 2.5×
 * slower). The scalars are rounded to float32 first, as the chain's scalar tensors are. In place, each
 * element is read before it is written.
 */
export function adamwUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  a: AdamWKernelAttrs,
  alloc: (length: number) => Float32Array = (length) => new Float32Array(length),
  /** Which of p', m', v' to write over p, m, v (the caller has made sure nothing else sees those). */
  inPlace: { p?: boolean; m?: boolean; v?: boolean } = {},
): { p: Float32Array; m: Float32Array; v: Float32Array } {
  const decay = Math.fround(a.decayFactor);
  const oneMinusB1 = Math.fround(1 - a.beta1);
  const b2 = Math.fround(a.beta2);
  const oneMinusB2 = Math.fround(1 - a.beta2);
  const bc2 = Math.fround(a.bc2Sqrt);
  const eps = Math.fround(a.eps);
  const step = Math.fround(a.stepSize);
  const stepBc2 = step * bc2;
  const epsBc2 = eps * bc2;
  const gs = Math.fround(a.gradScale ?? 1);
  const n = p.length;
  const po = inPlace.p ? p : alloc(n);
  const mo = inPlace.m ? m : alloc(n);
  const vo = inPlace.v ? v : alloc(n);
  for (let i = 0; i < n; i++) {
    const gi = Math.fround(g[i]! * gs);
    const mPrev = m[i]!;
    // the stored (float32) moments are what the next step and a checkpoint see
    const mi = Math.fround(mPrev + (gi - mPrev) * oneMinusB1);
    const vi = Math.fround(v[i]! * b2 + gi * gi * oneMinusB2);
    mo[i] = mi;
    vo[i] = vi;
    // m / (√v / bc2 + ε) · step = m · (step · bc2) / (√v + ε · bc2): one division fewer
    po[i] = p[i]! * decay - (mi * stepBc2) / (Math.sqrt(vi) + epsBc2);
  }
  return { p: po, m: mo, v: vo };
}

export const adamwKernel: NativeKernel = {
  kernelName: ADAMW_KERNEL,
  build:
    ({ alloc }) =>
    (args) => {
      const { p, g, m, v } = args.inputs;
      const backend = args.backend as CpuBackend & { pool: ArrayPool; refCount(dataId: object): number };
      const values = [p, g, m, v].map((t) => f32(backend, t!));
      if (values.some((x) => !x) || values.some((x) => x!.length !== values[0]!.length)) {
        throw new Error(`${ADAMW_KERNEL}: p, g, m and v must be float32 tensors of one shape`);
      }
      const [pv, gv, mv, vv] = values as [Float32Array, Float32Array, Float32Array, Float32Array];
      const distinct = new Set([pv, gv, mv, vv]).size === 4;
      const own = (t: tf.TensorInfo, a: Float32Array) => distinct && backend.refCount(t.dataId) === 1 && backend.pool.exclusive(a, t.dataId);
      const inPlace = { p: own(p!, pv), m: own(m!, mv), v: own(v!, vv) };
      // WebAssembly SIMD where the runtime has it (../adamw-simd.ts), else the JS loop
      const update = adamwSimd() ?? adamwUpdate;
      const r = update(pv, gv, mv, vv, args.attrs as unknown as AdamWKernelAttrs, alloc, inPlace);
      return [r.p, r.m, r.v].map((data, i) => {
        if ([inPlace.p, inPlace.m, inPlace.v][i]) backend.pool.handOver(data);
        return backend.makeTensorInfo([...p!.shape], 'float32', data);
      });
    },
};
