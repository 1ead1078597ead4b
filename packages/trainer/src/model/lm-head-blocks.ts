/**
 * How the LM-head loss (lm-head-loss.ts) cuts its work, from the backend's facts (src/backends/facts.ts):
 * tokens per chunk, and the row blocks of the [vocab, hidden] head with the module-global cache of
 * those blocks. The mathematics does not change with either: the loss walks whatever chunks and list
 * of blocks it is given.
 *
 * Why blocks, and only for a frozen head: on a backend with `frozenHeadBlockRows` (tfjs-wasm: XNNPACK
 * streams the whole reduction per output tile, so the backward product d logits · W with K = 50k
 * vocabulary rows runs at ~23 GFLOP/s, 8k-row blocks at ~50) cutting the head costs more than one step
 * saves (~350 ms on wasm: slices, transposes), so blocks are only used when they can be kept: for a
 * head that does not train (stage 1), cached until its values change. Every other case gets one block.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendFacts } from '../backends/facts.js';

/**
 * Tokens per chunk of the loss (each chunk's [tokens, vocab] logits exist at once): the backend's
 * `headChunk.min`, or taller — up to `max` — while a chunk's logits fit in `maxLogitsBytes` (native:
 * onnxruntime packs the [vocab, hidden] head for every GEMM call, so taller chunks run faster).
 */
export function headChunkTokens(vocab: number, facts: BackendFacts): number {
  const { min, max, maxLogitsBytes } = facts.headChunk;
  return Math.max(min, Math.min(max, Math.floor(maxLogitsBytes / (4 * vocab))));
}

/** The head as the loss walks it: row blocks, and their transposes when cached (else computed per use). */
export interface HeadBlocks {
  blocks: tf.Tensor[];
  blocksT: tf.Tensor[] | undefined;
}

let headBlockCache: { dataId: object; sizes: string; blocks: tf.Tensor[]; blocksT: tf.Tensor[] } | undefined;

/** The frozen head's row blocks and their transposes, computed once per value of the head. */
function frozenHeadBlocks(w: tf.Tensor, sizes: number[]): HeadBlocks {
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
 * How the loss should see `lmHead`: a function from the head tensor it holds (the forward input, or
 * the copy customGrad saves for the backward pass) to its blocks. One block `[w]` unless the head is
 * frozen and `frozenHeadBlockRows` > 0 (the backend's fact, or a test's); then the cached blocks of
 * `lmHead` itself — the cache is keyed by the head's own tensor, since customGrad's saved copy has
 * another identity.
 */
export function headBlocksFor(lmHead: tf.Tensor2D, headTrains: boolean, frozenHeadBlockRows: number): (w: tf.Tensor) => HeadBlocks {
  const vocab = lmHead.shape[0];
  const blockRows = !headTrains && frozenHeadBlockRows > 0 ? frozenHeadBlockRows : vocab;
  const sizes: number[] = [];
  for (let s = 0; s < vocab; s += blockRows) sizes.push(Math.min(blockRows, vocab - s));
  return (w) => (sizes.length === 1 ? { blocks: [w], blocksT: undefined } : frozenHeadBlocks(lmHead, sizes));
}
