/**
 * The facts of tfjs-wasm (`wasm`: XNNPACK in one 32-bit WebAssembly heap, one thread) — see
 * ../facts.ts for what each one means.
 *
 *   perHeadAttention      a matMul with batch dimensions runs a scalar loop (~3 GFLOP/s), a plain 2-D
 *                         matMul goes to XNNPACK (~40 GFLOP/s)
 *   frozenHeadBlockRows   XNNPACK streams the whole reduction per output tile: the backward product
 *                         d logits · W with K = 50k vocabulary rows runs at ~23 GFLOP/s, 8k-row blocks
 *                         at ~50; cutting costs ~350 ms, so only a frozen head (cached) is cut
 *   heap                  tfjs 4.22's build aborts once its heap passes 2 GiB (measured: a 2.3 GB
 *                         working set aborts, 1.8 GB runs, although the declared maximum is 4 GiB); a
 *                         step can count on 75 % of it (calibrated: a 58 M-parameter full fine-tune at
 *                         seq 256 with XNNPACK's packed copies, 1.5 GB estimated, trains; a 134 M LoRA
 *                         step, 1.8 GB, aborts)
 */
import { GENERIC_FACTS, type BackendFacts } from '../facts.js';

/** tfjs-wasm 4.22 aborts once its heap passes 2 GiB. */
export const WASM_HEAP_LIMIT_BYTES = 2 * 1024 ** 3;
/** What a training step can count on of that heap: the heap grows in +20 % steps and freed blocks fragment it. */
export const WASM_USABLE_BYTES = 0.75 * WASM_HEAP_LIMIT_BYTES;
/** Rows per LM-head block for a frozen head. */
export const WASM_HEAD_BLOCK_ROWS = 8192;

export const WASM_FACTS: BackendFacts = {
  ...GENERIC_FACTS,
  name: 'wasm',
  perHeadAttention: true,
  frozenHeadBlockRows: WASM_HEAD_BLOCK_ROWS,
  heapTensors: true,
  threads: { dataParallel: true },
  heap: {
    limitBytes: WASM_HEAP_LIMIT_BYTES,
    usableBytes: WASM_USABLE_BYTES,
    advice: 'use --backend native (npm install onnxruntime-node) or --backend tensorflow',
  },
};
