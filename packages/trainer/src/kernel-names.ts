/**
 * The trainer's own kernel names and their contracts (attrs, inputs and outputs in order), backend-
 * neutral, as tfjs-core's kernel_names.ts is for tfjs's kernels: the model and the training loop run
 * these kernels by name where the active backend registers them, and each backend that does keeps
 * its implementation in its own folder (the native backend: src/backends/native/kernels/<name>.ts).
 *
 * Each one is a fused form of work the trainer otherwise writes as a chain of tfjs ops, and the chain
 * stays the definition: a fused kernel computes the same values (to within float32 rounding); a
 * backend without it runs the chain. Whether a backend has one is tfjs's kernel registry's answer
 * (hasKernel), not a backend fact.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * AdamW's update of one parameter: inputs p, g, m, v (float32, one shape); outputs p', m', v' (attrs
 * below). Definition: the op chain in src/train/adamw.ts.
 */
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
  /** The gradient is used as float32(gradScale · g): gradient clipping's factor (default 1). */
  gradScale?: number;
}

/**
 * The loss head's forward for a chunk: inputs h [n, H] and w [V, H]; outputs softmax(h · wᵀ) [n, V]
 * and the rows' log-sum-exp [n, 1]. The logits themselves are never returned. Definition: the chain
 * in src/model/lm-head-loss.ts (headForward).
 */
export const HEAD_SOFTMAX_KERNEL = 'CllamaHeadSoftmax';

/**
 * One chunk of the loss head in training, its gradient taken in the forward pass: inputs h [n, H],
 * w [V, H], targets int32 [n] (in range), scale float32 [n] (∂loss/∂logsumexp of each row: its weight
 * / the counted rows), and acc [V, H] (optional: d w of the chunks before); outputs rowLoss [n] =
 * logsumexp(h_i wᵀ) − h_i · w[t_i], dh [n, H] = scale_i (softmax(h_i wᵀ) w − w[t_i]), and when
 * attrs.wantW, dw [V, H] = acc + Σ_i scale_i h_iᵀ (softmax(h_i wᵀ) − onehot(t_i)). Definition: the
 * loss's chunk loop in src/model/lm-head-loss.ts (its forward, then its backward from the kept softmax).
 */
export const HEAD_LOSS_GRAD_KERNEL = 'CllamaHeadLossGrad';

export interface HeadLossGradAttrs {
  /** Return d w (the head trains). */
  wantW: boolean;
}

/** Σ x² over a whole float32 tensor x, as a scalar (the gradient norm's per-tensor part). Definition: tf.sum(tf.square(x)). */
export const SUM_OF_SQUARES_KERNEL = 'CllamaSumOfSquares';

/** True when the active backend has a kernel registered under `name` (one of these, or any tfjs kernel). */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * One LLaMA decoder layer (src/model/llama.ts `decoderLayer`: RMSNorm, q/k/v/o with LoRA branches and
 * their dropout, rotary, causal softmax attention with grouped-query heads, RMSNorm, SwiGLU MLP, both
 * residuals) as one kernel. The op chain stays the definition; src/model/fused-layer.ts runs this
 * kernel where the backend has it (native: src/backends/native/kernels/CllamaDecoderLayer.ts), under
 * tf.customGrad with DECODER_LAYER_GRAD_KERNEL as its gradient.
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
