/**
 * What the trainer needs to know about the backend that runs it, as one record (BackendFacts), so that
 * the model, the training loop, the memory check, generation and the recipe read facts instead of
 * asking which backend this is (nanoGPT decides `device_type` and `flash` once and passes them on).
 *
 * Each backend states its own record in its folder (backends/<name>/facts.ts, as tfjs keeps each
 * backend's tuning in flags_<backend>.ts); GENERIC_FACTS is the record of a tfjs backend the trainer has
 * no file for. registry.ts looks a record up by tfjs backend name. What kernels a backend has is not a
 * fact here: tfjs's kernel registry answers that (src/kernel-names.ts hasKernel).
 */

/** Whether `--threads` (data-parallel worker threads, train/data-parallel.ts) helps on this backend, and if not why. */
export type ThreadsFact = { dataParallel: true } | { dataParallel: false; why: string };

/** A heap every tensor has to fit in (tfjs-wasm's 32-bit memory), for the memory check (src/memory.ts). */
export interface HeapFact {
  /** Where the backend aborts. */
  limitBytes: number;
  /** What a training step can count on of it (growth steps, fragmentation). */
  usableBytes: number;
  /** What to use instead, for the refusal: e.g. `use --backend native (…)`. */
  advice: string;
}

export interface BackendFacts {
  /** The tfjs backend name this record describes (for messages). */
  name: string;
  /**
   * matMul's transpose flags cost nothing (the GEMM reads either layout): x @ Wᵀ multiplies W in place,
   * in the forward and the backward pass, and a training step keeps no transposed copy of the matrices
   * (model/ops.ts, model/register-gradients.ts, the memory estimate). Where false, an explicit transpose
   * and a plain matMul are used (tfjs-wasm runs the flags ~10× slower).
   */
  transposeFlagsFree: boolean;
  /** Attention as 2-D matMuls per (sequence, head) instead of one batched matMul (model/ops.ts attention). */
  perHeadAttention: boolean;
  /**
   * Tokens per chunk of the loss head (model/lm-head-blocks.ts): `min`, or more — up to `max` — while a
   * chunk's [tokens, vocab] float32 logits stay within `maxLogitsBytes`.
   */
  headChunk: { min: number; max: number; maxLogitsBytes: number };
  /** Rows per cached block of a frozen LM head (model/lm-head-blocks.ts); 0 = the head is one block. */
  frozenHeadBlockRows: number;
  /** Most tensors one AddN may sum (train/gradients.ts builds a tree of AddNs above it); Infinity = any. */
  addNFanIn: number;
  /** A tensor can be read synchronously (dataSync); else only with `await tensor.data()`. */
  syncReads: boolean;
  /**
   * Tensors live in a wasm heap: a read can be a view of it (typedArrayFromHeap, valid until the next
   * tfjs call) and a tensor made from a JS array copies it (train/micro-batch.ts readValues / tensorFromShared).
   */
  heapTensors: boolean;
  threads: ThreadsFact;
  /**
   * The memory estimate's activations × this (src/memory.ts): backends whose tensors are JS arrays keep
   * every tape intermediate and wait for V8's collector (measured 5× on native).
   */
  activationFactor: number;
  /**
   * Set when the backend runs each decoder layer as one kernel (DECODER_LAYER_KERNEL, src/kernel-names.ts)
   * that keeps for its backward only its own saved values: the floats per token it keeps besides the
   * layer's input (src/memory.ts counts these once, not the op chain's tape × activationFactor).
   */
  fusedLayerSavedFloats?: (dims: LayerDims) => number;
  /**
   * Bytes the backend holds beside the tensors the memory estimate counts: its libraries and sessions,
   * one layer's temporaries inside a fused kernel, a recycling pool of freed arrays (src/memory.ts).
   */
  runtimeBytes: number;
  /** Set when every tensor lives in one bounded heap (src/memory.ts refuses a job past `usableBytes`). */
  heap?: HeapFact;
}

/** One decoder layer's dimensions and its LoRA ranks (one per adapted projection), for fusedLayerSavedFloats. */
export interface LayerDims {
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  seq: number;
  loraRanks: readonly number[];
}

/** Tokens per loss chunk unless a backend says otherwise. */
export const HEAD_CHUNK_TOKENS = 256;

/** The facts of a tfjs backend without a facts file of its own (e.g. webgl): the plain tfjs behaviour. */
export const GENERIC_FACTS: BackendFacts = {
  name: 'generic',
  transposeFlagsFree: false,
  perHeadAttention: false,
  headChunk: { min: HEAD_CHUNK_TOKENS, max: HEAD_CHUNK_TOKENS, maxLogitsBytes: Infinity },
  frozenHeadBlockRows: 0,
  addNFanIn: Infinity,
  syncReads: true,
  heapTensors: false,
  threads: { dataParallel: false, why: 'the backend already uses every core' },
  activationFactor: 1,
  runtimeBytes: 0,
};
