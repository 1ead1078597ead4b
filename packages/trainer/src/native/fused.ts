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

/**
 * The loss head's forward for a chunk: inputs h [n, H] and w [V, H]; outputs softmax(h · wᵀ) [n, V]
 * and the rows' log-sum-exp [n, 1]. The logits themselves are never returned.
 */
export const HEAD_SOFTMAX_KERNEL = 'CllamaHeadSoftmax';

/** Σ x² over a whole float32 tensor, as a scalar (the gradient norm's per-tensor part). */
export const SUM_OF_SQUARES_KERNEL = 'CllamaSumOfSquares';

/**
 * Σ x² in float64, one pass (tf.sum(tf.square(x)) writes the squares out first), with four partial
 * sums so that the additions do not wait on each other (~2× faster than one running sum).
 */
export function sumOfSquares(x: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = x.length;
  const n4 = n - (n % 4);
  for (let i = 0; i < n4; i += 4) {
    const a = x[i]!;
    const b = x[i + 1]!;
    const c = x[i + 2]!;
    const d = x[i + 3]!;
    s0 += a * a;
    s1 += b * b;
    s2 += c * c;
    s3 += d * d;
  }
  for (let i = n4; i < n; i++) s0 += x[i]! * x[i]!;
  return s0 + s1 + (s2 + s3);
}

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
  const stepBc2 = step * bc2;
  const epsBc2 = eps * bc2;
  const n = p.length;
  const po = alloc(n);
  const mo = alloc(n);
  const vo = alloc(n);
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
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

/**
 * One LLaMA decoder layer (src/model/llama.ts `decoderLayer`: RMSNorm, q/k/v/o with LoRA branches and
 * their dropout, rotary, causal softmax attention with grouped-query heads, RMSNorm, SwiGLU MLP, both
 * residuals) as one kernel. The op chain stays the definition; src/model/fused-layer.ts runs this
 * kernel where the backend has it, under tf.customGrad with DECODER_LAYER_GRAD_KERNEL as its gradient.
 *
 * Inputs: x [B, T, hidden]; cos, sin [T, headDim]; bias [B|1, 1, T, T]; input_layernorm,
 * post_attention_layernorm [hidden]; q_proj … down_proj (HF layout [out, in]); `<proj>.lora_A` [r, in]
 * and `<proj>.lora_B` [out, r] for each projection in attrs.lora.
 * Outputs: y [B, T, hidden]; then one keep mask per LoRA projection with dropout (bool [B, T, in],
 * drawn as tf.dropout(x, rate, undefined, seed) would, in attrs.lora order); then, when attrs.save,
 * the values the backward reads (which and how many is the backend's business).
 */
export const DECODER_LAYER_KERNEL = 'CllamaDecoderLayer';

/**
 * The decoder layer's backward. Inputs: dy, the forward's inputs, `<proj>.mask` for each mask the
 * forward returned, and `saved.<i>` for the forward's i-th saved value unless attrs.recompute (then the forward
 * is run again inside the kernel: gradient checkpointing). Outputs: the gradients of attrs.wanted, in
 * order (`x`, a projection or norm name, or `<proj>.lora_A` / `<proj>.lora_B`).
 */
export const DECODER_LAYER_GRAD_KERNEL = 'CllamaDecoderLayerGrad';

export interface DecoderLayerAttrs {
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  eps: number;
  lora: Array<{ module: string; rank: number; scaling: number }>;
  /** LoRA dropout rate; 0 = no dropout (no masks). */
  dropoutRate: number;
  /** One dropout seed per entry of `lora` when dropoutRate > 0. */
  seeds: number[];
  /** Forward: also return the saved values (off under gradient checkpointing and without a tape). */
  save: boolean;
}

export interface DecoderLayerGradAttrs extends Omit<DecoderLayerAttrs, 'save' | 'seeds'> {
  recompute: boolean;
  wanted: string[];
}
