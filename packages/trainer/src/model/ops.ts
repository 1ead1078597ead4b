/**
 * The few tensor operations the LLaMA forward pass is built from, with hand-written gradients where
 * tfjs's own are slow or missing on the wasm backend:
 *
 * - `matMul`: tfjs's matMul gradient multiplies with transpose flags, which on tfjs-wasm runs ~10×
 *   slower than an explicit `tf.transpose` followed by a plain matMul (see register-gradients.ts).
 * - `embeddingLookup`: gather's gradient needs UnsortedSegmentSum, which tfjs-wasm does not have.
 * - `causalLmLossFromHidden`: the LM head and softmax cross-entropy fused and computed a chunk of
 *   tokens at a time, so neither the full [tokens, vocab] logits nor a one-hot matrix ever exist
 *   for the whole batch (batch 4 × 256 tokens × 50k vocab would be 200 MB per copy).
 */
import * as tf from '@tensorflow/tfjs-core';
import './register-gradients.js';

/**
 * tf.customGrad with the forward function's real parameter list: (inputs…, save) → value and
 * gradient (tfjs types the parameters as a union, which no concrete function satisfies).
 */
function customGradient<Args extends tf.Tensor[], R extends tf.Tensor>(
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

/** x @ Wᵀ for a weight stored as HF does, [outFeatures, inFeatures]; x is [..., inFeatures]. */
export function linear(x: tf.Tensor, weight: tf.Tensor): tf.Tensor {
  const inFeatures = weight.shape[1]!;
  const outFeatures = weight.shape[0]!;
  const leading = x.shape.slice(0, -1);
  const x2d = tf.reshape(x, [-1, inFeatures]);
  return tf.reshape(matMul(x2d, tf.transpose(weight)), [...leading, outFeatures]);
}

/** x @ wT for a weight already transposed to [inFeatures, outFeatures]. */
export function linearTransposed(x: tf.Tensor, weightT: tf.Tensor): tf.Tensor {
  const [inFeatures, outFeatures] = weightT.shape as [number, number];
  const leading = x.shape.slice(0, -1);
  return tf.reshape(matMul(tf.reshape(x, [-1, inFeatures]), weightT), [...leading, outFeatures]);
}

/** True when the active backend has a kernel for tf.unsortedSegmentSum (tfjs-node, cpu; not wasm). */
function hasSegmentSum(): boolean {
  return tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined;
}

/**
 * out[indices[i]] += rows[i] for a [numRows, width] result: the transpose of a row gather.
 * Uses the backend's UnsortedSegmentSum where it exists and a plain JS loop otherwise (tfjs-wasm).
 */
export function scatterAddRows(indices: Int32Array, rows: tf.Tensor2D, numRows: number): tf.Tensor2D {
  const width = rows.shape[1];
  if (hasSegmentSum()) {
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
 * On tfjs-wasm a matMul with batch dimensions runs a scalar loop (~3 GFLOP/s), while a plain 2-D
 * matMul goes to XNNPACK (~40 GFLOP/s), so there each (sequence, head) pair is computed with 2-D
 * matMuls and the results concatenated; autodiff sees slices, 2-D matMuls and a concat. Other
 * backends get the batched form. The mathematics is the same.
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor, scale: number): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return matMul(tf.softmax(tf.add(tf.mul(matMul(q, transposeLast2(k)), scale), bias)), v);
  const [batch, heads, queries, headDim] = q.shape as [number, number, number, number];
  const keys = k.shape[2]!;
  const pairs = batch * heads;
  const qs = tf.split(tf.reshape(q, [pairs, queries * headDim]), pairs, 0);
  const ks = tf.split(tf.reshape(k, [pairs, keys * headDim]), pairs, 0);
  const vs = tf.split(tf.reshape(v, [pairs, keys * headDim]), pairs, 0);
  // the bias per sequence: [queries, keys] (or one for all when its batch dimension is 1)
  const biasRows = bias.shape[0] === 1 ? [tf.reshape(bias, [queries, keys])] : tf.split(tf.reshape(bias, [batch, queries * keys]), batch, 0).map((b) => tf.reshape(b, [queries, keys]));
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

/** Softmax kept between forward and backward up to this size (4 × 256 tokens × 50k vocab = 205 MB). */
export const DEFAULT_KEEP_PROBS_BYTES = 256 * 1024 * 1024;

/** Labels value HF ignores in the loss. */
export const IGNORE_INDEX = -100;

/**
 * Rows per LM-head block for a frozen head on tfjs-wasm. XNNPACK streams the whole reduction per
 * output tile, so the backward product d logits · W with K = 50k vocabulary rows runs at ~23 GFLOP/s,
 * 8k-row blocks at ~50. Cutting the head into blocks costs ~350 ms on wasm (slices, transposes), more
 * than one step saves, so blocks are only used when they can be kept: for a head that does not train
 * (stage 1), cached until its values change (see releaseHeadBlocks).
 */
export const WASM_HEAD_BLOCK_ROWS = 8192;

let headBlockCache: { dataId: object; sizes: string; blocks: tf.Tensor[]; blocksT: tf.Tensor[] } | undefined;

/** The frozen head's row blocks and their transposes, computed once per value of the head. */
function frozenHeadBlocks(w: tf.Tensor, sizes: number[]): { blocks: tf.Tensor[]; blocksT: tf.Tensor[] } {
  const key = sizes.join(',');
  if (headBlockCache?.dataId !== w.dataId || headBlockCache.sizes !== key) {
    releaseHeadBlocks();
    const blocks = tf.split(w, sizes, 0).map((b) => tf.keep(b));
    headBlockCache = { dataId: w.dataId, sizes: key, blocks, blocksT: blocks.map((b) => tf.keep(tf.transpose(b))) };
  }
  return headBlockCache!;
}

/** Frees the cached LM-head blocks (LlamaModel.dispose calls it). */
export function releaseHeadBlocks(): void {
  if (!headBlockCache) return;
  tf.dispose([...headBlockCache.blocks, ...headBlockCache.blocksT]);
  headBlockCache = undefined;
}

/**
 * Mean softmax cross-entropy of `hidden @ lmHeadᵀ` against `targets` (entries equal to -100 are
 * ignored), differentiable w.r.t. both hidden [N, H] and lmHead [V, H].
 *
 * Forward and backward walk `chunkTokens` rows at a time (and, for a frozen head on wasm, the
 * vocabulary in cached row blocks); the one-hot term of the gradient is applied as a row gather /
 * scatter rather than a [tokens, vocab] matrix: d logits = (softmax − onehot) / count. The softmax of
 * every chunk is kept for the backward pass when all of them fit in `keepProbsBytes` (saves a third
 * of the LM head's matmul work); otherwise each chunk's logits are recomputed there. With no counted
 * token the loss is 0 (PyTorch would give NaN).
 */
export function fusedLinearCrossEntropy(
  hidden: tf.Tensor2D,
  lmHead: tf.Tensor2D,
  targets: Int32Array,
  chunkTokens = 256,
  keepProbsBytes = DEFAULT_KEEP_PROBS_BYTES,
  frozenHeadBlockRows = WASM_HEAD_BLOCK_ROWS,
): tf.Scalar {
  const n = hidden.shape[0];
  const vocab = lmHead.shape[0];
  if (targets.length !== n) throw new Error(`fusedLinearCrossEntropy: ${targets.length} targets for ${n} rows`);
  const safeTargets = new Int32Array(n);
  const weights = new Float32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const t = targets[i]!;
    if (t === IGNORE_INDEX) continue;
    if (t < 0 || t >= vocab) throw new RangeError(`label ${t} is outside the vocabulary (0..${vocab - 1}) and is not -100`);
    safeTargets[i] = t;
    weights[i] = 1;
    count++;
  }
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < n; s += chunkTokens) chunks.push([s, Math.min(chunkTokens, n - s)]);

  const keepProbs = n * vocab * 4 <= keepProbsBytes;
  // A frozen LM head (stage-1 training of the embeddings only) needs no [vocab, hidden] gradient.
  const headGrad = !(lmHead instanceof tf.Variable && !lmHead.trainable);
  const blockSizes: number[] = [];
  const blockRows = !headGrad && tf.getBackend() === 'wasm' ? frozenHeadBlockRows : vocab;
  for (let s = 0; s < vocab; s += blockRows) blockSizes.push(Math.min(blockRows, vocab - s));
  // [W] (one block), or the cached blocks of the frozen head. The cache is keyed by the head's own
  // tensor: customGrad hands the gradient function a saved copy, which has another identity.
  const head = (w: tf.Tensor) => (blockSizes.length === 1 ? { blocks: [w], blocksT: undefined } : frozenHeadBlocks(lmHead, blockSizes));

  const op = customGradient((h: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
    const cached = head(w);
    // Forward: per chunk (and block), logits → logsumexp over the whole vocabulary, and the target logit.
    const { loss, lse, probs } = tf.tidy(() => {
      const wT = cached.blocksT ?? [tf.transpose(w)];
      const lseParts: tf.Tensor[] = [];
      const probParts: tf.Tensor[] = [];
      let total: tf.Tensor = tf.scalar(0);
      for (const [start, size] of chunks) {
        const hc = tf.slice(h, [start, 0], [size, -1]);
        const logits = wT.map((b) => tf.matMul(hc, b));
        const max = logits.length === 1 ? tf.max(logits[0]!, 1, true) : tf.max(tf.concat(logits.map((l) => tf.max(l, 1, true)), 1), 1, true);
        const e = logits.map((l) => tf.exp(tf.sub(l, max)));
        const norm = e.length === 1 ? tf.sum(e[0]!, 1, true) : tf.addN(e.map((x) => tf.sum(x, 1, true)));
        const chunkLse = tf.reshape(tf.add(max, tf.log(norm)), [size]);
        if (keepProbs) for (const x of e) probParts.push(tf.div(x, norm));
        let targetLogit: tf.Tensor;
        if (logits.length === 1) {
          const flatIndex = new Int32Array(size);
          for (let i = 0; i < size; i++) flatIndex[i] = i * vocab + safeTargets[start + i]!;
          targetLogit = tf.gather(tf.reshape(logits[0]!, [-1]), tf.tensor1d(flatIndex, 'int32'));
        } else {
          // the target's logit is its head row · the hidden state
          targetLogit = tf.sum(tf.mul(hc, tf.gather(w, tf.tensor1d(safeTargets.subarray(start, start + size), 'int32'))), 1);
        }
        const chunkWeights = tf.tensor1d(weights.subarray(start, start + size));
        total = tf.add(total, tf.sum(tf.mul(tf.sub(chunkLse, targetLogit), chunkWeights)));
        lseParts.push(chunkLse);
      }
      return { loss: tf.div(total, Math.max(count, 1)) as tf.Scalar, lse: tf.concat(lseParts), probs: probParts };
    });
    save([h, w, lse, ...probs]);
    // Outside gradient recording nothing is saved: drop the softmax right away.
    tf.dispose(probs);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sh, sw, slse, ...savedProbs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, ...tf.Tensor2D[]];
        const { blocks, blocksT } = head(sw);
        // Per-token factor dy / count (0 for ignored tokens).
        const scale = tf.mul(tf.tensor1d(weights), tf.div(dy, Math.max(count, 1)));
        const wT = keepProbs ? undefined : (blocksT ?? [tf.transpose(sw)]);
        const hiddenGrads: tf.Tensor[] = [];
        // d lmHead is accumulated transposed, [hidden, vocab], so each chunk only transposes hc.
        let lmHeadGradT: tf.Tensor | undefined;
        for (const [index, [start, size]] of chunks.entries()) {
          // tf.tidy per chunk: the [chunk, vocab] intermediates are freed before the next chunk
          // (the backward pass as a whole only tidies at its very end).
          const [dh, acc] = tf.tidy(() => {
            const hc = tf.slice(sh, [start, 0], [size, -1]);
            const sc = tf.reshape(tf.slice(scale, [start], [size]), [size, 1]);
            const lseRows = keepProbs ? undefined : tf.reshape(tf.slice(slse, [start], [size]), [size, 1]);
            const probs = blocks.map((_, j) => (keepProbs ? savedProbs[index * blocks.length + j]! : tf.exp(tf.sub(tf.matMul(hc, wT![j]!), lseRows!))));
            // (softmax − onehot) · scale = probs · scale − onehot · scale; the onehot part is a row gather.
            const probsScaled = probs.map((p) => tf.mul(p, sc));
            const targetRows = tf.gather(sw, tf.tensor1d(safeTargets.subarray(start, start + size), 'int32'));
            const products = probsScaled.map((p, j) => tf.matMul(p, blocks[j]!));
            const dhc = tf.sub(products.length === 1 ? products[0]! : tf.addN(products), tf.mul(targetRows, sc));
            if (!headGrad) return [dhc];
            const part = tf.matMul(tf.transpose(hc), probsScaled[0]!);
            return [dhc, lmHeadGradT ? tf.add(lmHeadGradT, part) : part];
          });
          hiddenGrads.push(dh!);
          if (acc) {
            lmHeadGradT?.dispose();
            lmHeadGradT = acc;
          }
        }
        const hiddenGrad = tf.concat(hiddenGrads);
        if (!headGrad) return [hiddenGrad, tf.zeros(sw.shape)];
        const oneHotPart = scatterAddRows(safeTargets, tf.mul(sh, tf.reshape(scale, [n, 1])) as tf.Tensor2D, vocab);
        return [hiddenGrad, tf.sub(tf.transpose(lmHeadGradT!), oneHotPart)];
      },
    };
  });
  return op(hidden, lmHead);
}
