/**
 * The facts of the `native` backend (tfjs-cpu tensors, onnxruntime-node kernels: backend.ts) — see
 * ../facts.ts.
 *
 *   transposeFlagsFree   onnxruntime's Gemm reads either layout: x @ Wᵀ needs no transposed copy of W
 *   headChunk            onnxruntime packs the [vocab, hidden] head for every GEMM call, so 4× taller
 *                        chunks (up to 1024 tokens within 256 MiB of logits) ran the head's three
 *                        products 1.5× faster (bench config)
 *   threads              onnxruntime's thread pool already uses every core
 *   activationFactor     tensors are JS arrays: a SmolLM-135M-shape LoRA step at seq 512 peaked at
 *                        10.1 GB RSS against 1.2 GB of weights + 1.7 GB of estimated activations
 */
import { JS_BACKEND_ACTIVATION_FACTOR } from '../cpu/facts.js';
import { GENERIC_FACTS, HEAD_CHUNK_TOKENS, type BackendFacts } from '../facts.js';

export const NATIVE_FACTS: BackendFacts = {
  ...GENERIC_FACTS,
  name: 'native',
  transposeFlagsFree: true,
  headChunk: { min: HEAD_CHUNK_TOKENS, max: 1024, maxLogitsBytes: 256 * 1024 * 1024 },
  threads: { dataParallel: false, why: 'the native backend already uses every core' },
  activationFactor: JS_BACKEND_ACTIVATION_FACTOR,
};
