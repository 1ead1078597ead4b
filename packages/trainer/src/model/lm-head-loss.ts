/**
 * The LM head and its softmax cross-entropy, fused: mean over counted tokens of
 *
 *   loss_i = logsumexp(h_i · Wᵀ) − h_i · W[t_i]            (t_i = target; -100 = not counted)
 *
 * with gradients  d logits = (softmax − onehot) / count,  dh = d logits · W,  dW = d logitsᵀ · h.
 *
 * `referenceLinearCrossEntropy` is that formula written plainly (full logits, log-softmax, pick the
 * target column); tests compare the loss and both gradients of the fused version against it.
 *
 * How the fused version differs: it walks the tokens `chunkTokens` rows at a time, so neither the
 * full [tokens, vocab] logits nor a one-hot matrix ever exist for the whole batch (4 × 256 tokens ×
 * 50k vocab is 200 MB per copy); the one-hot part of the gradient is a row gather (dh) and a row
 * scatter (dW). The softmax of every chunk is kept for the backward pass when all of them fit in
 * `keepProbsBytes` (saving a third of the head's matmul work), else recomputed from the saved
 * logsumexp. The head may be walked in row blocks (lm-head-blocks.ts: a frozen head where the backend
 * wants blocks);
 * logsumexp then combines the blocks' maxima and sums. With no counted token the loss is 0
 * (PyTorch would give NaN). Everything stays on the device: targets go up, nothing comes back.
 * In training on a backend with HEAD_LOSS_GRAD_KERNEL (native) each chunk's gradient is taken in the
 * forward pass, in one kernel call with its loss (dy = 1; the backward pass scales by dy), so no softmax
 * is kept at all.
 */
import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX } from '@cllama/alpaca-data';
import type { BackendFacts } from '../backends/facts.js';
import { backendFacts } from '../backends/registry.js';
import { HEAD_LOSS_GRAD_KERNEL, HEAD_SOFTMAX_KERNEL, hasKernel, type HeadLossGradAttrs } from '../kernel-names.js';
import { headBlocksFor, headChunkTokens, type HeadBlocks } from './lm-head-blocks.js';
import { customGradient, matMulAT, scatterAddRows } from './ops.js';

/** Softmax kept between forward and backward up to this size (4 × 256 tokens × 50k vocab = 205 MB). */
export const DEFAULT_KEEP_PROBS_BYTES = 256 * 1024 * 1024;

/**
 * The formula with nothing fused: full logits, log-softmax, the target's column. The column is picked
 * with a one-hot mask rather than tf.gather, whose gradient tfjs-wasm lacks.
 */
export function referenceLinearCrossEntropy(hidden: tf.Tensor2D, lmHead: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  const { safeTargets, weights, count } = countedTargets(targets, lmHead.shape[0]);
  return tf.tidy(() => {
    const logProbs = tf.logSoftmax(tf.matMul(hidden, tf.transpose(lmHead)));
    const targetLogProbs = tf.sum(tf.mul(logProbs, tf.oneHot(tf.tensor1d(safeTargets, 'int32'), lmHead.shape[0])), 1);
    return tf.div(tf.neg(tf.sum(tf.mul(targetLogProbs, tf.tensor1d(weights)))), Math.max(count, 1)) as tf.Scalar;
  });
}

/** Targets with ignored ones replaced by 0, their 0/1 weights, and how many count. Validates ids. */
function countedTargets(targets: Int32Array, vocab: number): { safeTargets: Int32Array; weights: Float32Array; count: number } {
  const safeTargets = new Int32Array(targets.length);
  const weights = new Float32Array(targets.length);
  let count = 0;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    if (t === IGNORE_INDEX) continue;
    if (t < 0 || t >= vocab) throw new RangeError(`label ${t} is outside the vocabulary (0..${vocab - 1}) and is not -100`);
    safeTargets[i] = t;
    weights[i] = 1;
    count++;
  }
  return { safeTargets, weights, count };
}

/**
 * One chunk's forward over the whole vocabulary: the softmax (when wanted) and the log-sum-exp [rows]
 * of its logits, which come cut into column blocks,
 *   lse = max + log Σ exp(logits − max),   probs = exp(logits − max) / Σ,
 * and the logits themselves when they are one block (the targets' columns are read from them). A
 * backend with the fused head kernel (native: product, softmax and log-sum-exp in one onnxruntime call)
 * takes an unblocked head and never returns the logits.
 */
function headForward(
  hc: tf.Tensor,
  head: HeadBlocks,
  headLogits: (hc: tf.Tensor) => tf.Tensor[],
  rows: number,
  wantProbs: boolean,
): { probs: tf.Tensor[]; lse: tf.Tensor; logits?: tf.Tensor } {
  if (head.blocks.length === 1 && !head.blocksT && hasKernel(HEAD_SOFTMAX_KERNEL)) {
    const [probs, lse] = tf.engine().runKernel(HEAD_SOFTMAX_KERNEL, { h: hc, w: head.blocks[0]! }) as tf.Tensor[];
    return { probs: wantProbs ? [probs!] : [], lse: tf.reshape(lse!, [rows]) };
  }
  const logits = headLogits(hc);
  const max =
    logits.length === 1
      ? tf.max(logits[0]!, 1, true)
      : tf.max(
          tf.concat(
            logits.map((l) => tf.max(l, 1, true)),
            1,
          ),
          1,
          true,
        );
  const e = logits.map((l) => tf.exp(tf.sub(l, max)));
  const norm = e.length === 1 ? tf.sum(e[0]!, 1, true) : tf.addN(e.map((x) => tf.sum(x, 1, true)));
  return {
    probs: wantProbs ? e.map((x) => tf.div(x, norm)) : [],
    lse: tf.reshape(tf.add(max, tf.log(norm)), [rows]),
    logits: logits.length === 1 ? logits[0] : undefined,
  };
}

export interface CrossEntropyOptions {
  /** Tokens per chunk (default: from the backend's facts, lm-head-blocks.ts headChunkTokens). */
  chunkTokens?: number;
  /** Keep the softmax for the backward pass up to this many bytes, else recompute it (default 256 MiB). */
  keepProbsBytes?: number;
  /** Rows per block of a frozen head; 0 = one block (default: the backend's facts). */
  frozenHeadBlockRows?: number;
  /** The backend's facts (default: the active backend's). */
  facts?: BackendFacts;
}

/**
 * Mean softmax cross-entropy of `hidden @ lmHeadᵀ` against `targets` (-100 = ignored), differentiable
 * w.r.t. hidden [N, H] and lmHead [V, H]. A frozen head (a tf.Variable with trainable = false: stage 1
 * trains the embeddings only) gets a zero gradient without computing the [V, H] product.
 */
export function fusedLinearCrossEntropy(hidden: tf.Tensor2D, lmHead: tf.Tensor2D, targets: Int32Array, opts: CrossEntropyOptions = {}): tf.Scalar {
  const facts = opts.facts ?? backendFacts();
  const chunkTokens = opts.chunkTokens ?? headChunkTokens(lmHead.shape[0], facts);
  const keepProbsBytes = opts.keepProbsBytes ?? DEFAULT_KEEP_PROBS_BYTES;
  const frozenHeadBlockRows = opts.frozenHeadBlockRows ?? facts.frozenHeadBlockRows;
  const n = hidden.shape[0];
  const vocab = lmHead.shape[0];
  if (targets.length !== n) throw new Error(`fusedLinearCrossEntropy: ${targets.length} targets for ${n} rows`);
  const { safeTargets, weights, count } = countedTargets(targets, vocab);
  const targetIds = (start: number, size: number) => tf.tensor1d(safeTargets.subarray(start, start + size), 'int32');
  const chunks: Array<[start: number, size: number]> = [];
  for (let s = 0; s < n; s += chunkTokens) chunks.push([s, Math.min(chunkTokens, n - s)]);
  const keepProbs = n * vocab * 4 <= keepProbsBytes;
  const headTrains = !(lmHead instanceof tf.Variable && !lmHead.trainable);
  const headBlocks = headBlocksFor(lmHead, headTrains, frozenHeadBlockRows);
  // hc · blockᵀ for every head block: with the transpose flag where it is free, else against
  // transposes made once (cached for a frozen head, else once per pass) and shared by the chunks
  const logitsOf = (head: HeadBlocks, w: tf.Tensor): ((hc: tf.Tensor) => tf.Tensor[]) => {
    if (!head.blocksT && facts.transposeFlagsFree) return (hc) => head.blocks.map((b) => tf.matMul(hc, b, false, true));
    const wT = head.blocksT ?? [tf.transpose(w)];
    return (hc) => wT.map((b) => tf.matMul(hc, b));
  };

  // training on a backend with the head's fused gradient (native): the gradient is taken with the
  // forward, chunk by chunk, and nothing [n, V] is kept for the backward pass
  if (hasKernel(HEAD_LOSS_GRAD_KERNEL) && isTapeOn() && headBlocks(lmHead).blocks.length === 1) {
    return eagerGradientLoss(hidden, lmHead, chunks, safeTargets, weights, count, headTrains);
  }

  const op = customGradient((h: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
    const head = headBlocks(w);
    // Forward, per chunk: logits per block → logsumexp over the whole vocabulary → lse − target logit.
    const { loss, lse, probs } = tf.tidy(() => {
      const headLogits = logitsOf(head, w);
      const lseParts: tf.Tensor[] = [];
      const probParts: tf.Tensor[] = [];
      let total: tf.Tensor = tf.scalar(0);
      for (const [start, size] of chunks) {
        const hc = tf.slice(h, [start, 0], [size, -1]);
        const { probs: chunkProbs, lse: chunkLse, logits } = headForward(hc, head, headLogits, size, keepProbs);
        probParts.push(...chunkProbs);
        // the target's logit: its column of the logits (one block), or its head row · the hidden state
        let targetLogit: tf.Tensor;
        if (logits) {
          const flatIndex = Int32Array.from({ length: size }, (_, i) => i * vocab + safeTargets[start + i]!);
          targetLogit = tf.gather(tf.reshape(logits, [-1]), tf.tensor1d(flatIndex, 'int32'));
        } else {
          targetLogit = tf.sum(tf.mul(hc, tf.gather(w, targetIds(start, size))), 1);
        }
        total = tf.add(total, tf.sum(tf.mul(tf.sub(chunkLse, targetLogit), tf.tensor1d(weights.subarray(start, start + size)))));
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
        const head = headBlocks(sw);
        const { blocks } = head;
        // Per-token factor dy / count (0 for ignored tokens).
        const scale = tf.mul(tf.tensor1d(weights), tf.div(dy, Math.max(count, 1)));
        const headLogits = keepProbs ? undefined : logitsOf(head, sw);
        const hiddenGrads: tf.Tensor[] = [];
        // d lmHead is accumulated transposed, [hidden, vocab], so each chunk only transposes hc (on
        // native too: (scale · hc)ᵀ · P and one transpose ran faster than Pᵀ · (scale · hc), measured)
        let lmHeadGradT: tf.Tensor | undefined;
        for (const [index, [start, size]] of chunks.entries()) {
          // tf.tidy per chunk: the [chunk, vocab] intermediates are freed before the next chunk
          // (the backward pass as a whole only tidies at its very end).
          const [dh, acc] = tf.tidy(() => {
            const hc = tf.slice(sh, [start, 0], [size, -1]);
            const sc = tf.reshape(tf.slice(scale, [start], [size]), [size, 1]);
            const lseRows = keepProbs ? undefined : tf.reshape(tf.slice(slse, [start], [size]), [size, 1]);
            const probs = keepProbs ? blocks.map((_, j) => savedProbs[index * blocks.length + j]!) : headLogits!(hc).map((l) => tf.exp(tf.sub(l, lseRows!)));
            // d logits = (softmax − onehot) · scale, with scale a factor per row: it is applied to the
            // [chunk, hidden] sides, dh = scale · (P·W − W[t]) and dWᵀ = (scale · hc)ᵀ·P, never to the
            // [chunk, vocab] softmax. The onehot part of dh is a row gather of W.
            const products = probs.map((p, j) => tf.matMul(p, blocks[j]!));
            const dhc = tf.mul(tf.sub(products.length === 1 ? products[0]! : tf.addN(products), tf.gather(sw, targetIds(start, size))), sc);
            if (!headTrains) return [dhc];
            const part = matMulAT(tf.mul(hc, sc), probs[0]!, facts.transposeFlagsFree);
            return [dhc, lmHeadGradT ? tf.add(lmHeadGradT, part) : part];
          });
          hiddenGrads.push(dh!);
          if (acc) {
            lmHeadGradT?.dispose();
            lmHeadGradT = acc;
          }
        }
        const hiddenGrad = tf.concat(hiddenGrads);
        if (!headTrains) return [hiddenGrad, tf.zeros(sw.shape)];
        // …and the onehot part of dW is a row scatter of the scaled hidden states.
        const oneHotPart = scatterAddRows(safeTargets, tf.mul(sh, tf.reshape(scale, [n, 1])) as tf.Tensor2D, vocab);
        return [hiddenGrad, tf.sub(tf.transpose(lmHeadGradT!), oneHotPart)];
      },
    };
  });
  return op(hidden, lmHead);
}

const isTapeOn = () => (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();

/**
 * The same loss through HEAD_LOSS_GRAD_KERNEL: each chunk's run gives its rows' loss terms, d hidden
 * and (when the head trains) d lmHead accumulated over the chunks, all for dy = 1; the backward pass
 * only scales them by dy.
 */
function eagerGradientLoss(
  hidden: tf.Tensor2D,
  lmHead: tf.Tensor2D,
  chunks: Array<[start: number, size: number]>,
  safeTargets: Int32Array,
  weights: Float32Array,
  count: number,
  headTrains: boolean,
): tf.Scalar {
  const scale = weights.map((x) => x / Math.max(count, 1));
  const op = customGradient((h: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
    const { loss, dh, dw } = tf.tidy(() => {
      let total: tf.Tensor = tf.scalar(0);
      const dhParts: tf.Tensor[] = [];
      let dw: tf.Tensor | undefined;
      const attrs: HeadLossGradAttrs = { wantW: headTrains };
      for (const [start, size] of chunks) {
        const inputs: Record<string, tf.Tensor> = {
          h: tf.slice(h, [start, 0], [size, -1]),
          w,
          targets: tf.tensor1d(safeTargets.subarray(start, start + size), 'int32'),
          scale: tf.tensor1d(scale.subarray(start, start + size)),
        };
        if (dw) inputs.acc = dw;
        const [rowLoss, dhc, dwc] = tf.engine().runKernel(HEAD_LOSS_GRAD_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        total = tf.add(total, tf.sum(tf.mul(rowLoss!, tf.tensor1d(weights.subarray(start, start + size)))));
        dhParts.push(dhc!);
        if (dwc) {
          dw?.dispose(); // folded into dwc
          dw = dwc;
        }
      }
      return { loss: tf.div(total, Math.max(count, 1)) as tf.Scalar, dh: dhParts.length === 1 ? dhParts[0]! : tf.concat(dhParts), dw };
    });
    save(dw ? [dh, dw] : [dh]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sdh, sdw] = saved as [tf.Tensor, tf.Tensor | undefined];
        const factor = dy.dataSync()[0]!;
        const scaled = (g: tf.Tensor) => (factor === 1 ? tf.clone(g) : tf.mul(g, dy));
        return [scaled(sdh), sdw ? scaled(sdw) : tf.zeros(w.shape)];
      },
    };
  });
  return op(hidden, lmHead);
}
