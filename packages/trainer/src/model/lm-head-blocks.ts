/**
 * Backend tuning for the LM-head loss (lm-head-loss.ts): how the [vocab, hidden] head is cut into
 * row blocks, and the module-global cache of those blocks. The mathematics does not change with the
 * blocks: the loss walks whatever list of blocks it is given.
 *
 * Why blocks, and only on wasm: XNNPACK streams the whole reduction per output tile, so the backward
 * product d logits · W with K = 50k vocabulary rows runs at ~23 GFLOP/s, 8k-row blocks at ~50.
 * Cutting the head into blocks costs ~350 ms on wasm (slices, transposes), more than one step saves,
 * so blocks are only used when they can be kept: for a head that does not train (stage 1), cached
 * until its values change. Every other case (a trained head, or any other backend) gets one block.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Rows per LM-head block for a frozen head on tfjs-wasm. */
export const WASM_HEAD_BLOCK_ROWS = 8192;

/** Tokens per loss chunk, and on native the most and the logits bytes a chunk may take. */
const HEAD_CHUNK_TOKENS = 256;
const NATIVE_HEAD_CHUNK_TOKENS = 1024;
const NATIVE_HEAD_CHUNK_BYTES = 256 * 1024 * 1024;

/**
 * Tokens per chunk of the loss (each chunk's [tokens, vocab] logits exist at once): 256, and on the
 * native backend up to 1024 within 256 MiB of logits — onnxruntime packs the [vocab, hidden] head for
 * every GEMM call, so 4× taller chunks ran the head's three products 1.5× faster (bench config).
 */
export function headChunkTokens(vocab: number): number {
  if (tf.getBackend() !== 'native') return HEAD_CHUNK_TOKENS;
  return Math.max(HEAD_CHUNK_TOKENS, Math.min(NATIVE_HEAD_CHUNK_TOKENS, Math.floor(NATIVE_HEAD_CHUNK_BYTES / (4 * vocab))));
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
 * frozen and the backend is wasm; then the cached blocks of `lmHead` itself — the cache is keyed by
 * the head's own tensor, since customGrad's saved copy has another identity.
 */
export function headBlocksFor(lmHead: tf.Tensor2D, headTrains: boolean, frozenHeadBlockRows = WASM_HEAD_BLOCK_ROWS): (w: tf.Tensor) => HeadBlocks {
  const vocab = lmHead.shape[0];
  const blockRows = !headTrains && tf.getBackend() === 'wasm' ? frozenHeadBlockRows : vocab;
  const sizes: number[] = [];
  for (let s = 0; s < vocab; s += blockRows) sizes.push(Math.min(blockRows, vocab - s));
  return (w) => (sizes.length === 1 ? { blocks: [w], blocksT: undefined } : frozenHeadBlocks(lmHead, sizes));
}
