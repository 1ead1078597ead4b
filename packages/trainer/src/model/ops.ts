/**
 * The few tensor operations the LLaMA forward pass is built from, with hand-written gradients where
 * tfjs's own are slow or missing on some backend. Where the fast form depends on the backend, the
 * caller passes the backend's fact (src/backends/facts.ts) and the mathematics stays the same:
 *
 * - `matMul`: tfjs's matMul gradient multiplies with transpose flags, which some backends (tfjs-wasm)
 *   run ~10× slower than an explicit `tf.transpose` followed by a plain matMul (register-gradients.ts,
 *   which initBackend registers); `linear` / `matMulBT` / `matMulAT` use the flags only where
 *   `transposeFlagsFree`.
 * - `embeddingLookup`: gather's gradient needs UnsortedSegmentSum, which not every backend has
 *   (tfjs-wasm does not): without it the scatter is a JS loop on the host.
 * - `attention`: per-(sequence, head) 2-D matMuls where `perHeadAttention`, the batched form elsewhere.
 *
 * The LM head + cross-entropy loss is in lm-head-loss.ts (its chunk and block sizes in lm-head-blocks.ts).
 * Every op here runs on the device of the active backend: no values are read back to JS.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasKernel } from '../kernel-names.js';

/**
 * tf.customGrad with the forward function's real parameter list: (inputs…, save) → value and
 * gradient (tfjs types the parameters as a union, which no concrete function satisfies).
 */
export function customGradient<Args extends tf.Tensor[], R extends tf.Tensor>(
  f: (...args: [...Args, tf.GradSaveFunc]) => { value: R; gradFunc: (dy: R, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] },
): (...args: Args) => R {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...args: Args) => R;
}

/** Swaps the last two axes. */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const rank = x.rank;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return tf.transpose(x, perm);
}

/**
 * a @ b, batched over leading axes. Its gradient (registered in register-gradients.ts) uses explicit
 * transposes instead of matMul's transpose flags, which are slow on tfjs-wasm.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.matMul(a, b);
}

/**
 * a @ bᵀ for 2-D a [m, k] and b [n, k]: with matMul's transpose flag where the backend's flags are free
 * (its GEMM reads either layout, so x @ Wᵀ needs no transposed copy of W — a whole second copy of the
 * model's matrices during a training step), else an explicit transpose and a plain matMul.
 */
export function matMulBT(a: tf.Tensor, b: tf.Tensor, transposeFlagsFree: boolean): tf.Tensor {
  return transposeFlagsFree ? tf.matMul(a, b, false, true) : matMul(a, tf.transpose(b));
}

/** aᵀ @ b for 2-D a [k, m] and b [k, n] (the transpose flag as in matMulBT). */
export function matMulAT(a: tf.Tensor, b: tf.Tensor, transposeFlagsFree: boolean): tf.Tensor {
  return transposeFlagsFree ? tf.matMul(a, b, true, false) : matMul(tf.transpose(a), b);
}

/** x @ Wᵀ for a weight stored as HF does, [outFeatures, inFeatures]; x is [..., inFeatures]. */
export function linear(x: tf.Tensor, weight: tf.Tensor, transposeFlagsFree: boolean): tf.Tensor {
  const inFeatures = weight.shape[1]!;
  const outFeatures = weight.shape[0]!;
  const leading = x.shape.slice(0, -1);
  const x2d = tf.reshape(x, [-1, inFeatures]);
  return tf.reshape(matMulBT(x2d, weight, transposeFlagsFree), [...leading, outFeatures]);
}

/** x @ wT for a weight already transposed to [inFeatures, outFeatures]. */
export function linearTransposed(x: tf.Tensor, weightT: tf.Tensor): tf.Tensor {
  const [inFeatures, outFeatures] = weightT.shape as [number, number];
  const leading = x.shape.slice(0, -1);
  return tf.reshape(matMul(tf.reshape(x, [-1, inFeatures]), weightT), [...leading, outFeatures]);
}

/**
 * out[indices[i]] += rows[i] for a [numRows, width] result: the transpose of a row gather.
 * Uses the backend's UnsortedSegmentSum where it exists and a plain JS loop otherwise (a synchronous
 * read: tfjs-wasm, the backend without the kernel, reads synchronously).
 */
export function scatterAddRows(indices: Int32Array, rows: tf.Tensor2D, numRows: number): tf.Tensor2D {
  const width = rows.shape[1];
  if (hasKernel('UnsortedSegmentSum')) {
    return tf.tidy(() => tf.unsortedSegmentSum(rows, tf.tensor1d(indices, 'int32'), numRows) as tf.Tensor2D);
  }
  const src = rows.dataSync() as Float32Array;
  const out = new Float32Array(numRows * width);
  for (let i = 0; i < indices.length; i++) {
    const dst = indices[i]! * width;
    const from = i * width;
    for (let j = 0; j < width; j++) out[dst + j]! += src[from + j]!;
  }
  return tf.tensor2d(out, [numRows, width]);
}

/** Rows of `weight` ([vocab, hidden]) for each token id; result [...ids.shape, hidden]. */
export function embeddingLookup(weight: tf.Tensor, ids: Int32Array, idsShape: number[]): tf.Tensor {
  const vocab = weight.shape[0]!;
  for (const id of ids) {
    if (id < 0 || id >= vocab) throw new RangeError(`token id ${id} is outside the embedding table (vocab ${vocab})`);
  }
  const lookup = customGradient((w: tf.Tensor, _save: tf.GradSaveFunc) => {
    const value = tf.tidy(() => tf.reshape(tf.gather(w, tf.tensor1d(ids, 'int32')), [...idsShape, w.shape[1]!]));
    return {
      value,
      gradFunc: (dy: tf.Tensor) => [scatterAddRows(ids, tf.reshape(dy, [ids.length, w.shape[1]!]) as tf.Tensor2D, vocab)],
    };
  });
  return lookup(weight);
}

/** LLaMA's RMSNorm: x / sqrt(mean(x²) + eps) * weight, over the last axis (HF LlamaRMSNorm). */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  const variance = tf.mean(tf.square(x), -1, true);
  return tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(variance, eps))));
}

/** SiLU (a.k.a. swish): x * sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** HF's rotate_half: concat(-x[..., d/2:], x[..., :d/2]). */
export function rotateHalf(x: tf.Tensor): tf.Tensor {
  const d = x.shape[x.rank - 1]!;
  const [x1, x2] = tf.split(x, [d / 2, d / 2], -1);
  return tf.concat([tf.neg(x2!), x1!], -1);
}

/** Rotary embedding in HF's rotate-half convention: x * cos + rotate_half(x) * sin. */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin));
}

/**
 * cos/sin tables [positions, headDim] for rotary embeddings, computed the way HF's
 * LlamaRotaryEmbedding does in float32: inv_freq = 1 / theta^(2i/d); angle = (pos / factor) · inv_freq
 * (linear rope scaling divides positions by factor); emb = concat(angles, angles).
 */
export function rotaryTables(
  startPosition: number,
  length: number,
  headDim: number,
  theta: number,
  linearScalingFactor: number,
): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim)));
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  for (let p = 0; p < length; p++) {
    const position = Math.fround((startPosition + p) / linearScalingFactor);
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(position * invFreq[i]!);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + i] = c;
      cos[p * headDim + half + i] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + half + i] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [length, headDim]), sin: tf.tensor2d(sin, [length, headDim]) };
}

/**
 * softmax(q·kᵀ·scale + bias)·v for q [batch, heads, queries, headDim], k and v [batch, heads, keys,
 * headDim] and an additive bias broadcastable to [batch, heads, queries, keys].
 *
 * `perHeadAttention` (a backend fact): each (sequence, head) pair is computed with 2-D matMuls and the
 * results concatenated; autodiff sees slices, 2-D matMuls and a concat. On tfjs-wasm a matMul with
 * batch dimensions runs a scalar loop (~3 GFLOP/s), while a plain 2-D matMul goes to XNNPACK
 * (~40 GFLOP/s). Otherwise the batched form. The mathematics is the same.
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor, scale: number, perHeadAttention: boolean): tf.Tensor {
  if (!perHeadAttention) return matMul(tf.softmax(tf.add(tf.mul(matMul(q, transposeLast2(k)), scale), bias)), v);
  const [batch, heads, queries, headDim] = q.shape as [number, number, number, number];
  const keys = k.shape[2]!;
  const pairs = batch * heads;
  const qs = tf.split(tf.reshape(q, [pairs, queries * headDim]), pairs, 0);
  const ks = tf.split(tf.reshape(k, [pairs, keys * headDim]), pairs, 0);
  const vs = tf.split(tf.reshape(v, [pairs, keys * headDim]), pairs, 0);
  // the bias per sequence: [queries, keys] (or one for all when its batch dimension is 1)
  const biasRows =
    bias.shape[0] === 1
      ? [tf.reshape(bias, [queries, keys])]
      : tf.split(tf.reshape(bias, [batch, queries * keys]), batch, 0).map((b) => tf.reshape(b, [queries, keys]));
  const out: tf.Tensor[] = [];
  for (let i = 0; i < pairs; i++) {
    const qi = tf.reshape(qs[i]!, [queries, headDim]);
    const ki = tf.reshape(ks[i]!, [keys, headDim]);
    const vi = tf.reshape(vs[i]!, [keys, headDim]);
    const scores = tf.add(tf.mul(matMul(qi, tf.transpose(ki)), scale), biasRows[biasRows.length === 1 ? 0 : Math.floor(i / heads)]!);
    out.push(matMul(tf.softmax(scores), vi));
  }
  return tf.reshape(tf.concat(out, 0), [batch, heads, queries, headDim]);
}
